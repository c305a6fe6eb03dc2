#!/usr/bin/env node
// The Node.js relying-party peer of `make interop`: checks one token our STS issued, the way a Node RP would.
//
// Choice: the SAML reader is auth0's WS-Fed relying-party library, passport-wsfed-saml2 4.6.1 (its `SAML` class,
// exactly what its WsFedSaml2Strategy runs on RequestedSecurityToken's first child: signature, expiry, audience,
// recipient, NameIdentifier/NameID and attributes, SAML 1.1 and 2.0). It depends on a git fork of xml-crypto
// (auth0/xml-crypto#v1.4.1-auth0.2) that cannot be fetched here, so package.json's `overrides` pins it to the
// registry's xml-crypto 1.4.1 (the release the fork was taken from); a plain `npm ci` installs it.
// Decryption (xenc:EncryptedData for 1.1, saml2:EncryptedAssertion for 2.0) is xml-encryption 6.0.1, which refuses
// CBC and RSA 1.5 unless `allowInsecure` is set in the input. passport-wsfed-saml2 only decrypts inside a
// samlp:Response, so decrypting first is what a WS-Fed RP on Node does.
// The signature is verified twice, both times with ONLY the STS certificate given on stdin as the key:
//   1. passport-wsfed-saml2 (xml-crypto 1.4.1) with `cert` and no thumbprints: it then ignores KeyInfo's cert;
//   2. xml-crypto 6.3.2 `SignedXml` with `publicCert` and `getCertFromKeyInfo` returning null (HMAC disabled,
//      unlike 1.4.1), plus a check that its one Reference is `#ID` / `#AssertionID` of the assertion itself
//      (which passport-wsfed-saml2 does not check).
//
// stdin:  {"token": "<xml>", "saml": "1.1"|"2.0", "stsCertPem": "...", "rpKeyPem": "..."|null,
//          "audience": "https://...", "allowInsecure": false}
// stdout: {"ok": true, "decrypted", "signatureVerified", "issuer", "subject", "audience": [], "notBefore",
//          "notOnOrAfter", "attributes": {"<claim uri>": ["v", ...]}, "verifiedBy": [...]}
//         or {"ok": false, "error": "<the library's own message>"}. Exit 0 either way; non-zero only on a crash.
"use strict";

const { DOMParser } = require("@xmldom/xmldom");
const xpath = require("xpath");
const xmlenc = require("xml-encryption");
const xmlCrypto = require("xml-crypto");
const { SAML } = require("passport-wsfed-saml2/lib/passport-wsfed-saml2/saml");

const NS = {
  saml1: "urn:oasis:names:tc:SAML:1.0:assertion",
  saml2: "urn:oasis:names:tc:SAML:2.0:assertion",
  xenc: "http://www.w3.org/2001/04/xmlenc#",
  ds: "http://www.w3.org/2000/09/xmldsig#",
};
const NAME_IDENTIFIER = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier";
const NOT_CLAIMS = new Set(["issuer", "sessionIndex", "email", "nameIdAttributes"]);

class PeerError extends Error {}

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on("data", (chunk) => chunks.push(chunk));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.on("error", reject);
  });
}

function parse(xml, what) {
  const errors = [];
  const doc = new DOMParser({
    onError: (level, message) => {
      if (level !== "warning") errors.push(message);
    },
  }).parseFromString(xml, "text/xml");
  if (errors.length || !doc || !doc.documentElement) {
    throw new PeerError(`${what} is not well-formed XML: ${errors.join("; ") || "no root element"}`);
  }
  return doc;
}

function bareCert(pem) {
  const match = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(pem);
  if (!match) throw new PeerError("stsCertPem holds no PEM certificate");
  return match[1].replace(/\s+/g, "");
}

function decrypt(tokenXml, keyPem, allowInsecure) {
  return new Promise((resolve, reject) => {
    xmlenc.decrypt(
      tokenXml,
      { key: keyPem, disallowDecryptionWithInsecureAlgorithm: !allowInsecure, warnInsecureAlgorithm: false },
      (err, plain) => (err ? reject(err) : resolve(Buffer.isBuffer(plain) ? plain.toString("utf8") : plain)),
    );
  });
}

function validateWithPassport(assertionXml, certB64, audience) {
  const saml = new SAML({
    cert: certB64,
    realm: audience,
    recipientUrl: audience,
    checkExpiration: true,
    checkAudience: true,
  });
  return new Promise((resolve, reject) => {
    try {
      saml.validateSamlAssertion(assertionXml, (err, profile) => (err ? reject(err) : resolve(profile)));
    } catch (err) {
      reject(err);
    }
  });
}

