// Issue 11, findings 9 and 10 (refresh grace window, PKCE, no clock leeway
// on our own tokens), against the real binary, a real sign-in at the test
// IdP and a fake MDM behind the proxy:
// - a refresh token replayed within the grace window gets the SAME
//   successor back (no new branch), however often;
// - presenting a token whose successor was used revokes the grant, for the
//   device and the thief alike: introspection says inactive and the proxy
//   answers 401 with the challenge for every access token of the grant;
// - outside the window, reuse revokes the grant;
// - our access tokens are refused from exp on, at introspection and at the
//   proxy (tokens.access_ttl of 2 s here);
// - PKCE at /t/{T}/oauth2/authorize: an S256 code_challenge binds the code
//   to its code_verifier; plain (or no method) is refused with the RFC 6749
//   error redirect; a code without a challenge keeps working without a
//   verifier, and refuses one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { drive } from '../idp/drive.mjs';
import { enrollPost } from './lib.mjs';
import { freePort, oidcTenant, sql, sha256hex, startTestIdp, startWorld, stopAll } from './idp.mjs';

const REDIRECT = 'apple-remotemanagement-user-login:/oauth2/redirection';
const MDM = { client_id: 'mdm-rf', client_secret: 'rf-secret' };
const ACCESS_TTL = 2;
const GRACE = 30;
let world, idp, mdm;
const seen = [];

function startMdm() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, authorization: req.headers.authorization });
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end('<ok/>');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

before(async () => {
  mdm = await startMdm();
  idp = await startTestIdp();
  const port = await freePort();
  const spec = oidcTenant(`http://127.0.0.1:${port}`, idp, 'rf');
  spec.tenant.auth_method = 'apple-oauth2';
  spec.tenant.oauth2 = { client_id: 'apple-device', scope: 'mdm' };
  spec.tenant.mdm = { upstream: `http://127.0.0.1:${mdm.address().port}/base/`, clients: [MDM] };
  spec.tenant.tokens = { access_ttl: ACCESS_TTL };
  world = await startWorld(port, [spec]);
});

after(async () => {
  await stopAll(world?.bridge, idp);
  mdm?.closeAllConnections?.();
  await new Promise((r) => (mdm ? mdm.close(r) : r()));
});

// ------------------------------------------------------------- helpers --

async function challenge() {
  const r = await enrollPost(`${world.bridge.url}/t/rf/enroll`);
  assert.equal(r.status, 401);
  const m = /authorization-url="([^"]+)"/.exec(r.headers.get('www-authenticate'));
  assert.ok(m, r.headers.get('www-authenticate'));
  return m[1];
}

// The device flow up to the redirect carrying the code (or an error).
async function authorize(extra = {}, state = 'st') {
  const u = new URL(await challenge());
  const p = {
    response_type: 'code', client_id: 'apple-device', redirect_uri: REDIRECT, scope: 'mdm', state,
    login_hint: 'user1@rf.generic.test', ...extra,
  };
  for (const [k, v] of Object.entries(p)) if (v !== undefined) u.searchParams.set(k, v);
  const r = await fetch(u, { redirect: 'manual' });
  if (r.status !== 302) return { status: r.status, body: await r.text() };
  const loc = r.headers.get('location');
  if (loc.startsWith(REDIRECT)) return { status: 302, loc }; // an error sent back
  const cookie = r.headers.get('set-cookie').split(';')[0];
  const cb = await drive(loc, 'user1', 'secret', { consent: true });
  const r2 = await fetch(cb, { redirect: 'manual', headers: { cookie } });
  assert.equal(r2.status, 308);
  const back = r2.headers.get('location');
  assert.ok(back.startsWith(`${REDIRECT}?code=`), back);
  return { status: 308, code: new URL(back.replace(REDIRECT, 'http://device/cb')).searchParams.get('code') };
}

