"""Security tokens: the SAML builders, the cryptography (keys, signing, encryption, proof keys), the STS keyring,
the one token-verification path and the unverified reader behind ``sts token show``."""
