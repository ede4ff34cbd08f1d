// "listen" as a list of addresses, against the real binary: every address
// serves, IPv6 literals in brackets (the [::1] case is skipped, with a
// message, when the machine has no IPv6 loopback), limits.max_connections
// is one limit over all the listeners, and errors name the entry.
// Loopback only (127.0.0.1 and 127.0.0.2 are both on lo).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { baseTenant, cli, freePort, startBridge, writeConfig } from './lib.mjs';

function hasIpv6Loopback() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(0, '::1', () => s.close(() => resolve(true)));
  });
}

async function healthz(host, port) {
  const r = await fetch(`http://${host}:${port}/healthz`);
  return r.status;
}

// A connection in the middle of a request body (past its head, so the
// table of connections waiting for a head does not evict it); resolves
// once open.
function busy(host, port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host, () => {
      s.write('POST /t/gen/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/pkcs7-signature\r\n'
        + 'Content-Length: 1000\r\n\r\n0123456789');
      resolve(s);
    });
    s.once('error', reject);
  });
}

// A request on a new connection: the status line, or '' when the server
// closed the connection without an answer.
function once(host, port) {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    let out = '';
    const t = setTimeout(() => { s.destroy(); resolve(out); }, 3000);
    s.on('connect', () => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    s.on('data', (d) => { out += d; });
    s.on('close', () => { clearTimeout(t); resolve(out.split('\r\n')[0]); });
    s.on('error', () => {});
  });
}

test('every address of the list serves', async (t) => {
  const port = await freePort();
  const v6 = await hasIpv6Loopback();
  const listen = [`127.0.0.1:${port}`, `127.0.0.2:${port}`];
  if (v6) listen.push(`[::1]:${port}`);
  else t.diagnostic('no IPv6 loopback (::1) on this machine: the [::1] listener is not tested');
  const conf = writeConfig({ port, tenants: [baseTenant('gen', ['generic.test'])], main: { listen } });
  const b = await startBridge(conf.main);
  try {
    assert.equal(await healthz('127.0.0.1', port), 200);
    assert.equal(await healthz('127.0.0.2', port), 200);
    if (v6) {
      assert.equal(await healthz('[::1]', port), 200);
      await b.waitLog(new RegExp(`listening on \\[::1\\]:${port} `));
    }
    await b.waitLog(new RegExp(`listening on 127\\.0\\.0\\.2:${port} `));
  } finally {
    // every listener's daemons stop cleanly on SIGTERM
    assert.deepEqual(await b.stop(), { code: 0, signal: null });
  }
});

test('limits.max_connections is one limit over every listener', async () => {
  const port = await freePort();
  const conf = writeConfig({
    port,
    tenants: [baseTenant('gen', ['generic.test'])],
    main: {
      listen: [`127.0.0.1:${port}`, `127.0.0.2:${port}`],
      limits: { max_connections: 4, per_ip_connections: 0, threads: 1, head_timeout: 30, min_body_rate: 0 },
    },
  });
  const b = await startBridge(conf.main);
  const open = [];
  try {
    // five over both listeners: the fifth is refused by the shared count
    // (each listener's own daemon would have room for four)
    for (const h of ['127.0.0.1', '127.0.0.1', '127.0.0.2', '127.0.0.2']) open.push(await busy(h, port));
    await new Promise((r) => setTimeout(r, 300)); // their heads are read
    open.push(await busy('127.0.0.2', port));
    await b.waitLog(/connection refused: limits\.max_connections \(4\) reached/);
    for (const s of open) s.destroy();
    open.length = 0;
    await new Promise((r) => setTimeout(r, 200));
    // the count is given back when connections close
    assert.equal(await once('127.0.0.2', port), 'HTTP/1.1 200 OK');
    assert.equal(await once('127.0.0.1', port), 'HTTP/1.1 200 OK');
  } finally {
    for (const s of open) s.destroy();
    await b.stop();
  }
});

test('listen errors name the entry', () => {
  const conf = writeConfig({ port: 1, tenants: [baseTenant('gen', ['generic.test'])] });
  for (const [listen, key, why] of [
    [[], 'listen', /1 to 16 addresses/],
    [['127.0.0.1:8080', 7], 'listen[1]', /must be a string/],
    [['127.0.0.1:8080', '[::1:8080'], 'listen[1]', /\[address\]:port/],
    [['127.0.0.1:8080', '::1:8080'], 'listen[1]', /\[address\]:port/],
    [['127.0.0.1:8080', '[::1]:0'], 'listen[1]', /host:port/],
    [['[::1]:8080', '[::1]:8080'], 'listen[1]', /the same address as listen\[0\]/],
    [{ a: 1 }, 'listen', /string or a list/],
    ['127.0.0.1', 'listen', /host:port/],
  ]) {
    const p = path.join(conf.dir, 'listen.json');
    fs.writeFileSync(p, JSON.stringify({ ...conf.cfg, listen }));
    const out = cli(['check-config', '-c', p]);
    assert.notEqual(out.code, 0, JSON.stringify(listen));
    assert.ok(out.stderr.includes(`${p}: ${key}: `), `${JSON.stringify(listen)}: ${out.stderr}`);
    assert.match(out.stderr, why, JSON.stringify(listen));
  }
});

test('an address that cannot be bound names its entry', async () => {
  const port = await freePort();
  const blocker = net.createServer().listen(port, '127.0.0.2');
  await new Promise((r) => blocker.once('listening', r));
  try {
    const conf = writeConfig({
      port,
      tenants: [baseTenant('gen', ['generic.test'])],
      main: { listen: [`127.0.0.1:${port}`, `127.0.0.2:${port}`] },
    });
    const out = cli(['serve', '-c', conf.main], { timeout: 10000 });
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, new RegExp(`listen\\[1\\]: cannot serve on 127\\.0\\.0\\.2:${port}: `));
  } finally {
    blocker.close();
  }
});
