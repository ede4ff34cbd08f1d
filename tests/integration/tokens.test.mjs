// Our tokens as downstream MDMs see them (issue 5, "Keys and tokens"): the
// JWKS and RFC 8414 metadata; a device token from a real apple-as-web
// sign-in verified by libraries we did not write (npm `jose`, liboauth2's
// oauth2_token_verify with a jwks_uri verifier); RFC 7662 introspection with
// good and bad MDM client credentials, reflecting `enrollbridge grants
// revoke` at once; RFC 7009 revocation; `grants list` output; and a key
// rotation made with the CLI while the server runs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

import { BACKEND, BIN, cli, dbContents } from './lib.mjs';
import { enroll, freePort, oidcTenant, startTestIdp, startWorld, stopAll } from './idp.mjs';

// npm jose, from the test IdP's dependencies (tests/idp/package.json)
const requireIdp = createRequire(new URL('../idp/package.json', import.meta.url));
const jose = await import(pathToFileURL(requireIdp.resolve('jose')).href);

// tests/interop/liboauth2_verify, built beside the binary when liboauth2 is
const OAUTH2_VERIFY = path.join(process.env.EB_BINARY_DIR || path.dirname(BIN), 'liboauth2_verify');

const MDM = { client_id: 'mdm-gen', client_secret: 'mdm secret+with/odd%chars' };
const MDM_OTHER = { client_id: 'mdm-oth', client_secret: 'other-mdm-secret' };

let idp;
let world;
let bridge;
let pub;

before(async () => {
  const port = await freePort();
  pub = `http://127.0.0.1:${port}`;
  idp = await startTestIdp();
  const gen = oidcTenant(pub, idp, 'gen');
  gen.tenant.mdm = { clients: [MDM] };
  const oth = oidcTenant(pub, idp, 'oth', { domains: ['oth.generic.test'] });
  oth.tenant.mdm = { clients: [MDM_OTHER], audience: 'https://mdm.oth.example/' };
  world = await startWorld(port, [gen, oth]);
  ({ bridge } = world);
});

after(async () => {
  await stopAll(bridge, idp);
});

const iss = (t) => `${pub}/t/${t}`;
const aud = (t) => (t === 'oth' ? 'https://mdm.oth.example/' : `${pub}/t/${t}/mdm`);

async function signIn(tenant = 'gen', login = 'user1') {
  const r = await enroll({ bridge, tenant, login });
  assert.equal(r.status, 308, `sign-in stopped at ${r.stage}: ${r.status} ${r.body?.slice(0, 200) ?? ''}`);
  assert.ok(r.token, 'a token in the 308 Location');
  return r.token;
}

const b64 = (s) => Buffer.from(s).toString('base64');
const basic = (c) => `Basic ${b64(`${encodeURIComponent(c.client_id)}:${encodeURIComponent(c.client_secret)}`)}`;

