// Issue 11, finding 8: opening a sign-in URL costs an anonymous client's
// target no storage, and finding 10a: the eb_login cookie is cleared on the
// Path it was set on. Against the real binary and the real test IdP, on
// loopback only:
//   - 5,000 openings of one challenge's sign-in URL from 127.0.0.1 (keep-
//     alive, 8 at a time, bounded in time) grow the database (file + WAL)
//     by less than 1 MiB and write no login-flow row, while a person at
//     127.0.0.2 signs in fully meanwhile;
//   - two browsers opening the same challenge both finish;
//   - at the callback, a state altered, expired (genuinely sealed), of
//     another tenant, or a challenge flow passed as a state is refused, and
//     so is another browser's cookie, without using up the right browser's
//     attempt; a replayed callback is refused, the used state being
//     recorded once, by hash only;
//   - the clearing Set-Cookie carries the same Path and attributes as the
//     one that set the cookie.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  APPLE_RESULT, PASSWORD, challenge, createJar, drive, freePort, metricsText, oidcTenant, parseMetric,
  sql, startTestIdp, startWorld, stopAll,
} from './idp.mjs';

const FLOOD = 5000;
const FLOOD_PARALLEL = 8;
const FLOOD_DEADLINE_MS = 50000;
const MIB = 1024 * 1024;

let idp;
let world;
let bridge;
let pub;

before(async () => {
  const port = await freePort();
  pub = `http://127.0.0.1:${port}`;
  idp = await startTestIdp();
  world = await startWorld(port, [oidcTenant(pub, idp, 'gen'), oidcTenant(pub, idp, 'gen2')]);
  ({ bridge } = world);
});

after(async () => {
  await stopAll(bridge, idp);
});

// One GET with node's http client (so that the source address and the
// connection reuse are ours to choose); never hangs past 15 s.
function get(url, { agent, localAddress, cookie } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, localAddress, headers: cookie ? { cookie } : {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode,
        headers: res.headers,
        location: res.headers.location,
        setCookie: res.headers['set-cookie'] ?? [],
        body: Buffer.concat(chunks).toString(),
      }));
      res.on('error', reject);
    });
    req.setTimeout(15000, () => req.destroy(new Error(`GET ${url}: timeout`)));
    req.on('error', reject);
  });
}

const loginCookie = (r) => r.setCookie.find((c) => c.startsWith('eb_login='));
const pairOf = (sc) => sc.split(';')[0].trim();
const stateOf = (location) => new URL(location).searchParams.get('state');
const startUrl = (url, typed) => {
  const u = new URL(url);
  u.search = '';
  u.searchParams.set('user-identifier', typed);
  return u.href;
};

// A browser at address from: opens the sign-in URL, signs in at the IdP.
// Returns { start, cookie, callbackUrl }.
async function startAndDrive(url, from = '127.0.0.1') {
  const start = await get(startUrl(url, 'user1@gen.generic.test'), { localAddress: from });
  assert.equal(start.status, 302, start.body);
  const sc = loginCookie(start);
  assert.ok(sc, 'eb_login cookie set');
  const callbackUrl = await drive(start.location, 'user1', PASSWORD, { jar: createJar() });
  return { start, setCookie: sc, cookie: pairOf(sc), callbackUrl };
}

const finish = (b, from = '127.0.0.1', cookie = b.cookie, url = b.callbackUrl) =>
  get(url, { localAddress: from, cookie });

function dbBytes() {
  let n = 0;
  for (const f of [world.db, `${world.db}-wal`, `${world.db}-journal`]) {
    if (fs.existsSync(f)) n += fs.statSync(f).size;
  }
  return n;
}
const flowRows = () => sql(world.db, 'select count(*) as n from login_flows')[0].n;

async function failures(code) {
  const all = parseMetric(await metricsText(bridge), 'enrollbridge_signin_failures_total');
  return all.filter((s) => s.labels.tenant === 'gen' && s.labels.code === code).reduce((a, s) => a + s.value, 0);
}

