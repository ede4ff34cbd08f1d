// GetToken for Managed Apple Account access management (issue 13, section
// 3), against the real binary, real sign-ins at the test IdP and a fake MDM
// that records every request reaching it. A tenant with apple_business
// answers a bound device's GetToken for com.apple.maid itself, with a JWT
// signed by its server key (RSA: RS256, P-256: ES256) that must verify
// with the public key alone and carry exactly iss, iat, jti and
// service_type; nothing of it reaches the MDM. Other token services, and
// tenants without apple_business, still go to the MDM; no bearer is 401;
// a key we cannot sign with is a configuration error.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { baseTenant, cli, tmpDir, writeConfig } from './lib.mjs';
import {
  enroll, freePort, oidcTenant, startTestIdp, startWorld, stopAll,
} from './idp.mjs';

const CT_CHECKIN = 'application/x-apple-aspen-mdm-checkin';
const UUID_RSA = '11111111-2222-4333-8444-555555555555';
const UUID_EC = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';

let idp;
let bridge;
let mdm;
const seen = [];
const keys = {};

function startMdm() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end('<from-mdm/>');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function keyFile(dir, name, key) {
  const f = path.join(dir, `${name}.pem`);
  fs.writeFileSync(f, key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return `file:${f}`;
}

const checkin = (entries) => '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>'
  + Object.entries(entries).map(([k, v]) => `<key>${k}</key><string>${v}</string>`).join('')
  + '</dict></plist>\n';

async function put(tenant, token, body) {
  const h = { 'content-type': CT_CHECKIN };
  if (token) h.authorization = `Bearer ${token}`;
  const n = seen.length;
  const r = await fetch(`${bridge.url}/t/${tenant}/mdm/checkin`, { method: 'PUT', headers: h, body });
  const text = await r.text();
  await new Promise((res) => setTimeout(res, 30));
  return { status: r.status, ctype: r.headers.get('content-type'), body: text, reached: seen.slice(n) };
}

// Sign in on tenant and bind the grant with its first Authenticate.
async function boundDevice(tenant, enrollmentId) {
  const r = await enroll({ bridge, tenant, login: 'user1' });
  assert.equal(r.status, 308, `sign-in stopped at ${r.stage}: ${r.status}`);
  const a = await put(tenant, r.token, checkin({ MessageType: 'Authenticate', Topic: 't', EnrollmentID: enrollmentId }));
  assert.equal(a.status, 200);
  assert.equal(a.reached.length, 1);
  return r.token;
}

const getToken = (service, enrollmentId) => checkin({
  MessageType: 'GetToken', TokenServiceType: service, EnrollmentID: enrollmentId,
});

// The JWT inside the answer's TokenData, verified with pub.
function verifiedClaims(body, pub, alg) {
  const m = /<key>TokenData<\/key>\s*<data>([^<]*)<\/data>/.exec(body);
  assert.ok(m, `no TokenData in ${body}`);
  const jwt = Buffer.from(m[1].replace(/\s+/g, ''), 'base64').toString('utf8');
  const [h, p, s] = jwt.split('.');
  assert.deepEqual(JSON.parse(Buffer.from(h, 'base64url')), { alg, typ: 'JWT' });
  const key = alg === 'ES256' ? { key: pub, dsaEncoding: 'ieee-p1363' } : pub;
  const sig = Buffer.from(s, 'base64url');
  assert.ok(crypto.verify('sha256', Buffer.from(`${h}.${p}`), key, sig), 'signature does not verify');
  const wrong = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  if (alg === 'ES256') {
    assert.ok(!crypto.verify('sha256', Buffer.from(`${h}.${p}`), { key: wrong, dsaEncoding: 'ieee-p1363' }, sig));
  }
  return JSON.parse(Buffer.from(p, 'base64url'));
}

before(async () => {
  const port = await freePort();
  mdm = await startMdm();
  const upstream = `http://127.0.0.1:${mdm.address().port}/base/`;
  idp = await startTestIdp({});
  const pub = `http://127.0.0.1:${port}`;
  const dir = tmpDir();
  keys.rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  keys.ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsa = oidcTenant(pub, idp, 'rsa', { domains: ['rsa.generic.test'] });
  rsa.tenant.mdm = { upstream };
  rsa.tenant.apple_business = { server_uuid: UUID_RSA.toUpperCase(), private_key: keyFile(dir, 'rsa', keys.rsa.privateKey) };
  const ec = oidcTenant(pub, idp, 'ec', { domains: ['ec.generic.test'] });
  ec.tenant.mdm = { upstream };
  ec.tenant.apple_business = { server_uuid: UUID_EC, private_key: keyFile(dir, 'ec', keys.ec.privateKey) };
  const plain = oidcTenant(pub, idp, 'plain', { domains: ['plain.generic.test'] });
  plain.tenant.mdm = { upstream };
  ({ bridge } = await startWorld(port, [rsa, ec, plain]));
});

after(async () => {
  await stopAll(bridge, idp);
  mdm.closeAllConnections?.();
  await new Promise((r) => mdm.close(r));
});

for (const [tenant, alg, uuid] of [['rsa', 'RS256', UUID_RSA], ['ec', 'ES256', UUID_EC]]) {
  test(`${tenant}: GetToken com.apple.maid is answered here, ${alg}, claims exact, nothing forwarded`, async () => {
    const token = await boundDevice(tenant, `ENR-${tenant}`);
    const before = Math.floor(Date.now() / 1000);
    const r = await put(tenant, token, getToken('com.apple.maid', `ENR-${tenant}`));
    const afterT = Math.floor(Date.now() / 1000);
    assert.equal(r.status, 200, r.body);
    assert.match(r.ctype, /^application\/xml/);
    assert.equal(r.reached.length, 0, 'the maid GetToken reached the MDM');
    const c = verifiedClaims(r.body, keys[tenant].publicKey, alg);
    assert.deepEqual(Object.keys(c).sort(), ['iat', 'iss', 'jti', 'service_type']);
    assert.equal(c.iss, uuid);
    assert.equal(c.service_type, 'com.apple.maid');
    assert.ok(c.iat >= before && c.iat <= afterT, `iat ${c.iat}`);
    assert.match(c.jti, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const again = await put(tenant, token, getToken('com.apple.maid', `ENR-${tenant}`));
    assert.notEqual(verifiedClaims(again.body, keys[tenant].publicKey, alg).jti, c.jti);

    // watch pairing and the like still go to the MDM
    const w = await put(tenant, token, getToken('com.apple.watch.pairing', `ENR-${tenant}`));
    assert.equal(w.status, 200);
    assert.equal(w.body, '<from-mdm/>');
    assert.equal(w.reached.length, 1);
    assert.match(w.reached[0].body, /com\.apple\.watch\.pairing/);

    // no bearer: 401, nothing forwarded
    const n = await put(tenant, undefined, getToken('com.apple.maid', `ENR-${tenant}`));
    assert.equal(n.status, 401);
    assert.equal(n.reached.length, 0);
    // the grant's token from another enrollment: refused as any check-in
    const o = await put(tenant, token, getToken('com.apple.maid', 'ENR-OTHER'));
    assert.equal(o.status, 401);
    assert.doesNotMatch(o.body, /TokenData/);
    assert.equal(o.reached.length, 0);
  });
}

test('a tenant without apple_business forwards GetToken com.apple.maid to the MDM', async () => {
  const token = await boundDevice('plain', 'ENR-plain');
  const r = await put('plain', token, getToken('com.apple.maid', 'ENR-plain'));
  assert.equal(r.status, 200);
  assert.equal(r.body, '<from-mdm/>');
  assert.equal(r.reached.length, 1);
});

const badKeys = [
  ['P-384 key', () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey, /P-256/],
  ['RSA 1024', () => crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey, /under 2048/],
  ['Ed25519', () => crypto.generateKeyPairSync('ed25519').privateKey, /unsupported key type/],
  ['not a key', () => null, /not a PEM private key/],
];

for (const [name, make, re] of badKeys) {
  test(`a bad apple_business key is a configuration error: ${name}`, () => {
    const dir = tmpDir();
    const f = path.join(dir, 'k.pem');
    const k = make();
    fs.writeFileSync(f, k ? k.export({ type: 'pkcs8', format: 'pem' }) : 'hello\n', { mode: 0o600 });
    const t = baseTenant('contoso', ['contoso.example'], {
      apple_business: { server_uuid: UUID_EC, private_key: `file:${f}` },
    });
    const c = writeConfig({ port: 8080, tenants: [t] });
    const r = cli(['check-config', '-c', c.main]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /contoso\.json: apple_business\.private_key: /);
    assert.match(r.stderr, re);
  });
}

test('apple_business needs a UUID', () => {
  const t = baseTenant('contoso', ['contoso.example'], {
    apple_business: { server_uuid: 'not-a-uuid', private_key: 'file:/nonexistent' },
  });
  const c = writeConfig({ port: 8080, tenants: [t] });
  const r = cli(['check-config', '-c', c.main]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /contoso\.json: apple_business\.server_uuid: must be a UUID/);
});
