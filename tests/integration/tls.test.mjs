// The server's request gate over TLS. The framing checks
// (src/http/h1check.c) read libmicrohttpd's header layout; over TLS the
// library parses decrypted bytes, and a difference there would refuse
// every request (fail closed) or let a folded line through. Real TLS
// (a fresh self-signed P-256 certificate), real binary, loopback only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { baseTenant, freePort, startBridge, tmpDir, writeConfig } from './lib.mjs';

// the bridge's certificate is our own, made here (startBridge's fetch too)
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

let bridge;
let port;

before(async () => {
  const dir = tmpDir('eb-tls-');
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  port = await freePort();
  const cfg = writeConfig({
    port,
    tenants: [baseTenant('gen', ['generic.test'])],
    main: { public_url: `https://127.0.0.1:${port}`, tls: { cert, key } },
  });
  bridge = await startBridge(cfg.main);
});

after(async () => { await bridge?.stop(); });

// One request over a kept-alive agent -> { status, headers, body }.
function get(agent, p, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: p, agent, headers, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

// Raw bytes over one TLS connection; everything the server sent until it
// closed (or ms passed), and whether it closed.
function rawTls(bytes, ms = 4000) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => s.write(bytes));
    let out = '';
    let closed = false;
    const timer = setTimeout(() => { s.destroy(); resolve({ out, closed }); }, ms);
    s.setEncoding('latin1');
    s.on('data', (d) => { out += d; });
    s.on('error', (e) => { if (!out) { clearTimeout(timer); reject(e); } });
    s.on('close', () => { closed = true; clearTimeout(timer); resolve({ out, closed }); });
  });
}

test('sound requests with many headers are served over TLS, kept alive', async () => {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const headers = {
    'User-Agent': 'DeviceManagementClient/1.0',
    Accept: '*/*',
    'Accept-Language': 'en-GB,en;q=0.9',
    'X-Apple-Test': 'a b\tc',
    Cookie: 'a=1; b=2',
  };
  for (let i = 0; i < 20; i++) {
    const r = await get(agent, '/.well-known/com.apple.remotemanagement?user-identifier=alice@generic.test&model-family=iPhone', headers);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(JSON.parse(r.body).Servers.length, 1);
  }
  assert.equal((await get(agent, '/healthz')).status, 200);
  agent.destroy();
});

test('a folded header line and CL+TE are refused over TLS, and nothing behind them is answered', async () => {
  const next = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
  for (const [name, head] of [
    ['obs-fold', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Foo: a\r\n X-Managed-Apple-ID: victim@generic.test\r\n\r\n'],
    ['blank before colon', 'GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n'],
    ['CL+TE', 'POST /t/gen/enroll HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['two Hosts', 'GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n'],
  ]) {
    const { out, closed } = await rawTls(head + next);
    assert.match(out, /^HTTP\/1\.1 400 /, `${name}: ${out.slice(0, 80)}`);
    assert.equal(out.match(/HTTP\/1\.1 /g).length, 1, `${name}: answered the pipelined request too`);
    assert.match(out, /\r\nConnection: close\r\n/i, name);
    assert.ok(closed, `${name}: connection left open`);
  }
  // and the server keeps serving
  const agent = new https.Agent({ keepAlive: false });
  assert.equal((await get(agent, '/healthz')).status, 200);
});