// ---- AES-256-GCM as src/jose/seal.h, version 3 (the ring's form):
// 0x03 | key id (4) | nonce (12) | ct | tag (16), under the "flow" subkey
// HKDF-SHA256(ring key, no salt, "enrollbridge seal v3 flow"); associated
// data = the header (version and key id) + "enrollbridge upstream state
// v1:" + tenant. A second implementation of the format, so it cannot drift.
function sealKey() {
  // the first of seal_keys (a file: reference, base64) when configured,
  // else the key the bridge made in state_dir
  const ref = world.config.cfg.seal_keys?.[0];
  if (ref?.startsWith('file:')) return Buffer.from(fs.readFileSync(ref.slice(5), 'utf8').trim(), 'base64');
  return fs.readFileSync(path.join(world.config.cfg.state_dir, 'seal.key'));
}
function flowKey() {
  return Buffer.from(crypto.hkdfSync('sha256', sealKey(), Buffer.alloc(0), 'enrollbridge seal v3 flow', 32));
}
function header() {
  return Buffer.concat([Buffer.from([3]), crypto.createHash('sha256').update(sealKey()).digest().subarray(0, 4)]);
}
function stateAd(hdr, tenant) {
  return Buffer.concat([hdr, Buffer.from(`enrollbridge upstream state v1:${tenant}`)]);
}
function openState(text, tenant) {
  const blob = Buffer.from(text, 'base64url');
  assert.equal(blob[0], 3, 'sign-in state sealed in the ring form (version 3)');
  const hdr = blob.subarray(0, 5);
  const d = crypto.createDecipheriv('aes-256-gcm', flowKey(), blob.subarray(5, 17));
  d.setAAD(stateAd(hdr, tenant));
  d.setAuthTag(blob.subarray(blob.length - 16));
  return JSON.parse(Buffer.concat([d.update(blob.subarray(17, blob.length - 16)), d.final()]).toString());
}
function sealState(obj, tenant) {
  const hdr = header();
  const nonce = crypto.randomBytes(12);
  const c = crypto.createCipheriv('aes-256-gcm', flowKey(), nonce);
  c.setAAD(stateAd(hdr, tenant));
  const ct = Buffer.concat([c.update(JSON.stringify(obj)), c.final()]);
  return Buffer.concat([hdr, nonce, ct, c.getAuthTag()]).toString('base64url');
}
const withState = (url, state) => {
  const u = new URL(url);
  u.searchParams.set('state', state);
  return u.href;
};

test('5,000 sign-in starts from one address: database grows < 1 MiB, no flow row, another person signs in meanwhile', async () => {
  const ch = await challenge(bridge, 'gen');
  assert.equal(ch.status, 401);
  const url = startUrl(ch.url, 'flood@gen.generic.test');
  const agent = new http.Agent({ keepAlive: true, maxSockets: FLOOD_PARALLEL, localAddress: '127.0.0.1' });
  // warm up (metadata cached, first WAL frames written), then measure
  assert.equal((await get(url, { agent })).status, 302);
  const rowsBefore = flowRows();
  const bytesBefore = dbBytes();

  const statuses = {};
  const states = new Set();
  let longest = 0;
  let sent = 0;
  let done = 0;
  const t0 = Date.now();
  let person;
  const personDone = new Promise((resolve, reject) => { person = { resolve, reject }; });
  async function worker() {
    while (sent < FLOOD && Date.now() - t0 < FLOOD_DEADLINE_MS) {
      sent++;
      const r = await get(url, { agent });
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      if (r.location) {
        states.add(stateOf(r.location));
        longest = Math.max(longest, stateOf(r.location).length, r.location.length);
      }
      if (++done === 500) {
        // the other person starts while the flood runs
        (async () => {
          const p0 = Date.now();
          const ch2 = await challenge(bridge, 'gen');
          const b = await startAndDrive(ch2.url, '127.0.0.2');
          const r2 = await finish(b, '127.0.0.2');
          return { r: r2, ms: Date.now() - p0, floodDoneAtEnd: done };
        })().then(person.resolve, person.reject);
      }
    }
  }
  await Promise.all(Array.from({ length: FLOOD_PARALLEL }, worker));
  const floodMs = Date.now() - t0;
  agent.destroy();
  const p = await personDone;
  const grown = dbBytes() - bytesBefore;
  console.log(`flood: ${done} starts in ${floodMs} ms (${Math.round(done / (floodMs / 1000))}/s), `
    + `statuses ${JSON.stringify(statuses)}; longest IdP URL ${longest} bytes; database grew ${grown} bytes; `
    + `the other person signed in in ${p.ms} ms, ${p.floodDoneAtEnd} flood requests done by then`);

  assert.equal(done, FLOOD, `only ${done} starts within ${FLOOD_DEADLINE_MS} ms`);
  assert.deepEqual(statuses, { 302: FLOOD }, 'every opening started a sign-in');
  assert.equal(states.size, FLOOD, 'every start its own state');
  assert.ok(longest < 1024, `an IdP URL of ${longest} bytes: the state must stay well under 2 KiB`);
  assert.ok(grown < MIB, `database grew by ${grown} bytes`);
  // the person's sign-in recorded its used state; the flood nothing
  assert.equal(flowRows(), rowsBefore + 1);
  assert.equal(p.r.status, 308, p.r.body);
  assert.ok(p.r.location.startsWith(`${APPLE_RESULT}?access-token=`), p.r.location);
  assert.ok(p.ms < 20000, `the other person waited ${p.ms} ms`);
});

test('two browsers opening the same challenge both finish: the second opening does not cancel the first', async () => {
  const ch = await challenge(bridge, 'gen');
  const a = await startAndDrive(ch.url);
  const b = await startAndDrive(ch.url); // the second opening does not cancel the first
  assert.notEqual(stateOf(a.start.location), stateOf(b.start.location));
  assert.notEqual(a.cookie, b.cookie);
  const ra = await finish(a);
  assert.equal(ra.status, 308, ra.body);
  const rb = await finish(b);
  assert.equal(rb.status, 308, rb.body);
  assert.notEqual(ra.location, rb.location);
});

