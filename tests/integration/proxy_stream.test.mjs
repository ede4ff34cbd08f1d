// The MDM proxy streams response bodies (* /t/{T}/mdm/{rest}): the device
// gets the MDM's status, headers and first body bytes while the MDM is still
// sending, byte for byte what the MDM sent, within limits.upstream_max_bytes.
//
// A fake MDM (a node http server in this process) writes large, slow,
// chunked, cut and endless bodies; the device side is node's http client on
// a fresh connection each time, so that a cut response (aborted, or ended
// without its last byte or last chunk) is told apart from a complete one.
// Checked: the first bytes arrive long before the MDM has finished; chunked
// bodies arrive intact; an MDM dying mid-body cuts the device's response (or
// is a 502 when nothing was sent yet), never a complete-looking one; a body
// growing past the limit is cut or refused, never a complete 200; a device
// hanging up closes the MDM connection instead of the bridge reading on; a
// paused device holds the MDM back (backpressure) and then gets all 64 MiB;
// and afterwards the bridge still serves.
//
// Everything talks to the bridge asynchronously: the fake MDM lives in this
// process's event loop.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { performance } from 'node:perf_hooks';

import { enroll, freePort, oidcTenant, startTestIdp, startWorld, stopAll } from './idp.mjs';

const KiB = 1024;
const MiB = 1024 * KiB;
const MAX_BYTES = 64 * MiB; // limits.upstream_max_bytes (the configurable maximum)
const TINY_MAX = 1 * MiB; // limits.upstream_max_bytes of the second bridge
const TIMEOUT_S = 20; // limits.upstream_timeout: longer than any transfer here
const CT_CHECKIN = 'application/x-apple-aspen-mdm-checkin';

let idp;
let world; // the bridge with the large limit
let tiny; // a second bridge, upstream_max_bytes 1 MiB
let mdm; // the fake MDM
let token; // a device token of tenant gen (main bridge)
let tinyToken; // of tenant tiny (second bridge)
const routes = new Map(); // path at the fake MDM -> handler(req, res)

const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const mib = (n) => (n / MiB).toFixed(1);

function deferred() {
  let resolve;
  const promise = new Promise((r) => { resolve = r; });
  return { promise, resolve };
}

// Resolves with true when p settles within ms, else false.
const within = (p, ms) => {
  let t;
  return Promise.race([p.then(() => true), new Promise((r) => { t = setTimeout(() => r(false), ms); })])
    .finally(() => clearTimeout(t));
};

// ------------------------------------------------------------ fake MDM --

function startMdm() {
  const server = http.createServer((req, res) => {
    const path = req.url.split('?')[0];
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const h = routes.get(path);
      if (h) {
        h(req, res);
        return;
      }
      // an ordinary check-in or command: a small answer
      res.writeHead(200, { 'content-type': 'application/xml; charset=utf-8', 'x-mdm-reply': 'ok' });
      res.end(`<reply method="${req.method}">${Buffer.concat(chunks).toString('utf8')}</reply>`);
    });
  });
  // the bridge hangs up on bodies it refuses or can no longer deliver
  server.on('clientError', (e, s) => s.destroy());
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// Write data in pieces, honouring write()'s return value and 'drain';
// state.handed counts the bytes passed to the socket so far.
function pump(res, data, piece, state = {}) {
  let off = 0;
  state.handed = 0;
  const next = () => {
    while (off < data.length && !res.destroyed) {
      const chunk = data.subarray(off, off + piece);
      off += chunk.length;
      state.handed = off;
      if (!res.write(chunk)) {
        res.once('drain', next);
        return;
      }
    }
    if (off >= data.length && !res.destroyed) res.end(() => { state.endedAt = now(); });
  };
  next();
  return state;
}

// --------------------------------------------------------- the device --