async function token(form) {
  const r = await fetch(`${world.bridge.url}/t/rf/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  assert.equal(r.headers.get('cache-control'), 'no-store');
  return { status: r.status, json: await r.json() };
}

const codeForm = (code, extra = {}) => ({
  grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: 'apple-device', ...extra,
});
const refreshForm = (rt) => ({ grant_type: 'refresh_token', refresh_token: rt, client_id: 'apple-device' });

async function signIn() {
  const a = await authorize();
  assert.equal(a.status, 308, a.body);
  const t = await token(codeForm(a.code));
  assert.equal(t.status, 200, JSON.stringify(t.json));
  return t.json;
}

async function refresh(rt) {
  return token(refreshForm(rt));
}

async function introspect(tok) {
  const r = await fetch(`${world.bridge.url}/t/rf/oauth2/introspect`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${MDM.client_id}:${MDM.client_secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ token: tok }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).active;
}

// A check-in at the proxy: what an MDM request with this bearer gets.
const plist = (entries) => '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>'
  + Object.entries(entries).map(([k, v]) => `<key>${k}</key><string>${v}</string>`).join('')
  + '</dict></plist>\n';

async function proxy(accessToken, enrollmentId) {
  const n = seen.length;
  const r = await fetch(`${world.bridge.url}/t/rf/mdm/checkin`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/x-apple-aspen-mdm-checkin' },
    body: plist({ MessageType: 'Authenticate', Topic: 'com.apple.mgmt.test', EnrollmentID: enrollmentId }),
  });
  await r.text();
  await new Promise((res) => setTimeout(res, 20));
  return { status: r.status, forwarded: seen.length - n, challenge: r.headers.get('www-authenticate') };
}

const grantOf = (rt) => sql(world.db,
  `select g.status, g.revoke_reason from grants g join tokens t on t.grant_id = g.id where t.hash = '${sha256hex(rt)}'`)[0];
const refreshRows = (rt) => sql(world.db,
  `select count(*) n from tokens t where kind = 'refresh' and grant_id = (select grant_id from tokens where hash = '${sha256hex(rt)}')`)[0].n;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --------------------------------------------------------------- tests --

test('replay within the grace window returns the same successor, never a new branch', async () => {
  const t0 = await signIn();
  const t1 = await refresh(t0.refresh_token); // the device never sees this answer
  assert.equal(t1.status, 200, JSON.stringify(t1.json));
  assert.notEqual(t1.json.refresh_token, t0.refresh_token);
  const rows = refreshRows(t0.refresh_token);
  for (let i = 0; i < 3; i++) {
    const again = await refresh(t0.refresh_token);
    assert.equal(again.status, 200, JSON.stringify(again.json));
    assert.equal(again.json.refresh_token, t1.json.refresh_token, 'the same successor');
    assert.ok(again.json.access_token, 'an access token with it');
    assert.equal(await introspect(again.json.access_token), true);
  }
  assert.equal(refreshRows(t0.refresh_token), rows, 'no refresh token was added by the replays');
  // the successor is the one live branch, and it works
  const t2 = await refresh(t1.json.refresh_token);
  assert.equal(t2.status, 200, JSON.stringify(t2.json));
  assert.equal(grantOf(t2.json.refresh_token).status, 'active');
  // the sealed successor is wiped once used: no refresh value at rest
  const kept = sql(world.db, `select count(*) n from tokens where hash = '${sha256hex(t0.refresh_token)}' and successor_sealed is not null`)[0].n;
  assert.equal(kept, 0);
});

test('eight simultaneous presentations of one refresh token: one rotation, the same successor for all', async () => {
  const t0 = await signIn();
  const rows = refreshRows(t0.refresh_token);
  const all = await Promise.all(Array.from({ length: 8 }, () => refresh(t0.refresh_token)));
  for (const r of all) assert.equal(r.status, 200, JSON.stringify(r.json));
  const distinct = new Set(all.map((r) => r.json.refresh_token));
  assert.equal(distinct.size, 1, 'every answer carries the same successor');
  assert.equal(refreshRows(t0.refresh_token), rows + 1, 'exactly one new refresh token');
  assert.equal(grantOf(t0.refresh_token).status, 'active');
  assert.equal((await refresh([...distinct][0])).status, 200);
});

test('the successor was used, then the old token is presented: the grant is revoked for everyone', async () => {
  const t0 = await signIn();
  const enrollment = `E-${Date.now()}`;
  const t1 = (await refresh(t0.refresh_token)).json;
  const t2 = await refresh(t1.refresh_token);
  assert.equal(t2.status, 200);
  const live = t2.json.access_token;
  assert.equal(await introspect(live), true);
  const ok = await proxy(live, enrollment);
  assert.equal(ok.status, 200, 'a live token is forwarded');
  assert.equal(ok.forwarded, 1);

  // the old token again, still within its own 30 s: reuse
  const bad = await refresh(t0.refresh_token);
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error, 'invalid_grant');
  assert.deepEqual(grantOf(t0.refresh_token), { status: 'revoked', revoke_reason: 'refresh token reused' });
  // every access token of the grant stops working
  for (const at of [t0.access_token, t1.access_token, live]) {
    assert.equal(await introspect(at), false);
    const p = await proxy(at, enrollment);
    assert.equal(p.status, 401);
    assert.equal(p.forwarded, 0);
    assert.match(p.challenge ?? '', /^Bearer method="apple-oauth2"/);
  }
  // and the device's current refresh token too
  const dev = await refresh(t2.json.refresh_token);
  assert.equal(dev.status, 400);
  assert.equal(dev.json.error, 'invalid_grant');
});

test('a thief replays the first token after the device rotated twice: the grant is revoked', async () => {
  const stolen = await signIn();
  const d1 = (await refresh(stolen.refresh_token)).json;
  const d2 = (await refresh(d1.refresh_token)).json;
  assert.ok(d2.refresh_token);
  const thief = await refresh(stolen.refresh_token);
  assert.equal(thief.status, 400);
  assert.equal(thief.json.error, 'invalid_grant');
  assert.equal(thief.json.refresh_token, undefined);
  assert.equal(grantOf(d2.refresh_token).status, 'revoked');
  assert.equal(await introspect(d2.access_token), false);
});

test('a thief replaying within the window gets only the same successor the device holds', async () => {
  const t0 = await signIn();
  const dev = (await refresh(t0.refresh_token)).json;
  const thief = (await refresh(t0.refresh_token)).json;
  assert.equal(thief.refresh_token, dev.refresh_token, 'one branch only');
  // the device moves on; the stolen token's successor is now used
  assert.equal((await refresh(dev.refresh_token)).status, 200);
  const again = await refresh(t0.refresh_token);
  assert.equal(again.status, 400);
  assert.equal(again.json.error, 'invalid_grant');
  assert.equal(grantOf(dev.refresh_token).status, 'revoked');
});

test('our own access tokens get no clock leeway: inactive and 401 from exp on', async () => {
  const t0 = await signIn();
  const enrollment = `E-exp-${Date.now()}`;
  const { exp } = JSON.parse(Buffer.from(t0.access_token.split('.')[1], 'base64url'));
  assert.equal(t0.expires_in, ACCESS_TTL);
  assert.equal(await introspect(t0.access_token), true);
  const live = await proxy(t0.access_token, enrollment);
  assert.equal(live.status, 200);
  // a few seconds past exp (the old code allowed 60)
  await sleep(Math.max(0, (exp + 3) * 1000 - Date.now()));
  assert.equal(await introspect(t0.access_token), false);
  const p = await proxy(t0.access_token, enrollment);
  assert.equal(p.status, 401);
  assert.equal(p.forwarded, 0);
  // the refresh token still renews it: a new access token works
  const t1 = await refresh(t0.refresh_token);
  assert.equal(t1.status, 200);
  assert.equal(await introspect(t1.json.access_token), true);
});

test('outside the grace window, reusing a rotated token revokes the grant', { timeout: 60000 }, async () => {
  const t0 = await signIn();
  const t1 = (await refresh(t0.refresh_token)).json;
  // the window is 30 s after the rotation; wait just past it
  const rotated = sql(world.db, `select rotated_at from tokens where hash = '${sha256hex(t0.refresh_token)}'`)[0].rotated_at;
  await sleep(Math.max(0, (rotated + GRACE + 1.5) * 1000 - Date.now()));
  const late = await refresh(t0.refresh_token);
  assert.equal(late.status, 400);
  assert.equal(late.json.error, 'invalid_grant');
  assert.equal(grantOf(t1.refresh_token).status, 'revoked');
  assert.equal((await refresh(t1.refresh_token)).status, 400);
});

// ---------------------------------------------------------------- PKCE --

const s256 = (v) => crypto.createHash('sha256').update(v).digest('base64url');
const newVerifier = () => crypto.randomBytes(48).toString('base64url'); // 64 chars

const grantOfCode = (code) => sql(world.db,
  `select g.status, g.revoke_reason from grants g join auth_codes c on c.grant_id = g.id where c.hash = '${sha256hex(code)}'`)[0];

test('PKCE S256: the code redeems only with the matching code_verifier', async () => {
  const verifier = newVerifier();
  const pkce = { code_challenge: s256(verifier), code_challenge_method: 'S256' };

  // no verifier: refused, the code is used up and its grant revoked
  let a = await authorize(pkce);
  assert.equal(a.status, 308, a.body);
  let r = await token(codeForm(a.code));
  assert.equal(r.status, 400);
  assert.equal(r.json.error, 'invalid_grant');
  assert.equal(r.json.access_token, undefined);
  assert.deepEqual(grantOfCode(a.code), { status: 'revoked', revoke_reason: 'PKCE verification failed' });
  assert.equal((await token(codeForm(a.code, { code_verifier: verifier }))).status, 400, 'used up');

  // a wrong verifier, and the challenge itself (what plain would send)
  for (const wrong of [newVerifier(), pkce.code_challenge, `${verifier.slice(0, -1)}A`]) {
    a = await authorize(pkce);
    r = await token(codeForm(a.code, { code_verifier: wrong }));
    assert.equal(r.status, 400, wrong);
    assert.equal(r.json.error, 'invalid_grant');
  }

  // the right one
  a = await authorize(pkce);
  r = await token(codeForm(a.code, { code_verifier: verifier }));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.ok(r.json.refresh_token);
  assert.equal(await introspect(r.json.access_token), true);
});

test('PKCE: plain, a challenge without method, other methods and malformed challenges are refused', async () => {
  const v = newVerifier();
  for (const p of [
    { code_challenge: v, code_challenge_method: 'plain' },
    { code_challenge: v }, // no method: plain (RFC 7636 4.3)
    { code_challenge: s256(v) }, // even an S256-looking one
    { code_challenge: s256(v), code_challenge_method: 's256' },
    { code_challenge: s256(v), code_challenge_method: 'S512' },
    { code_challenge: `${s256(v)}x`, code_challenge_method: 'S256' },
    { code_challenge: 'short', code_challenge_method: 'S256' },
    { code_challenge_method: 'S256' },
  ]) {
    const a = await authorize(p, 'st-pkce');
    assert.equal(a.status, 302, JSON.stringify(p));
    const u = new URL(a.loc.replace(REDIRECT, 'http://device/cb'));
    assert.equal(u.searchParams.get('error'), 'invalid_request', JSON.stringify(p));
    assert.equal(u.searchParams.get('state'), 'st-pkce');
    assert.ok(u.searchParams.get('error_description'));
    assert.equal(u.searchParams.get('code'), null);
  }
});

test('PKCE: a code issued without a challenge works without a verifier and refuses one', async () => {
  let a = await authorize();
  let r = await token(codeForm(a.code));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  // a verifier for a code that had no challenge: a downgrade attempt
  a = await authorize();
  r = await token(codeForm(a.code, { code_verifier: newVerifier() }));
  assert.equal(r.status, 400);
  assert.equal(r.json.error, 'invalid_grant');
});

test('PKCE: S256 in the authorization server metadata', async () => {
  const r = await fetch(`${world.bridge.url}/t/rf/.well-known/oauth-authorization-server`);
  assert.deepEqual((await r.json()).code_challenge_methods_supported, ['S256']);
});
