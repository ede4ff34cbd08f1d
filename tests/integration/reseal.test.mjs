// `enrollbridge reseal` and the seal key rotation procedure (issue 12, item 6),
// against the real binary and a real test IdP. A bridge with seal_keys [A]
// signs a person in: the grant's upstream refresh token and the signing key
// are sealed under A (version 3, A's id). With [B] alone and no reseal,
// everything sealed under A fails clearly: `reseal --dry-run` names the
// grant and the kid and exits 1, and `serve` refuses to start. With [B, A]
// (B moved first) the bridge runs, a login URL sealed under [A] still opens,
// and `reseal` beside the running server rewrites both values under B (a
// second run finds them current). Then [B] alone: the bridge starts, signs
// with the same key, the token from the [A] sign-in still verifies (JWKS,
// introspection), and the grant still renews upstream. The command prints
// counts and names only; no seal key appears in its output or the logs. Loopback
// only; every process is stopped by the test.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

import { challenge, enroll, freePort, oidcTenant, sql, startLogin, startTestIdp, startWorld, stopAll }
  from './idp.mjs';
import { cli, hexOf, startBridge, tmpDir } from './lib.mjs';

// npm jose, from the test IdP's dependencies (tests/idp/package.json)
const requireIdp = createRequire(new URL('../idp/package.json', import.meta.url));
const jose = await import(pathToFileURL(requireIdp.resolve('jose')).href);

const A = crypto.randomBytes(32);
const B = crypto.randomBytes(32);
const idOf = (k) => crypto.createHash('sha256').update(k).digest('hex').slice(0, 8).toUpperCase();
const MDM = { client_id: 'mdm-gen', client_secret: 'mdm-gen-secret' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let idp;
let world;
let bridge;
let db;
let keyA;
let keyB;
let token; // the device token from the [A] sign-in
let kid; // the signing key it was signed with
let grantId;
let flowUrl; // a login URL sealed under [A]
const started = []; // every bridge, stopped at the end even after a failure

// stop the running bridge (if any), set seal_keys, start one
async function restart(list) {
  if (bridge.proc.exitCode === null) assert.equal((await bridge.stop()).code, 0);
  setSealKeys(list);
  bridge = await startBridge(world.config.main);
  started.push(bridge);
}

function setSealKeys(list) {
  const cfg = JSON.parse(fs.readFileSync(world.config.main, 'utf8'));
  cfg.seal_keys = list;
  fs.writeFileSync(world.config.main, JSON.stringify(cfg, null, 2));
}

const grant = () => sql(db, `select id, status, upstream_renewed_at, upstream_failing_since,
  ${hexOf('upstream_refresh_token', db)} as rt from grants where id='${grantId}'`)[0];
const signingKeys = () => sql(db, `select kid, ${hexOf('private_key', db)} as pk from signing_keys order by created_at`);
const reseal = (...extra) => cli(['reseal', '-c', world.config.main, ...extra]);

function noKeyIn(text) {
  for (const k of [A, B])
    for (const enc of [k.toString('base64'), k.toString('base64url'), k.toString('hex')])
      assert.ok(!text.includes(enc), 'a seal key in the output');
}

// reseal prints counts, and names rows on stderr: nothing else, no value
function onlyCountsAndNames(out) {
  noKeyIn(out.stdout + out.stderr);
  for (const l of out.stdout.split('\n').filter(Boolean))
    assert.match(l, /^(grants|signing keys): \d+ (resealed|to reseal), \d+ already current, \d+ changed concurrently \(retried\), \d+ failed$/);
  // its own lines; the store's log lines are JSON (checked for keys above)
  for (const l of out.stderr.split('\n').filter((x) => x && !x.startsWith('{"ts"')))
    assert.match(l, /^reseal: (grant|signing key) [A-Za-z0-9_-]+: [a-z ]+[a-z_ ()]*$/);
}

async function verify(tok) {
  const JWKS = jose.createRemoteJWKSet(new URL(`${bridge.url}/t/gen/jwks.json`));
  const { protectedHeader } = await jose.jwtVerify(tok, JWKS, { algorithms: ['ES256'] });
  const r = await fetch(`${bridge.url}/t/gen/oauth2/introspect`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${MDM.client_id}:${MDM.client_secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ token: tok }).toString(),
  });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).active, true, 'the token is active');
  return protectedHeader.kid;
}

before(async () => {
  const dir = tmpDir('eb-reseal-');
  keyA = path.join(dir, 'a');
  keyB = path.join(dir, 'b');
  fs.writeFileSync(keyA, `${A.toString('base64')}\n`, { mode: 0o600 });
  fs.writeFileSync(keyB, `${B.toString('base64url')}\n`, { mode: 0o600 });
  const port = await freePort();
  idp = await startTestIdp();
  const gen = oidcTenant(`http://127.0.0.1:${port}`, idp, 'gen');
  // renewed only when the test makes it due
  Object.assign(gen.tenant, { tokens: { upstream_renew_interval: 3600, upstream_grace: 86400 } });
  gen.tenant.mdm = { clients: [MDM] };
  world = await startWorld(port, [gen], { seal_keys: [`file:${keyA}`] });
  ({ bridge, db } = world);
  started.push(bridge);
});

after(async () => {
  await stopAll(...started, idp);
});

