// Hostile devices at the MDM proxy (issue 11, findings 1 to 3), against the
// real binary, real sign-ins at the test IdP and a fake MDM in this process
// that records every request reaching it, so that "not forwarded" is
// asserted from the MDM's side:
//   1. a grant sends only its first Authenticate before it is bound; an
//      enrollment bound to another person's active grant is 403; the same
//      person enrolling again supersedes the older grant; the store holds
//      one active grant per enrollment;
//   2. every body the proxy forwards is read for what it is (a plist behind
//      a comment, another Content-Type, a GET body, mixed identifiers);
//      what cannot be read is 400;
//   3. no credential, no forwarding, except the device channel's own
//      check-ins and command results to its paths, and a stale but genuine
//      token's CheckOut of its own enrollment.
//
// Alice is user1; Mallory a second person of the same tenant.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { SRC, cliAsync, raw, statusOf } from './lib.mjs';
import {
  enroll, freePort, oidcTenant, sql, startTestIdp, startWorld, stopAll,
} from './idp.mjs';

const CT_CHECKIN = 'application/x-apple-aspen-mdm-checkin';
const CT_COMMAND = 'application/x-apple-aspen-mdm';
const MALLORY = {
  login: 'mallory',
  claims: {
    sub: 'mallory', email: 'mallory@generic.test', email_verified: true, name: 'Mallory', preferred_username: 'mallory',
  },
};

let idp;
let world;
let bridge;
let port;
let mdm;
const seen = []; // requests that reached the fake MDM

function startMdm() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end('<ok/>');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const xml = (entries, { comment = false } = {}) => '<?xml version="1.0" encoding="UTF-8"?>\n'
  + (comment ? '<!-- nothing to see -->\n' : '')
  + '<plist version="1.0"><dict>'
  + Object.entries(entries).map(([k, v]) => `<key>${k}</key><string>${v}</string>`).join('')
  + '</dict></plist>\n';
const checkin = (type, ids, opts) => xml({ MessageType: type, Topic: 'com.apple.mgmt.test', ...ids }, opts);
const result = (ids, opts) => xml({ Status: 'Acknowledged', CommandUUID: 'c-1', ...ids }, opts);

async function signIn(tenant, login = 'user1') {
  const r = await enroll({ bridge, tenant, login });
  assert.equal(r.status, 308, `sign-in stopped at ${r.stage}: ${r.status}`);
  return r.token;
}

const grantOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()).grant_id;

async function mdmReq(tenant, rest, { method = 'PUT', token, body, ct = CT_CHECKIN, headers = {} } = {}) {
  const h = { ...headers };
  if (token !== undefined) h.authorization = `Bearer ${token}`;
  if (body !== undefined && ct) h['content-type'] = ct;
  const r = await fetch(`${bridge.url}/t/${tenant}/mdm/${rest}`, { method, headers: h, body });
  return { status: r.status, headers: r.headers, body: await r.text() };
}

// Run fn; return its result and the requests that reached the MDM meanwhile.
async function reaching(fn) {
  const n = seen.length;
  const r = await fn();
  await new Promise((res) => setTimeout(res, 30));
  return { r, got: seen.slice(n) };
}

async function refused(what, status, fn) {
  const { r, got } = await reaching(fn);
  const s = typeof r === 'string' ? statusOf(r) : r.status;
  assert.equal(s, status, `${what}: want ${status}, got ${s}`);
  assert.equal(got.length, 0, `${what}: reached the MDM`);
  if (status === 401 && typeof r !== 'string') assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer method=/);
}

async function forwarded(what, fn) {
  const { r, got } = await reaching(fn);
  const s = typeof r === 'string' ? statusOf(r) : r.status;
  assert.equal(s, 200, `${what}: want 200, got ${s} ${r.body ?? ''}`);
  assert.equal(got.length, 1, `${what}: did not reach the MDM`);
  return got[0];
}

// A raw HTTP/1.1 request (fetch refuses a GET with a body).
function rawReq(method, path, { token, ct, body = '' }) {
  const lines = [`${method} ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Connection: close'];
  if (token) lines.push(`Authorization: Bearer ${token}`);
  if (ct) lines.push(`Content-Type: ${ct}`);
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`, '', body);
  return raw(port, lines.join('\r\n'));
}

