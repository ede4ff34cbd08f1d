// The seal key ring (issue 12, item 6), against the real binary and a real
// test IdP: a bridge started with seal_keys [K1] signs a person in;
// restarted with [K2, K1] the grant's upstream refresh token (sealed under
// K1) still opens, is renewed and re-sealed under K2, while new secrets (a
// second grant, a rotated signing key) are sealed under K2, a version 3 blob
// naming K2's id; restarted with [K2] alone, data sealed under K1 fails
// closed with a clear log line and the process never crashes: a K1 signing
// key is left out (and `serve` refuses to start when it is the only one), a
// K1-sealed upstream token is not renewed while a K2 one is. No key ever
// appears in a log. Loopback only; every process is stopped by the test.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { enroll, freePort, oidcTenant, sql, startTestIdp, startWorld, stopAll } from './idp.mjs';
import { blobOf, cli, hexOf, startBridge, tmpDir } from './lib.mjs';

const INTERVAL = 2;
const K1 = crypto.randomBytes(32);
const K2 = crypto.randomBytes(32);
const idOf = (k) => crypto.createHash('sha256').update(k).digest('hex').slice(0, 8).toUpperCase();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let idp;
let world;
let bridge;
let db;
let keyFile1;
let k1Blob; // gen's upstream refresh token as sealed under K1

// K1 in a file as standard base64, K2 in the environment as base64url
const K2_ENV = { EB_IT_SEAL_K2: K2.toString('base64url') };

function setSealKeys(list) {
  const cfg = JSON.parse(fs.readFileSync(world.config.main, 'utf8'));
  cfg.seal_keys = list;
  fs.writeFileSync(world.config.main, JSON.stringify(cfg, null, 2));
}

// one grant per tenant: gen signs in under K1, two under K2
const grant = (tenant) => sql(db, `select id, status, upstream_renewed_at, upstream_failing_since,
  ${hexOf('upstream_refresh_token')} as rt from grants where tenant='${tenant}'
  order by created_at desc limit 1`)[0];
const signingKeys = () => sql(db, `select kid, retired_at, ${hexOf('private_key')} as pk from signing_keys
  order by created_at`);

async function until(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}\n` +
    bridge.logs.filter((l) => !l.includes('"access"')).slice(-30).join('\n'));
}

async function signIn(tenant, typed) {
  const r = await enroll({ bridge, tenant, typed, login: 'user1' });
  assert.equal(r.status, 308, `sign-in: ${r.stage} ${r.status} ${r.body?.slice(0, 200) ?? ''}`);
  const g = grant(tenant);
  assert.equal(g.status, 'active');
  assert.ok(g.rt, 'a sealed upstream refresh token is stored');
  return g;
}

function noKeyInLogs(logs) {
  for (const k of [K1, K2])
    for (const enc of [k.toString('base64'), k.toString('base64url'), k.toString('hex')])
      assert.ok(!logs.some((l) => l.includes(enc)), 'a seal key in the log');
}

before(async () => {
  const dir = tmpDir('eb-seal-');
  keyFile1 = path.join(dir, 'k1');
  fs.writeFileSync(keyFile1, `${K1.toString('base64')}\n`, { mode: 0o600 });
  const port = await freePort();
  idp = await startTestIdp();
  const gen = oidcTenant(`http://127.0.0.1:${port}`, idp, 'gen');
  const two = oidcTenant(`http://127.0.0.1:${port}`, idp, 'two', { domains: ['two.generic.test'] });
  for (const t of [gen, two])
    Object.assign(t.tenant, { tokens: { upstream_renew_interval: INTERVAL, upstream_grace: 3600 } });
  world = await startWorld(port, [gen, two], { seal_keys: [`file:${keyFile1}`] });
  ({ bridge, db } = world);
});

after(async () => {
  await stopAll(bridge, idp);
});

test('[K1]: a grant and the signing key are sealed under K1; no state_dir key', async () => {
  const g = await signIn('gen', 'user1@generic.test');
  assert.equal(g.rt.slice(0, 10), `03${idOf(K1)}`, 'a version 3 blob naming K1');
  const keys = signingKeys();
  assert.equal(keys.length, 1);
  assert.equal(keys[0].pk.slice(0, 10), `03${idOf(K1)}`);
  assert.ok(!fs.existsSync(path.join(world.config.cfg.state_dir, 'seal.key')),
    'with seal_keys no per-process key is generated');
  await bridge.waitLog(/seal keys: 1 from seal_keys/);
});