test('another browser\'s cookie is refused and does not use up the attempt; a replay is refused; the used state is kept by hash only', async () => {
  const ch = await challenge(bridge, 'gen');
  const a = await startAndDrive(ch.url);
  const other = await get(startUrl((await challenge(bridge, 'gen')).url, 'mallory@gen.generic.test'));
  const mismatches = await failures('browser_mismatch');
  const stolen = await finish(a, '127.0.0.1', pairOf(loginCookie(other)));
  assert.equal(stolen.status, 400, stolen.body);
  assert.equal(stolen.location, undefined);
  assert.equal(await failures('browser_mismatch'), mismatches + 1);
  const none = await finish(a, '127.0.0.1', null);
  assert.equal(none.status, 400, none.body);
  // the right browser still finishes
  const ok = await finish(a);
  assert.equal(ok.status, 308, ok.body);
  // and only once
  const unknown = await failures('state_unknown');
  const replay = await finish(a);
  assert.equal(replay.status, 400, replay.body);
  assert.equal(await failures('state_unknown'), unknown + 1);
  const state = stateOf(a.callbackUrl);
  const hash = crypto.createHash('sha256').update(state).digest('hex');
  assert.equal(sql(world.db, `select count(*) as n from login_flows where upstream_state = '${hash}'`)[0].n, 1);
  assert.equal(sql(world.db, `select count(*) as n from login_flows where upstream_state = '${state}' or id = '${state}'`)[0].n, 0);
});

test('at the callback, an altered, expired, other tenant\'s or non-state `state` is refused', async () => {
  const ch = await challenge(bridge, 'gen');
  const a = await startAndDrive(ch.url);
  const state = stateOf(a.callbackUrl);
  const unknown = await failures('state_unknown');

  // one character changed
  const last = state.slice(-1) === 'A' ? 'B' : 'A';
  const altered = await finish(a, '127.0.0.1', a.cookie, withState(a.callbackUrl, state.slice(0, -1) + last));
  assert.equal(altered.status, 400, altered.body);
  // the challenge's flow text is not a state
  const flowText = new URL(ch.url).pathname.split('/').pop();
  const flowAsState = await finish(a, '127.0.0.1', a.cookie, withState(a.callbackUrl, flowText));
  assert.equal(flowAsState.status, 400, flowAsState.body);
  // gen's state on gen2's path
  const moved = await finish(a, '127.0.0.1', a.cookie, a.callbackUrl.replace('/t/gen/', '/t/gen2/'));
  assert.equal(moved.status, 400, moved.body);
  assert.equal(await failures('state_unknown'), unknown + 2);

  // genuinely sealed with the bridge's key, bound to this browser, expired
  const plain = openState(state, 'gen');
  assert.ok(plain.n && plain.pv && plain.b, 'nonce, verifier and binding inside');
  assert.ok(!('u' in plain) && !('s' in plain), 'no MachineInfo in the state');
  const expired = sealState({ ...plain, e: Math.floor(Date.now() / 1000) - 5 }, 'gen');
  const expiredCount = await failures('state_expired');
  const r = await finish(a, '127.0.0.1', a.cookie, withState(a.callbackUrl, expired));
  assert.equal(r.status, 400, r.body);
  assert.equal(await failures('state_expired'), expiredCount + 1);
  // a re-sealed, unexpired copy opens: the refusal above was the expiry
  const fresh = await finish(a, '127.0.0.1', a.cookie, withState(a.callbackUrl, sealState(plain, 'gen')));
  assert.equal(fresh.status, 308, fresh.body);
  // none of these used up a state but the one that finished; logs hold
  // neither the state nor the cookie
  const logs = bridge.logs.join('\n');
  assert.ok(!logs.includes(state), 'state in the log');
  assert.ok(!logs.includes(a.cookie.split('=')[1]), 'cookie in the log');
});

test('the clearing eb_login cookie has the Path and attributes of the one that set it', async () => {
  const ch = await challenge(bridge, 'gen');
  const a = await startAndDrive(ch.url);
  const r = await finish(a);
  assert.equal(r.status, 308, r.body);
  const cleared = loginCookie(r);
  assert.ok(cleared, 'the callback clears eb_login');
  const attrs = (sc) => {
    const [pair, ...rest] = sc.split(';').map((s) => s.trim());
    const m = new Map(rest.map((x) => { const [k, ...v] = x.split('='); return [k.toLowerCase(), v.join('=')]; }));
    return { value: pair.slice('eb_login='.length), m };
  };
  const set = attrs(a.setCookie);
  const clr = attrs(cleared);
  assert.equal(clr.value, '');
  assert.equal(clr.m.get('max-age'), '0');
  assert.equal(set.m.get('path'), '/t/gen/');
  assert.equal(clr.m.get('path'), set.m.get('path'), `cleared on another path: ${cleared}`);
  for (const k of ['httponly', 'samesite', 'secure', 'domain']) {
    assert.equal(clr.m.get(k), set.m.get(k), `${k}: set ${a.setCookie} / cleared ${cleared}`);
  }
});
