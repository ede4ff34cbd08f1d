// Issue 14, logging: the Reference a failed sign-in's page shows is the
// `rid` of every log line of that request, the work-queue job's included;
// JSON lines carry tenant/event/reason/trace_id as fields; a valid incoming
// traceparent reaches the IdP with the same trace id and our span id;
// log.personal_data false keeps the account out of the log; under
// JOURNAL_STREAM the lines carry syslog priorities. Loopback only.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { BIN } from './lib.mjs';
import {
  PASSWORD, challenge, createJar, drive, freePort, idpLog, idpMode, oidcTenant, startLogin,
  startTestIdp, startWorld, stopAll,
} from './idp.mjs';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const INCOMING = `00-${TRACE}-b7ad6b7169203331-01`;

let idp;
let world;
let bridge;

before(async () => {
  const port = await freePort();
  const pub = `http://127.0.0.1:${port}`;
  idp = await startTestIdp();
  world = await startWorld(port, [oidcTenant(pub, idp, 'gen')]);
  ({ bridge } = world);
});

after(async () => {
  await stopAll(bridge, idp);
});

const parsed = (lines) => lines.flatMap((l) => { try { return [JSON.parse(l)]; } catch { return []; } });

// Challenge, sign-in start and the IdP's login; the callback is the
// caller's, with headers of its choosing.
async function toCallback(login = 'user1') {
  const ch = await challenge(bridge, 'gen');
  assert.equal(ch.status, 401);
  const st = await startLogin(ch.url, login);
  assert.equal(st.status, 302, st.body);
  const cb = await drive(st.location, login, PASSWORD, { jar: createJar() });
  return { cb, cookie: st.cookie };
}

async function callbackWith(cb, cookie, headers = {}) {
  const r = await fetch(cb, { redirect: 'manual', headers: { cookie, ...headers } });
  return { status: r.status, headers: r.headers, body: await r.text() };
}

