"""Wire formats in and out, nothing else: the hardened parser, SOAP, WS-Addressing, WS-Security and WS-Trust."""
