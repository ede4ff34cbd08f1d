// Apple service discovery against the real binary (PROTOCOL.md section 1).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { baseTenant, freePort, startBridge, writeConfig, raw, statusOf } from './lib.mjs';

let bridge, port, url;
const WK = '/.well-known/com.apple.remotemanagement';

before(async () => {
  port = await freePort();
  const { main } = writeConfig({
    port,
    tenants: [
      baseTenant('contoso', ['contoso.example', 'contoso-alt.example']),
      baseTenant('fabrikam', ['fabrikam.example'], { enrollment: { default: 'adde' } }),
    ],
  });
  bridge = await startBridge(main);
  url = bridge.url;
});
after(async () => { await bridge?.stop(); });

const q = (id, fam) => `?user-identifier=${encodeURIComponent(id)}${fam ? `&model-family=${fam}` : ''}`;

test('user-identifier domain selects the tenant; exact content type and body', async () => {
  const r = await fetch(`${url}${WK}${q('alice@contoso.example', 'iPhone')}`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/json');
  assert.equal(r.headers.get('cache-control'), 'no-store');
  const body = await r.text();
  assert.equal(body, `{"Servers":[{"Version":"mdm-byod","BaseURL":"${url}/t/contoso/enroll"}]}`);
});

test('model-family override and tenant default', async () => {
  let r = await fetch(`${url}${WK}${q('alice@contoso.example', 'Mac')}`);
  assert.equal((await r.json()).Servers[0].Version, 'mdm-adde');
  r = await fetch(`${url}${WK}${q('alice@contoso.example')}`); // older OS: no model-family
  assert.equal((await r.json()).Servers[0].Version, 'mdm-byod');
  r = await fetch(`${url}${WK}${q('bob@fabrikam.example', 'iPad')}`);
  const j = await r.json();
  assert.equal(j.Servers.length, 1);
  assert.equal(j.Servers[0].Version, 'mdm-adde');
  assert.equal(j.Servers[0].BaseURL, `${url}/t/fabrikam/enroll`);
  r = await fetch(`${url}${WK}${q('alice@contoso.example', 'Toaster')}`); // unknown family: default
  assert.equal((await r.json()).Servers[0].Version, 'mdm-byod');
});

test('domain match is case-insensitive and any of the tenant domains works', async () => {
  for (const id of ['ALICE@CONTOSO.EXAMPLE', 'alice@Contoso-Alt.Example', 'alice@contoso.example.']) {
    const r = await fetch(`${url}${WK}${q(id, 'iPhone')}`);
    assert.equal(r.status, 200, id);
    assert.match((await r.json()).Servers[0].BaseURL, /\/t\/contoso\/enroll$/);
  }
});

test('without user-identifier the Host header selects the tenant', async () => {
  const res = await raw(port, `GET ${WK} HTTP/1.1\r\nHost: fabrikam.example\r\nConnection: close\r\n\r\n`);
  assert.equal(statusOf(res), 200);
  assert.match(res, /\/t\/fabrikam\/enroll/);
  const res2 = await raw(port, `GET ${WK} HTTP/1.1\r\nHost: unknown.example:443\r\nConnection: close\r\n\r\n`);
  assert.equal(statusOf(res2), 403);
});

test('per-tenant discovery URL', async () => {
  let r = await fetch(`${url}/t/contoso${WK}${q('alice@contoso.example', 'iPhone')}`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/json');
  // ABM fallback may send the Managed Apple Account, whose domain we do not serve
  r = await fetch(`${url}/t/contoso${WK}${q('alice@appleid.contoso.example', 'iPhone')}`);
  assert.equal(r.status, 200);
  // a domain that belongs to another tenant is refused
  r = await fetch(`${url}/t/contoso${WK}${q('bob@fabrikam.example', 'iPhone')}`);
  assert.equal(r.status, 403);
  r = await fetch(`${url}/t/nosuch${WK}${q('alice@contoso.example')}`);
  assert.equal(r.status, 404);
});

test('unknown or malformed identifiers get com.apple.well-known.failed', async () => {
  const bad = ['alice@unknown.example', 'a@b@contoso.example', '@contoso.example', 'alice@',
    'alice', 'alice@localhost', 'alice@10.0.0.1', 'alice@contoso..example', 'x\u0001@contoso.example', ''];
  for (const id of bad) {
    const r = await fetch(`${url}${WK}${q(id, 'iPhone')}`);
    assert.equal(r.status, 403, JSON.stringify(id));
    assert.equal(r.headers.get('content-type'), 'application/json');
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const j = await r.json();
    assert.equal(j.code, 'com.apple.well-known.failed');
    assert.equal(typeof j.description, 'string');
    assert.equal(typeof j.message, 'string');
    assert.ok(j.message.length > 10);
  }
});

test('HEAD answers like GET without a body', async () => {
  const res = await raw(port, `HEAD ${WK}${q('alice@contoso.example', 'iPhone')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  assert.equal(statusOf(res), 200);
  assert.match(res, /\r\nContent-Type: application\/json\r\n/i);
  const [, body] = res.split('\r\n\r\n');
  assert.equal(body, '');
  const r = await fetch(`${url}/t/contoso${WK}`, { method: 'HEAD' });
  assert.equal(r.status, 200);
});

test('other methods: 405 with Allow; unknown paths: 404', async () => {
  let r = await fetch(`${url}${WK}`, { method: 'POST', body: 'x' });
  assert.equal(r.status, 405);
  assert.match(r.headers.get('allow'), /GET/);
  r = await fetch(`${url}/nope`);
  assert.equal(r.status, 404);
});

test('metrics count discovery by route and status; access log has no identifiers', async () => {
  const r = await fetch(`${url}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const m = await r.text();
  assert.match(m, /enrollbridge_http_requests_total\{route="discovery",status="200"\} \d+/);
  assert.match(m, /enrollbridge_http_requests_total\{route="discovery",status="403"\} \d+/);
  assert.match(m, /enrollbridge_http_request_duration_seconds_bucket\{route="discovery",le="\+Inf"\} \d+/);
  assert.match(m, /enrollbridge_build_info\{version="[^"]+"\} 1/);
  const access = bridge.logs.filter((l) => l.includes('"msg":"access"'));
  assert.ok(access.length > 10);
  for (const l of access) {
    const j = JSON.parse(l);
    assert.ok(!l.includes('alice'), l);
    assert.ok(j.rid && j.status !== undefined && j.route);
  }
});

test('readyz reports the store', async () => {
  const r = await fetch(`${url}/readyz`);
  assert.equal(r.status, 200);
});
