// Tenant routes and the person-carrying profile fetch (issue 13 section 4),
// against the real binary, the real test IdP and TWO fake MDMs in this
// process: a route matching alice's enroll group sends her profile fetch
// and her check-ins to MDM B, everyone else goes to MDM A; the profile
// fetch carries our access token (verified here against the bridge's JWKS)
// and the identity headers; mdm.claims lands in the access token and in
// the proxied headers; a route removed from the configuration fails
// closed; `enrollbridge map` names the route; bad routes are config errors.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { cliAsync, enrollPost, SRC, tmpDir, writeConfig, freePort as lfreePort } from './lib.mjs';
import {
  enroll, ENTRA_PATH, entraTenant, freePort, GROUP_ENROLL, GROUP_STAFF, startTestIdp, startWorld,
  stopAll, TENANT_CONTOSO,
} from './idp.mjs';

const CT_CHECKIN = 'application/x-apple-aspen-mdm-checkin';
const PROFILE = fs.readFileSync(path.join(SRC, 'tests/unit/data/profiles/enroll.mobileconfig'));
const MAC = { family: 'Mac', udid: '00008103-001A2B3C4D5E6F70', serial: 'C02XK1ZZJGH5' };

let idp, world, bridge, tenant;
const mdms = {}; // name -> { server, url, seen: [] }

function startMdm(name) {
  const seen = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      if (req.method === 'GET' && req.url === '/profile') {
        res.writeHead(200, { 'content-type': 'application/x-apple-aspen-config' });
        res.end(PROFILE);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/xml', 'x-mdm': name });
      res.end('<ok/>');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const m = { server, seen, url: `http://127.0.0.1:${server.address().port}` };
    mdms[name] = m;
    resolve(m);
  }));
}

const checkin = (type, ids) => '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>'
  + Object.entries({ MessageType: type, Topic: 'com.apple.mgmt.test', ...ids })
    .map(([k, v]) => `<key>${k}</key><string>${v}</string>`).join('')
  + '</dict></plist>\n';

const payloadOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
const claimsHeader = (h) => JSON.parse(Buffer.from(h['x-enrollbridge-claims'], 'base64url').toString());

// The tenant: MDM A with its profile URL and mdm.claims; route "enrollers"
// (alice's enroll group) to MDM B with its own profile URL and claims.
function tenantConfig({ withRoute = true } = {}) {
  const t = structuredClone(tenant);
  t.mdm = {
    upstream: mdms.A.url,
    profile: { url: `${mdms.A.url}/profile` },
    claims: ['name', 'groups', 'tid'],
    clients: [{ client_id: 'mdm-a', client_secret: 'introspect-secret' }],
  };
  t.esso = { app_store_id: 456 };
  if (withRoute) {
    t.routes = [
      { name: 'nobody', match: { claims: { tid: 'not-a-tenant' } }, mdm: { upstream: mdms.A.url } },
      {
        name: 'enrollers',
        match: { groups: [GROUP_ENROLL] },
        mdm: { upstream: mdms.B.url, profile: { url: `${mdms.B.url}/profile` }, claims: ['name', 'upn'] },
        esso: { app_store_id: 123 },
        enrollment: { default: 'adde' },
      },
    ];
  }
  return t;
}

async function signIn(login) {
  const r = await enroll({ bridge, tenant: 'contoso', login });
  assert.equal(r.status, 308, `sign-in of ${login} stopped at ${r.stage}: ${r.status} ${r.body ?? ''}`);
  return r.token;
}

// The enrollment POST with a bearer (and a W3C trace of the caller's): the
// profile, and what reached each MDM.
const TRACE = '5bf92f3577b34da6a3ce929d0e0e4736';
async function profile(token) {
  const n = { A: mdms.A.seen.length, B: mdms.B.seen.length };
  const r = await enrollPost(`${bridge.url}/t/contoso/enroll`, {
    ...MAC, headers: { authorization: `Bearer ${token}`, traceparent: `00-${TRACE}-00f067aa0ba902b7-01` },
  });
  const body = Buffer.from(await r.arrayBuffer());
  return { status: r.status, body, A: mdms.A.seen.slice(n.A), B: mdms.B.seen.slice(n.B) };
}

async function put(token, body) {
  const n = { A: mdms.A.seen.length, B: mdms.B.seen.length };
  const r = await fetch(`${bridge.url}/t/contoso/mdm/checkin`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': CT_CHECKIN },
    body,
  });
  const res = { status: r.status, body: await r.text() };
  await new Promise((ok) => setTimeout(ok, 30));
  return { ...res, A: mdms.A.seen.slice(n.A), B: mdms.B.seen.slice(n.B) };
}

