// apple-oauth2 (PROTOCOL.md section 3): the bridge as the device's OAuth 2
// authorization server. The device is a public client: exact client_id and
// redirect_uri, its state returned unchanged, single-use codes bound to
// client and redirect URI, rotating refresh tokens with reuse detection,
// RFC 6749 JSON errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { drive } from '../idp/drive.mjs';
import { enrollPost } from './lib.mjs';
import { freePort, oidcTenant, sql, sha256hex, startTestIdp, startWorld, stopAll } from './idp.mjs';

const REDIRECT = 'apple-remotemanagement-user-login:/oauth2/redirection';
let world, idp;

before(async () => {
  idp = await startTestIdp();
  const port = await freePort();
  const spec = oidcTenant(`http://127.0.0.1:${port}`, idp, 'oa');
  spec.tenant.auth_method = 'apple-oauth2';
  spec.tenant.oauth2 = { client_id: 'apple-device', scope: 'mdm' };
  world = await startWorld(port, [spec]);
});
after(async () => { await stopAll(world?.bridge, idp); });

async function challenge() {
  const r = await enrollPost(`${world.bridge.url}/t/oa/enroll`);
  assert.equal(r.status, 401);
  const wa = r.headers.get('www-authenticate');
  const m = /^Bearer method="apple-oauth2", authorization-url="([^"]+)", token-url="([^"]+)", redirect-url="([^"]+)", client-id="([^"]+)", scope="([^"]*)"$/.exec(wa);
  assert.ok(m, wa);
  return { authz: m[1], token: m[2], redirect: m[3], clientId: m[4], scope: m[5] };
}

function authorizeUrl(authz, params) {
  const u = new URL(authz);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
  return u;
}

const deviceParams = (state = 'dev-state-åäö/+&=') => ({
  response_type: 'code', client_id: 'apple-device', redirect_uri: REDIRECT, scope: 'mdm', state,
  login_hint: 'user1@oa.generic.test',
});

// The whole device flow up to the code.
async function getCode(state) {
  const ch = await challenge();
  const r = await fetch(authorizeUrl(ch.authz, deviceParams(state)), { redirect: 'manual' });
  assert.equal(r.status, 302);
  const cookie = r.headers.get('set-cookie').split(';')[0];
  const cb = await drive(r.headers.get('location'), 'user1', 'secret', { consent: true });
  const r2 = await fetch(cb, { redirect: 'manual', headers: { cookie } });
  assert.equal(r2.status, 308);
  const loc = r2.headers.get('location');
  assert.ok(loc.startsWith(`${REDIRECT}?code=`), loc);
  const q = new URL(loc.replace(REDIRECT, 'http://device/cb')).searchParams;
  return { ch, code: q.get('code'), state: q.get('state'), loc };
}