// GET /t/{tenant}/mdm/{rest} on a fresh connection with node's http client.
// Resolves when the exchange is over with what the device saw:
// { status, headers, bytes, sha256, complete, aborted, error, t0, tHead,
//   tFirst, tEnd } (times from performance.now()). hooks.onRequest(req) gets
// the request at once, hooks.onFirst(res, req) runs at the first body bytes.
function deviceGet(base, tenant, rest, tok, hooks = {}) {
  return new Promise((resolve) => {
    const o = {
      status: 0, headers: {}, bytes: 0, complete: false, aborted: false, error: null,
      t0: now(), tHead: null, tFirst: null, tEnd: null,
    };
    const hash = crypto.createHash('sha256');
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      o.tEnd = now();
      o.sha256 = hash.digest('hex');
      resolve(o);
    };
    const req = http.request(`${base}/t/${tenant}/mdm/${rest}`, {
      agent: false,
      headers: { authorization: `Bearer ${tok}` },
    });
    hooks.onRequest?.(req);
    req.on('error', (e) => {
      o.error ??= e;
      if (!o.status) finish(); // else the response's 'close' finishes
    });
    req.on('response', (res) => {
      o.status = res.statusCode;
      o.headers = res.headers;
      o.tHead = now();
      res.on('data', (d) => {
        if (o.tFirst === null) {
          o.tFirst = now();
          hooks.onFirst?.(res, req);
        }
        o.bytes += d.length;
        hash.update(d);
      });
      res.on('aborted', () => { o.aborted = true; });
      res.on('error', (e) => { o.error ??= e; });
      res.on('close', () => {
        o.complete = res.complete;
        finish();
      });
    });
    req.end();
  });
}

// Whether the device could tell that the response is not the whole body.
function isCut(o, total) {
  const cl = o.headers['content-length'];
  return o.aborted || o.error !== null || !o.complete ||
    (cl !== undefined && o.bytes < Number(cl)) || o.bytes < total;
}

const show = (o) => `status ${o.status}, ${o.bytes} bytes, complete ${o.complete}, aborted ${o.aborted}, `
  + `error ${o.error?.code ?? o.error?.message ?? 'none'}, content-length ${o.headers['content-length']}, `
  + `transfer-encoding ${o.headers['transfer-encoding']}`;

// An MDM failure the bridge answered itself before sending anything.
function assertUpstreamError(o, what) {
  assert.equal(o.status, 502, `${what}: ${show(o)}`);
  assert.match(o.headers['retry-after'] ?? '', /^\d+$/, `${what}: no Retry-After`);
  assert.ok(o.complete && !o.aborted, `${what}: the 502 itself is whole`);
}

// ---------------------------------------------------------------- world --

// A device token whose grant is bound by its first Authenticate (until
// then a grant may send nothing else, issue 11).
async function signIn(bridge, tenant) {
  const r = await enroll({ bridge, tenant, login: 'user1' });
  assert.equal(r.status, 308, `sign-in stopped at ${r.stage}: ${r.status} ${r.body?.slice(0, 200) ?? ''}`);
  assert.ok(r.token);
  const b = await fetch(`${bridge.url}/t/${tenant}/mdm/checkin`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${r.token}`, 'content-type': CT_CHECKIN },
    body: '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>'
      + '<key>MessageType</key><string>Authenticate</string><key>Topic</key><string>com.apple.mgmt.test</string>'
      + '<key>EnrollmentID</key><string>ENR-STREAM-1</string></dict></plist>\n',
  });
  await b.arrayBuffer();
  assert.equal(b.status, 200, 'the binding Authenticate');
  return r.token;
}

before(async () => {
  mdm = await startMdm();
  const upstream = `http://127.0.0.1:${mdm.address().port}/base/`;
  idp = await startTestIdp();

  const port = await freePort();
  const gen = oidcTenant(`http://127.0.0.1:${port}`, idp, 'gen');
  gen.tenant.mdm = { upstream };
  world = await startWorld(port, [gen], {
    limits: { upstream_timeout: TIMEOUT_S, upstream_max_bytes: MAX_BYTES, threads: 2 },
  });

  const tport = await freePort();
  const small = oidcTenant(`http://127.0.0.1:${tport}`, idp, 'tiny', { domains: ['tiny.generic.test'] });
  small.tenant.mdm = { upstream };
  tiny = await startWorld(tport, [small], {
    limits: { upstream_timeout: TIMEOUT_S, upstream_max_bytes: TINY_MAX, threads: 2 },
  });

  token = await signIn(world.bridge, 'gen');
  tinyToken = await signIn(tiny.bridge, 'tiny');
});

