// Upstream OIDC sign-in (issue 3), happy paths, against a real OpenID
// Provider (tests/idp, oidc-provider) on loopback: generic OIDC with
// client_secret_basic and client_secret_post, Entra single- and
// multi-tenant, Google Workspace; the authorization request, the cookie
// binding, the grant / audit / token rows, state replay and stolen
// callback URLs, and no secret in the logs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  APPLE_RESULT, ENTRA_PATH, GROUP_ENROLL, TENANT_CONTOSO,
  callback, challenge, dbFilesContain, drive, createJar, enroll, entraMultiTenant, entraTenant,
  freePort, googleTenant, healthz, idpLog, idpReset, isHtmlPage, multiTenantIdp, oidcTenant,
  sha256hex, sql, startLogin, startTestIdp, startWorld, stopAll,
} from './idp.mjs';

let idp; // Entra-like path: http://127.0.0.1:P/{contoso tid}/v2.0
let idpMulti; // same, metadata issuer = {tenantid} template
let world;
let bridge;
let db;
const secrets = []; // every code, state, token, cookie seen: must never be logged
const issued = []; // every token the bridge issued
const upstream = []; // the IdP's access/refresh tokens and codes

const ALICE_OID = '00000000-0000-0000-66f3-3332eca7ea81';

before(async () => {
  const port = await freePort();
  const pub = `http://127.0.0.1:${port}`;
  [idp, idpMulti] = await Promise.all([startTestIdp({ issuerPath: ENTRA_PATH }), multiTenantIdp()]);
  world = await startWorld(port, [
    oidcTenant(pub, idp, 'gen'),
    oidcTenant(pub, idp, 'genpost', {
      clientAuth: 'client_secret_post',
      mapping: { claim: 'email', template: '{local}@apple.{domain}', managed_domains: ['apple.generic.test'] },
    }),
    entraTenant(pub, idp, 'contoso'),
    entraMultiTenant(pub, idpMulti, 'multi'),
    googleTenant(pub, idp, 'goog'),
  ]);
  ({ bridge, db } = world);
  // the IdP's own tokens, as oidc-provider saves them (opaque: the jti is the value)
  for (const p of [idp.provider, idpMulti.provider]) {
    for (const ev of ['access_token.saved', 'refresh_token.saved', 'authorization_code.saved']) {
      p.on(ev, (tok) => upstream.push({ kind: ev.split('.')[0], value: tok.jti }));
    }
  }
});

after(async () => {
  await stopAll(bridge, idp, idpMulti);
});

function remember(r) {
  if (r.token) { secrets.push(r.token); issued.push(r.token); }
  if (r.cookie) secrets.push(r.cookie.split('=').slice(1).join('='));
  for (const u of [r.idpCallbackUrl, r.authUrl]) {
    if (!u) continue;
    const q = new URL(u).searchParams;
    for (const k of ['code', 'state', 'nonce', 'code_challenge']) if (q.get(k)) secrets.push(q.get(k));
  }
}