async function post(tenant, what, form, headers = {}) {
  const r = await fetch(`${bridge.url}/t/${tenant}/oauth2/${what}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, text, json };
}

const introspect = (token, auth = MDM, tenant = 'gen') =>
  post(tenant, 'introspect', { token }, auth ? { authorization: basic(auth) } : {});

function header(token) {
  return JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString());
}

async function jwksKids(tenant = 'gen') {
  const r = await fetch(`${bridge.url}/t/${tenant}/jwks.json`);
  return (await r.json()).keys.map((k) => k.kid);
}

const keysList = () => cli(['keys', 'list', '-c', world.config.main]);
const grantsList = (...extra) => cli(['grants', 'list', '-c', world.config.main, ...extra]);

// ------------------------------------------------------------------ tests --

test('JWKS: public ES256 keys only, cacheable', async () => {
  const r = await fetch(`${bridge.url}/t/gen/jwks.json`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/json');
  assert.match(r.headers.get('cache-control') ?? '', /max-age=300/);
  const { keys } = await r.json();
  assert.ok(keys.length >= 1);
  for (const k of keys) {
    assert.deepEqual(
      { kty: k.kty, crv: k.crv, alg: k.alg, use: k.use },
      { kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' },
    );
    assert.match(k.kid, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(k.d, undefined, 'no private part');
  }
  // unknown tenant: 404
  assert.equal((await fetch(`${bridge.url}/t/nope/jwks.json`)).status, 404);
});

test('RFC 8414 metadata, built from public_url', async () => {
  const r = await fetch(`${bridge.url}/t/gen/.well-known/oauth-authorization-server`, {
    headers: { host: 'evil.example' },
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/json');
  const m = await r.json();
  const i = iss('gen');
  assert.equal(m.issuer, i);
  assert.equal(m.authorization_endpoint, `${i}/oauth2/authorize`);
  assert.equal(m.token_endpoint, `${i}/oauth2/token`);
  assert.equal(m.jwks_uri, `${i}/jwks.json`);
  assert.equal(m.introspection_endpoint, `${i}/oauth2/introspect`);
  assert.equal(m.revocation_endpoint, `${i}/oauth2/revoke`);
  assert.deepEqual(m.response_types_supported, ['code']);
  assert.deepEqual(m.grant_types_supported, ['authorization_code', 'refresh_token']);
  assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
  assert.deepEqual(m.token_endpoint_auth_methods_supported, ['none']);
  assert.deepEqual(m.introspection_endpoint_auth_methods_supported, ['client_secret_basic', 'client_secret_post']);
});

test('a device token is an RFC 9068 JWT that npm jose verifies', async () => {
  const token = await signIn();
  const h = header(token);
  assert.equal(h.typ, 'at+jwt');
  assert.equal(h.alg, 'ES256');
  assert.ok((await jwksKids()).includes(h.kid));

  const meta = await (await fetch(`${bridge.url}/t/gen/.well-known/oauth-authorization-server`)).json();
  const JWKS = jose.createRemoteJWKSet(new URL(meta.jwks_uri));
  const { payload, protectedHeader } = await jose.jwtVerify(token, JWKS, {
    issuer: meta.issuer, audience: aud('gen'), typ: 'at+jwt', algorithms: ['ES256'],
  });
  assert.equal(protectedHeader.typ, 'at+jwt');
  assert.equal(payload.managed_apple_id, 'user1@appleid.generic.test');
  assert.equal(payload.sub, 'user1@appleid.generic.test');
  assert.equal(payload.enrollment_mode, 'BYOD');
  assert.equal(payload.client_id, 'apple-device');
  assert.match(payload.grant_id, /^[A-Za-z0-9_-]{16,}$/);
  assert.match(payload.jti, /^[A-Za-z0-9_-]{16,}$/);
  assert.ok(payload.exp > payload.iat);
  // the web token lives as long as its grant (refresh_ttl default 90 days)
  assert.ok(payload.exp - payload.iat >= 7776000 - 5, `exp - iat = ${payload.exp - payload.iat}`);

  // and refuses what it must
  await assert.rejects(jose.jwtVerify(token, JWKS, { issuer: iss('oth'), audience: aud('gen') }));
  await assert.rejects(jose.jwtVerify(token, JWKS, { issuer: meta.issuer, audience: aud('oth') }));
  const parts = token.split('.');
  const forged = Buffer.from(parts[1], 'base64url').toString().replace('user1@', 'admin@');
  await assert.rejects(
    jose.jwtVerify(`${parts[0]}.${Buffer.from(forged).toString('base64url')}.${parts[2]}`, JWKS, {
      issuer: meta.issuer, audience: aud('gen'),
    }),
  );
});

test('liboauth2 oauth2_token_verify (jwks_uri, as mod_oauth2) accepts our token', async (t) => {
  if (!fs.existsSync(OAUTH2_VERIFY)) {
    t.skip(`${OAUTH2_VERIFY} not built (liboauth2 missing)`);
    return;
  }
  const token = await signIn();
  const run = (tok, issuer = iss('gen'), audience = aud('gen')) => new Promise((resolve) => {
    // spawn asynchronously: the JWKS is served by the bridge, not by us,
    // but keep the event loop free anyway
    const r = spawnSync(OAUTH2_VERIFY, [`${iss('gen')}/jwks.json`, tok, issuer, audience], {
      encoding: 'utf8', timeout: 20000, env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' },
    });
    resolve(r);
  });
  const ok = await run(token);
  assert.equal(ok.status, 0, `liboauth2 refused: ${ok.stderr}`);
  const payload = JSON.parse(ok.stdout);
  assert.equal(payload.managed_apple_id, 'user1@appleid.generic.test');
  assert.equal(payload.iss, iss('gen'));

  const parts = token.split('.');
  const sig = Buffer.from(parts[2], 'base64url');
  sig[5] ^= 1;
  const bad = await run(`${parts[0]}.${parts[1]}.${sig.toString('base64url')}`);
  assert.notEqual(bad.status, 0, 'tampered signature accepted by liboauth2');
  assert.notEqual((await run(token, iss('oth'))).status, 0, 'wrong issuer accepted');
});

test('introspection: MDM client credentials, active token, revocation at once', async () => {
  const token = await signIn();
  const { payload } = { payload: JSON.parse(Buffer.from(token.split('.')[1], 'base64url')) };

  // client_secret_basic
  let r = await introspect(token);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.equal(r.json.active, true);
  for (const k of ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id', 'managed_apple_id', 'enrollment_mode', 'grant_id']) {
    assert.deepEqual(r.json[k], payload[k], k);
  }
  assert.equal(r.json.token_type, 'Bearer');

  // Basic without the RFC 6749 2.3.1 form-encoding (curl -u style)
  r = await post('gen', 'introspect', { token }, {
    authorization: `Basic ${b64(`${MDM.client_id}:${MDM.client_secret}`)}`,
  });
  assert.equal(r.json?.active, true, r.text);

  // client_secret_post
  r = await post('gen', 'introspect', { token, ...MDM });
  assert.equal(r.status, 200);
  assert.equal(r.json.active, true);

  // bad or missing credentials: 401 + Basic challenge, nothing said
  for (const auth of [
    { authorization: basic({ ...MDM, client_secret: 'wrong' }) },
    { authorization: basic(MDM_OTHER) }, // another tenant's MDM client
    { authorization: 'Basic !!!' },
    {},
  ]) {
    r = await post('gen', 'introspect', { token }, auth);
    assert.equal(r.status, 401, JSON.stringify(auth));
    assert.match(r.headers.get('www-authenticate') ?? '', /^Basic /);
    assert.equal(r.json?.active, undefined);
    assert.equal(r.json?.error, 'invalid_client');
  }
  r = await post('gen', 'introspect', { token, client_id: MDM.client_id, client_secret: 'nope' });
  assert.equal(r.status, 401);
  // both methods at once: refused
  r = await post('gen', 'introspect', { token, ...MDM }, { authorization: basic(MDM) });
  assert.notEqual(r.status, 200);

  // anything not ours, or not for this tenant: inactive
  for (const tok of ['garbage', 'a.b.c', `${token}x`, token.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'))]) {
    r = await introspect(tok);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { active: false });
  }
  r = await introspect(token, MDM_OTHER, 'oth');
  assert.deepEqual(r.json, { active: false }, 'gen token introspected at oth');

  // missing token parameter: 400
  r = await post('gen', 'introspect', {}, { authorization: basic(MDM) });
  assert.equal(r.status, 400);

  // revoke the grant with the CLI: inactive on the very next call (one
  // SQLite file: the change file); on PostgreSQL, for every call that
  // starts 100 ms after the CLI returned (the cross-replica bound: the
  // server learns of it through its change feed)
  const out = cli(['grants', 'revoke', '-c', world.config.main, payload.grant_id, '--reason', 'test: lost device']);
  const revokedAt = Date.now();
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, new RegExp(`^${payload.grant_id} revoked`));
  if (BACKEND === 'pg') {
    const wait = revokedAt + 100 - Date.now();
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
  }
  r = await introspect(token);
  assert.deepEqual(r.json, { active: false });
  // revoking again is fine; an unknown grant is not
  assert.equal(cli(['grants', 'revoke', '-c', world.config.main, payload.grant_id]).code, 0);
  assert.equal(cli(['grants', 'revoke', '-c', world.config.main, 'no-such-grant']).code, 1);
});

test('grants list: one grant per line starting with its id; --tenant; --json', async () => {
  const token = await signIn();
  const gid = JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).grant_id;
  const r = grantsList();
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  const mine = lines.find((l) => l.startsWith(`${gid} `));
  assert.ok(mine, `no line for ${gid}:\n${r.stdout}`);
  const [id, tenant, status, mai, mode, binding, created] = mine.split(' ');
  assert.deepEqual([id, tenant, status, mai, mode, binding], [gid, 'gen', 'active', 'user1@appleid.generic.test', 'BYOD', '-']);
  assert.match(created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  for (const l of lines) assert.match(l, /^[A-Za-z0-9_-]+ (gen|oth) (active|revoked|expired|superseded) /);
  assert.ok(lines.some((l) => / revoked /.test(l)), 'the grant revoked earlier is listed as revoked');

  assert.equal(grantsList('--tenant', 'oth').stdout.trim(), '');
  assert.ok(grantsList('--tenant', 'gen').stdout.includes(gid));

  const j = grantsList('--json');
  assert.equal(j.code, 0, j.stderr);
  const objs = j.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const g = objs.find((o) => o.id === gid);
  assert.equal(g.tenant, 'gen');
  assert.equal(g.status, 'active');
  assert.equal(g.managed_apple_id, 'user1@appleid.generic.test');
  assert.equal(g.auth_method, 'apple-as-web');
  assert.equal(typeof g.created, 'number');

  assert.equal(cli(['grants', 'list']).code, 2, 'no -c: usage error');
  assert.equal(cli(['grants', 'frobnicate', '-c', world.config.main]).code, 2);
});

test('revocation endpoint (RFC 7009): device and MDM clients, always 200', async () => {
  // the device revokes its own token with its public client id
  const token = await signIn();
  const gid = JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).grant_id;
  assert.equal((await introspect(token)).json.active, true);
  let r = await post('gen', 'revoke', { token, client_id: 'apple-device' });
  assert.equal(r.status, 200, r.text);
  assert.equal((await introspect(token)).json.active, false);
  // revoking a web token leaves the grant alone
  assert.match(grantsList('--tenant', 'gen').stdout, new RegExp(`^${gid} gen active `, 'm'));

  // unknown or already revoked tokens: 200 all the same
  r = await post('gen', 'revoke', { token: 'never-issued', client_id: 'apple-device' });
  assert.equal(r.status, 200);
  r = await post('gen', 'revoke', { token, client_id: 'apple-device' });
  assert.equal(r.status, 200);

  // an MDM client revokes (Basic)
  const t2 = await signIn();
  r = await post('gen', 'revoke', { token: t2, token_type_hint: 'access_token' }, { authorization: basic(MDM) });
  assert.equal(r.status, 200);
  assert.equal((await introspect(t2)).json.active, false);

  // another tenant's client cannot touch it (200, nothing happens)
  const t3 = await signIn();
  r = await post('oth', 'revoke', { token: t3 }, { authorization: basic(MDM_OTHER) });
  assert.equal(r.status, 200);
  r = await post('oth', 'revoke', { token: t3, client_id: 'apple-device' });
  assert.equal(r.status, 200);
  assert.equal((await introspect(t3)).json.active, true, 'revoked through another tenant');

  // no client authentication: 401
  r = await post('gen', 'revoke', { token: t3 });
  assert.equal(r.status, 401);
  r = await post('gen', 'revoke', { token: t3, client_id: 'someone-else' });
  assert.equal(r.status, 401);
  r = await post('gen', 'revoke', { token: t3, client_id: MDM.client_id, client_secret: 'wrong' });
  assert.equal(r.status, 401);
  assert.equal((await introspect(t3)).json.active, true);
  // not a form: 400
  r = await fetch(`${bridge.url}/t/gen/oauth2/revoke`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: t3 }),
  });
  assert.equal(r.status, 400);
});

test('keys rotate while the server runs: both kids in the JWKS within seconds', async () => {
  const before = await jwksKids();
  const oldToken = await signIn();
  const oldKid = header(oldToken).kid;
  assert.ok(before.includes(oldKid));

  let l = keysList();
  assert.equal(l.code, 0, l.stderr);
  assert.match(l.stdout, new RegExp(`^${oldKid} current \\S+ -$`, 'm'));

  const r = cli(['keys', 'rotate', '-c', world.config.main]);
  assert.equal(r.code, 0, r.stderr);
  const newKid = r.stdout.trim();
  assert.match(newKid, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(newKid, oldKid);

  const deadline = Date.now() + 5000;
  let kids = [];
  while (Date.now() < deadline) {
    kids = await jwksKids();
    if (kids.includes(newKid)) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  assert.ok(kids.includes(newKid), `new kid not published: ${kids}`);
  assert.ok(kids.includes(oldKid), 'old kid dropped too early');
  assert.deepEqual(await jwksKids('oth'), kids, 'keys are shared by tenants');

  l = keysList();
  assert.match(l.stdout, new RegExp(`^${newKid} current \\S+ -$`, 'm'));
  const old = l.stdout.split('\n').find((x) => x.startsWith(`${oldKid} `));
  assert.match(old, /^\S+ retired \S+Z \d{4}-\S+Z$/, old);
  // published until at least the longest token lifetime from now
  const notAfter = Date.parse(old.split(' ')[3]);
  assert.ok(notAfter >= Date.now() + 7776000 * 1000, `not_after ${old}`);

  // new tokens are signed with the new key; old ones still verify
  const newToken = await signIn();
  assert.equal(header(newToken).kid, newKid);
  const JWKS = jose.createRemoteJWKSet(new URL(`${iss('gen')}/jwks.json`));
  for (const tok of [oldToken, newToken]) {
    await jose.jwtVerify(tok, JWKS, { issuer: iss('gen'), audience: aud('gen'), typ: 'at+jwt' });
    assert.equal((await introspect(tok)).json.active, true);
  }
});

test('keys rotate --activate-in 2: the new key is in the JWKS before any token is signed with it', async () => {
  const oldKid = header(await signIn()).kid;
  const tRotate = Date.now();
  const r = cli(['keys', 'rotate', '-c', world.config.main, '--activate-in', '2']);
  assert.equal(r.code, 0, r.stderr);
  const newKid = r.stdout.trim();
  assert.match(newKid, /^[A-Za-z0-9_-]{43}$/);

  const l = keysList();
  assert.match(l.stdout, new RegExp(`^${newKid} pending \\S+ -$`, 'm'));
  assert.match(l.stdout, new RegExp(`^${oldKid} current \\S+ \\S+Z$`, 'm'));
  // a second rotation while this one is pending would retire its key unused
  const again = cli(['keys', 'rotate', '-c', world.config.main]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /pending/);
  assert.match(cli(['keys', 'rotate', '-c', world.config.main, '--activate-in', 'soon']).stderr,
    /--activate-in takes whole seconds/);

  // sign in over and over: every token signed with the new key comes after
  // a JWKS that already listed it, and the old key signs until activation
  const kids = [];
  let published = false;
  let firstNew = 0;
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    published ||= (await jwksKids()).includes(newKid);
    const tok = await signIn();
    const kid = header(tok).kid;
    kids.push(kid);
    if (kid === newKid) {
      assert.ok(published, 'a token signed with a key the JWKS did not list yet');
      firstNew = Date.now();
      const JWKS = jose.createRemoteJWKSet(new URL(`${iss('gen')}/jwks.json`));
      await jose.jwtVerify(tok, JWKS, { issuer: iss('gen'), audience: aud('gen'), typ: 'at+jwt' });
      break;
    }
    assert.equal(kid, oldKid);
    await new Promise((res) => setTimeout(res, 150));
  }
  assert.ok(firstNew > 0, `never signed with the new key: ${kids}`);
  assert.equal(kids[0], oldKid, 'the new key signed at once');
  // activation is at the rotation's second + 2: at least 1 s after it
  assert.ok(firstNew - tRotate >= 1000, `the new key signed ${firstNew - tRotate} ms after rotation`);
  assert.match(keysList().stdout, new RegExp(`^${newKid} current \\S+ -$`, 'm'));
});

test('no token, secret or private key in logs or the database', async () => {
  const token = await signIn();
  const logs = bridge.logs.join('\n');
  assert.ok(!logs.includes(token), 'a token in the logs');
  assert.ok(!logs.includes(token.split('.')[2]), 'a token signature in the logs');
  assert.ok(!logs.includes(MDM.client_secret), 'an MDM secret in the logs');
  const db = dbContents(world.config);
  assert.ok(db.contains('"kty"'), 'the public JWKs are in what was searched');
  assert.ok(!db.contains('"d":'), 'a private JWK in the database');
  assert.ok(!db.contains(token.split('.')[2]), 'a token signature in the database');
  // the keys command refuses a missing config cleanly
  assert.equal(cli(['keys', 'list']).code, 2);
  assert.equal(cli(['keys', 'list', '-c', '/nonexistent.json']).code, 1);
});
