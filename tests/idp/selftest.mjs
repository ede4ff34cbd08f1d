// Self-test of the loopback test IdP: node --test selftest.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as jose from 'jose';

import { drive, DriveError, createJar } from './drive.mjs';
import { TENANT_CONTOSO, GROUP_ENROLL, GROUP_STAFF } from './accounts.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const REDIRECT = 'http://127.0.0.1:9/t/acme/oidc/callback';
const CLIENT = { id: 'bridge-basic', secret: 'basic-secret' };
const CLIENT_POST = { id: 'bridge-post', secret: 'post-secret' };

async function startServer(args) {
  const t0 = Date.now();
  const child = spawn(process.execPath, [path.join(here, 'server.mjs'), '--exit-on-stdin-eof', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const line = await new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i >= 0) resolve(buf.slice(0, i));
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${err}`)));
  });
  const info = JSON.parse(line);
  return {
    ...info, child, startMs: Date.now() - t0, stderr: () => err,
  };
}

let idp;
let idpPath;
let disc;
let tmp;

async function admin(p, body, srv = idp) {
  const r = await fetch(`${srv.admin}${p}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const j = await r.json();
  assert.equal(r.status, 200, JSON.stringify(j));
  return j;
}

function pkce() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

function authUrl(d, {
  client = CLIENT, scope = 'openid profile email offline_access', extra = {}, noPkce = false,
} = {}) {
  const p = pkce();
  const state = crypto.randomBytes(12).toString('base64url');
  const nonce = crypto.randomBytes(12).toString('base64url');
  const u = new URL(d.authorization_endpoint);
  u.searchParams.set('response_type', 'code');
  u.searchParams.set('client_id', client.id);
  u.searchParams.set('redirect_uri', REDIRECT);
  u.searchParams.set('scope', scope);
  u.searchParams.set('state', state);
  u.searchParams.set('nonce', nonce);
  if (!noPkce) {
    u.searchParams.set('code_challenge', p.challenge);
    u.searchParams.set('code_challenge_method', 'S256');
  }
  for (const [k, v] of Object.entries(extra)) u.searchParams.set(k, v);
  return {
    url: u.href, state, nonce, verifier: p.verifier,
  };
}

async function tokenRequest(d, params, { client = CLIENT, method = 'basic' } = {}) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  const body = new URLSearchParams(params);
  if (method === 'basic') {
    headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64')}`;
  } else {
    body.set('client_id', client.id);
    body.set('client_secret', client.secret);
  }
  const r = await fetch(d.token_endpoint, {
    method: 'POST', headers, body, redirect: 'manual',
  });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, json, text };
}

async function login(d, user, opts = {}) {
  const a = authUrl(d, opts);
  const cb = new URL(await drive(a.url, user, 'secret'));
  assert.ok(cb.href.startsWith(REDIRECT), cb.href);
  assert.equal(cb.searchParams.get('state'), a.state);
  const code = cb.searchParams.get('code');
  assert.ok(code, cb.href);
  const tok = await tokenRequest(d, {
    grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: a.verifier,
  }, opts);
  assert.equal(tok.status, 200, tok.text);
  return { ...a, cb, tok: tok.json };
}

const decode = (jwt) => ({ header: jose.decodeProtectedHeader(jwt), claims: jose.decodeJwt(jwt) });

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'test-idp-'));
  const clientsFile = path.join(tmp, 'clients.json');
  fs.writeFileSync(clientsFile, JSON.stringify([{
    client_id: CLIENT_POST.id,
    client_secret: CLIENT_POST.secret,
    redirect_uris: [REDIRECT],
    token_endpoint_auth_method: 'client_secret_post',
    id_token_signed_response_alg: 'ES256',
  }]));
  idp = await startServer(['--port', '0', '--clients', clientsFile,
    '--client-id', CLIENT.id, '--client-secret', CLIENT.secret, '--redirect-uri', REDIRECT]);
  const r = await fetch(`${idp.issuer}/.well-known/openid-configuration`);
  disc = await r.json();
});

