// The private admin listener and the admin API (issue 14 section 3), the
// audit command and audit_retention / audit_stream, against the real
// binary, real sign-ins at the test IdP and a fake MDM: /metrics only on
// admin_listen; bearer-token authentication; each action on real grants
// (a retire makes the device's next request 403); the CLI's --server; the
// audit trail of every call, without the token.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { cliAsync, startBridge } from './lib.mjs';
import {
  enroll, freePort, oidcTenant, startTestIdp, startWorld, stopAll,
} from './idp.mjs';

const CT_CHECKIN = 'application/x-apple-aspen-mdm-checkin';
const TOKEN = 'adm-0123456789abcdef0123456789abcdef-token';

let idp;
let world;
let bridge;
let mdm;
let admin; // http://127.0.0.1:APORT
let streamFile;
let tokenFile;
let tmp;

function startMdm() {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end('<ok/>');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const checkin = (type, ids) => '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>'
  + Object.entries({ MessageType: type, Topic: 'com.apple.mgmt.test', ...ids })
    .map(([k, v]) => `<key>${k}</key><string>${v}</string>`).join('')
  + '</dict></plist>\n';

const grantOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()).grant_id;

async function signIn(login = 'user1') {
  const r = await enroll({ bridge, tenant: 'gen', login });
  assert.equal(r.status, 308, `sign-in stopped at ${r.stage}: ${r.status}`);
  return r.token;
}

const put = (token, E) => fetch(`${bridge.url}/t/gen/mdm/checkin`, {
  method: 'PUT',
  headers: { authorization: `Bearer ${token}`, 'content-type': CT_CHECKIN },
  body: checkin('Authenticate', E),
});

// One admin API call: { status, headers, body (parsed JSON or text) }.
async function api(method, p, { body, token = TOKEN } = {}) {
  const headers = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`${admin}${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let parsed = text;
  try { parsed = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, body: parsed };
}

const remoteEnv = { ...process.env, ENROLLBRIDGE_ADMIN_TOKEN: TOKEN };

before(async () => {
  const port = await freePort();
  const aport = await freePort();
  admin = `http://127.0.0.1:${aport}`;
  mdm = await startMdm();
  idp = await startTestIdp();
  const gen = oidcTenant(`http://127.0.0.1:${port}`, idp, 'gen');
  gen.tenant.mdm = { upstream: `http://127.0.0.1:${mdm.address().port}/base/` };
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'eb-admin-'));
  streamFile = path.join(tmp, 'audit.jsonl');
  tokenFile = path.join(tmp, 'admin.token');
  fs.writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  world = await startWorld(port, [gen], {
    admin_listen: `127.0.0.1:${aport}`,
    admin_token: `file:${tokenFile}`,
    audit_stream: streamFile,
  });
  ({ bridge } = world);
});

