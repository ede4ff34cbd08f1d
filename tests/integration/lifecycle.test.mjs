// Start-up, reload (SIGHUP), bad configurations, graceful stop (SIGTERM).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { baseTenant, cli, freePort, startBridge, writeConfig } from './lib.mjs';

const WK = '/.well-known/com.apple.remotemanagement';
const disco = (url, id) => fetch(`${url}${WK}?user-identifier=${encodeURIComponent(id)}&model-family=iPhone`);

test('SIGHUP reload swaps a valid config; a bad one is refused and the old one keeps serving', async () => {
  const port = await freePort();
  const c = writeConfig({ port, tenants: [baseTenant('contoso', ['contoso.example'])] });
  const b = await startBridge(c.main);
  try {
    assert.equal((await disco(b.url, 'a@new.example')).status, 403);
    c.write(baseTenant('newco', ['new.example']));
    b.proc.kill('SIGHUP');
    await b.waitLog(/configuration reloaded: 2 tenant/);
    assert.equal((await disco(b.url, 'a@new.example')).status, 200);

    // a bad tenant file: refused, both tenants keep working
    fs.writeFileSync(path.join(c.tenantsDir, 'broken.json'), '{"id": "broken", "domains": [42]}');
    b.proc.kill('SIGHUP');
    const line = await b.waitLog(/reload refused/);
    assert.match(line, /broken\.json/);
    assert.match(line, /domains/);
    assert.equal((await disco(b.url, 'a@new.example')).status, 200);
    assert.equal((await disco(b.url, 'a@contoso.example')).status, 200);
    const m = await (await fetch(`${b.url}/metrics`)).text();
    assert.match(m, /enrollbridge_config_reloads_total\{result="failed"\} 1/);
    assert.match(m, /enrollbridge_config_reloads_total\{result="ok"\} 1/);
  } finally {
    const { code } = await b.stop();
    assert.equal(code, 0);
  }
});

test('SIGTERM drains and exits 0', async () => {
  const port = await freePort();
  const c = writeConfig({ port, tenants: [baseTenant('contoso', ['contoso.example'])] });
  const b = await startBridge(c.main);
  const inflight = Array.from({ length: 20 }, () => disco(b.url, 'a@contoso.example').then((r) => r.status).catch(() => 0));
  b.proc.kill('SIGTERM');
  const { code } = await b.exited;
  assert.equal(code, 0);
  const statuses = await Promise.all(inflight);
  for (const s of statuses) assert.ok(s === 200 || s === 0); // answered, or refused before accept: never a broken answer
  assert.ok(b.logs.some((l) => /draining/.test(l)));
});

test('a port already in use is a clear start-up error', async () => {
  const port = await freePort();
  const c = writeConfig({ port, tenants: [baseTenant('contoso', ['contoso.example'])] });
  const b = await startBridge(c.main);
  try {
    const r = cli(['serve', '-c', c.main]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot serve on 127\.0\.0\.1/);
  } finally { await b.stop(); }
});

test('check-config: good config exits 0 and names the tenants', async () => {
  const c = writeConfig({ port: 8080, tenants: [baseTenant('contoso', ['contoso.example'])] });
  const r = cli(['check-config', '-c', c.main]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /ok, 1 tenant\(s\): contoso/);
});

const badCases = [
  ['unknown key in main file', (c) => ({ ...c, lisen: 'x' }), null, /enrollbridge\.json: lisen: /],
  ['wrong type', (c) => ({ ...c, listen: 8080 }), null, /enrollbridge\.json: listen: /],
  ['http public_url on a public host', (c) => ({ ...c, public_url: 'http://bridge.example.com' }), null, /public_url/],
  ['bad public_url', (c) => ({ ...c, public_url: 'not a url' }), null, /public_url/],
  ['unknown tenant key', null, (t) => ({ ...t, domians: ['x.example'] }), /contoso\.json: domians: /],
  ['bad tenant id', null, (t) => ({ ...t, id: 'Bad_ID' }), /contoso\.json: id: /],
  ['bad domain', null, (t) => ({ ...t, domains: ['not a domain'] }), /contoso\.json: domains/],
  ['bad auth_method', null, (t) => ({ ...t, auth_method: 'password' }), /contoso\.json: auth_method: /],
  ['bad enrollment mode', null, (t) => ({ ...t, enrollment: { default: 'sometimes' } }), /contoso\.json: enrollment\.default: /],
  ['missing idp', null, (t) => { const { idp, ...rest } = t; return rest; }, /contoso\.json: idp: /],
  ['negative ttl', null, (t) => ({ ...t, tokens: { access_ttl: -1 } }), /contoso\.json: tokens\.access_ttl: /],
  ['missing env secret', null, (t) => ({ ...t, idp: { ...t.idp, client_secret: 'env:EB_NO_SUCH_VAR_123' } }), /contoso\.json: idp\.client_secret: /],
  ['not JSON', null, () => '{ "id": ', /contoso\.json/],
];

for (const [name, mainFn, tenantFn, re] of badCases) {
  test(`check-config refuses: ${name}`, async () => {
    const c = writeConfig({ port: 8080, tenants: [baseTenant('contoso', ['contoso.example'])] });
    if (mainFn) fs.writeFileSync(c.main, JSON.stringify(mainFn(c.cfg)));
    if (tenantFn) {
      const t = tenantFn(baseTenant('contoso', ['contoso.example']));
      fs.writeFileSync(path.join(c.tenantsDir, 'contoso.json'), typeof t === 'string' ? t : JSON.stringify(t));
    }
    const r = cli(['check-config', '-c', c.main]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, re);
    assert.ok(!r.stderr.includes('test-secret-value'), 'a secret reached the error');
    // serve refuses the same way, before listening
    const s = cli(['serve', '-c', c.main]);
    assert.equal(s.code, 1);
    assert.match(s.stderr, re);
  });
}

test('duplicate domain across tenants is refused', async () => {
  const c = writeConfig({ port: 8080, tenants: [baseTenant('a', ['same.example']), baseTenant('b', ['SAME.example'])] });
  const r = cli(['check-config', '-c', c.main]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /same\.example/);
});

test('duplicate tenant id across files is refused', async () => {
  const c = writeConfig({ port: 8080, tenants: [baseTenant('a', ['one.example'])] });
  fs.writeFileSync(path.join(c.tenantsDir, 'zzz.json'), JSON.stringify(baseTenant('a', ['two.example'])));
  const r = cli(['check-config', '-c', c.main]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /zzz\.json: id: /);
});

test('a missing config file is a clear error', async () => {
  const r = cli(['check-config', '-c', '/nonexistent/enrollbridge.json']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\/nonexistent\/enrollbridge\.json/);
});

test('usage errors exit 2', async () => {
  assert.equal(cli([]).code, 2);
  assert.equal(cli(['frobnicate']).code, 2);
  assert.equal(cli(['serve']).code, 2);
});