after(async () => {
  await stopAll(world?.bridge, tiny?.bridge, idp);
  mdm.closeAllConnections?.();
  await new Promise((r) => mdm.close(r));
});

// ---------------------------------------------------------------- tests --

test('large slow body: status, headers and first bytes arrive before the MDM has finished', async (t) => {
  const total = 4 * MiB;
  const first = 64 * KiB;
  const body = crypto.randomBytes(total);
  const up = {};
  routes.set('/base/large', (req, res) => {
    up.t0 = now();
    res.writeHead(200, {
      'content-type': 'application/vnd.enrollbridge-test; v=1',
      'content-length': total,
      'x-mdm-stream': 'yes',
      etag: '"v1-large"',
      'content-disposition': 'attachment; filename="large.bin"',
    });
    res.write(body.subarray(0, first));
    setTimeout(() => {
      up.restAt = now();
      res.end(body.subarray(first), () => { up.endAt = now(); });
    }, 1500);
  });
  const o = await deviceGet(world.bridge.url, 'gen', 'large?x=1', token);
  const firstMs = Math.round(o.tFirst - o.t0);
  const headMs = Math.round(o.tHead - o.t0);
  const wholeMs = Math.round(o.tEnd - o.t0);
  t.diagnostic(`headers after ${headMs} ms, first body byte after ${firstMs} ms, whole body after ${wholeMs} ms`);

  assert.equal(o.status, 200, show(o));
  assert.ok(o.tFirst !== null, 'no body byte at all');
  assert.ok(firstMs < 1000 && o.tFirst < up.restAt,
    `first body byte after ${firstMs} ms, headers after ${headMs} ms; the MDM sent its first ${first / KiB} KiB `
    + `at once and the rest after ${Math.round(up.restAt - o.t0)} ms: the response was not streamed`);
  assert.ok(wholeMs >= 1400, `the whole body after ${wholeMs} ms, before the MDM had sent it`);
  assert.ok(o.complete && !o.aborted && o.error === null, show(o));
  assert.equal(o.bytes, total);
  assert.equal(o.sha256, sha256(body), 'the body differs from what the MDM sent');
  // end-to-end headers pass through
  assert.equal(o.headers['content-type'], 'application/vnd.enrollbridge-test; v=1');
  assert.equal(o.headers['x-mdm-stream'], 'yes');
  assert.equal(o.headers.etag, '"v1-large"');
  assert.equal(o.headers['content-disposition'], 'attachment; filename="large.bin"');
  if (o.headers['content-length'] !== undefined) assert.equal(Number(o.headers['content-length']), total);
});

test('chunked body written in many small pieces arrives intact', async () => {
  const sizes = [];
  // deterministic piece sizes from 1 byte to ~40 KiB
  for (let i = 0, x = 7; i < 160; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    sizes.push(1 + (x % (40 * KiB)));
  }
  const total = sizes.reduce((a, b) => a + b, 0);
  const body = crypto.randomBytes(total);
  let httpVersion;
  routes.set('/base/chunked', (req, res) => {
    httpVersion = req.httpVersion;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-mdm-stream': 'chunked' });
    let off = 0;
    let i = 0;
    const next = () => {
      if (res.destroyed) return;
      if (i === sizes.length) {
        res.end();
        return;
      }
      res.write(body.subarray(off, off + sizes[i]));
      off += sizes[i++];
      if (i % 4 === 0) setTimeout(next, 5); else setImmediate(next);
    };
    next();
  });
  const o = await deviceGet(world.bridge.url, 'gen', 'chunked', token);
  assert.equal(httpVersion, '1.1', 'the MDM was asked with HTTP/1.1, so it answers chunked');
  assert.equal(o.status, 200, show(o));
  assert.ok(o.complete && !o.aborted && o.error === null, show(o));
  assert.equal(o.bytes, total);
  assert.equal(o.sha256, sha256(body), 'the body differs from what the MDM sent');
  assert.equal(o.headers['x-mdm-stream'], 'chunked');
  // delimited for the device (a cut must be visible): a length or chunks
  const cl = o.headers['content-length'];
  assert.ok(cl !== undefined ? Number(cl) === total : /\bchunked\b/i.test(o.headers['transfer-encoding'] ?? ''),
    `the response is neither length-delimited nor chunked: ${show(o)}`);
});

