// A small round-robin HTTP reverse proxy on 127.0.0.1 standing in for the
// load balancer in front of several bridge replicas (SCALEOUT.md 4.3).
//
// What it does, exactly:
// - Listens on 127.0.0.1 (a free port unless given), keeps client
//   connections alive, and forwards every request to one target with the
//   same method, path and headers (Host kept as the client sent it), minus
//   the hop-by-hop ones (Connection, Keep-Alive, Proxy-Connection, TE,
//   Upgrade), plus X-Forwarded-For with the client's address appended.
//   Bodies stream both ways; the response keeps its status and headers
//   (minus hop-by-hop ones).
// - Picks targets round-robin over the ones not marked down. lb.next(i)
//   forces the next request (only that one) to target i, down or not.
// - A target is marked down for DOWN_MS when a connection to it fails
//   (ECONNREFUSED and the other connect errors); a marked target is skipped
//   by round-robin until the mark expires or setTargets()/up() clears it.
// - A failed attempt is retried once, on another target, only when the
//   connection was refused (nothing reached the target), or when not one
//   byte of the request body was handed to the target and the method is
//   idempotent (GET, HEAD, OPTIONS, PUT, DELETE). Anything else answers 502
//   (503 with no target left), or, when the response had started, cuts the
//   client connection. A client that goes away cuts the target exchange.
// - Bounded: every upstream exchange times out after UPSTREAM_MS (504),
//   and close() shuts the listener, every client and upstream connection.
import http from 'node:http';

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'upgrade', 'trailer']);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
const DOWN_MS = 1000;
const UPSTREAM_MS = 30000;

function forwardHeaders(raw, client) {
  const out = [];
  let xff;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    if (HOP.has(k)) continue;
    if (k === 'x-forwarded-for') { xff = xff ? `${xff}, ${raw[i + 1]}` : raw[i + 1]; continue; }
    out.push(raw[i], raw[i + 1]);
  }
  out.push('X-Forwarded-For', xff ? `${xff}, ${client}` : client);
  return out;
}

function responseHeaders(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!HOP.has(raw[i].toLowerCase())) out.push(raw[i], raw[i + 1]);
  }
  return out;
}

// targets: [{host, port}] or ports. Returns the LB: { port, url,
// next(i), setTargets(list), up(i), down(i), isDown(i), counts, close() }.
export async function startLb(targets, { port = 0 } = {}) {
  let list = [];
  let down = [];
  let rr = 0;
  let forced = null;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const counts = [];

  const setTargets = (ts) => {
    list = ts.map((t) => (typeof t === 'number' ? { host: '127.0.0.1', port: t } : t));
    down = list.map(() => 0);
    counts.length = 0;
    for (let i = 0; i < list.length; i += 1) counts.push(0);
    rr = 0;
  };
  setTargets(targets);
  const isDown = (i) => down[i] > Date.now();

  function pick(exclude) {
    if (forced !== null && forced !== exclude) {
      const i = forced;
      forced = null;
      return i;
    }
    for (let k = 0; k < list.length; k += 1) {
      const i = (rr + k) % list.length;
      if (i === exclude || isDown(i)) continue;
      rr = i + 1;
      return i;
    }
    return -1;
  }

  function attempt(req, res, i, retried) {
    const t = list[i];
    counts[i] += 1;
    let bodySent = 0;
    let piping = false;
    let answered = false;
    const up = http.request({
      host: t.host, port: t.port, method: req.method, path: req.url, agent,
      headers: forwardHeaders(req.rawHeaders, req.socket.remoteAddress),
      timeout: UPSTREAM_MS, setHost: false,
    });
    const startBody = () => {
      if (piping) return;
      piping = true;
      if (req.readableEnded) { up.end(); return; }
      req.on('data', (d) => { bodySent += d.length; });
      req.pipe(up);
    };
    // hand the body over only once connected, so that a refused or failed
    // connection has sent nothing and the request can go elsewhere
    up.on('socket', (s) => {
      if (s.connecting) s.once('connect', startBody); else startBody();
    });
    // the client went away before the answer was complete: so does the
    // exchange with the target
    res.on('close', () => { if (!res.writableFinished) up.destroy(); });
    up.on('timeout', () => up.destroy(Object.assign(new Error('upstream timeout'), { code: 'ETIMEDOUT' })));
    up.on('response', (ur) => {
      answered = true;
      res.writeHead(ur.statusCode, ur.statusMessage, responseHeaders(ur.rawHeaders));
      ur.pipe(res);
      ur.on('error', () => res.destroy());
      ur.on('aborted', () => res.destroy());
    });
    up.on('error', (e) => {
      if (piping) req.unpipe(up);
      if (res.destroyed) return; // the client is gone (see above)
      if (answered || res.headersSent) { res.destroy(); return; }
      const refused = CONNECT_ERRORS.has(e.code);
      if (refused) down[i] = Date.now() + DOWN_MS;
      const again = !retried && (refused || (bodySent === 0 && IDEMPOTENT.has(req.method)));
      const other = again ? pick(i) : -1;
      if (other >= 0) { attempt(req, res, other, true); return; }
      res.writeHead(e.code === 'ETIMEDOUT' ? 504 : 502, { 'content-type': 'text/plain' });
      res.end(`lb: ${e.code ?? e.message}\n`);
    });
  }

  const server = http.createServer({ keepAlive: true }, (req, res) => {
    req.pause();
    const i = pick(-1);
    if (i < 0) {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('lb: no target\n');
      return;
    }
    attempt(req, res, i, false);
  });
  server.keepAliveTimeout = 5000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const lbPort = server.address().port;
  return {
    port: lbPort,
    url: `http://127.0.0.1:${lbPort}`,
    counts,
    next(i) {
      if (!Number.isInteger(i) || i < 0 || i >= list.length) throw new Error(`lb.next: no target ${i}`);
      forced = i;
    },
    setTargets,
    up(i) { down[i] = 0; },
    down(i) { down[i] = Date.now() + DOWN_MS; },
    isDown,
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      });
    },
  };
}