after(async () => {
  for (const s of [idp, idpPath]) if (s) s.child.kill('SIGTERM');
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('starts fast and prints one JSON line', () => {
  assert.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.ok(idp.port > 0);
  assert.equal(idp.admin, `${idp.issuer}/__admin`);
  // a sanity bound, not a benchmark: CI machines are noisy
  assert.ok(idp.startMs < 20000, `startup took ${idp.startMs} ms`);
});

test('discovery', async () => {
  assert.equal(disc.issuer, idp.issuer);
  assert.deepEqual(disc.code_challenge_methods_supported, ['S256']);
  assert.equal(disc.authorization_response_iss_parameter_supported, true);
  assert.ok(disc.id_token_signing_alg_values_supported.includes('RS256'));
  assert.ok(disc.id_token_signing_alg_values_supported.includes('ES256'));
  const jwks = await (await fetch(disc.jwks_uri)).json();
  assert.deepEqual(jwks.keys.map((k) => k.kty).sort(), ['EC', 'RSA']);
  for (const k of jwks.keys) assert.equal(k.d, undefined);
});

test('code + PKCE flow, Entra-like user, client_secret_basic, RS256', async () => {
  const r = await login(disc, 'alice@contoso.com');
  assert.equal(r.cb.searchParams.get('iss'), idp.issuer);
  const JWKS = jose.createRemoteJWKSet(new URL(disc.jwks_uri));
  const { payload, protectedHeader } = await jose.jwtVerify(r.tok.id_token, JWKS, {
    issuer: idp.issuer, audience: CLIENT.id, algorithms: ['RS256'],
  });
  assert.equal(protectedHeader.alg, 'RS256');
  assert.equal(payload.nonce, r.nonce);
  assert.equal(payload.tid, TENANT_CONTOSO);
  assert.equal(payload.upn, 'alice@contoso.com');
  assert.equal(payload.preferred_username, 'alice@contoso.com');
  assert.ok(payload.oid);
  assert.ok(payload.groups.includes(GROUP_ENROLL));
  assert.equal(payload.email_verified, undefined);
  assert.ok(r.tok.refresh_token, 'offline_access gives a refresh token');
  // userinfo works with the access token
  const ui = await (await fetch(disc.userinfo_endpoint, { headers: { authorization: `Bearer ${r.tok.access_token}` } })).json();
  assert.equal(ui.sub, payload.sub);
  assert.equal(ui.tid, TENANT_CONTOSO);
  // the code is single use (a replay also revokes what the code gave)
  const again = await tokenRequest(disc, {
    grant_type: 'authorization_code', code: r.cb.searchParams.get('code'), redirect_uri: REDIRECT, code_verifier: r.verifier,
  });
  assert.equal(again.status, 400);
  assert.equal(again.json.error, 'invalid_grant');
});

test('PKCE is required', async () => {
  const a = authUrl(disc, { noPkce: true });
  const cb = new URL(await drive(a.url, 'alice@contoso.com', 'secret'));
  assert.equal(cb.searchParams.get('error'), 'invalid_request');
});

test('wrong password and aborted login', async () => {
  const a = authUrl(disc);
  await assert.rejects(drive(a.url, 'alice@contoso.com', 'nope'), (e) => e instanceof DriveError && e.code === 'LOGIN_FAILED');
  const b = authUrl(disc);
  const cb = new URL(await drive(b.url, 'alice@contoso.com', 'secret', { abortLogin: true }));
  assert.equal(cb.searchParams.get('error'), 'access_denied');
  const c = authUrl(disc);
  const cb2 = new URL(await drive(c.url, 'alice@contoso.com', 'secret', { consent: false }));
  assert.equal(cb2.searchParams.get('error'), 'access_denied');
});

test('SSO session reuse with a shared jar, login_hint pre-fills the form', async () => {
  const jar = createJar();
  const trace = [];
  const a = authUrl(disc, { extra: { login_hint: 'carol@fabrikam.com', domain_hint: 'fabrikam.com' } });
  const first = await drive(a.url, 'carol@fabrikam.com', 'secret', { jar, trace });
  assert.ok(new URL(first).searchParams.get('code'));
  const b = authUrl(disc, { scope: 'openid' });
  const second = await drive(b.url, 'nobody', 'wrong', { jar }); // no login form: session reused
  assert.ok(new URL(second).searchParams.get('code'));
  const log = await admin('/log');
  assert.ok(log.some((e) => e.query?.login_hint === 'carol@fabrikam.com' && e.query?.domain_hint === 'fabrikam.com'));
  // the login form shows the hint
  const c = authUrl(disc, { extra: { login_hint: 'carol@fabrikam.com' } });
  const j2 = createJar();
  let r = await fetch(c.url, { redirect: 'manual' });
  j2.store(r);
  r = await fetch(new URL(r.headers.get('location'), c.url), { headers: { cookie: j2.header() } });
  assert.match(await r.text(), /value="carol@fabrikam.com"/);
});

test('groups overage user', async () => {
  const r = await login(disc, 'bob@contoso.com');
  const c = decode(r.tok.id_token).claims;
  assert.equal(c.groups, undefined);
  assert.equal(c.hasgroups, true);
  assert.deepEqual(c._claim_names, { groups: 'src1' });
  assert.ok(c._claim_sources.src1.endpoint);
});

test('Google-like users, access_type=offline, client_secret_post, ES256', async () => {
  const r = await login(disc, 'gina@example.org', {
    client: CLIENT_POST, method: 'post', scope: 'openid email profile', extra: { access_type: 'offline', hd: 'example.org' },
  });
  const JWKS = jose.createLocalJWKSet(await (await fetch(disc.jwks_uri)).json());
  const { payload, protectedHeader } = await jose.jwtVerify(r.tok.id_token, JWKS, { issuer: idp.issuer, audience: CLIENT_POST.id });
  assert.equal(protectedHeader.alg, 'ES256');
  assert.equal(payload.hd, 'example.org');
  assert.equal(payload.email, 'gina@example.org');
  assert.equal(payload.email_verified, true);
  assert.ok(r.tok.refresh_token, 'access_type=offline gives a refresh token');
  const gus = decode((await login(disc, 'gus@example.org', { client: CLIENT_POST, method: 'post' })).tok.id_token).claims;
  assert.equal(gus.email_verified, false);
  const pat = decode((await login(disc, 'pat@gmail.com', { client: CLIENT_POST, method: 'post' })).tok.id_token).claims;
  assert.equal(pat.hd, undefined);
  const olga = decode((await login(disc, 'olga@other.example', { client: CLIENT_POST, method: 'post' })).tok.id_token).claims;
  assert.equal(olga.hd, 'other.example');
  // without offline: no refresh token
  const n = await login(disc, 'user1', { scope: 'openid email' });
  assert.equal(n.tok.refresh_token, undefined);
  const log = await admin('/log');
  assert.ok(log.some((e) => e.path === '/auth' && e.query.access_type === 'offline'));
  assert.ok(log.some((e) => e.path === '/token' && e.client_secret_in_body));
});

test('refresh works, fails after disable, works after enable, fails after revoke', async () => {
  const r = await login(disc, 'erin@contoso.com');
  const refresh = () => tokenRequest(disc, { grant_type: 'refresh_token', refresh_token: r.tok.refresh_token });
  let x = await refresh();
  assert.equal(x.status, 200, x.text);
  assert.ok(x.json.id_token);
  await admin('/users/erin@contoso.com/disable', {});
  x = await refresh();
  assert.equal(x.status, 400);
  assert.equal(x.json.error, 'invalid_grant');
  await assert.rejects(drive(authUrl(disc).url, 'erin@contoso.com', 'secret'), (e) => e.code === 'LOGIN_FAILED' && /disabled/.test(e.message));
  await admin('/users/erin@contoso.com/enable', {});
  x = await refresh();
  assert.equal(x.status, 200, x.text);
  await admin('/users/erin@contoso.com/revoke', {});
  x = await refresh();
  assert.equal(x.status, 400);
  assert.equal(x.json.error, 'invalid_grant');
});

test('claims and groups changed at run time; the Graph endpoint; no_refresh_token', async () => {
  const graph = (at) => fetch(`${idp.issuer}/graph/v1.0/me/getMemberObjects`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(at ? { authorization: `Bearer ${at}` } : {}) },
    body: '{"securityEnabledOnly":false}',
  });
  const r = await login(disc, 'alice@contoso.com');
  const refresh = () => tokenRequest(disc, { grant_type: 'refresh_token', refresh_token: r.tok.refresh_token });
  let g = await graph(r.tok.access_token);
  assert.equal(g.status, 200);
  assert.deepEqual((await g.json()).value.length, 2);
  // groups: the token's claim and Graph both follow the directory
  let a = await admin('/users/alice@contoso.com/groups', { groups: ['g-only'] });
  assert.deepEqual(a.groups, ['g-only']);
  let x = await refresh();
  assert.equal(x.status, 200, x.text);
  assert.deepEqual(decode(x.json.id_token).claims.groups, ['g-only']);
  g = await graph(x.json.access_token);
  assert.deepEqual((await g.json()).value, ['g-only']);
  // claims: merged, null deletes; userinfo carries them too
  await admin('/users/alice@contoso.com/claims', { name: 'Alice Renamed', email: null });
  x = await refresh();
  const c = decode(x.json.id_token).claims;
  assert.equal(c.name, 'Alice Renamed');
  assert.equal(c.email, undefined);
  const ui = await (await fetch(disc.userinfo_endpoint, { headers: { authorization: `Bearer ${x.json.access_token}` } })).json();
  assert.equal(ui.name, 'Alice Renamed');
  // bob's overage: Graph answers his directory groups, the token has none
  const b = await login(disc, 'bob@contoso.com');
  assert.equal(decode(b.tok.id_token).claims.groups, undefined);
  g = await graph(b.tok.access_token);
  assert.deepEqual((await g.json()).value, [GROUP_STAFF, GROUP_ENROLL]);
  await admin('/users/bob@contoso.com/groups', { groups: [GROUP_STAFF] });
  g = await graph(b.tok.access_token);
  assert.deepEqual((await g.json()).value, [GROUP_STAFF]);
  // unknown or missing bearer: 401; graph_503 takes it down
  assert.equal((await graph('not-a-token')).status, 401);
  assert.equal((await graph()).status, 401);
  await admin('/mode', { mode: 'graph_503', count: 1 });
  assert.equal((await graph(b.tok.access_token)).status, 503);
  assert.equal((await graph(b.tok.access_token)).status, 200);
  // no_refresh_token: the next token response carries none
  await admin('/mode', { mode: 'no_refresh_token', count: 1 });
  x = await refresh();
  assert.equal(x.status, 200);
  assert.equal(x.json.refresh_token, undefined);
  assert.ok(x.json.access_token);
  // bad input is refused
  const bad = await fetch(`${idp.admin}/users/alice@contoso.com/groups`, { method: 'POST', body: '{"groups":"x"}' });
  assert.equal(bad.status, 400);
  // reset restores the accounts
  await admin('/reset', {});
  const st = await admin('/users/alice@contoso.com/claims', {});
  assert.equal(st.claims.name, 'Alice Contoso');
  assert.deepEqual(st.groups, [GROUP_STAFF, GROUP_ENROLL]);
});

