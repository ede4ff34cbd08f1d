// Access re-checked at every silent renewal (issue 13 section 2a/2b),
// against the real binary, the real test IdP (Entra-like, with its
// Microsoft-Graph-like endpoint) and a fake MDM in this process, with
// tokens.upstream_renew_interval 1 s. Covered: a person still in the
// enroll group keeps working across renewals (also when the refresh
// brings no ID token and userinfo is read); once the IdP admin removes
// them from it, the next renewal ends the grant: 401 + challenge
// (on_access_lost reauth) or 403 com.apple.unrecognized.device (unenroll),
// with an "access.lost" audit event; bob's groups overage is resolved
// through the IdP's Graph endpoint at each renewal, and a Graph outage is
// neither an allow nor an unenrollment (past the grace: revoked, not
// retired); a grant the IdP gave no refresh token is challenged after
// tokens.max_unverified_age, and the sign-in that follows keeps the
// enrollment. The time from the group removal at the IdP to the device's
// first refused request is printed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import {
  createJar, drive, callback, startLogin, ENTRA_PATH, enroll, entraTenant, freePort, GROUP_ENROLL,
  GROUP_STAFF, idpAdmin, idpLog, idpMode, idpReset, metricsText, parseMetric, PASSWORD, sql,
  startTestIdp, startWorld, stopAll, TENANT_CONTOSO,
} from './idp.mjs';

const CT_CHECKIN = 'application/x-apple-aspen-mdm-checkin';
const MAX_UNVERIFIED = 3;
const GRACE = 2; // tenant ug

// an Entra-like person who stays in the enroll group throughout
const DAVE = {
  login: 'dave@contoso.com',
  claims: {
    sub: 'DDDDDDDDDDDDDDDDDDDDDIkzqFVrSaSaFHy782bbtaQ',
    tid: TENANT_CONTOSO,
    oid: '00000000-0000-0000-99f3-3332eca7ea84',
    upn: 'dave@contoso.com',
    preferred_username: 'dave@contoso.com',
    name: 'Dave Stays',
    groups: [GROUP_STAFF, GROUP_ENROLL],
  },
};

let idp;
let world;
let bridge;
let db;
let mdm;
const seen = []; // requests that reached the fake MDM

const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

function startMdm() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, body: Buffer.concat(chunks).toString() });
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end('<ok/>');
    });
  });
  return new Promise((resolve) => { server.listen(0, '127.0.0.1', () => resolve(server)); });
}

const checkin = (type, ids) => '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>'
  + Object.entries({ MessageType: type, Topic: 'com.apple.mgmt.test', ...ids })
    .map(([k, v]) => `<key>${k}</key><string>${v}</string>`).join('')
  + '</dict></plist>\n';

const grantIdOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()).grant_id;

const grantRow = (id) => sql(db, `select id, status, revoke_reason, retired_at, upstream_renewed_at,
  upstream_next_at, upstream_failing_since, binding_value, upstream_refresh_token is null as no_rt
  from grants where id='${id}'`)[0];

const audits = (event, grantId) => sql(db, `select event, subject, detail from audit_events
  where event='${event}' order by id`).filter((e) => !grantId || JSON.parse(e.detail).grant === grantId);