async function grantsList() {
  const c = await cliAsync(['grants', 'list', '-c', world.config.main, '--json']);
  assert.equal(c.code, 0, c.stderr);
  return c.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

before(async () => {
  port = await freePort();
  mdm = await startMdm();
  const upstream = `http://127.0.0.1:${mdm.address().port}/base/`;
  idp = await startTestIdp({ accounts: [MALLORY] });
  const pub = `http://127.0.0.1:${port}`;
  const gen = oidcTenant(pub, idp, 'gen');
  gen.tenant.mdm = { upstream };
  const adde = oidcTenant(pub, idp, 'adde', { domains: ['adde.generic.test'] });
  adde.tenant.enrollment = { default: 'adde' };
  adde.tenant.mdm = { upstream };
  const mac = oidcTenant(pub, idp, 'mac', { domains: ['mac.generic.test'] });
  mac.tenant.enrollment = { default: 'adde' };
  mac.tenant.mdm = {
    upstream, allow_unauthenticated_device_channel: true, device_channel_paths: ['mdm/checkin?tenant=acme', 'mdm/server'],
  };
  const macdef = oidcTenant(pub, idp, 'macdef', { domains: ['macdef.generic.test'] });
  macdef.tenant.mdm = { upstream, allow_unauthenticated_device_channel: true };
  world = await startWorld(port, [gen, adde, mac, macdef]);
  ({ bridge } = world);
});

after(async () => {
  await stopAll(bridge, idp);
  mdm.closeAllConnections?.();
  await new Promise((r) => mdm.close(r));
});

let alice; // bound to ENR-ALICE on gen
let mallory; // Mallory's grant on gen, bound to ENR-MALLORY by the second test

test('1. an unbound grant sends only its first Authenticate; another person\'s enrollment is 403', async () => {
  alice = await signIn('gen');
  await forwarded('Alice\'s Authenticate', () => mdmReq('gen', 'checkin', {
    token: alice, body: checkin('Authenticate', { EnrollmentID: 'ENR-ALICE' }),
  }));
  mallory = await signIn('gen', 'mallory');
  const mid = grantOf(mallory);
  const A = { EnrollmentID: 'ENR-ALICE' };

  // before any Authenticate: nothing goes, whatever it names
  await refused('GetBootstrapToken', 401, () => mdmReq('gen', 'checkin', { token: mallory, body: checkin('GetBootstrapToken', A) }));
  await refused('command result', 401, () => mdmReq('gen', 'server', { token: mallory, ct: CT_COMMAND, body: result(A) }));
  await refused('CheckOut', 401, () => mdmReq('gen', 'checkin', { token: mallory, body: checkin('CheckOut', A) }));
  await refused('TokenUpdate', 401, () => mdmReq('gen', 'checkin', { token: mallory, body: checkin('TokenUpdate', A) }));
  await refused('GET without a body', 401, () => mdmReq('gen', 'profile', { token: mallory, method: 'GET' }));
  // binding messages naming Alice's enrollment: another person's, 403
  await refused('Authenticate', 403, () => mdmReq('gen', 'checkin', { token: mallory, body: checkin('Authenticate', A) }));
  await refused('Authenticate, other case', 403, () => mdmReq('gen', 'checkin', {
    token: mallory, body: checkin('Authenticate', { EnrollmentID: 'enr-alice' }),
  }));
  await refused('user-channel TokenUpdate', 403, () => mdmReq('gen', 'checkin', {
    token: mallory, body: checkin('TokenUpdate', { ...A, EnrollmentUserID: 'U-M' }),
  }));
  await bridge.waitLog(/enrollment is bound to another person's active grant/);

  // the store: only Alice's grant holds ENR-ALICE, Mallory's is unbound
  const list = await grantsList();
  const holders = list.filter((g) => g.binding_value?.toLowerCase() === 'enr-alice');
  assert.deepEqual(holders.map((g) => [g.id, g.status]), [[grantOf(alice), 'active']]);
  const m = list.find((g) => g.id === mid);
  assert.equal(m.status, 'active');
  assert.equal(m.binding_value, null);
  // Alice's grant still works
  await forwarded('Alice\'s TokenUpdate', () => mdmReq('gen', 'checkin', { token: alice, body: checkin('TokenUpdate', A) }));
  // Mallory's grant binds to an enrollment of her own
  await forwarded('Mallory\'s Authenticate', () => mdmReq('gen', 'checkin', {
    token: mallory, body: checkin('Authenticate', { EnrollmentID: 'ENR-MALLORY' }),
  }));
  // and from then on cannot name Alice's
  await refused('bound: GetBootstrapToken', 401, () => mdmReq('gen', 'checkin', { token: mallory, body: checkin('GetBootstrapToken', A) }));
  await refused('bound: Authenticate', 401, () => mdmReq('gen', 'checkin', { token: mallory, body: checkin('Authenticate', A) }));
});

test('1. two people racing for one enrollment: exactly one binds it', async () => {
  for (let i = 0; i < 3; i++) {
    const E = { EnrollmentID: `ENR-RACE-${i}` };
    const [a, m] = [await signIn('gen'), await signIn('gen', 'mallory')];
    const n = seen.length;
    const rs = await Promise.all([a, m].map((token) => mdmReq('gen', 'checkin', { token, body: checkin('Authenticate', E) })));
    await new Promise((res) => setTimeout(res, 30));
    assert.deepEqual(rs.map((r) => r.status).sort(), [200, 403], `round ${i}`);
    assert.equal(seen.length - n, 1, `round ${i}: forwarded`);
    const holders = sql(world.db, `select id from grants where status='active' and binding_value='ENR-RACE-${i}'`);
    assert.deepEqual(holders.map((g) => g.id), [grantOf(rs[0].status === 200 ? a : m)]);
  }
});

test('1. the same person enrolling again (ADDE Mac, same UDID) supersedes the older grant', async () => {
  const U = { UDID: 'UDID-MAC-1' };
  const t1 = await signIn('adde');
  await forwarded('first Authenticate', () => mdmReq('adde', 'checkin', { token: t1, body: checkin('Authenticate', U) }));
  const t2 = await signIn('adde'); // a new enrollment of the same Mac: no hint
  await forwarded('second Authenticate', () => mdmReq('adde', 'checkin', { token: t2, body: checkin('Authenticate', U) }));
  const [g1] = sql(world.db, `select status, superseded_by from grants where id='${grantOf(t1)}'`);
  assert.deepEqual(g1, { status: 'superseded', superseded_by: grantOf(t2) });
  await refused('the superseded token', 401, () => mdmReq('adde', 'checkin', { token: t1, body: checkin('TokenUpdate', U) }));
  // another person cannot take the Mac
  const tm = await signIn('adde', 'mallory');
  await refused('Mallory on the Mac', 403, () => mdmReq('adde', 'checkin', { token: tm, body: checkin('Authenticate', U) }));
  const active = sql(world.db, "select id from grants where status='active' and binding_value='UDID-MAC-1'");
  assert.deepEqual(active.map((g) => g.id), [grantOf(t2)]);
});

test('2. every forwarded body is checked for what it is', async () => {
  assert.ok(mallory, 'needs the first test');
  const A = { EnrollmentID: 'ENR-ALICE' };
  const M = { EnrollmentID: 'ENR-MALLORY' };
  // a plist behind a comment, mislabelled or unlabelled, naming Alice
  await refused('comment + text/plain', 401, () => mdmReq('gen', 'server', {
    token: mallory, ct: 'text/plain', body: checkin('GetBootstrapToken', A, { comment: true }),
  }));
  await refused('no Content-Type', 401, () => mdmReq('gen', 'server', {
    token: mallory, ct: null, body: result(A, { comment: true }),
  }));
  await refused('trailing comma', 401, () => mdmReq('gen', 'server', {
    token: mallory, ct: `${CT_COMMAND},`, body: result(A),
  }));
  await refused('GET with a check-in body', 401, () => rawReq('GET', '/t/gen/mdm/checkin', {
    token: mallory, ct: CT_CHECKIN, body: checkin('CheckOut', A),
  }));
  // its own EnrollmentID next to another enrollment's identifiers
  await refused('own EnrollmentID + a UDID', 401, () => mdmReq('gen', 'server', {
    token: mallory, ct: CT_COMMAND, body: result({ ...M, UDID: 'UDID-MAC-1' }),
  }));
  await refused('EnrollmentUserID alone', 401, () => mdmReq('gen', 'server', {
    token: mallory, ct: CT_COMMAND, body: result({ EnrollmentUserID: 'U-ALICE' }),
  }));
  // what cannot be checked: 400
  for (const [what, ct, body] of [
    ['text', 'text/plain', 'hello mdm'],
    ['JSON', 'application/json', '{"EnrollmentID":"ENR-ALICE"}'],
    ['a plist array', 'text/plain', '<?xml version="1.0"?><plist><array><string>x</string></array></plist>'],
    ['an identifier that is not a string', CT_COMMAND,
      '<?xml version="1.0"?><plist><dict><key>EnrollmentID</key><integer>1</integer></dict></plist>'],
    ['a dict naming no enrollment', CT_COMMAND, xml({ Status: 'Idle' })],
  ]) {
    await refused(what, 400, () => mdmReq('gen', 'server', { token: mallory, ct, body }));
  }
  await refused('GET with a text body', 400, () => rawReq('GET', '/t/gen/mdm/x', { token: mallory, ct: 'text/plain', body: 'x' }));
  // Mallory's own messages, however labelled, go through unchanged
  const body = result(M, { comment: true });
  const up = await forwarded('own result, text/plain', () => mdmReq('gen', 'server', { token: mallory, ct: 'text/plain', body }));
  assert.equal(up.body, body);
  await forwarded('own GET', () => mdmReq('gen', 'profile', { token: mallory, method: 'GET' }));
});

test('3. without a credential nothing is forwarded, except the device channel\'s own messages', async () => {
  const C = checkin('CheckOut', { EnrollmentID: 'ENR-ALICE' });
  for (const tenant of ['gen', 'mac', 'macdef']) {
    for (const method of ['DELETE', 'POST', 'PATCH', 'PUT']) {
      await refused(`${tenant} ${method} admin`, 401, () => mdmReq(tenant, 'admin/users?delete=all', { method, body: C }));
    }
  }
  await refused('gen: a check-in without a bearer', 401, () => mdmReq('gen', 'checkin', { body: C }));

  // the device channel (mac: its configured paths)
  const D = { UDID: 'MAC-DEV-1' };
  let up = await forwarded('device channel check-in', () => mdmReq('mac', 'mdm/checkin?tenant=acme', {
    body: checkin('TokenUpdate', D), headers: { 'x-enrollbridge-authenticated': '1' },
  }));
  assert.equal(up.headers['x-enrollbridge-authenticated'], '0');
  assert.equal(up.url, '/base/mdm/checkin?tenant=acme');
  up = await forwarded('device channel command result', () => mdmReq('mac', 'mdm/server', { ct: CT_COMMAND, body: result(D) }));
  assert.equal(up.headers['x-enrollbridge-authenticated'], '0');
  await refused('device channel: POST', 401, () => mdmReq('mac', 'mdm/server', { method: 'POST', ct: CT_COMMAND, body: result(D) }));
  await refused('device channel: other query', 401, () => mdmReq('mac', 'mdm/checkin?tenant=other', { body: checkin('TokenUpdate', D) }));
  await refused('device channel: no query', 401, () => mdmReq('mac', 'mdm/checkin', { body: checkin('TokenUpdate', D) }));
  await refused('device channel: other path', 401, () => mdmReq('mac', 'checkin', { body: checkin('TokenUpdate', D) }));
  await refused('device channel: text/plain', 401, () => mdmReq('mac', 'mdm/server', { ct: 'text/plain', body: result(D) }));
  await refused('device channel: check-in type, result body', 400, () => mdmReq('mac', 'mdm/checkin?tenant=acme', { body: result(D) }));
  await refused('device channel: no body', 401, () => mdmReq('mac', 'mdm/server', { method: 'GET' }));
  await refused('device channel: not a plist', 400, () => mdmReq('mac', 'mdm/server', { ct: CT_COMMAND, body: 'hello' }));
  // default paths (macdef)
  await forwarded('default path', () => mdmReq('macdef', 'checkin', { body: checkin('TokenUpdate', D) }));
  await refused('default: other path', 401, () => mdmReq('macdef', 'checkin/x', { body: checkin('TokenUpdate', D) }));
});

test('3. a stale genuine token delivers a CheckOut of its own enrollment only; a forged one never', async () => {
  const t = await signIn('gen');
  const E = { EnrollmentID: 'ENR-GONE-1' };
  await forwarded('Authenticate', () => mdmReq('gen', 'checkin', { token: t, body: checkin('Authenticate', E) }));
  const c = await cliAsync(['grants', 'revoke', '-c', world.config.main, grantOf(t)]);
  assert.equal(c.code, 0, c.stderr);
  await refused('stale: CheckOut of another enrollment', 401, () => mdmReq('gen', 'checkin', {
    token: t, body: checkin('CheckOut', { EnrollmentID: 'ENR-MALLORY' }),
  }));
  await refused('stale: CheckOut as DELETE elsewhere', 401, () => mdmReq('gen', 'admin', {
    method: 'DELETE', token: t, body: checkin('CheckOut', { EnrollmentID: 'ENR-MALLORY' }),
  }));
  await refused('stale: own CheckOut as DELETE elsewhere', 401, () => mdmReq('gen', 'admin/users', {
    method: 'DELETE', token: t, body: checkin('CheckOut', E),
  }));
  await refused('stale: own CheckOut as text/plain', 401, () => mdmReq('gen', 'checkin', {
    token: t, ct: 'text/plain', body: checkin('CheckOut', E),
  }));
  await refused('stale: another message', 401, () => mdmReq('gen', 'checkin', { token: t, body: checkin('TokenUpdate', E) }));
  // a token with a broken signature, and an unbound grant's revoked token
  const forged = t.slice(0, -4) + (t.endsWith('AAAA') ? 'BBBB' : 'AAAA');
  await refused('forged: CheckOut', 401, () => mdmReq('gen', 'checkin', { token: forged, body: checkin('CheckOut', E) }));
  const u = await signIn('gen');
  await cliAsync(['grants', 'revoke', '-c', world.config.main, grantOf(u)]);
  await refused('never bound: CheckOut', 401, () => mdmReq('gen', 'checkin', { token: u, body: checkin('CheckOut', E) }));
  const up = await forwarded('stale: own CheckOut', () => mdmReq('gen', 'checkin', { token: t, body: checkin('CheckOut', E) }));
  assert.equal(up.headers['x-enrollbridge-authenticated'], '0');
  // nothing logged a token
  assert.ok(!bridge.logs.some((l) => /eyJ[A-Za-z0-9_-]{20,}\./.test(l)), 'a JWT in the logs');
});

// Bodies real devices sent (../shared/fixtures/real-devices, from NanoMDM's
// test data): still parsed, checked and forwarded byte for byte.
const FIXTURES = path.resolve(SRC, '../shared/fixtures/real-devices');
test('real devices\' check-ins and command result pass unchanged', { skip: !fs.existsSync(FIXTURES) && `no ${FIXTURES}` }, async () => {
  const udid = 'UDID-FIXTURE-1';
  const load = (f) => fs.readFileSync(path.join(FIXTURES, f), 'utf8')
    .replace(/<string>(663b07bb783e9ade1dae4fbb92ea12afc0ce5b69|66ADE930-5FDF-5EC4-8429-15640684C489)<\/string>/g,
      `<string>${udid}</string>`);
  const t = await signIn('adde');
  for (const [f, rest, ct] of [
    ['Authenticate.2.plist', 'checkin', CT_CHECKIN],
    ['TokenUpdate.1.plist', 'checkin', CT_CHECKIN],
    ['TokenUpdate.2.plist', 'checkin', CT_CHECKIN],
    ['DeviceInformation.1.plist', 'server', CT_COMMAND],
  ]) {
    const body = load(f);
    const up = await forwarded(f, () => mdmReq('adde', rest, { token: t, ct, body }));
    assert.equal(up.body, body, `${f} changed on the way`);
  }
  // the same bodies from another device are refused
  const other = load('TokenUpdate.2.plist').replace(udid, 'UDID-SOMEONE-ELSE');
  await refused('another device', 401, () => mdmReq('adde', 'checkin', { token: t, body: other }));
});
