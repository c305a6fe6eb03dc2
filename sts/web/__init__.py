"""The HTTP side: the Starlette app (SOAP endpoints, WSDL, MEX, federation metadata) and the console."""