test('MDM dies mid-body: the device sees a cut response (or a 502), never a complete one', async (t) => {
  for (const kind of ['length', 'chunked']) {
    const total = 1 * MiB;
    const sent = 256 * KiB;
    const body = crypto.randomBytes(total);
    const deviceHasBytes = deferred();
    let upstreamDead = false;
    routes.set(`/base/cut-${kind}`, (req, res) => {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        ...(kind === 'length' ? { 'content-length': total } : {}),
      });
      for (let off = 0; off < sent; off += 16 * KiB) res.write(body.subarray(off, off + 16 * KiB));
      // die once the device has some of it (a bridge that buffers never
      // lets it: then after a while)
      within(deviceHasBytes.promise, 1500).then(() => {
        upstreamDead = true;
        res.socket.destroy();
      });
    });
    const o = await deviceGet(world.bridge.url, 'gen', `cut-${kind}`, token, {
      onFirst: () => deviceHasBytes.resolve(),
    });
    t.diagnostic(`${kind}: ${show(o)}`);
    assert.ok(upstreamDead, `${kind}: the device's response was over before the MDM died: ${show(o)}`);
    if (o.status === 200) {
      assert.ok(isCut(o, total), `${kind}: a complete-looking response from an MDM that died mid-body: ${show(o)}`);
      assert.ok(o.bytes <= sent, `${kind}: ${o.bytes} bytes, the MDM sent ${sent}`);
      assert.ok(o.aborted || o.error !== null, `${kind}: the device saw no error: ${show(o)}`);
    } else {
      assertUpstreamError(o, kind);
    }
  }
});

test('chunked body growing past limits.upstream_max_bytes: cut or 502, never a complete 200', async (t) => {
  const total = 3 * MiB;
  const body = crypto.randomBytes(total);
  const up = {};
  routes.set('/base/grow', (req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    pump(res, body, 64 * KiB, up);
  });
  const o = await deviceGet(tiny.bridge.url, 'tiny', 'grow', tinyToken);
  t.diagnostic(`chunked ${mib(total)} MiB over a ${mib(TINY_MAX)} MiB limit: ${show(o)}; `
    + `the MDM handed ${mib(up.handed)} MiB`);
  if (o.status === 200) {
    assert.ok(isCut(o, total), `a complete 200 for a body over the limit: ${show(o)}`);
    assert.ok(o.aborted || o.error !== null, `the device saw no error: ${show(o)}`);
  } else {
    assertUpstreamError(o, 'chunked over the limit');
  }
  assert.ok(o.bytes <= TINY_MAX, `${o.bytes} bytes reached the device, over the ${TINY_MAX} limit`);

  // a Content-Length over the limit: refused before anything is sent
  routes.set('/base/too-long', (req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 2 * MiB });
    res.end(Buffer.alloc(2 * MiB, 0x62));
  });
  const o2 = await deviceGet(tiny.bridge.url, 'tiny', 'too-long', tinyToken);
  assertUpstreamError(o2, 'Content-Length over the limit');
  assert.ok(o2.bytes < 1000, `${o2.bytes} bytes of body`);
});