async function token(form) {
  const r = await fetch(`${world.bridge.url}/t/oa/oauth2/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form),
  });
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.match(r.headers.get('content-type'), /^application\/json/);
  return { status: r.status, json: await r.json() };
}

const codeForm = (code, extra = {}) => ({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: 'apple-device', ...extra });
const refreshForm = (rt) => ({ grant_type: 'refresh_token', refresh_token: rt, client_id: 'apple-device' });

test('challenge names every apple-oauth2 parameter; the authorization-url keeps its own query', async () => {
  const ch = await challenge();
  assert.equal(ch.redirect, REDIRECT);
  assert.equal(ch.clientId, 'apple-device');
  assert.equal(ch.scope, 'mdm');
  assert.equal(ch.token, `${world.bridge.url}/t/oa/oauth2/token`);
  assert.match(ch.authz, /\/t\/oa\/oauth2\/authorize\?flow=[A-Za-z0-9_-]+$/);
});

test('code flow: state returned unchanged, code redeems once to access + refresh tokens', async () => {
  const state = 'dev-state-åäö/+&=';
  const { code, state: back } = await getCode(state);
  assert.equal(back, state);
  const r = await token(codeForm(code));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.token_type, 'Bearer');
  assert.equal(r.json.expires_in, 3600);
  assert.match(r.json.access_token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  assert.match(r.json.refresh_token, /^[A-Za-z0-9_-]{40,}$/);
  // stored only as hashes
  const rows = sql(world.db, `select kind, status from tokens where hash in ('${sha256hex(r.json.access_token)}','${sha256hex(r.json.refresh_token)}') order by kind`);
  assert.deepEqual(rows.map((x) => x.kind).sort(), ['access', 'refresh']);
  assert.equal(sql(world.db, `select count(*) n from tokens where hash = '${r.json.refresh_token}'`)[0].n, 0);
  const g = sql(world.db, "select auth_method, client_id, status from grants where auth_method = 'apple-oauth2' order by created_at desc limit 1")[0];
  assert.deepEqual(g, { auth_method: 'apple-oauth2', client_id: 'apple-device', status: 'active' });
});

test('a replayed code is refused and revokes what was issued from it', async () => {
  const { code } = await getCode('s1');
  const first = await token(codeForm(code));
  assert.equal(first.status, 200);
  const again = await token(codeForm(code));
  assert.equal(again.status, 400);
  assert.equal(again.json.error, 'invalid_grant');
  const r = await token(refreshForm(first.json.refresh_token));
  assert.equal(r.status, 400);
  assert.equal(r.json.error, 'invalid_grant');
});

test('code bound to client and redirect URI', async () => {
  const { code } = await getCode('s2');
  let r = await token(codeForm(code, { redirect_uri: 'apple-remotemanagement-user-login:/other' }));
  assert.equal(r.status, 400);
  assert.equal(r.json.error, 'invalid_grant');
  r = await token(codeForm(code, { client_id: 'someone-else' }));
  assert.equal(r.status, 401);
  assert.equal(r.json.error, 'invalid_client');
  r = await token(codeForm('not-a-code'));
  assert.equal(r.json.error, 'invalid_grant');
});

test('refresh rotates; reusing a rotated token after its successor was used revokes the grant', async () => {
  const { code } = await getCode('s3');
  const t0 = (await token(codeForm(code))).json;
  const t1 = await token(refreshForm(t0.refresh_token));
  assert.equal(t1.status, 200, JSON.stringify(t1.json));
  assert.notEqual(t1.json.refresh_token, t0.refresh_token);
  assert.notEqual(t1.json.access_token, t0.access_token);
  const t2 = await token(refreshForm(t1.json.refresh_token));
  assert.equal(t2.status, 200);
  // t0 again: its successor t1 is already used: theft, the grant dies
  const bad = await token(refreshForm(t0.refresh_token));
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error, 'invalid_grant');
  const after = await token(refreshForm(t2.json.refresh_token));
  assert.equal(after.status, 400);
  assert.equal(after.json.error, 'invalid_grant');
  const g = sql(world.db, `select g.status from grants g join tokens t on t.grant_id = g.id where t.hash = '${sha256hex(t2.json.refresh_token)}'`)[0];
  assert.equal(g.status, 'revoked');
});

test('a lost refresh response: the same refresh token again within the grace window gets the same successor', async () => {
  const { code } = await getCode('s4');
  const t0 = (await token(codeForm(code))).json;
  const t1 = await token(refreshForm(t0.refresh_token)); // response "lost"
  assert.equal(t1.status, 200);
  const retry = await token(refreshForm(t0.refresh_token));
  assert.equal(retry.status, 200, JSON.stringify(retry.json));
  // DESIGN "Refresh tokens, PKCE": the same successor, never a new branch
  assert.equal(retry.json.refresh_token, t1.json.refresh_token);
  assert.equal((await token(refreshForm(t1.json.refresh_token))).status, 200);
});

test('authorize refuses a wrong client or redirect URI with a page, never a redirect', async () => {
  const ch = await challenge();
  for (const bad of [{ client_id: 'evil' }, { redirect_uri: 'https://evil.example/cb' },
    { redirect_uri: `${REDIRECT}/x` }, { client_id: undefined }]) {
    const p = { ...deviceParams('s'), ...bad };
    if ('client_id' in bad && bad.client_id === undefined) delete p.client_id;
    const r = await fetch(authorizeUrl(ch.authz, p), { redirect: 'manual' });
    assert.equal(r.status, 400, JSON.stringify(bad));
    assert.equal(r.headers.get('location'), null);
    assert.match(r.headers.get('content-type'), /^text\/html; charset=utf-8/);
  }
});

test('authorize sends other errors back to the registered redirect URI with the state', async () => {
  const ch = await challenge();
  const r = await fetch(authorizeUrl(ch.authz, { ...deviceParams('st-9'), response_type: 'token' }), { redirect: 'manual' });
  assert.equal(r.status, 302);
  assert.equal(r.headers.get('location'), `${REDIRECT}?error=unsupported_response_type&state=st-9`);
});

test('token endpoint errors are RFC 6749 JSON', async () => {
  let r = await token({ grant_type: 'password', username: 'a', password: 'b', client_id: 'apple-device' });
  assert.equal(r.status, 400);
  assert.equal(r.json.error, 'unsupported_grant_type');
  r = await token({ grant_type: 'authorization_code', client_id: 'apple-device' });
  assert.equal(r.json.error, 'invalid_request');
  const dup = await fetch(`${world.bridge.url}/t/oa/oauth2/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=refresh_token&refresh_token=a&refresh_token=b&client_id=apple-device',
  });
  assert.equal(dup.status, 400);
  assert.equal((await dup.json()).error, 'invalid_request');
});