async function until(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}\n${
    bridge.logs.filter((l) => !l.includes('"access"')).slice(-25).join('\n')}`);
}

async function put(tenant, token, body) {
  const r = await fetch(`${bridge.url}/t/${tenant}/mdm/checkin`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': CT_CHECKIN },
    body,
  });
  return { status: r.status, headers: r.headers, body: await r.text() };
}

async function signIn(tenant, login) {
  const r = await enroll({ bridge, tenant, login });
  assert.equal(r.status, 308, `sign-in of ${login} to ${tenant} stopped at ${r.stage}: ${r.status} ${r.body?.slice(0, 300) ?? ''}`);
  return r.token;
}

// Sign in and bind an enrollment with an Authenticate check-in.
async function enrolled(tenant, login, enrollmentId) {
  const token = await signIn(tenant, login);
  const E = { EnrollmentID: enrollmentId };
  const a = await put(tenant, token, checkin('Authenticate', E));
  assert.equal(a.status, 200, a.body);
  return { token, E, id: grantIdOf(token) };
}

async function metric(labels) {
  return parseMetric(await metricsText(bridge), 'enrollbridge_renewals_total')
    .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

// Renewals of grant id that happened after time `since` (seconds).
const renewedSince = (id, since) => until(`grant ${id} renewed after ${since}`,
  () => grantRow(id).upstream_renewed_at > since);

// Poll the device's TokenUpdate until it is refused; returns the response
// and the milliseconds since t0 (the removal at the IdP).
async function refusedAfter(tenant, d, t0, label) {
  const r = await until(`${label}: refusal`, async () => {
    const x = await put(tenant, d.token, checkin('TokenUpdate', d.E));
    return x.status !== 200 ? x : undefined;
  });
  const ms = Date.now() - t0;
  console.log(`group-removal→refusal (${label}): ${ms} ms`);
  return { r, ms };
}

function checkAccessLost(id, action, code = 'group_required') {
  const ev = audits('access.lost', id);
  assert.equal(ev.length, 1, `one access.lost event for ${id}`);
  const detail = JSON.parse(ev[0].detail);
  assert.equal(detail.code, code);
  assert.equal(detail.action, action);
  assert.match(detail.reason, /\S/);
  assert.equal(ev[0].subject.startsWith(TENANT_CONTOSO), true, 'subject is the IdP identity (tid:oid)');
  // never a token in the audit trail
  assert.doesNotMatch(ev[0].detail, /eyJ[A-Za-z0-9_-]{10,}/);
}

const tokens = { upstream_renew_interval: 1, upstream_grace: 3600, max_unverified_age: MAX_UNVERIFIED };

before(async () => {
  const port = await freePort();
  const pub = `http://127.0.0.1:${port}`;
  mdm = await startMdm();
  idp = await startTestIdp({ issuerPath: ENTRA_PATH, accounts: [DAVE] });
  const upstream = `http://127.0.0.1:${mdm.address().port}/base/`;
  const graph = { graph_groups: true, graph_url: `${idp.origin}/graph` };
  const re = entraTenant(pub, idp, 're', { domains: ['re.contoso.com'], extraIdp: graph });
  const un = entraTenant(pub, idp, 'un', { domains: ['un.contoso.com'], extraIdp: graph });
  const ug = entraTenant(pub, idp, 'ug', { domains: ['ug.contoso.com'], extraIdp: graph });
  for (const s of [re, un, ug]) {
    s.tenant.mdm = { upstream };
    s.tenant.tokens = tokens;
    s.tenant.on_access_lost = s === re ? 'reauth' : 'unenroll';
  }
  ug.tenant.tokens = { ...tokens, upstream_grace: GRACE };
  world = await startWorld(port, [re, un, ug]);
  ({ bridge, db } = world);
});

after(async () => {
  await stopAll(bridge, idp);
  mdm.closeAllConnections?.();
  await new Promise((r) => { mdm.close(r); });
});

test('a person still in the group keeps working across renewals, also when userinfo is read', async () => {
  await idpReset(idp);
  const d = await enrolled('re', DAVE.login, 'ENR-DAVE');
  let since = grantRow(d.id).upstream_renewed_at;
  await renewedSince(d.id, since);
  since = grantRow(d.id).upstream_renewed_at;
  await renewedSince(d.id, since);
  assert.equal((await put('re', d.token, checkin('TokenUpdate', d.E))).status, 200);
  // the refresh brings no ID token: userinfo gives the fresh claims
  await idpMode(idp, { mode: 'no_id_token', grant_type: 'refresh_token' });
  since = grantRow(d.id).upstream_renewed_at;
  await renewedSince(d.id, since);
  const log = await idpLog(idp);
  assert.ok(log.some((e) => e.path.endsWith('/me')), 'userinfo was read at a renewal');
  assert.equal((await put('re', d.token, checkin('TokenUpdate', d.E))).status, 200);
  assert.equal(grantRow(d.id).status, 'active');
  // ... and what userinfo says counts: out of the group, out
  const t0 = Date.now();
  await idpAdmin(idp, `/users/${DAVE.login}/groups`, { groups: [GROUP_STAFF] });
  const { r } = await refusedAfter('re', d, t0, 'reauth, userinfo');
  assert.equal(r.status, 401);
  checkAccessLost(d.id, 'revoke');
});

