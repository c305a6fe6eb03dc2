#!/usr/bin/env node
// The Node.js X.509 client peer of `make interop`: node-soap (npm `soap`) asks an STS for a token, signing its
// request with a registered client certificate, the way a Node.js service calling an STS does.
//
// Everything on the wire is node-soap's: it loads the STS's WSDL (and the schemas it imports), writes the SOAP 1.1
// envelope, or the SOAP 1.2 one with `forceSoap12Headers`, and its `WSSecurityCert` adds the wsse:Security header:
// a BinarySecurityToken with the certificate, a wsu:Timestamp, and an RSA-SHA256 ds:Signature (xml-crypto 6.3.2)
// over the Body and the Timestamp with its default transforms, enveloped-signature then exclusive c14n, and its
// default ids (an `Id` attribute on the Body and on the Timestamp). The RST's children are given as raw XML
// (`$xml`): the WSDL's RequestSecurityToken is `xs:any`, so that is how a node-soap user fills it. node-soap turns
// answers into objects that lose the signed token's bytes, so the raw answer is read with @xmldom/xmldom, as a
// node-soap user reading a SAML token does.
//
// Username cases use node-soap's WSSecurity (a UsernameToken, PasswordText or PasswordDigest with a nonce, and a
// Timestamp). After an Issue that gave a token, `followUps` makes the same signed client Validate it (WS-Trust's status
// token type) and then Cancel it: each is one more signed request through node-soap, on the same port.
//
// stdin:  {"wsdlUrl", "soap": "1.1"|"1.2", "wstrust": "1.3"|"2005", "auth": "x509", "keyPem", "certPem",
//          (or "auth": "username-text"|"username-digest", "username", "password"), "appliesTo", "tokenType",
//          "keyType", "followUps": bool, "caPem": "..."|null, "insecure": bool, "timeoutMs",
//          "securityOptions": WSSecurityCert's options (absent: its defaults)}
// stdout: {"ok": true, "port", "exchanges": [{"operation", "url", "request", "response", "status", "fault",
//          "tokenType", "token", "validStatus"}]}  or  {"ok": false, "error", "exchanges": [...]}.
// Exit 0 either way; non-zero only on a crash.
"use strict";

const https = require("https");
const soap = require("soap");
const { DOMParser, XMLSerializer } = require("@xmldom/xmldom");

const TRUST = {
  "1.3": "http://docs.oasis-open.org/ws-sx/ws-trust/200512",
  "2005": "http://schemas.xmlsoap.org/ws/2005/02/trust",
};
// The Validate TokenType asking for a status answer (WS-Trust 1.3 section 7; 2005/02 spells it under its own URI).
const STATUS = {
  "1.3": "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTR/Status",
  "2005": "http://schemas.xmlsoap.org/ws/2005/02/trust/RSTR/Status",
};
const WSP = "http://schemas.xmlsoap.org/ws/2004/09/policy";
const WSA = "http://www.w3.org/2005/08/addressing";
const SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/";
const SOAP12 = "http://www.w3.org/2003/05/soap-envelope";

class PeerError extends Error {}

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on("data", (chunk) => chunks.push(chunk));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.on("error", reject);
  });
}