function verifyWithXmlCrypto(assertionXml, certPem) {
  const doc = parse(assertionXml, "the assertion");
  const assertion = doc.documentElement;
  const id = assertion.getAttribute("ID") || assertion.getAttribute("AssertionID");
  if (!id) throw new PeerError("the assertion has no ID / AssertionID");
  const signatures = xpath.select(
    "/*/*[local-name(.)='Signature' and namespace-uri(.)='" + NS.ds + "']", doc);
  if (signatures.length !== 1) {
    throw new PeerError(`expected one ds:Signature child of the assertion, found ${signatures.length}`);
  }
  const sig = new xmlCrypto.SignedXml({
    publicCert: certPem,
    getCertFromKeyInfo: () => null,
    idAttribute: "AssertionID",
  });
  sig.loadSignature(signatures[0]);
  if (!sig.checkSignature(assertionXml)) {
    throw new PeerError("xml-crypto 6.3.2: signature did not verify");
  }
  const uris = sig.getReferences().map((ref) => ref.uri);
  if (uris.length !== 1 || uris[0] !== "#" + id) {
    throw new PeerError(`xml-crypto 6.3.2: the signature references ${JSON.stringify(uris)}, not the assertion #${id}`);
  }
}

function values(value) {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

async function check(input) {
  for (const key of ["token", "stsCertPem", "audience"]) {
    if (typeof input[key] !== "string") throw new PeerError(`input lacks "${key}"`);
  }
  const token = parse(input.token, "the token").documentElement;
  let assertionXml = input.token;
  let decrypted = false;
  if (token.namespaceURI === NS.xenc && token.localName === "EncryptedData"
      || token.namespaceURI === NS.saml2 && token.localName === "EncryptedAssertion") {
    if (!input.rpKeyPem) throw new PeerError("the token is encrypted and no rpKeyPem was given");
    assertionXml = await decrypt(input.token, input.rpKeyPem, Boolean(input.allowInsecure));
    decrypted = true;
  }
  const assertion = parse(assertionXml, "the decrypted token").documentElement;
  const expectedNs = input.saml === "1.1" ? NS.saml1 : NS.saml2;
  if (assertion.localName !== "Assertion" || assertion.namespaceURI !== expectedNs) {
    throw new PeerError(`expected a SAML ${input.saml} Assertion, got {${assertion.namespaceURI}}${assertion.localName}`);
  }

  const profile = await validateWithPassport(assertionXml, bareCert(input.stsCertPem), input.audience);
  verifyWithXmlCrypto(assertionXml, input.stsCertPem);

  const attributes = {};
  for (const [name, value] of Object.entries(profile)) {
    if (!NOT_CLAIMS.has(name) && name !== NAME_IDENTIFIER) attributes[name] = values(value);
  }
  // passport-wsfed-saml2 puts the NameID / NameIdentifier under the nameidentifier claim (overwriting an attribute
  // of that name): report it as the subject, and keep an attribute of that name only if the token has one.
  const doc = assertion.ownerDocument;
  const attributeNamed = (uri) => xpath.select(
    "//*[local-name(.)='Attribute' and (@Name='" + uri + "' or concat(@AttributeNamespace, '/', @AttributeName)='"
    + uri + "')]", doc).length > 0;
  if (attributeNamed(NAME_IDENTIFIER)) attributes[NAME_IDENTIFIER] = values(profile[NAME_IDENTIFIER]);

  const audiences = xpath.select(
    "/*/*[local-name(.)='Conditions']//*[local-name(.)='Audience']", doc).map((node) => node.textContent);
  const conditions = xpath.select("/*/*[local-name(.)='Conditions']", doc)[0];
  return {
    ok: true,
    decrypted,
    signatureVerified: true,
    verifiedBy: ["passport-wsfed-saml2 4.6.1 (xml-crypto 1.4.1)", "xml-crypto 6.3.2"],
    issuer: profile.issuer ?? null,
    subject: profile[NAME_IDENTIFIER] ?? null,
    audience: audiences,
    notBefore: conditions ? conditions.getAttribute("NotBefore") || null : null,
    notOnOrAfter: conditions ? conditions.getAttribute("NotOnOrAfter") || null : null,
    attributes,
  };
}

async function main() {
  let input;
  try {
    input = JSON.parse(await readStdin());
  } catch (err) {
    process.stdout.write(JSON.stringify({ ok: false, error: "stdin is not JSON: " + err.message }) + "\n");
    return;
  }
  let result;
  try {
    result = await check(input);
  } catch (err) {
    result = { ok: false, error: err && err.message ? err.message : String(err) };
  }
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((err) => {
  process.stderr.write((err && err.stack) || String(err));
  process.exit(2);
});