test('device hangs up mid-stream: the MDM connection is closed within 3 s', async (t) => {
  const up = { closed: deferred(), writes: 0 };
  const piece = crypto.randomBytes(16 * KiB);
  let upstreamRes;
  routes.set('/base/endless', (req, res) => {
    upstreamRes = res;
    up.t0 = now();
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const onClose = () => {
      up.closedAt ??= now();
      up.closed.resolve();
    };
    res.on('close', onClose);
    res.socket.on('close', onClose);
    // ~800 KiB/s for up to 30 s: far longer than this test
    const timer = setInterval(() => {
      if (res.destroyed || now() - up.t0 > 30000) {
        clearInterval(timer);
        if (!res.destroyed) res.end();
        return;
      }
      res.write(piece);
      up.writes++;
    }, 20);
    res.on('close', () => clearInterval(timer));
  });
  try {
    let req;
    const firstBytes = deferred();
    const done = deviceGet(world.bridge.url, 'gen', 'endless', token, {
      onRequest: (rq) => { req = rq; },
      onFirst: () => firstBytes.resolve(),
    });
    // hang up at the first body bytes (a bridge that buffers never sends
    // any: then after 2 s, which tests the propagation all the same)
    const gotBytes = await within(firstBytes.promise, 2000);
    assert.ok(up.t0 !== undefined, 'the request never reached the MDM');
    const hangUp = now();
    req.destroy(); // the device's connection, with or without a response
    const closed = await within(up.closed.promise, 3000);
    const o = await done;
    t.diagnostic(`first bytes ${gotBytes ? 'arrived' : 'never arrived'}; MDM connection closed `
      + `${closed ? `${Math.round(up.closedAt - hangUp)} ms` : 'not within 3000 ms'} after the hang-up; `
      + `the MDM wrote ${up.writes * 16} KiB`);
    assert.ok(closed, `the MDM connection was still open 3000 ms after the device hung up `
      + `(the MDM had written ${up.writes * 16} KiB by then): the bridge reads on instead of aborting`);
    assert.ok(gotBytes, `no body byte reached the device within 2000 ms (${show(o)}): not streamed`);
  } finally {
    upstreamRes?.socket?.destroy();
  }
});

test('backpressure: a paused device holds the MDM back, then gets all 64 MiB intact', async (t) => {
  const total = MAX_BYTES;
  const body = crypto.randomBytes(total);
  const up = {};
  routes.set('/base/flood', (req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
    pump(res, body, 64 * KiB, up);
  });
  const resP = deferred();
  const t0 = now();
  const req = http.request(`${world.bridge.url}/t/gen/mdm/flood`, {
    agent: false,
    headers: { authorization: `Bearer ${token}` },
  });
  req.on('response', (res) => resP.resolve(res)); // not read: paused
  req.on('error', (e) => resP.resolve(e));
  req.end();
  try {
    await pausedThenRead(t, resP, up, body, t0);
  } finally {
    req.destroy();
  }
});

async function pausedThenRead(t, resP, up, body, t0) {
  const total = body.length;
  // paused ~2 s: sample what the MDM managed to hand to its socket until
  // it has settled (or everything is gone)
  let last = -1;
  let stableSince = now();
  for (;;) {
    await sleep(100);
    const h = up.handed ?? 0;
    if (h !== last) {
      last = h;
      stableSince = now();
    }
    const paused = now() - t0;
    if (h >= total || paused >= 5000 || (paused >= 2000 && now() - stableSince >= 500)) break;
  }
  const handed = up.handed ?? 0;
  const gotHead = await within(resP.promise, 0);
  t.diagnostic(`with the device paused for ${Math.round(now() - t0)} ms the MDM handed `
    + `${mib(handed)} MiB of ${mib(total)} MiB to its socket (headers at the device: ${gotHead ? 'yes' : 'no'})`);

  // read: everything arrives, intact
  const res = await within(resP.promise, 10000) ? await resP.promise : null;
  assert.ok(res && !(res instanceof Error), `no response: ${res}`);
  assert.equal(res.statusCode, 200, `a body of ${total} bytes, exactly limits.upstream_max_bytes, is allowed`);
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  const t1 = now();
  const ended = new Promise((resolve) => {
    res.on('data', (d) => { bytes += d.length; hash.update(d); });
    res.on('aborted', () => resolve(false));
    res.on('error', () => resolve(false));
    res.on('close', () => resolve(res.complete));
  });
  res.resume();
  const finished = await within(ended, 15000);
  const ms = Math.round(now() - t1);
  t.diagnostic(`after resuming, ${mib(bytes)} MiB in ${ms} ms`);
  assert.ok(finished, `only ${bytes} of ${total} bytes within 15 s of resuming`);
  assert.equal(await ended, true, 'the response was cut');
  assert.equal(bytes, total);
  assert.equal(hash.digest('hex'), sha256(body), 'the body differs from what the MDM sent');
  // checked last, so that a bridge without backpressure still shows
  // whether the body got through
  assert.ok(handed < 40 * MiB, `with the device paused the MDM handed ${mib(handed)} MiB of ${mib(total)} MiB `
    + 'to its socket: the bridge reads on without backpressure');
}