test('[A]: the upstream token and the signing key are sealed under A', async () => {
  const r = await enroll({ bridge, tenant: 'gen', typed: 'user1@generic.test', login: 'user1' });
  assert.equal(r.status, 308, `sign-in: ${r.stage} ${r.status} ${r.body?.slice(0, 200) ?? ''}`);
  assert.ok(r.token);
  token = r.token;
  kid = await verify(token);
  grantId = sql(db, "select id from grants where tenant='gen'")[0].id;
  assert.equal(grant().rt.slice(0, 10), `03${idOf(A)}`);
  assert.deepEqual(signingKeys().map((k) => k.pk.slice(0, 10)), [`03${idOf(A)}`]);
  const ch = await challenge(bridge, 'gen');
  assert.equal(ch.status, 401);
  flowUrl = ch.url;
  // usage errors and help
  for (const bad of [['--batch', '0'], ['--batch', '10001'], ['--batch', 'x'], ['--nope'], ['--batch']]) {
    const u = reseal(...bad);
    assert.equal(u.code, 2, `${bad.join(' ')}: ${u.stderr}`);
    assert.match(u.stderr, /usage: enrollbridge reseal -c FILE \[--batch N\] \[--dry-run\]/);
  }
  const missing = cli(['reseal']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /-c FILE is required/);
  const help = cli(['reseal', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /successor is left as it is: it is kept only for\nits 30-second grace window/);
  // already current: nothing to do
  const out = reseal();
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /^grants: 0 resealed, 1 already current, 0 changed concurrently \(retried\), 0 failed$/m);
  assert.match(out.stdout, /^signing keys: 0 resealed, 1 already current, 0 changed concurrently \(retried\), 0 failed$/m);
  assert.equal((await bridge.stop()).code, 0);
});

test('[B] without reseal: what A sealed fails clearly', async () => {
  if (bridge.proc.exitCode === null) await bridge.stop();
  setSealKeys([`file:${keyB}`]);
  const out = reseal('--dry-run');
  assert.equal(out.code, 1, 'a value that opens under no key is a failure');
  assert.match(out.stderr, new RegExp(`grant ${grantId}: the sealed upstream refresh token opens under no key of seal_keys`));
  assert.match(out.stderr, new RegExp(`signing key ${kid}: the sealed private key opens under no key of seal_keys`));
  assert.match(out.stdout, /^grants: 0 to reseal, 0 already current, 0 changed concurrently \(retried\), 1 failed$/m);
  onlyCountsAndNames(out);
  await assert.rejects(startBridge(world.config.main),
    /no usable signing key \(is the seal key the one the keys were sealed with\?\)/);
  assert.equal(grant().rt.slice(0, 10), `03${idOf(A)}`, 'a dry run writes nothing');
});

test('[B, A]: old login URLs still open; reseal beside the server moves everything to B', async () => {
  await restart([`file:${keyB}`, `file:${keyA}`]);
  const st = await startLogin(flowUrl, 'user1@generic.test');
  assert.equal(st.status, 302, 'a login URL sealed under [A] opens under [B, A]');
  assert.equal(await verify(token), kid);

  const dry = reseal('--dry-run', '--batch', '1');
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /^grants: 1 to reseal, 0 already current/m);
  assert.equal(grant().rt.slice(0, 10), `03${idOf(A)}`, 'a dry run writes nothing');

  const out = reseal('--batch', '1');
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /^grants: 1 resealed, 0 already current, 0 changed concurrently \(retried\), 0 failed$/m);
  assert.match(out.stdout, /^signing keys: 1 resealed, 0 already current, 0 changed concurrently \(retried\), 0 failed$/m);
  onlyCountsAndNames(out);
  assert.equal(grant().rt.slice(0, 10), `03${idOf(B)}`);
  assert.deepEqual(signingKeys().map((k) => k.pk.slice(0, 10)), [`03${idOf(B)}`]);
  const again = reseal();
  assert.equal(again.code, 0, again.stderr);
  onlyCountsAndNames(again);
  assert.match(again.stdout, /^grants: 0 resealed, 1 already current/m);
  assert.match(again.stdout, /^signing keys: 0 resealed, 1 already current/m);
  // the running server still signs and verifies
  assert.equal(await verify(token), kid);
  assert.equal((await bridge.stop()).code, 0);
});

test('[B] after reseal: the same key signs, old tokens verify, the grant renews', async () => {
  await restart([`file:${keyB}`]);
  assert.equal(await verify(token), kid, 'the token from the [A] sign-in still verifies');
  assert.ok(!bridge.logs.some((l) => /does not open/.test(l)), 'everything opened under B');
  // make the grant due: its upstream token, now under B, must open and renew
  const g0 = grant();
  sql(db, `update grants set upstream_next_at=1 where id='${grantId}'`);
  const end = Date.now() + 20000;
  let g = g0;
  while (Date.now() < end && !(g.upstream_renewed_at > g0.upstream_renewed_at)) {
    await sleep(200);
    g = grant();
  }
  assert.ok(g.upstream_renewed_at > g0.upstream_renewed_at,
    `renewed upstream; logs:\n${bridge.logs.slice(-20).join('\n')}`);
  assert.equal(g.upstream_failing_since, 0);
  assert.equal(g.status, 'active');
  assert.equal(g.rt.slice(0, 10), `03${idOf(B)}`);
  // a new sign-in is signed with the same (resealed) key
  const r = await enroll({ bridge, tenant: 'gen', typed: 'user1@generic.test', login: 'user1' });
  assert.equal(r.status, 308, `sign-in: ${r.stage} ${r.status}`);
  assert.equal(await verify(r.token), kid);
  noKeyIn(bridge.logs.join('\n'));
});