test('hostile ID tokens', async () => {
  const state = await admin('/state');
  const rsaPem = state.keys.rsa.pem;
  const JWKS = jose.createLocalJWKSet(await (await fetch(disc.jwks_uri)).json());
  const verify = (jwt) => jose.jwtVerify(jwt, JWKS, { issuer: idp.issuer, audience: CLIENT.id });

  const run = async (mode, opts = {}) => {
    await admin('/mode', { mode, count: 1, ...opts });
    const r = await login(disc, 'user1');
    return { jwt: r.tok.id_token, ...(r.tok.id_token ? decode(r.tok.id_token) : {}), r };
  };

  let t = await run('alg_none');
  assert.equal(t.header.alg, 'none');
  assert.equal(t.jwt.split('.')[2], '');

  t = await run('hs256_pubkey');
  assert.equal(t.header.alg, 'HS256');
  assert.equal(t.header.kid, state.keys.rsa.kid);
  const [h, p, s] = t.jwt.split('.');
  assert.equal(crypto.createHmac('sha256', rsaPem).update(`${h}.${p}`).digest('base64url'), s);

  t = await run('unknown_kid');
  assert.ok(!JSON.stringify(state.keys).includes(t.header.kid));
  await assert.rejects(verify(t.jwt));

  t = await run('foreign_key');
  assert.equal(t.header.kid, state.keys.rsa.kid);
  await assert.rejects(verify(t.jwt), /signature/);
  await jose.jwtVerify(t.jwt, await jose.importJWK(state.keys.foreign.jwk, 'RS256'));

  t = await run('alg_kty_mismatch');
  assert.equal(t.header.alg, 'ES256');
  assert.equal(t.header.kid, state.keys.rsa.kid);

  t = await run('wrong_iss');
  assert.notEqual(t.claims.iss, idp.issuer);
  await assert.rejects(verify(t.jwt), /iss/);

  t = await run('wrong_aud');
  await assert.rejects(verify(t.jwt), /aud/);

  t = await run('multi_aud_no_azp');
  assert.deepEqual(t.claims.aud, [CLIENT.id, 'some-other-client']);
  assert.equal(t.claims.azp, undefined);
  await verify(t.jwt); // validly signed: only an azp check catches it

  t = await run('expired');
  await assert.rejects(verify(t.jwt), /exp/);

  t = await run('iat_future');
  assert.ok(t.claims.iat > Date.now() / 1000 + 1800);

  t = await run('no_nonce');
  assert.equal(t.claims.nonce, undefined);
  await verify(t.jwt);

  t = await run('wrong_nonce');
  assert.notEqual(t.claims.nonce, t.r.nonce);

  t = await run('patch_id_token', { claims: { tid: 'not-allowed-tenant', email: null } });
  assert.equal(t.claims.tid, 'not-allowed-tenant');
  assert.equal(t.claims.email, undefined);
  await verify(t.jwt);

  t = await run('no_id_token');
  assert.equal(t.jwt, undefined);

  // count=1: the next one is normal again
  t = await run('patch_id_token', { count: undefined });
  await admin('/reset', {});
  const ok = await login(disc, 'user1');
  await verify(ok.tok.id_token);
  assert.equal(decode(ok.tok.id_token).claims.nonce, ok.nonce);
});