after(async () => {
  await stopAll(bridge, idp);
  mdm.closeAllConnections?.();
  await new Promise((r) => mdm.close(r));
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('admin_listen serves /metrics, /healthz, /readyz; the public listener no longer serves /metrics', async () => {
  const m = await fetch(`${admin}/metrics`);
  assert.equal(m.status, 200);
  assert.match(await m.text(), /enrollbridge_http_requests_total/);
  assert.equal((await fetch(`${bridge.url}/metrics`)).status, 404);
  for (const base of [admin, bridge.url]) {
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
  }
  // the admin API is not on the public listener
  const p = await fetch(`${bridge.url}/admin/v1/grants`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(p.status, 404);
  // the admin server's requests are counted under their own routes
  const again = await (await fetch(`${admin}/metrics`)).text();
  assert.match(again, /enrollbridge_http_requests_total\{route="metrics",(status|code)="200"\} [1-9]/);
});

test('authentication: no token and a wrong one get 401 with a Bearer challenge, audited; the right one works', async () => {
  const none = await api('GET', '/admin/v1/grants', { token: null });
  assert.equal(none.status, 401);
  assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer realm="enrollbridge-admin"/);
  const wrong = await api('GET', '/admin/v1/grants', { token: `${TOKEN}x` });
  assert.equal(wrong.status, 401);
  const short = await api('GET', '/admin/v1/grants', { token: TOKEN.slice(0, 10) });
  assert.equal(short.status, 401);
  const ok = await api('GET', '/admin/v1/grants');
  assert.equal(ok.status, 200);
  assert.ok(Array.isArray(ok.body.grants));
  const ev = await api('GET', '/admin/v1/audit?event=admin.unauthorized');
  assert.equal(ev.status, 200);
  assert.ok(ev.body.events.length >= 3, JSON.stringify(ev.body));
  assert.equal(ev.body.events[0].subject, 'grants.list');
  assert.equal(ev.body.events[0].detail.status, 401);
});

test('grants: list with filters and paging, get, revoke (401 after), retire (403 after), by person', async () => {
  const t1 = await signIn();
  const t2 = await signIn();
  const t3 = await signIn();
  const id1 = grantOf(t1);
  const g = await api('GET', `/admin/v1/grants/${id1}`);
  assert.equal(g.status, 200);
  assert.equal(g.body.id, id1);
  assert.equal(g.body.status, 'active');
  assert.equal((await api('GET', '/admin/v1/grants/no-such-grant')).status, 404);

  const all = await api('GET', '/admin/v1/grants?tenant=gen&status=active');
  assert.ok(all.body.grants.length >= 3);
  assert.ok(all.body.grants.every((x) => x.status === 'active' && x.tenant === 'gen'));
  const byApple = await api('GET', `/admin/v1/grants?managed_apple_id=${encodeURIComponent(g.body.managed_apple_id)}`);
  assert.ok(byApple.body.grants.some((x) => x.id === id1));
  const byUser = await api('GET', `/admin/v1/grants?user=${encodeURIComponent(g.body.idp_subject)}`);
  assert.ok(byUser.body.grants.every((x) => x.idp_subject === g.body.idp_subject));
  // paging: one a page, in order, next_offset until the end
  const p1 = await api('GET', '/admin/v1/grants?tenant=gen&limit=1');
  assert.equal(p1.body.grants.length, 1);
  assert.equal(p1.body.next_offset, 1);
  const p2 = await api('GET', `/admin/v1/grants?tenant=gen&limit=1&offset=${p1.body.next_offset}`);
  assert.notEqual(p2.body.grants[0].id, p1.body.grants[0].id);
  assert.equal((await api('GET', '/admin/v1/grants?tenant=nope')).status, 404);
  assert.equal((await api('GET', '/admin/v1/grants?status=bogus')).status, 400);
  assert.equal((await api('GET', '/admin/v1/grants?limit=x')).status, 400);
  // a filter that is not UTF-8 is refused, never dropped (which would list all)
  assert.equal((await api('GET', '/admin/v1/grants?tenant=%FF')).status, 400);

  // revoke: the device's next request gets 401 and the challenge
  assert.equal((await put(t1, { EnrollmentID: 'ENR-A1' })).status, 200);
  const rv = await api('POST', `/admin/v1/grants/${id1}/revoke`, { body: { reason: 'stolen' } });
  assert.equal(rv.status, 200);
  assert.deepEqual(rv.body, { id: id1, result: 'revoked' });
  assert.equal((await api('POST', `/admin/v1/grants/${id1}/revoke`)).body.result, 'already revoked');
  assert.equal((await put(t1, { EnrollmentID: 'ENR-A1' })).status, 401);
  const listed = await api('GET', '/admin/v1/grants?tenant=gen&status=revoked&limit=1000');
  assert.equal(listed.body.grants.find((x) => x.id === id1).revoke_reason, 'stolen');

  // retire: 403 unrecognized device
  const id2 = grantOf(t2);
  assert.equal((await put(t2, { EnrollmentID: 'ENR-A2' })).status, 200);
  const rt = await api('POST', `/admin/v1/grants/${id2}/retire`, { body: { reason: 'lost' } });
  assert.equal(rt.status, 200);
  assert.equal(rt.body.result, 'retired');
  const dev = await put(t2, { EnrollmentID: 'ENR-A2' });
  assert.equal(dev.status, 403);
  assert.equal(JSON.parse(await dev.text()).code, 'com.apple.unrecognized.device');
  assert.equal((await api('POST', '/admin/v1/grants/no-such/retire')).status, 404);
  assert.equal((await api('POST', `/admin/v1/grants/${id2}/retire`, { body: '[1]' })).status, 400);

  // by person: every active grant of user1 retired, t3 among them
  const pr = await api('POST', '/admin/v1/person/retire', { body: { user: g.body.idp_subject, tenant: 'gen' } });
  assert.equal(pr.status, 200, JSON.stringify(pr.body));
  assert.ok(pr.body.ended.includes(grantOf(t3)));
  assert.equal((await put(t3, { EnrollmentID: 'ENR-A3' })).status, 403);
  const none = await api('POST', '/admin/v1/person/revoke', { body: { user: g.body.idp_subject } });
  assert.equal(none.status, 404);
  assert.equal((await api('POST', '/admin/v1/person/revoke', { body: {} })).status, 400);

  // each call audited as admin.*, with the caller, never the token
  const ev = await api('GET', '/admin/v1/audit?event=admin.grants.&limit=1000');
  const events = ev.body.events.map((e) => e.event);
  for (const e of ['admin.grants.get', 'admin.grants.list', 'admin.grants.revoke', 'admin.grants.retire', 'admin.grants.retire_person']) {
    assert.ok(events.includes(e), `${e} not audited`);
  }
  const rvEv = ev.body.events.find((e) => e.event === 'admin.grants.revoke' && e.subject === id1 && e.detail.result === 'revoked');
  assert.equal(rvEv.detail.reason, 'stolen');
  assert.equal(rvEv.detail.remote, '127.0.0.1');
  assert.ok(!JSON.stringify(ev.body).includes(TOKEN), 'the token is in the audit log');
});

test('keys: list and rotate', async () => {
  const before = await api('GET', '/admin/v1/keys');
  assert.equal(before.status, 200);
  const cur = before.body.keys.find((k) => k.state === 'current');
  assert.ok(cur, JSON.stringify(before.body));
  const r = await api('POST', '/admin/v1/keys/rotate', { body: {} });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.notEqual(r.body.kid, cur.kid);
  const afterList = await api('GET', '/admin/v1/keys');
  assert.equal(afterList.body.keys.find((k) => k.state === 'current').kid, r.body.kid);
  assert.equal((await api('POST', '/admin/v1/keys/rotate', { body: { activate_in: -1 } })).status, 400);
  // the JWKS the server publishes has the new key
  const jwks = await (await fetch(`${bridge.url}/t/gen/jwks.json`)).json();
  assert.ok(jwks.keys.some((k) => k.kid === r.body.kid));
});

test('mapping overrides: set, list, unset', async () => {
  const s = await api('POST', '/admin/v1/mappings', {
    body: { tenant: 'gen', subject: 'someone', managed_apple_id: 'someone@appleid.generic.test', note: 'by API' },
  });
  assert.equal(s.status, 200, JSON.stringify(s.body));
  const l = await api('GET', '/admin/v1/mappings?tenant=gen');
  assert.deepEqual(l.body.mappings.map((m) => [m.subject, m.managed_apple_id, m.note]),
    [['someone', 'someone@appleid.generic.test', 'by API']]);
  const bad = await api('POST', '/admin/v1/mappings', { body: { tenant: 'gen', subject: 's', managed_apple_id: 'not an address' } });
  assert.equal(bad.status, 400);
  assert.equal((await api('DELETE', '/admin/v1/mappings?tenant=gen&subject=someone')).status, 200);
  assert.equal((await api('DELETE', '/admin/v1/mappings?tenant=gen&subject=someone')).status, 404);
  assert.equal((await api('GET', '/admin/v1/mappings?tenant=gen')).body.mappings.length, 0);
  assert.equal((await api('GET', '/admin/v1/mappings')).status, 400);
});

test('the CLI through --server: grants, keys, map, audit; a wrong token fails', async () => {
  const t = await signIn();
  const id = grantOf(t);
  const l = await cliAsync(['grants', 'list', '--server', admin, '--tenant', 'gen', '--json'], { env: remoteEnv });
  assert.equal(l.code, 0, l.stderr);
  const rows = l.stdout.trim().split('\n').map((x) => JSON.parse(x));
  assert.ok(rows.some((g) => g.id === id && g.status === 'active'));
  const text = await cliAsync(['grants', 'list', '--server', admin, '--token-file', tokenFile]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`^${id} gen active `, 'm'));
  const r = await cliAsync(['grants', 'retire', '--server', `${admin}/`, '--token-file', tokenFile, id]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`${id} retired`));
  assert.equal((await put(t, { EnrollmentID: 'ENR-CLI' })).status, 403);
  const k = await cliAsync(['keys', 'list', '--server', admin], { env: remoteEnv });
  assert.equal(k.code, 0, k.stderr);
  assert.match(k.stdout, / current /);
  const ms = await cliAsync(['map', 'set', '--server', admin, '--tenant', 'gen', '--subject', 'x1', '--apple-id', 'x1@appleid.generic.test'], { env: remoteEnv });
  assert.equal(ms.code, 0, ms.stderr);
  const ml = await cliAsync(['map', 'list', '--server', admin, '--tenant', 'gen', '--json'], { env: remoteEnv });
  assert.equal(JSON.parse(ml.stdout.trim()).managed_apple_id, 'x1@appleid.generic.test');
  const mu = await cliAsync(['map', 'unset', '--server', admin, '--tenant', 'gen', '--subject', 'x1'], { env: remoteEnv });
  assert.equal(mu.code, 0, mu.stderr);
  const a = await cliAsync(['audit', 'list', '--server', admin, '--event', 'admin.mappings.', '--json'], { env: remoteEnv });
  assert.equal(a.code, 0, a.stderr);
  assert.ok(a.stdout.trim().split('\n').map((x) => JSON.parse(x).event).includes('admin.mappings.set'));
  const bad = await cliAsync(['grants', 'list', '--server', admin], { env: { ...process.env, ENROLLBRIDGE_ADMIN_TOKEN: 'wrong' } });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /server: 401/);
  assert.ok(!bad.stderr.includes('wrong'));
  const noTok = await cliAsync(['grants', 'list', '--server', admin], { env: { PATH: process.env.PATH } });
  assert.notEqual(noTok.code, 0);
  assert.match(noTok.stderr, /ENROLLBRIDGE_ADMIN_TOKEN/);
});

