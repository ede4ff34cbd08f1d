// The test load balancer (lb.mjs) itself, against plain node servers:
// round-robin and lb.next(), headers (X-Forwarded-For appended, Host kept,
// hop-by-hop ones dropped), bodies streamed both ways, and the retry rule:
// a refused connection goes to the other target (marked down), an
// idempotent request that sent no body byte is retried, a POST whose body
// reached a target that died is not (502).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { startLb } from './lb.mjs';
import { freePort } from './lib.mjs';

const servers = [];
after(async () => {
  for (const s of servers) { s.closeAllConnections(); await new Promise((r) => s.close(r)); }
});

// A target answering its name, what it saw, and a hash of the body; with
// `hook` it may do something else with the request.
async function target(name, hook) {
  const seen = [];
  const s = http.createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, headers: req.headers });
    if (hook && hook(req, res)) return;
    const h = crypto.createHash('sha256');
    let n = 0;
    req.on('data', (d) => { h.update(d); n += d.length; });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive', 'x-target': name });
      res.end(JSON.stringify({ name, n, sha: h.digest('hex'), headers: req.headers }));
    });
  });
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  servers.push(s);
  return { name, port: s.address().port, seen, server: s };
}

async function get(lb, p = '/', init = {}) {
  const r = await fetch(`${lb.url}${p}`, init);
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: r.status === 200 ? JSON.parse(text) : text };
}

test('round-robin, lb.next(), and the headers a target sees', async () => {
  const [a, b] = [await target('a'), await target('b')];
  const lb = await startLb([a.port, b.port]);
  try {
    const names = [];
    for (let i = 0; i < 4; i += 1) names.push((await get(lb)).body.name);
    assert.deepEqual(names, ['a', 'b', 'a', 'b']);
    lb.next(0);
    assert.equal((await get(lb)).body.name, 'a');
    lb.next(0);
    assert.equal((await get(lb)).body.name, 'a', 'forced again');
    // node's http client: fetch refuses to send Keep-Alive
    const r = await new Promise((resolve, reject) => {
      http.get({
        host: '127.0.0.1', port: lb.port, path: '/p?q=1', agent: false,
        headers: { 'x-forwarded-for': '203.0.113.7', 'x-custom': 'v', 'keep-alive': 'timeout=9', connection: 'keep-alive' },
      }, (res) => {
        let text = '';
        res.on('data', (d) => { text += d; });
        res.on('end', () => { res.req.destroy(); resolve({ headers: res.headers, body: JSON.parse(text) }); });
      }).on('error', reject);
    });
    assert.equal(r.body.headers['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
    assert.equal(r.body.headers['x-custom'], 'v');
    assert.equal(r.body.headers.host, `127.0.0.1:${lb.port}`);
    assert.equal(r.body.headers['keep-alive'], undefined, 'hop-by-hop: not forwarded');
    assert.equal(r.headers.connection, 'keep-alive', 'to the client, its own keep-alive');
    assert.equal(r.headers['x-target'], 'a');
    assert.throws(() => lb.next(2), /no target 2/);
  } finally {
    await lb.close();
  }
});

test('bodies stream both ways', async () => {
  const echo = await target('echo', (req, res) => {
    if (req.url !== '/echo') return false;
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    req.pipe(res);
    return true;
  });
  const lb = await startLb([echo.port]);
  try {
    const body = crypto.randomBytes(3 * 1024 * 1024);
    const r = await fetch(`${lb.url}/echo`, { method: 'POST', body });
    assert.equal(r.status, 200);
    assert.ok(Buffer.from(await r.arrayBuffer()).equals(body));
    const h = await get(lb, '/', { method: 'PUT', body: 'x'.repeat(1000) });
    assert.equal(h.body.n, 1000);
  } finally {
    await lb.close();
  }
});

test('a refused connection goes to the other target, which takes the traffic while the first is down', async () => {
  const dead = await freePort(); // nothing listens there
  const b = await target('b');
  const lb = await startLb([dead, b.port]);
  try {
    lb.next(0);
    const r = await get(lb, '/', { method: 'POST', body: 'payload' });
    assert.equal(r.status, 200);
    assert.equal(r.body.name, 'b');
    assert.equal(r.body.n, 7, 'the whole body, once');
    assert.ok(lb.isDown(0));
    for (let i = 0; i < 3; i += 1) assert.equal((await get(lb)).body.name, 'b');
  } finally {
    await lb.close();
  }
});

test('a POST whose body reached a target that died is not retried; an idempotent GET that sent nothing is', async () => {
  const cut = await target('cut', (req) => { req.once('data', () => req.socket.destroy()); req.on('end', () => req.socket.destroy()); return true; });
  const b = await target('b');
  const lb = await startLb([cut.port, b.port]);
  try {
    const before = b.seen.length;
    lb.next(0);
    const r = await get(lb, '/', { method: 'POST', body: 'x'.repeat(100000) });
    assert.equal(r.status, 502);
    assert.equal(b.seen.length, before, 'the other target never saw it');
    lb.next(0);
    const g = await get(lb, '/again');
    assert.equal(g.status, 200);
    assert.equal(g.body.name, 'b');
    assert.equal(b.seen.at(-1).url, '/again');
  } finally {
    await lb.close();
  }
});

test('close() ends kept-alive clients and returns', async () => {
  const a = await target('a');
  const lb = await startLb([a.port]);
  const agent = new http.Agent({ keepAlive: true });
  await new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: lb.port, path: '/', agent }, (res) => { res.resume(); res.on('end', resolve); }).on('error', reject);
  });
  const t0 = Date.now();
  await lb.close();
  assert.ok(Date.now() - t0 < 2000);
  agent.destroy();
});