test('hostile authorization response: mix-up iss', async () => {
  await admin('/mode', { mode: 'mixup_iss', count: 1 });
  const a = authUrl(disc);
  const cb = new URL(await drive(a.url, 'alice@contoso.com', 'secret'));
  assert.equal(cb.searchParams.get('iss'), 'https://idp.attacker.test');
  assert.ok(cb.searchParams.get('code'));
});

test('hostile endpoints', async () => {
  await admin('/mode', { mode: 'token_huge', count: 1 });
  let x = await tokenRequest(disc, { grant_type: 'authorization_code', code: 'x', redirect_uri: REDIRECT, code_verifier: 'x' });
  assert.ok(x.text.length >= 10 * 1024 * 1024);

  await admin('/mode', { mode: 'token_hang', count: 1 });
  await assert.rejects(fetch(disc.token_endpoint, { method: 'POST', signal: AbortSignal.timeout(300) }), /abort|timeout/i);

  await admin('/mode', { mode: 'jwks_many', count: 1 });
  const many = await (await fetch(disc.jwks_uri)).json();
  assert.ok(many.keys.length >= 10000);

  for (const target of ['discovery', 'jwks', 'token']) {
    await admin('/mode', { mode: `${target}_malformed`, count: 1 });
    const url = { discovery: `${idp.issuer}/.well-known/openid-configuration`, jwks: disc.jwks_uri, token: disc.token_endpoint }[target];
    const res = await fetch(url, { method: target === 'token' ? 'POST' : 'GET' });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.throws(() => JSON.parse(text), `${target} must be malformed`);
  }

  await admin('/mode', { mode: 'down' });
  assert.equal((await fetch(disc.jwks_uri)).status, 503);
  assert.equal((await fetch(`${idp.issuer}/.well-known/openid-configuration`)).status, 503);
  await admin('/reset', {});
  await admin('/mode', { mode: 'down_close', count: 1 });
  await assert.rejects(fetch(disc.jwks_uri));

  await admin('/mode', { mode: 'discovery_patch', count: 1, patch: { issuer: 'https://login.example/{tenantid}/v2.0' } });
  assert.equal((await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()).issuer, 'https://login.example/{tenantid}/v2.0');

  await admin('/mode', { mode: 'token_redirect', count: 1 });
  x = await tokenRequest(disc, { grant_type: 'refresh_token', refresh_token: 'x' });
  assert.equal(x.status, 307);

  await admin('/reset', {});
  const st = await admin('/state');
  assert.deepEqual(st.modes, []);
  assert.equal(st.hung, 0);
  assert.equal((await fetch(disc.jwks_uri)).status, 200);
  const unknown = await fetch(`${idp.admin}/mode`, { method: 'POST', body: JSON.stringify({ mode: 'bogus' }) });
  assert.equal(unknown.status, 400);
});