test('audit list from the database: filters, --json, text', async () => {
  const c = world.config.main;
  const j = await cliAsync(['audit', 'list', '-c', c, '--tenant', 'gen', '--event', 'grant.', '--json']);
  assert.equal(j.code, 0, j.stderr);
  const evs = j.stdout.trim().split('\n').map((x) => JSON.parse(x));
  assert.ok(evs.length > 0);
  assert.ok(evs.every((e) => e.tenant === 'gen' && e.event.startsWith('grant.')));
  assert.ok(evs.some((e) => e.event === 'grant.retired'));
  for (let i = 1; i < evs.length; i++) assert.ok(evs[i - 1].id > evs[i].id, 'newest first');
  const only = await cliAsync(['audit', 'list', '-c', c, '--event', 'grant.retired', '--limit', '1', '--json']);
  assert.equal(only.stdout.trim().split('\n').length, 1);
  const future = await cliAsync(['audit', 'list', '-c', c, '--since', '2999-01-01']);
  assert.equal(future.code, 0);
  assert.equal(future.stdout, '');
  const recent = await cliAsync(['audit', 'list', '-c', c, '--since', '1h']);
  assert.match(recent.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \S+ \S+ \S+ /m);
  const bad = await cliAsync(['audit', 'list', '-c', c, '--since', 'yesterday']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--since/);
});