function assertSuccess(r) {
  assert.equal(r.stage, 'callback', `flow stopped at ${r.stage}: ${r.status} ${r.body?.slice(0, 300) ?? ''} ${r.driveError?.message ?? ''}`);
  assert.equal(r.status, 308, `callback answered ${r.status}: ${r.body?.slice(0, 300)}`);
  assert.ok(r.location.startsWith(`${APPLE_RESULT}?access-token=`), r.location);
  assert.match(r.token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
}

const grantsOf = (tenant) => sql(db, `select * from grants where tenant='${tenant}' order by created_at`);
const countTokens = () => sql(db, 'select count(*) as n from tokens')[0].n;
const countGrants = () => sql(db, 'select count(*) as n from grants')[0].n;

function assertGrantAndToken(tenant, token, expect) {
  const rows = sql(db, `select g.* from grants g join tokens t on t.grant_id = g.id where t.hash='${sha256hex(token)}'`);
  assert.equal(rows.length, 1, `one grant holding the token's SHA-256 (tenant ${tenant}); grants: ${JSON.stringify(grantsOf(tenant))}`);
  const g = rows[0];
  assert.equal(g.tenant, tenant);
  assert.equal(g.status, 'active');
  for (const [k, v] of Object.entries(expect)) assert.equal(g[k], v, `grants.${k}`);
  // the tokens table holds hashes only
  for (const t of sql(db, `select hash from tokens where grant_id='${g.id}'`)) assert.match(t.hash, /^[0-9a-f]{64}$/);
  assert.equal(dbFilesContain(db, token), null, 'raw token found in the database files');
  const audit = sql(db, `select * from audit_events where tenant='${tenant}' and event='login.allow'`);
  assert.ok(audit.some((a) => a.subject === g.idp_subject), `audit login.allow for ${g.idp_subject}: ${JSON.stringify(audit)}`);
  return g;
}

let genFlow; // the first generic sign-in, reused by the replay test

test('generic OIDC (client_secret_basic): challenge, authorization request, callback, grant', async () => {
  const ch = await challenge(bridge, 'gen');
  assert.equal(ch.status, 401);
  assert.match(ch.wwwAuth, new RegExp(`^Bearer method="apple-as-web", url="${bridge.url}/t/gen/auth/[A-Za-z0-9_-]+"$`));

  const typed = 'user1@generic.test';
  const st = await startLogin(ch.url, typed);
  assert.equal(st.status, 302, st.body);
  assert.equal(st.headers.get('cache-control'), 'no-store');
  const auth = new URL(st.location);
  assert.equal(`${auth.origin}${auth.pathname}`, `${idp.issuer}/auth`);
  const q = auth.searchParams;
  assert.equal(q.get('response_type'), 'code');
  assert.equal(q.get('client_id'), 'eb-gen');
  assert.equal(q.get('redirect_uri'), `${bridge.url}/t/gen/oidc/callback`);
  assert.ok(q.get('scope').split(' ').includes('openid'), q.get('scope'));
  assert.match(q.get('state'), /^[A-Za-z0-9_-]{16,}$/);
  assert.match(q.get('nonce'), /^[A-Za-z0-9_-]{16,}$/);
  assert.match(q.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
  assert.equal(q.get('code_challenge_method'), 'S256');
  assert.equal(q.get('login_hint'), typed);
  assert.notEqual(q.get('state'), q.get('nonce'));
  // the browser binding cookie
  assert.ok(st.setCookie, 'Set-Cookie eb_login');
  const attrs = st.setCookie.split(';').map((s) => s.trim().toLowerCase());
  assert.ok(attrs.includes('path=/t/gen/'), st.setCookie);
  assert.ok(attrs.includes('httponly'), st.setCookie);
  assert.ok(attrs.includes('samesite=lax'), st.setCookie);
  assert.ok(!st.setCookie.includes(q.get('state')), 'the cookie is not the state');

  const cb = await drive(st.location, 'user1', 'secret', { jar: createJar() });
  const cbu = new URL(cb);
  assert.equal(`${cbu.origin}${cbu.pathname}`, `${bridge.url}/t/gen/oidc/callback`);
  assert.equal(cbu.searchParams.get('state'), q.get('state'));
  assert.ok(cbu.searchParams.get('code'));
  assert.equal(cbu.searchParams.get('iss'), idp.issuer);

  const r = await callback(cb, st.cookie);
  genFlow = {
    ...r, cookie: st.cookie, idpCallbackUrl: cb, authUrl: st.location, callbackUrl: cb, stage: 'callback',
  };
  remember(genFlow);
  assertSuccess(genFlow);

  assertGrantAndToken('gen', r.token, {
    managed_apple_id: 'user1@appleid.generic.test',
    user_identifier: typed,
    idp_subject: 'user1',
    idp_issuer: idp.issuer,
  });

  // the IdP saw client_secret_basic, the PKCE verifier, and no secret in the body
  const log = await idpLog(idp);
  const tok = log.filter((e) => e.path === '/token' && e.body?.client_id !== 'eb-genpost');
  assert.ok(tok.length >= 1);
  const last = tok[tok.length - 1];
  assert.equal(last.authorization, 'Basic');
  assert.ok(!last.client_secret_in_body);
  assert.equal(last.body.grant_type, 'authorization_code');
  assert.ok(last.body.code_verifier && last.body.code_verifier.length >= 43);
  assert.equal(last.status, 200);
});

test('client_secret_post and template mapping', async () => {
  await idpReset(idp);
  const r = await enroll({ bridge, tenant: 'genpost', typed: 'someone@post.generic.test', login: 'user1' });
  remember(r);
  assertSuccess(r);
  assertGrantAndToken('genpost', r.token, {
    managed_apple_id: 'user1@apple.generic.test',
    user_identifier: 'someone@post.generic.test',
    idp_subject: 'user1',
  });
  const tok = (await idpLog(idp)).filter((e) => e.path === '/token');
  assert.equal(tok.length, 1);
  assert.equal(tok[0].client_secret_in_body, true);
  assert.equal(tok[0].authorization, undefined, 'no Authorization header with client_secret_post');
  assert.equal(tok[0].body.client_id, 'eb-genpost');
  assert.equal(tok[0].status, 200);
});

test('Entra single tenant: alice, subject tid:oid, groups, domain_hint, typed id kept', async () => {
  await idpReset(idp);
  const typed = 'Alice.Device@contoso.com';
  const r = await enroll({ bridge, tenant: 'contoso', typed, login: 'alice@contoso.com' });
  remember(r);
  assertSuccess(r);
  const q = new URL(r.authUrl).searchParams;
  assert.equal(q.get('login_hint'), typed);
  assert.equal(q.get('domain_hint'), 'contoso.com');
  const g = assertGrantAndToken('contoso', r.token, {
    managed_apple_id: 'alice@appleid.contoso.com',
    user_identifier: typed,
    idp_subject: `${TENANT_CONTOSO}:${ALICE_OID}`,
    idp_issuer: idp.issuer,
  });
  if (g.idp_tid !== null) assert.equal(g.idp_tid, TENANT_CONTOSO);
  if (g.idp_oid !== null) assert.equal(g.idp_oid, ALICE_OID);
  assert.ok(GROUP_ENROLL);
});

test('Entra multi-tenant ({tenantid} metadata issuer, tid allow-list): alice signs in', async () => {
  await idpReset(idpMulti);
  const r = await enroll({ bridge, tenant: 'multi', typed: 'alice@contoso.com', login: 'alice@contoso.com' });
  remember(r);
  assertSuccess(r);
  assertGrantAndToken('multi', r.token, {
    managed_apple_id: 'alice@appleid.contoso.com',
    idp_subject: `${TENANT_CONTOSO}:${ALICE_OID}`,
    user_identifier: 'alice@contoso.com',
  });
});

test('Google Workspace: gina, hd and access_type hints, hd and email_verified accepted', async () => {
  await idpReset(idp);
  const r = await enroll({ bridge, tenant: 'goog', typed: 'gina@example.org', login: 'gina@example.org' });
  remember(r);
  assertSuccess(r);
  const q = new URL(r.authUrl).searchParams;
  assert.equal(q.get('hd'), 'example.org');
  assert.equal(q.get('access_type'), 'offline');
  assert.equal(q.get('login_hint'), 'gina@example.org');
  assertGrantAndToken('goog', r.token, {
    managed_apple_id: 'gina@appleid.example.org',
    idp_subject: '110000000000000000001',
    user_identifier: 'gina@example.org',
  });
});

test('state replay: the same callback URL and cookie a second time is refused, no second token', async () => {
  assert.ok(genFlow?.token, 'needs the first test');
  const tokens = countTokens();
  const grants = countGrants();
  const r = await callback(genFlow.callbackUrl, genFlow.cookie);
  assert.equal(r.status, 400, r.body);
  assert.ok(isHtmlPage(r), `HTML page: ${r.headers.get('content-type')}`);
  assert.ok(!r.location?.startsWith('apple-remotemanagement-user-login'));
  assert.equal(countTokens(), tokens);
  assert.equal(countGrants(), grants);
});

test('callback without the eb_login cookie: 400, no token', async () => {
  await idpReset(idp);
  const tokens = countTokens();
  const r = await enroll({ bridge, tenant: 'gen', typed: 'user1@generic.test', login: 'user1', cookie: null });
  remember(r);
  assert.equal(r.stage, 'callback');
  assert.equal(r.status, 400, r.body);
  assert.ok(isHtmlPage(r));
  assert.equal(r.token, undefined);
  assert.equal(countTokens(), tokens);
});

test('a stolen callback URL used with another login cookie: 400, no token', async () => {
  await idpReset(idp);
  // the victim signs in; the callback URL leaks before the victim's browser uses it
  const ch = await challenge(bridge, 'gen');
  const victim = await startLogin(ch.url, 'user1@generic.test');
  assert.equal(victim.status, 302);
  const stolen = await drive(victim.location, 'user1', 'secret');
  // the attacker has a login cookie of their own (a flow they started)
  const ch2 = await challenge(bridge, 'gen');
  const attacker = await startLogin(ch2.url, 'mallory@generic.test');
  assert.equal(attacker.status, 302);
  remember({ cookie: victim.cookie, idpCallbackUrl: stolen, authUrl: victim.location });
  remember({ cookie: attacker.cookie, authUrl: attacker.location });
  const tokens = countTokens();
  const r = await callback(stolen, attacker.cookie);
  assert.equal(r.status, 400, r.body);
  assert.ok(isHtmlPage(r));
  assert.equal(r.token, undefined);
  // and with a forged cookie value
  const r2 = await callback(stolen, 'eb_login=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
  assert.equal(r2.status, 400, r2.body);
  assert.equal(countTokens(), tokens);
});

test('unknown flow id in the challenge url: 400 page', async () => {
  const r = await startLogin(`${bridge.url}/t/gen/auth/notaflow0123456789abcdefghijklmnopqrstu`, 'user1@generic.test');
  assert.equal(r.status, 400, r.body);
  assert.ok(isHtmlPage(r), `HTML page: ${r.headers.get('content-type')}`);
  assert.equal(r.location, undefined);
});

test('healthz still 200; logs and database hold no code, state, nonce, cookie or token', async () => {
  assert.equal(await healthz(bridge), 200);
  assert.ok(secrets.length >= 10, `collected ${secrets.length} secrets`);
  const logs = bridge.logs.join('\n');
  for (const s of secrets) {
    assert.ok(s.length >= 8);
    assert.ok(!logs.includes(s), `bridge log contains a secret value (${s.slice(0, 6)}...)`);
  }
  // the IdP's tokens: never logged; refresh tokens are kept sealed, never raw
  assert.ok(upstream.some((u) => u.kind === 'refresh_token'), 'the IdP issued refresh tokens (offline_access)');
  for (const u of upstream) {
    assert.ok(u.value && u.value.length >= 20);
    assert.ok(!logs.includes(u.value), `bridge log contains an upstream ${u.kind}`);
    if (u.kind !== 'authorization_code') assert.equal(dbFilesContain(db, u.value), null, `raw upstream ${u.kind} in the database files`);
  }
  const sealed = sql(db, "select count(*) as n from grants where upstream_refresh_token is not null")[0].n;
  assert.ok(sealed >= 1, 'an upstream refresh token kept (sealed) with a grant');
  // state/nonce are kept server-side by design; issued tokens must not be stored raw
  assert.ok(issued.length >= 5);
  for (const t of issued) assert.equal(dbFilesContain(db, t), null, 'raw token in the database files');
});

test('the bridge stops cleanly (exit 0, no sanitizer report)', async () => {
  const { code, signal } = await bridge.stop();
  const logs = bridge.logs.join('\n');
  assert.ok(!/Sanitizer|runtime error:/.test(logs), logs.split('\n').filter((l) => /Sanitizer|runtime error|SUMMARY/.test(l)).join('\n'));
  assert.equal(signal, null);
  assert.equal(code, 0);
});