test('small chunked body: gathered and sent with its length; HTTP/1.0 device: streamed to the connection end', async () => {
  // a small answer the MDM sends chunked comes whole, with Content-Length
  const small = crypto.randomBytes(3000);
  routes.set('/base/small-chunked', (req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.write(small.subarray(0, 1000));
    setTimeout(() => res.end(small.subarray(1000)), 50);
  });
  const s = await deviceGet(world.bridge.url, 'gen', 'small-chunked', token);
  assert.equal(s.status, 200, show(s));
  assert.equal(s.headers['content-length'], String(small.length), show(s));
  assert.equal(s.headers['transfer-encoding'], undefined, show(s));
  assert.equal(s.sha256, sha256(small));

  // an HTTP/1.0 device cannot take chunks: the end of a large body of
  // unknown length is the connection's end, which must come at once
  const big = crypto.randomBytes(512 * KiB);
  routes.set('/base/big-chunked', (req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    pump(res, big, 16 * KiB);
  });
  const net = await import('node:net');
  const t0 = now();
  const raw = await new Promise((resolve, reject) => {
    const c = net.connect(new URL(world.bridge.url).port, '127.0.0.1');
    const got = [];
    c.on('data', (d) => got.push(d));
    c.on('end', () => resolve(Buffer.concat(got)));
    c.on('error', reject);
    c.write(`GET /t/gen/mdm/big-chunked HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`);
  });
  const ms = now() - t0;
  const sep = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, sep).toString('latin1');
  assert.match(head, /^HTTP\/1\.[01] 200 /, head);
  assert.doesNotMatch(head, /transfer-encoding/i, head);
  assert.equal(sha256(raw.subarray(sep + 4)), sha256(big), 'the HTTP/1.0 body differs');
  assert.ok(ms < 5000, `the HTTP/1.0 response ended after ${ms.toFixed(0)} ms`);
  console.log(`ℹ HTTP/1.0: ${mib(big.length)} MiB, connection closed after ${ms.toFixed(0)} ms`);
});

test('afterwards the bridge still serves: /healthz, and an ordinary check-in', async () => {
  for (const b of [world.bridge, tiny.bridge]) {
    assert.equal(b.proc.exitCode, null, 'the bridge exited');
    const hz = await new Promise((resolve, reject) => {
      http.get(`${b.url}/healthz`, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      }).on('error', reject);
    });
    assert.equal(hz, 200);
  }
  const plist = '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>'
    + '<key>MessageType</key><string>Authenticate</string><key>Topic</key><string>com.apple.mgmt.test</string>'
    + '<key>EnrollmentID</key><string>ENR-STREAM-1</string></dict></plist>\n';
  const r = await fetch(`${world.bridge.url}/t/gen/mdm/checkin`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': CT_CHECKIN },
    body: plist,
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-mdm-reply'), 'ok');
  assert.equal(await r.text(), `<reply method="PUT">${plist}</reply>`);
  const bad = [...world.bridge.logs, ...tiny.bridge.logs].filter((l) => /Sanitizer|runtime error/.test(l));
  assert.deepEqual(bad, []);
});