// Verify an access token of ours with the tenant's published JWKS.
async function verifyWithJwks(jwt) {
  const [h, p, s] = jwt.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url').toString());
  const jwks = await (await fetch(`${bridge.url}/t/contoso/jwks.json`)).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `kid ${header.kid} is in the JWKS`);
  assert.equal(header.alg, 'ES256');
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  return crypto.verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' },
    Buffer.from(s, 'base64url'));
}

before(async () => {
  await startMdm('A');
  await startMdm('B');
  idp = await startTestIdp({ issuerPath: ENTRA_PATH });
  const port = await freePort();
  const spec = entraTenant(`http://127.0.0.1:${port}`, idp, 'contoso', { requireGroups: [] });
  tenant = spec.tenant;
  spec.tenant = tenantConfig();
  world = await startWorld(port, [spec]);
  ({ bridge } = world);
});

after(async () => {
  await stopAll(bridge, idp);
  for (const m of Object.values(mdms)) {
    m.server.closeAllConnections?.();
    await new Promise((r) => m.server.close(r));
  }
});

test('alice (enroll group) takes route "enrollers": profile and check-ins at MDM B, with bearer and identity', async () => {
  const token = await signIn('alice@contoso.com');
  const at = payloadOf(token);
  assert.equal(at.route, 'enrollers');
  // the route's enrollment makes her (iPhone) enrollment ADDE
  assert.equal(at.enrollment_mode, 'ADDE');
  await bridge.waitLog(/route enrollers makes this BYOD enrollment ADDE/);
  assert.deepEqual(at.idp, { name: at.idp.name, upn: 'alice@contoso.com' });
  assert.equal(typeof at.idp.name, 'string');

  const p = await profile(token);
  assert.equal(p.status, 200, p.body.toString());
  assert.equal(p.A.length, 0, 'MDM A got nothing of alice');
  assert.equal(p.B.length, 1);
  const f = p.B[0];
  assert.equal(f.method, 'GET');
  assert.equal(f.url, '/profile');
  assert.equal(f.headers.authorization, `Bearer ${token}`);
  assert.ok(await verifyWithJwks(f.headers.authorization.slice(7)), 'the bearer verifies with our JWKS');
  assert.equal(f.headers['x-enrollbridge-managed-apple-account'], 'alice@appleid.contoso.com');
  assert.equal(f.headers['x-enrollbridge-login'], 'alice@contoso.com');
  assert.equal(f.headers['x-enrollbridge-enrollment-mode'], 'ADDE');
  assert.equal(f.headers['x-enrollbridge-grant-id'], at.grant_id);
  assert.equal(f.headers['x-enrollbridge-route'], 'enrollers');
  // the profile fetch (a work-queue job) continues the device's trace
  assert.match(f.headers.traceparent ?? '', new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
  assert.equal(f.headers['x-enrollbridge-model-family'], 'Mac');
  assert.equal(f.headers['x-enrollbridge-serial'], MAC.serial);
  assert.equal(f.headers['x-enrollbridge-udid'], MAC.udid);
  assert.deepEqual(claimsHeader(f.headers), at.idp);

  // the grant remembers its route
  const gl = await cliAsync(['grants', 'list', '-c', world.config.main, '--json']);
  assert.equal(gl.code, 0, gl.stderr);
  const g = gl.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((x) => x.id === at.grant_id);
  assert.equal(g.route, 'enrollers');

  const c = await put(token, checkin('Authenticate', { UDID: 'UDID-ALICE-1' }));
  assert.equal(c.status, 200, c.body);
  assert.equal(c.A.length, 0);
  assert.equal(c.B.length, 1);
  const h = c.B[0].headers;
  assert.equal(h['x-enrollbridge-route'], 'enrollers');
  assert.equal(h['x-enrollment-mode'], 'ADDE');
  assert.equal(h['x-managed-apple-id'], 'alice@appleid.contoso.com');
  assert.equal(h['x-enrollbridge-managed-apple-account'], 'alice@appleid.contoso.com');
  assert.deepEqual(claimsHeader(h), at.idp);
});

test('erin (no enroll group) keeps the tenant: MDM A, the tenant\'s mdm.claims, no route', async () => {
  const token = await signIn('erin@contoso.com');
  const at = payloadOf(token);
  assert.equal(at.route, undefined);
  assert.deepEqual(at.idp.groups, [GROUP_STAFF]);
  assert.equal(at.idp.tid, TENANT_CONTOSO);
  assert.equal(typeof at.idp.name, 'string');

  const gl = await cliAsync(['grants', 'list', '-c', world.config.main, '--json']);
  const g = gl.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((x) => x.id === at.grant_id);
  assert.equal(g.route, undefined);

  const p = await profile(token);
  assert.equal(p.status, 200, p.body.toString());
  assert.equal(p.B.length, 0, 'MDM B got nothing of erin');
  assert.equal(p.A.length, 1);
  const f = p.A[0];
  assert.equal(f.headers.authorization, `Bearer ${token}`);
  assert.ok(await verifyWithJwks(token));
  assert.equal(f.headers['x-enrollbridge-route'], undefined);
  assert.equal(f.headers['x-enrollbridge-login'], 'erin@contoso.com');
  assert.deepEqual(claimsHeader(f.headers), at.idp);

  const c = await put(token, checkin('Authenticate', { EnrollmentID: 'ENR-ERIN' }));
  assert.equal(c.status, 200, c.body);
  assert.equal(c.B.length, 0);
  assert.equal(c.A.length, 1);
  assert.equal(c.A[0].headers['x-enrollbridge-route'], undefined);
  assert.deepEqual(claimsHeader(c.A[0].headers), at.idp);
  // a device cannot forge the identity headers
  const n = mdms.A.seen.length;
  const r = await fetch(`${bridge.url}/t/contoso/mdm/checkin`, {
    method: 'PUT',
    headers: {
      authorization: `Bearer ${token}`, 'content-type': CT_CHECKIN,
      'x-enrollbridge-route': 'enrollers', 'x-enrollbridge-claims': 'e30',
    },
    body: checkin('TokenUpdate', { EnrollmentID: 'ENR-ERIN' }),
  });
  assert.equal(r.status, 200);
  const got = mdms.A.seen[n].headers;
  assert.equal(got['x-enrollbridge-route'], undefined);
  assert.deepEqual(claimsHeader(got), at.idp);
});

test('a groups overage the bridge cannot resolve refuses the sign-in rather than guess a route', async () => {
  // bob's token says he has groups but carries none; without idp.graph_groups
  // they cannot be read, and a route matches on groups
  const r = await enroll({ bridge, tenant: 'contoso', login: 'bob@contoso.com' });
  assert.equal(r.stage, 'callback');
  assert.equal(r.status, 403);
  assert.match(r.body, /group/i);
  assert.equal(r.token, undefined);
});

test('introspection shows route and idp like the token', async () => {
  const token = await signIn('alice@contoso.com');
  const at = payloadOf(token);
  const r = await fetch(`${bridge.url}/t/contoso/oauth2/introspect`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from('mdm-a:introspect-secret').toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token }),
  });
  assert.equal(r.status, 200);
  const j = await r.json();
  assert.equal(j.active, true);
  assert.equal(j.route, 'enrollers');
  assert.deepEqual(j.idp, at.idp);
});