test('on_access_lost reauth: removed from the enroll group -> 401 + challenge at the next renewal', async () => {
  await idpReset(idp);
  const d = await enrolled('re', 'alice@contoso.com', 'ENR-ALICE-RE');
  await renewedSince(d.id, grantRow(d.id).upstream_renewed_at);
  const denied0 = await metric({ tenant: 're', result: 'denied' });
  const t0 = Date.now();
  await idpAdmin(idp, '/users/alice@contoso.com/groups', { groups: [GROUP_STAFF] });
  const { r, ms } = await refusedAfter('re', d, t0, 'reauth, ID token');
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer method=/);
  assert.ok(ms < 10000, `refused within ${ms} ms`);
  const g = grantRow(d.id);
  assert.equal(g.status, 'revoked');
  assert.equal(g.revoke_reason, 'access lost: group_required');
  assert.equal(Number(g.retired_at), 0);
  checkAccessLost(d.id, 'revoke');
  assert.equal(await metric({ tenant: 're', result: 'denied' }), denied0 + 1);
});

test('on_access_lost unenroll: removed from the enroll group -> 403 unrecognized device', async () => {
  await idpReset(idp);
  const d = await enrolled('un', 'alice@contoso.com', 'ENR-ALICE-UN');
  await renewedSince(d.id, grantRow(d.id).upstream_renewed_at);
  const t0 = Date.now();
  await idpAdmin(idp, '/users/alice@contoso.com/groups', { groups: [GROUP_STAFF] });
  const { r } = await refusedAfter('un', d, t0, 'unenroll, ID token');
  assert.equal(r.status, 403);
  assert.equal(JSON.parse(r.body).code, 'com.apple.unrecognized.device');
  const g = grantRow(d.id);
  assert.ok(Number(g.retired_at) > 0, 'retired');
  checkAccessLost(d.id, 'retire');
});

test('bob (groups overage) is re-checked through the IdP Graph endpoint; removal refused', async () => {
  await idpReset(idp);
  const graphCalls = async () => (await idpLog(idp)).filter((e) => e.path === '/graph/v1.0/me/getMemberObjects').length;
  const d = await enrolled('re', 'bob@contoso.com', 'ENR-BOB-RE');
  const atSignIn = await graphCalls();
  assert.ok(atSignIn >= 1, 'sign-in resolved the overage through Graph');
  await renewedSince(d.id, grantRow(d.id).upstream_renewed_at);
  assert.ok(await graphCalls() > atSignIn, 'the renewal asked Graph again');
  assert.equal((await put('re', d.token, checkin('TokenUpdate', d.E))).status, 200);
  const t0 = Date.now();
  await idpAdmin(idp, '/users/bob@contoso.com/groups', { groups: [GROUP_STAFF] });
  const { r } = await refusedAfter('re', d, t0, 'reauth, Graph overage');
  assert.equal(r.status, 401);
  checkAccessLost(d.id, 'revoke');
});

