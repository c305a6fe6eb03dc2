// make bench's Node.js peer: auth0's `saml` package (npm, installed under interop/node) signs a SAML 2.0
// assertion comparable to the STS's (issuer, NameID, bearer confirmation, audience, five attributes, AuthnStatement;
// RSA-SHA256, SHA-256, exclusive c14n), then signs and encrypts one (AES-256-GCM with RSA-OAEP, the package's
// defaults), each in a timed loop. Request (JSON on stdin): key, cert, encryptionCert, encryptionPublicKey, issuer,
// audience, nameIdentifier, attributes, seconds. Answer (JSON on stdout): per loop the count, CPU and wall seconds.
'use strict';

const saml = require('saml');

function readStdin() {
  return new Promise((resolve) => {
    const chunks = [];
    process.stdin.on('data', (chunk) => chunks.push(chunk));
    process.stdin.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
  });
}

function options(request, encrypt) {
  const common = {
    cert: Buffer.from(request.cert), key: Buffer.from(request.key), issuer: request.issuer,
    lifetimeInSeconds: 1800, audiences: request.audience, attributes: request.attributes,
    nameIdentifier: request.nameIdentifier,
    nameIdentifierFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
    authnContextClassRef: 'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport',
    signatureAlgorithm: 'rsa-sha256', digestAlgorithm: 'sha256',
  };
  if (!encrypt) return common;
  return Object.assign(common, {
    encryptionCert: Buffer.from(request.encryptionCert),
    encryptionPublicKey: Buffer.from(request.encryptionPublicKey),
    encryptionAlgorithm: 'http://www.w3.org/2009/xmlenc11#aes256-gcm',
    keyEncryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
  });
}

function createOne(opts, encrypt) {
  if (!encrypt) return Promise.resolve(saml.Saml20.create(opts));
  return new Promise((resolve, reject) => {
    saml.Saml20.create(opts, (err, xml) => (err ? reject(err) : resolve(xml)));
  });
}

async function timed(request, encrypt) {
  const opts = options(request, encrypt);
  const sample = await createOne(opts, encrypt); // what is made, once
  const warm = process.hrtime.bigint(); // then a warm-up (the JIT), a quarter of the time
  while (Number(process.hrtime.bigint() - warm) / 1e9 < request.seconds / 4) await createOne(opts, encrypt);
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  let count = 0;
  while (Number(process.hrtime.bigint() - start) / 1e9 < request.seconds) {
    await createOne(opts, encrypt);
    count += 1;
  }
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  return { count, cpu_seconds: (used.user + used.system) / 1e6, wall_seconds: wall, sample_bytes: sample.length,
           sample_head: sample.slice(0, 200) };
}

readStdin().then(async (request) => {
  const own = { paths: [require.resolve('saml')] }; // saml's own xml-crypto, not the interop peers' newer one
  const answer = { ok: true, version: require('saml/package.json').version,
                   xml_crypto: require(require.resolve('xml-crypto/package.json', own)).version, node: process.version };
  answer.signed = await timed(request, false);
  answer.encrypted = await timed(request, true);
  process.stdout.write(JSON.stringify(answer));
}).catch((err) => {
  process.stdout.write(JSON.stringify({ ok: false, error: String(err && err.stack || err) }));
});