test('re-authentication of a routed grant names the route\'s ESSO document', async () => {
  const first = await enrollPost(`${bridge.url}/t/contoso/enroll`);
  await first.arrayBuffer();
  assert.equal(first.status, 401);
  assert.equal(first.headers.get('x-apple-mdm-esso'), `${bridge.url}/t/contoso/esso.json`);
  const tenantDoc = await (await fetch(first.headers.get('x-apple-mdm-esso'))).json();
  assert.equal(tenantDoc.iTunesStoreID, 456);

  const token = await signIn('alice@contoso.com');
  const rv = await cliAsync(['grants', 'revoke', '-c', world.config.main, payloadOf(token).grant_id]);
  assert.equal(rv.code, 0, rv.stderr);
  const r = await put(token, checkin('TokenUpdate', { EnrollmentID: 'ENR-ALICE-ESSO' }));
  assert.equal(r.status, 401);
  assert.equal(r.A.length + r.B.length, 0);
  const again = await fetch(`${bridge.url}/t/contoso/mdm/checkin`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': CT_CHECKIN },
    body: checkin('TokenUpdate', { EnrollmentID: 'ENR-ALICE-ESSO' }),
  });
  await again.arrayBuffer();
  const url = again.headers.get('x-apple-mdm-esso');
  assert.equal(url, `${bridge.url}/t/contoso/esso.json?route=enrollers`);
  const doc = await (await fetch(url)).json();
  assert.equal(doc.iTunesStoreID, 123);
  assert.equal((await fetch(`${bridge.url}/t/contoso/esso.json?route=gone`)).status, 404);
});

