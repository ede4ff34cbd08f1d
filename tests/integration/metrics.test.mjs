// /metrics by Prometheus convention (issue 14, section 5): the real binary
// signs a person in through the test IdP, serves the enrollment profile,
// reloads its configuration (good, then refused, then good again) and is
// scraped; promtool check metrics must find nothing to say, and the
// families the README lists must be there with sane values. A second
// bridge with TLS shows the certificate's expiry. promtool comes with
// Debian's prometheus package: without it the test skips, under CI it fails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { baseTenant, enrollPost, SRC, startBridge, tmpDir, writeConfig } from './lib.mjs';
import {
  enroll, freePort, metricsText, oidcTenant, parseMetric, startTestIdp, startWorld, stopAll,
} from './idp.mjs';

const ENROLL_PROFILE = path.join(SRC, 'tests/unit/data/profiles/enroll.mobileconfig');

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
const havePromtool = promtool.status === 0;
if (!havePromtool && process.env.CI) {
  console.error('metrics: promtool missing (apt-get install prometheus); CI needs it');
  process.exit(1);
}
const skip = havePromtool ? false : 'promtool missing (apt-get install prometheus)';

let idp, world, tlsBridge, t0;

before(async () => {
  t0 = Math.floor(Date.now() / 1000);
  idp = await startTestIdp();
  const port = await freePort();
  const pub = `http://127.0.0.1:${port}`;
  const s = oidcTenant(pub, idp, 'gen');
  s.tenant.mdm = { profile: { file: ENROLL_PROFILE } };
  world = await startWorld(port, [s]);
});

after(async () => {
  await stopAll(world?.bridge, tlsBridge, idp);
});