function escapeXml(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

// The RST's children for Issue: RequestType, AppliesTo (an EndpointReference), KeyType and TokenType.
function issueChildren(request) {
  const wst = TRUST[request.wstrust];
  return (
    `<wst:RequestType xmlns:wst="${wst}">${wst}/Issue</wst:RequestType>` +
    `<wsp:AppliesTo xmlns:wsp="${WSP}"><wsa:EndpointReference xmlns:wsa="${WSA}">` +
    `<wsa:Address>${escapeXml(request.appliesTo)}</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>` +
    `<wst:KeyType xmlns:wst="${wst}">${escapeXml(request.keyType)}</wst:KeyType>` +
    `<wst:TokenType xmlns:wst="${wst}">${escapeXml(request.tokenType)}</wst:TokenType>`
  );
}

// Validate asks for a status; Cancel just names its target. The token goes in as the STS issued it.
function targetChildren(request, operation, token) {
  const wst = TRUST[request.wstrust];
  const tokenType = operation === "Validate" ? `<wst:TokenType xmlns:wst="${wst}">${STATUS[request.wstrust]}</wst:TokenType>` : "";
  return (
    tokenType +
    `<wst:RequestType xmlns:wst="${wst}">${wst}/${operation}</wst:RequestType>` +
    `<wst:${operation}Target xmlns:wst="${wst}">${token}</wst:${operation}Target>`
  );
}

function parse(xml) {
  const errors = [];
  const doc = new DOMParser({
    onError: (level, message) => {
      if (level !== "warning") errors.push(message);
    },
  }).parseFromString(xml, "text/xml");
  if (errors.length || !doc || !doc.documentElement) return null;
  return doc;
}

function firstElement(node) {
  for (let child = node && node.firstChild; child; child = child.nextSibling) {
    if (child.nodeType === 1) return child;
  }
  return null;
}

function descendants(doc, ns, name) {
  return Array.from(doc.getElementsByTagNameNS(ns, name));
}

// What a SOAP fault says: SOAP 1.2 Code/Subcode values and Reason/Text, or SOAP 1.1 faultcode and faultstring.
function faultOf(doc) {
  const fault12 = descendants(doc, SOAP12, "Fault")[0];
  if (fault12) {
    const codes = descendants(fault12, SOAP12, "Value").map((v) => v.textContent.trim());
    const reason = descendants(fault12, SOAP12, "Text")[0];
    return `${codes.join(" / ")}: ${reason ? reason.textContent.trim() : ""}`;
  }
  const fault11 = descendants(doc, SOAP11, "Fault")[0];
  if (fault11) {
    const text = (name) => {
      const found = Array.from(fault11.childNodes).find((n) => n.nodeType === 1 && n.localName === name);
      return found ? found.textContent.trim() : "";
    };
    return `${text("faultcode")}: ${text("faultstring")}`;
  }
  return null;
}

// The raw answer read as a node-soap user reads a SAML token: TokenType, RequestedSecurityToken's first element
// serialised on its own, and a Validate's Status/Code.
function readAnswer(xml, wstrust) {
  const doc = xml ? parse(xml) : null;
  if (!doc) return { fault: `the answer is not XML: ${String(xml).slice(0, 200)}` };
  const fault = faultOf(doc);
  if (fault) return { fault };
  const wst = TRUST[wstrust];
  const rstr = descendants(doc, wst, "RequestSecurityTokenResponse")[0];
  if (!rstr) return { fault: "no wst:RequestSecurityTokenResponse in the answer" };
  const child = (name) => Array.from(rstr.childNodes).find((n) => n.nodeType === 1 && n.namespaceURI === wst && n.localName === name);
  const tokenType = child("TokenType");
  const holder = child("RequestedSecurityToken");
  const token = holder ? firstElement(holder) : null;
  const code = descendants(rstr, wst, "Code")[0];
  return {
    fault: null,
    tokenType: tokenType ? tokenType.textContent.trim() : null,
    token: token ? new XMLSerializer().serializeToString(token) : null,
    validStatus: code ? code.textContent.trim() : null,
    cancelled: Boolean(child("RequestedTokenCancelled")),
  };
}

// The port whose Issue is this WS-Trust version's, preferring one named for the SOAP version (node-soap itself
// writes the envelope version the caller asks for, whatever the binding says).
function choosePort(client, wstrust, soapVersion) {
  const action = `${TRUST[wstrust]}/RST/Issue`;
  const found = [];
  for (const [serviceName, service] of Object.entries(client.wsdl.definitions.services)) {
    for (const [portName, port] of Object.entries(service.ports)) {
      const issue = port.binding.methods.Issue;
      if (issue && issue.soapAction === action) found.push({ serviceName, portName });
    }
  }
  const wanted = soapVersion === "1.2" ? /soap12|12$/i : /soap11|soap(?!12)|11$/i;
  return found.find((p) => wanted.test(p.portName)) || found[0] || null;
}

function call(client, method, xml) {
  return new Promise((resolve) => {
    let status = null;
    const onResponse = (body, response) => {
      status = response ? response.status : null;
    };
    client.once("response", onResponse);
    method({ $xml: xml }, (err, _result, rawResponse) => {
      client.removeListener("response", onResponse);
      const body = typeof rawResponse === "string" ? rawResponse : err && typeof err.body === "string" ? err.body : null;
      if (status === null && err && err.response) status = err.response.status;
      resolve({ request: client.lastRequest, response: body, status, error: err && body === null ? String(err.message || err) : null });
    });
  });
}

async function exchange(client, port, operation, request, children) {
  const method = client[port.serviceName][port.portName][operation];
  if (!method) throw new PeerError(`the port ${port.portName} has no ${operation}`);
  const done = await call(client, method, children);
  const answer = done.response === null ? { fault: done.error || "no answer" } : readAnswer(done.response, request.wstrust);
  return { operation, url: client.lastEndpoint, request: done.request, response: done.response || "", status: done.status, ...answer };
}

function httpsAgent(request) {
  if (request.insecure) return new https.Agent({ rejectUnauthorized: false });
  if (request.caPem) return new https.Agent({ ca: request.caPem });
  return undefined;
}

// node-soap's own WS-Security, as a user sets it: WSSecurityCert with its defaults (`securityOptions` passes its
// options through: `make record` asks for wsu:Id, or try a variant by hand), or WSSecurity's UsernameToken.
function security(request) {
  if (request.auth === "x509") {
    return new soap.WSSecurityCert(request.keyPem, request.certPem, "", request.securityOptions || {});
  }
  const digest = request.auth === "username-digest";
  return new soap.WSSecurity(request.username, request.password, {
    passwordType: digest ? "PasswordDigest" : "PasswordText",
    hasNonce: digest,
    mustUnderstand: true,
  });
}

async function run(request) {
  if (!TRUST[request.wstrust]) throw new PeerError(`no WS-Trust ${request.wstrust}`);
  const agent = httpsAgent(request);
  const transport = agent ? { httpsAgent: agent } : {};
  const client = await soap.createClientAsync(request.wsdlUrl, {
    forceSoap12Headers: request.soap === "1.2",
    wsdl_options: { ...transport, timeout: request.timeoutMs },
  });
  client.setSecurity(security(request));
  const port = choosePort(client, request.wstrust, request.soap);
  if (!port) throw new PeerError(`the WSDL has no port with a WS-Trust ${request.wstrust} Issue`);
  const exchanges = [];
  const issued = await exchange(client, port, "Issue", request, issueChildren(request));
  exchanges.push(issued);
  if (request.followUps && issued.token) {
    exchanges.push(await exchange(client, port, "Validate", request, targetChildren(request, "Validate", issued.token)));
    exchanges.push(await exchange(client, port, "Cancel", request, targetChildren(request, "Cancel", issued.token)));
  }
  return { ok: true, port: `${port.serviceName}/${port.portName}`, exchanges };
}

async function main() {
  let answer;
  try {
    answer = await run(JSON.parse(await readStdin()));
  } catch (err) {
    answer = { ok: false, error: `${err instanceof PeerError ? "" : `${err.name}: `}${err.message}` };
  }
  process.stdout.write(JSON.stringify(answer));
}

main();