test('a failed sign-in: the page Reference is the rid of all its lines, work-queue ones included; fields and traceparent reach the IdP', async () => {
  const { cb, cookie } = await toCallback();
  await idpMode(idp, { mode: 'wrong_iss', count: 1 });
  const before = (await idpLog(idp)).length;
  const r = await callbackWith(cb, cookie, { traceparent: INCOMING });
  assert.equal(r.status, 502, r.body);
  const ref = /Reference: ([0-9a-f]{16})</.exec(r.body)?.[1];
  assert.ok(ref, `no Reference on the page: ${r.body}`);
  assert.equal(r.headers.get('x-request-id'), ref);
  await bridge.waitLog(new RegExp(`"msg":"access".*"rid":"${ref}"`));

  const mine = parsed(bridge.logs).filter((j) => j.rid === ref);
  // the IdP exchange runs on a work-queue thread: its lines carry the id
  const failed = mine.find((j) => j.event === 'signin.failed');
  assert.ok(failed, `no signin.failed line with rid ${ref}:\n${bridge.logs.join('\n')}`);
  assert.equal(failed.tenant, 'gen');
  assert.equal(failed.level, 'warn');
  assert.ok(failed.reason, 'a reason field');
  assert.ok(!/tenant gen:/.test(failed.msg), `the tenant is a field, not text: ${failed.msg}`);
  assert.ok(mine.length >= 3, `want the exchange, the outcome and the access line:\n${mine.map((j) => JSON.stringify(j)).join('\n')}`);
  for (const j of mine) assert.equal(j.trace_id, TRACE, JSON.stringify(j));
  // no line about this failure without the request's id
  const orphans = parsed(bridge.logs).filter((j) => /sign-in failed|ID token .* refused/.test(j.msg ?? '') && j.rid !== ref);
  assert.deepEqual(orphans, []);

  // the token request reached the IdP with our span under the caller's trace
  const tokenReqs = (await idpLog(idp)).slice(before).filter((e) => e.path.endsWith('/token'));
  assert.equal(tokenReqs.length, 1, JSON.stringify(tokenReqs));
  assert.match(tokenReqs[0].traceparent ?? '', new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
  assert.ok(!tokenReqs[0].traceparent.includes('b7ad6b7169203331'), 'our own span id');
});

test('a hostile traceparent is ignored: a new trace id, never reflected or logged', async () => {
  const { cb, cookie } = await toCallback();
  const before = (await idpLog(idp)).length;
  const hostile = `00-${TRACE}-b7ad6b7169203331-01-evil`;
  const r = await callbackWith(cb, cookie, { traceparent: hostile });
  assert.equal(r.status, 308, r.body);
  const rid = r.headers.get('x-request-id');
  await bridge.waitLog(new RegExp(`"msg":"access".*"rid":"${rid}"`));
  const mine = parsed(bridge.logs).filter((j) => j.rid === rid);
  assert.ok(mine.some((j) => j.event === 'signin.ok'));
  const tid = mine[0].trace_id;
  assert.match(tid, /^[0-9a-f]{32}$/);
  assert.notEqual(tid, TRACE);
  assert.ok(!bridge.logs.some((l) => l.includes('evil')));
  const tokenReqs = (await idpLog(idp)).slice(before).filter((e) => e.path.endsWith('/token'));
  assert.match(tokenReqs[0].traceparent, new RegExp(`^00-${tid}-[0-9a-f]{16}-00$`));
});

test('log.personal_data false: the account, login and email stay out of the log (as a keyed hash)', async () => {
  // on (the default): the account is logged
  let { cb, cookie } = await toCallback();
  let r = await callbackWith(cb, cookie);
  assert.equal(r.status, 308);
  await bridge.waitLog(/"event":"signin\.ok".*signed in as user1@appleid\.generic\.test/);

  const cfg = JSON.parse(fs.readFileSync(world.config.main, 'utf8'));
  cfg.log = { ...cfg.log, personal_data: false };
  fs.writeFileSync(world.config.main, JSON.stringify(cfg, null, 2));
  const n0 = bridge.logs.length;
  bridge.proc.kill('SIGHUP');
  await bridge.waitLog(/configuration reloaded/);

  ({ cb, cookie } = await toCallback());
  r = await callbackWith(cb, cookie);
  assert.equal(r.status, 308);
  const rid = r.headers.get('x-request-id');
  await bridge.waitLog(new RegExp(`"msg":"access".*"rid":"${rid}"`));
  const ok = parsed(bridge.logs.slice(n0)).find((j) => j.event === 'signin.ok' && j.rid === rid);
  assert.ok(ok);
  assert.match(ok.msg, /^signed in as ~[0-9a-f]{12}$/);
  const leaks = bridge.logs.slice(n0).filter((l) => /user1/.test(l));
  assert.deepEqual(leaks, [], 'no line names the person');
});

test('JOURNAL_STREAM naming stderr: every line starts with its syslog priority', async () => {
  await bridge.stop();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'eb-journal-'));
  const file = path.join(dir, 'stderr');
  const fd = fs.openSync(file, 'w+');
  const st = fs.fstatSync(fd, { bigint: true });
  const proc = spawn(BIN, ['serve', '-c', world.config.main], {
    env: { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` },
    stdio: ['ignore', 'ignore', fd],
  });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  try {
    const end = Date.now() + 15000;
    for (;;) {
      try {
        if ((await fetch(`${world.publicUrl}/healthz`)).status === 200) break;
      } catch { /* not up yet */ }
      assert.ok(Date.now() < end, 'the bridge did not come up');
      await new Promise((res) => setTimeout(res, 50));
    }
    await fetch(`${world.publicUrl}/t/gen/nowhere`).then((x) => x.arrayBuffer());
  } finally {
    proc.kill('SIGTERM');
    await exited;
    fs.closeSync(fd);
  }
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  fs.rmSync(dir, { recursive: true, force: true });
  assert.ok(lines.length >= 3, lines.join('\n'));
  for (const l of lines) assert.match(l, /^<[3467]>\{/, l);
  assert.ok(lines.some((l) => l.startsWith('<6>{') && l.includes('"msg":"access"')), lines.join('\n'));
  // the pipe the other tests read had no JOURNAL_STREAM: no prefix there
  assert.ok(bridge.logs.every((l) => !l.startsWith('<')), 'no prefix without the journal');
});