// promtool check metrics on a scrape: { status, out }.
function promtoolCheck(text) {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

const one = (text, name, labels = {}) => {
  const hits = parseMetric(text, name)
    .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.equal(hits.length, 1, `${name}${JSON.stringify(labels)}: ${hits.length} series`);
  return hits[0].value;
};

const reloaded = async (bridge, re) => {
  const seen = bridge.logs.length;
  bridge.proc.kill('SIGHUP');
  const end = Date.now() + 5000;
  while (Date.now() < end) {
    if (bridge.logs.slice(seen).some((l) => re.test(l))) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no log line matching ${re} after SIGHUP`);
};

test('a sign-in, an enrollment and reloads show in conventional metrics', { skip }, async () => {
  const { bridge } = world;
  const r = await enroll({ bridge, tenant: 'gen', login: 'user1' });
  assert.equal(r.status, 308, `sign-in: ${r.stage} ${r.status} ${r.body ?? ''}`);
  assert.ok(r.token);
  const p = await enrollPost(`${bridge.url}/t/gen/enroll`, { headers: { authorization: `Bearer ${r.token}` } });
  await p.arrayBuffer();
  assert.equal(p.status, 200, 'the enrollment profile');
  // a callback with a state nobody issued: an expired sign-in
  const bad = await fetch(`${bridge.url}/t/gen/oidc/callback?state=nope&code=x`, { redirect: 'manual' });
  await bad.text();
  assert.equal(bad.status, 400);

  let text = await metricsText(bridge);
  const startReload = one(text, 'enrollbridge_config_last_reload_success_timestamp_seconds');
  assert.equal(one(text, 'enrollbridge_config_last_reload_successful'), 1);
  assert.ok(startReload >= t0 - 1 && startReload <= Date.now() / 1000 + 1, `start: ${startReload}`);

  // a refused reload, then a good one
  const tenantFile = path.join(world.config.tenantsDir, 'gen.json');
  const good = fs.readFileSync(tenantFile, 'utf8');
  fs.writeFileSync(tenantFile, '{"id": "gen", "nonsense": ');
  await reloaded(bridge, /reload refused/);
  text = await metricsText(bridge);
  assert.equal(one(text, 'enrollbridge_config_last_reload_successful'), 0);
  assert.equal(one(text, 'enrollbridge_config_last_reload_success_timestamp_seconds'), startReload);
  await new Promise((res) => setTimeout(res, 1100)); // a later second
  fs.writeFileSync(tenantFile, good);
  await reloaded(bridge, /configuration reloaded/);

  text = await metricsText(bridge);
  const check = promtoolCheck(text);
  assert.equal(check.status, 0, `promtool check metrics:\n${check.out}`);
  assert.equal(check.out, '', `promtool check metrics:\n${check.out}`);

  // HELP and TYPE once for every family, before its samples
  const types = new Map();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    assert.ok(!types.has(m[1]), `${m[1]} typed twice`);
    types.set(m[1], m[2]);
    assert.match(text, new RegExp(`^# HELP ${m[1]} \\S`, 'm'));
  }
  const want = {
    enrollbridge_signins_total: 'counter',
    enrollbridge_enrollments_total: 'counter',
    enrollbridge_idp_up: 'gauge',
    enrollbridge_idp_request_duration_seconds: 'histogram',
    enrollbridge_proxy_upstream_seconds: undefined, // only once proxied
    enrollbridge_config_last_reload_successful: 'gauge',
    enrollbridge_config_last_reload_success_timestamp_seconds: 'gauge',
    enrollbridge_signing_key_age_seconds: 'gauge',
    process_cpu_seconds_total: 'counter',
    process_resident_memory_bytes: 'gauge',
    process_virtual_memory_bytes: 'gauge',
    process_open_fds: 'gauge',
    process_max_fds: 'gauge',
    process_start_time_seconds: 'gauge',
  };
  for (const [name, type] of Object.entries(want)) {
    if (type) assert.equal(types.get(name), type, name);
  }
  for (const [name, type] of types) {
    assert.notEqual(type, 'untyped', `${name} is not described`);
    if (type === 'counter') assert.match(name, /_total$/, `counter ${name}`);
  }

  assert.equal(one(text, 'enrollbridge_signins_total', { tenant: 'gen', result: 'success' }), 1);
  assert.equal(one(text, 'enrollbridge_signins_total', { tenant: 'gen', result: 'expired' }), 1);
  assert.equal(one(text, 'enrollbridge_enrollments_total', { tenant: 'gen', mode: 'byod' }), 1);
  assert.equal(one(text, 'enrollbridge_idp_up', { tenant: 'gen' }), 1);
  // never by issuer: it may name an Entra tenant
  assert.ok(parseMetric(text, 'enrollbridge_idp_up').every((s) => !('issuer' in s.labels)));
  const tokenCalls = one(text, 'enrollbridge_idp_request_duration_seconds_count', { tenant: 'gen', endpoint: 'token' });
  assert.ok(tokenCalls >= 1);
  assert.equal(one(text, 'enrollbridge_idp_request_duration_seconds_bucket',
    { tenant: 'gen', endpoint: 'token', le: '+Inf' }), tokenCalls);
  assert.ok(one(text, 'enrollbridge_idp_request_duration_seconds_sum', { tenant: 'gen', endpoint: 'token' }) > 0);

  assert.equal(one(text, 'enrollbridge_config_last_reload_successful'), 1);
  assert.ok(one(text, 'enrollbridge_config_last_reload_success_timestamp_seconds') > startReload);
  const age = one(text, 'enrollbridge_signing_key_age_seconds');
  assert.ok(age >= 0 && age < 600, `signing key age ${age}`);

  const now = Date.now() / 1000;
  const started = one(text, 'process_start_time_seconds');
  assert.ok(started >= t0 - 5 && started <= now, `process_start_time_seconds ${started}`);
  assert.ok(one(text, 'process_cpu_seconds_total') > 0);
  const rss = one(text, 'process_resident_memory_bytes');
  assert.ok(rss > 1 << 20 && rss <= one(text, 'process_virtual_memory_bytes'), `rss ${rss}`);
  const fds = one(text, 'process_open_fds');
  assert.ok(fds >= 3 && fds <= one(text, 'process_max_fds'), `fds ${fds}`);
  // no TLS here: no certificate series
  assert.equal(parseMetric(text, 'enrollbridge_tls_certificate_expiry_timestamp_seconds').length, 0);
});

test('with TLS, the certificate expiry is exported', { skip }, async () => {
  const dir = tmpDir('eb-metrics-tls-');
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', '/CN=127.0.0.1'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const end = spawnSync('openssl', ['x509', '-in', cert, '-noout', '-enddate'], { encoding: 'utf8' });
  const notAfter = Date.parse(end.stdout.trim().replace(/^notAfter=/, '')) / 1000;
  assert.ok(notAfter > Date.now() / 1000 + 29 * 86400);

  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // our self-signed certificate, loopback only
  const port = await freePort();
  const cfg = writeConfig({
    port,
    tenants: [baseTenant('gen', ['generic.test'])],
    main: { public_url: `https://127.0.0.1:${port}`, tls: { cert, key } },
  });
  tlsBridge = await startBridge(cfg.main);
  const text = await metricsText(tlsBridge);
  assert.equal(one(text, 'enrollbridge_tls_certificate_expiry_timestamp_seconds'), notAfter);
  const check = promtoolCheck(text);
  assert.equal(check.status, 0, `promtool check metrics:\n${check.out}`);
  assert.equal(check.out, '', `promtool check metrics:\n${check.out}`);
});