test('Graph down while re-checking: no allow, no unenroll; once it answers, the removal counts', async () => {
  await idpReset(idp);
  const d = await enrolled('un', 'bob@contoso.com', 'ENR-BOB-UN');
  await idpMode(idp, 'graph_503');
  const unavailable0 = await metric({ tenant: 'un', result: 'unavailable' });
  await idpAdmin(idp, '/users/bob@contoso.com/groups', { groups: [GROUP_STAFF] });
  // failing, never renewed as if allowed, never ended
  await until('bob failing', () => Number(grantRow(d.id).upstream_failing_since) > 0);
  const renewedAt = grantRow(d.id).upstream_renewed_at;
  await until('two failed attempts', async () => await metric({ tenant: 'un', result: 'unavailable' }) >= unavailable0 + 2);
  let g = grantRow(d.id);
  assert.equal(g.status, 'active');
  assert.equal(Number(g.retired_at), 0);
  assert.equal(g.upstream_renewed_at, renewedAt, 'no renewal counted while Graph is down');
  assert.equal(audits('access.lost', d.id).length, 0);
  // within the grace the device keeps working
  assert.equal((await put('un', d.token, checkin('TokenUpdate', d.E))).status, 200);
  const t0 = Date.now();
  await idpAdmin(idp, '/mode/graph_503', undefined, 'DELETE');
  const { r } = await refusedAfter('un', d, t0, 'unenroll, Graph back');
  assert.equal(r.status, 403);
  g = grantRow(d.id);
  assert.ok(Number(g.retired_at) > 0);
  checkAccessLost(d.id, 'retire');
});

test('Graph down past upstream_grace on an unenroll tenant: revoked (401), never retired', async () => {
  await idpReset(idp);
  const d = await enrolled('ug', 'bob@contoso.com', 'ENR-BOB-UG');
  await idpMode(idp, 'graph_503');
  const r = await until('revoked past the grace', async () => {
    const x = await put('ug', d.token, checkin('TokenUpdate', d.E));
    return x.status !== 200 ? x : undefined;
  });
  assert.equal(r.status, 401, 'an outage challenges, it does not unenroll');
  const g = grantRow(d.id);
  assert.equal(g.status, 'revoked');
  assert.equal(Number(g.retired_at), 0);
  assert.match(g.revoke_reason, /for longer than grace/);
  assert.equal(audits('access.lost', d.id).length, 0);
  await idpAdmin(idp, '/mode/graph_503', undefined, 'DELETE');
});

test('no refresh token: challenged after max_unverified_age; the new sign-in keeps the enrollment', async () => {
  await idpReset(idp);
  await idpMode(idp, { mode: 'no_refresh_token', count: 1, grant_type: 'authorization_code' });
  const t0 = Date.now();
  const d = await enrolled('re', DAVE.login, 'ENR-DAVE-NORT');
  let g = grantRow(d.id);
  assert.ok(Number(g.no_rt), 'the IdP gave no refresh token');
  assert.equal(Number(g.upstream_next_at), Number(g.upstream_renewed_at) + MAX_UNVERIFIED,
    'scheduled at the sign-in + max_unverified_age');
  const r = await until('challenge', async () => {
    const x = await put('re', d.token, checkin('TokenUpdate', d.E));
    return x.status !== 200 ? x : undefined;
  });
  const ms = Date.now() - t0;
  console.log(`unverified grant challenged after ${ms} ms (max_unverified_age ${MAX_UNVERIFIED} s)`);
  assert.ok(ms >= (MAX_UNVERIFIED - 1) * 1000, `not before max_unverified_age (${ms} ms)`);
  assert.equal(r.status, 401);
  g = grantRow(d.id);
  assert.match(g.revoke_reason, /^unverified/);
  assert.equal(Number(g.retired_at), 0);
  assert.equal(audits('access.lost', d.id).length, 0, 'a re-verification, not a loss of access');
  // the device follows the challenge and signs in again: same enrollment
  const url = /\burl="([^"]+)"/.exec(r.headers.get('www-authenticate'))[1];
  const st = await startLogin(url, DAVE.login);
  assert.equal(st.status, 302, st.body);
  const cb = await callback(await drive(st.location, DAVE.login, PASSWORD, { jar: createJar() }), st.cookie);
  assert.equal(cb.status, 308, cb.body);
  const again = await put('re', cb.token, checkin('TokenUpdate', d.E));
  assert.equal(again.status, 200, again.body);
  assert.equal(grantRow(grantIdOf(cb.token)).binding_value, 'ENR-DAVE-NORT');
});