test('audit_stream: every event as a JSON line, grant changes and admin calls included', async () => {
  const t = await signIn();
  assert.equal((await api('POST', `/admin/v1/grants/${grantOf(t)}/revoke`)).status, 200);
  let lines = [];
  for (let i = 0; i < 50; i++) {
    lines = fs.existsSync(streamFile) ? fs.readFileSync(streamFile, 'utf8').split('\n').filter(Boolean) : [];
    if (lines.some((l) => l.includes(`"grant.revoked"`) && l.includes(grantOf(t)))) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const evs = lines.map((l) => JSON.parse(l));
  assert.ok(evs.some((e) => e.event === 'grant.revoked' && e.subject === grantOf(t)), lines.join('\n'));
  assert.ok(evs.some((e) => e.event === 'admin.grants.revoke'));
  assert.ok(evs.some((e) => e.event === 'grant.created'));
  for (let i = 1; i < evs.length; i++) assert.ok(evs[i - 1].id < evs[i].id, 'in order, no repeats');
  assert.ok(!lines.join('\n').includes(TOKEN));
});

test('admin_token off after a reload: the API answers 404; metrics stay on admin_listen', async () => {
  const cfg = JSON.parse(fs.readFileSync(world.config.main, 'utf8'));
  delete cfg.admin_token;
  fs.writeFileSync(world.config.main, JSON.stringify(cfg, null, 2));
  bridge.proc.kill('SIGHUP');
  await bridge.waitLog(/reload/i);
  let st;
  for (let i = 0; i < 50; i++) {
    st = (await api('GET', '/admin/v1/grants')).status;
    if (st === 404) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(st, 404);
  assert.equal((await fetch(`${admin}/metrics`)).status, 200);
});

test('audit_retention: a restart deletes the events older than it', async () => {
  const first = await bridge.stop();
  assert.equal(first.code, 0, bridge.logs.filter((l) => !l.startsWith('{')).join('\n'));
  const count = (await cliAsync(['audit', 'list', '-c', world.config.main, '--json'])).stdout.trim().split('\n').length;
  assert.ok(count > 5);
  await new Promise((r) => setTimeout(r, 2100));
  const cfg = JSON.parse(fs.readFileSync(world.config.main, 'utf8'));
  cfg.audit_retention = 2;
  fs.writeFileSync(world.config.main, JSON.stringify(cfg, null, 2));
  bridge = await startBridge(world.config.main);
  await bridge.waitLog(/audit_retention: deleted \d+ audit events/);
  const left = (await cliAsync(['audit', 'list', '-c', world.config.main, '--json'])).stdout.trim();
  const now = Date.now() / 1000;
  for (const l of left.split('\n').filter(Boolean)) assert.ok(JSON.parse(l).ts >= now - 10, l);
  // a clean stop (under the sanitizers: no leak, no error)
  const end = await bridge.stop();
  assert.equal(end.code, 0, bridge.logs.filter((l) => !l.startsWith('{')).join('\n'));
  // a bad value is refused with the key named
  cfg.audit_retention = 0;
  fs.writeFileSync(world.config.main, JSON.stringify(cfg, null, 2));
  const chk = await cliAsync(['check-config', '-c', world.config.main]);
  assert.equal(chk.code, 1);
  assert.match(chk.stderr, /audit_retention: must be between 1 and/);
});