test('[K2, K1]: K1 data still opens and renews; new secrets are sealed under K2', async () => {
  assert.equal((await bridge.stop()).code, 0);
  setSealKeys(['env:EB_IT_SEAL_K2', `file:${keyFile1}`]);
  bridge = await startBridge(world.config.main, { env: K2_ENV });
  const g0 = grant('gen');
  k1Blob = g0.rt;
  assert.equal(k1Blob.slice(0, 10), `03${idOf(K1)}`);
  const g1 = await until('a renewal of the K1 grant', () => {
    const g = grant('gen');
    return g.upstream_renewed_at > g0.upstream_renewed_at ? g : null;
  }, (INTERVAL + 8) * 1000);
  assert.equal(g1.status, 'active');
  assert.equal(g1.upstream_failing_since, 0);
  assert.ok(!bridge.logs.some((l) => /does not open/.test(l)), 'everything opened');
  // the renewal re-sealed the same token under the first key, K2
  assert.equal(g1.rt.slice(0, 10), `03${idOf(K2)}`, 'a K1 token is re-sealed under K2 as it renews');
  await bridge.waitLog(/"tenant":"gen".*upstream refresh token re-sealed under the first seal key/);

  const g2 = await signIn('two', 'user1@two.generic.test');
  assert.equal(g2.rt.slice(0, 10), `03${idOf(K2)}`, 'the new grant is sealed under K2');

  const rot = cli(['keys', 'rotate', '-c', world.config.main], { env: { ...process.env, ...K2_ENV } });
  assert.equal(rot.code, 0, rot.stderr);
  const keys = signingKeys();
  assert.equal(keys.length, 2);
  assert.equal(keys[0].pk.slice(0, 10), `03${idOf(K1)}`);
  assert.equal(keys[1].pk.slice(0, 10), `03${idOf(K2)}`, 'the rotated key is sealed under K2');
  const list = cli(['keys', 'list', '-c', world.config.main], { env: { ...process.env, ...K2_ENV } });
  assert.equal(list.code, 0, list.stderr);
  assert.ok(!/unusable/.test(list.stdout), list.stdout);
  // a reload does not swap the ring under a running process, and says so
  setSealKeys(['env:EB_IT_SEAL_K2']);
  bridge.proc.kill('SIGHUP');
  await bridge.waitLog(/reload: seal_keys changes take effect only after a restart/);
  noKeyInLogs(bridge.logs);
});

test('[K2]: K1 data fails closed with a clear log, never a crash', async () => {
  assert.equal((await bridge.stop()).code, 0);
  setSealKeys(['env:EB_IT_SEAL_K2']);
  // the K1 signing key is retired but still published: it is left out with
  // a warning, and `keys list` calls it unusable
  const list = cli(['keys', 'list', '-c', world.config.main], { env: { ...process.env, ...K2_ENV } });
  assert.equal(list.code, 0, list.stderr);
  const lines = list.stdout.trim().split('\n');
  const k1kid = signingKeys()[0].kid;
  assert.ok(lines.some((l) => l.startsWith(`${k1kid} `) && l.endsWith(' unusable')), list.stdout);

  // gen's token as it was sealed under K1 (say, from a backup)
  sql(db, `update grants set upstream_refresh_token=${blobOf(k1Blob)} where tenant='gen'`);
  bridge = await startBridge(world.config.main, { env: K2_ENV });
  await bridge.waitLog(new RegExp(`signing key ${k1kid} does not open with any of our seal keys`));
  const b0 = grant('gen');
  await bridge.waitLog(/"tenant":"gen".*upstream refresh token does not open under any seal key/,
    (INTERVAL + 8) * 1000);
  const bad = grant('gen');
  assert.equal(bad.status, 'active', 'an internal failure revokes nothing');
  assert.equal(bad.upstream_renewed_at, b0.upstream_renewed_at, 'not renewed');
  assert.equal(bad.rt, b0.rt, 'the sealed token is left as it was');
  // the K2 grant keeps renewing
  const g2 = grant('two');
  await until('a renewal of the K2 grant', () => {
    const g = grant('two');
    return g.upstream_renewed_at > g2.upstream_renewed_at && !g.upstream_failing_since ? g : null;
  }, (INTERVAL + 8) * 1000);
  assert.equal(bridge.proc.exitCode, null, 'still running');
  noKeyInLogs(bridge.logs);
});

test('[K2] and only K1 signing keys: the bridge refuses to start, naming the seal key', async () => {
  assert.equal((await bridge.stop()).code, 0);
  // drop the K2 signing key: only the K1 one is left
  const k2kid = signingKeys()[1].kid;
  sql(db, `delete from signing_keys where kid='${k2kid}'`);
  sql(db, `update signing_keys set retired_at=0, not_after=0`);
  let err;
  try {
    bridge = await startBridge(world.config.main, { env: K2_ENV });
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'the bridge must not start');
  assert.match(err.message, /enrollbridge exited 1/, 'a clean exit, not a crash');
  assert.match(err.message, /no usable signing key \(is the seal key the one the keys were sealed with\?\)/);
  assert.match(err.message, /does not open with any of our seal keys/);
});