test('enrollbridge map names the route a claims document takes', async () => {
  const dir = tmpDir('eb-routes-map-');
  const doc = (groups) => {
    const f = path.join(dir, `${groups.length}.json`);
    fs.writeFileSync(f, JSON.stringify({
      sub: 's1', tid: TENANT_CONTOSO, oid: 'o1', upn: 'alice@contoso.com', groups,
    }));
    return f;
  };
  const a = await cliAsync(['map', '-c', world.config.main, '--tenant', 'contoso', '--claims', doc([GROUP_ENROLL])]);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, /^route: enrollers \(overrides enrollment mdm esso\)$/m);
  assert.match(a.stdout, new RegExp(`^mdm_upstream: ${mdms.B.url}$`, 'm'));
  const e = await cliAsync(['map', '-c', world.config.main, '--tenant', 'contoso', '--claims', doc([GROUP_STAFF, 'x'])]);
  assert.equal(e.code, 0, e.stderr);
  assert.match(e.stdout, /^route: - /m);
  assert.match(e.stdout, new RegExp(`^mdm_upstream: ${mdms.A.url}$`, 'm'));
});

test('a route removed from the configuration fails closed: 503, nothing forwarded, logged', async () => {
  const alice = await signIn('alice@contoso.com');
  const erin = await signIn('erin@contoso.com');
  assert.equal((await put(alice, checkin('Authenticate', { UDID: 'UDID-ALICE-2' }))).B.length, 1);
  world.config.write(tenantConfig({ withRoute: false }));
  bridge.proc.kill('SIGHUP');
  await bridge.waitLog(/configuration reloaded/);
  const c = await put(alice, checkin('TokenUpdate', { UDID: 'UDID-ALICE-2' }));
  assert.equal(c.status, 503);
  assert.equal(c.A.length + c.B.length, 0, 'nothing forwarded for a gone route');
  await bridge.waitLog(/route enrollers, which is no longer configured/);
  const p = await profile(alice);
  assert.equal(p.status, 503);
  assert.equal(p.A.length + p.B.length, 0);
  // others are unaffected
  const e = await put(erin, checkin('Authenticate', { EnrollmentID: 'ENR-ERIN-2' }));
  assert.equal(e.status, 200);
  assert.equal(e.A.length, 1);
  // signing in again without the route: the tenant's MDM
  const again = await signIn('alice@contoso.com');
  assert.equal(payloadOf(again).route, undefined);
  world.config.write(tenantConfig());
  bridge.proc.kill('SIGHUP');
  await new Promise((ok) => setTimeout(ok, 300));
});

test('route configuration errors name file, key path and reason', async () => {
  const port = await lfreePort();
  const bad = [
    [{ name: 'x', match: {}, mdm: { upstream: 'ftp://nope' } }, /routes\[0\]\.mdm\.upstream/],
    [{ name: 'x', match: {}, mdm: { audience: 'a', upstream: 'http://127.0.0.1:1' } }, /routes\[0\]\.mdm\.audience: is tenant-wide/],
    [{ name: 'bad name', match: {}, mdm: {} }, /routes\[0\]\.name/],
    [{ name: 'x', match: { group: [] }, mdm: {} }, /routes\[0\]\.match\.group/],
    [{ name: 'x', mdm: {} }, /routes\[0\]\.match: is required/],
    [{ name: 'x', match: {} }, /routes\[0\]: overrides nothing/],
    [{ name: 'x', match: {}, enrollment: { default: 'sometimes' } }, /routes\[0\]\.enrollment\.default/],
    [{ name: 'x', match: {}, mdm: { claims: ['a', 'a'] } }, /routes\[0\]\.mdm\.claims\[1\]: is a duplicate/],
  ];
  for (const [route, re] of bad) {
    const t = { ...structuredClone(tenant), mdm: { upstream: 'http://127.0.0.1:1' } };
    t.routes = [route];
    const c = writeConfig({ port, tenants: [t] });
    const r = await cliAsync(['check-config', '-c', c.main]);
    assert.notEqual(r.code, 0, `accepted ${JSON.stringify(route)}`);
    assert.match(r.stderr, /contoso\.json/);
    assert.match(r.stderr, re);
  }
  // duplicate names
  const t = { ...structuredClone(tenant), mdm: { upstream: 'http://127.0.0.1:1' } };
  t.routes = [{ name: 'x', match: {}, mdm: {} }, { name: 'x', match: {}, mdm: {} }];
  const c = writeConfig({ port, tenants: [t] });
  const r = await cliAsync(['check-config', '-c', c.main]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /routes\[1\]\.name: is a duplicate/);
});