test('runtime client registration and issuer with a path (Entra-style)', async () => {
  idpPath = await startServer(['--port', '0', '--issuer-path', `/${TENANT_CONTOSO}/v2.0`, '--auto-consent']);
  assert.equal(idpPath.issuer, `http://127.0.0.1:${idpPath.port}/${TENANT_CONTOSO}/v2.0`);
  await admin('/clients', { client_id: 'late', client_secret: 'late-secret', redirect_uris: [REDIRECT] }, idpPath);
  const d = await (await fetch(`${idpPath.issuer}/.well-known/openid-configuration`)).json();
  assert.equal(d.issuer, idpPath.issuer);
  assert.ok(d.token_endpoint.startsWith(idpPath.issuer));
  const r = await login(d, 'alice@contoso.com', { client: { id: 'late', secret: 'late-secret' } });
  assert.equal(r.cb.searchParams.get('iss'), idpPath.issuer);
  const JWKS = jose.createRemoteJWKSet(new URL(d.jwks_uri));
  await jose.jwtVerify(r.tok.id_token, JWKS, { issuer: idpPath.issuer, audience: 'late' });
  assert.equal(idpPath.stderr().includes('server_error'), false, idpPath.stderr());
  assert.equal(idp.stderr().includes('server_error'), false, idp.stderr());
});
