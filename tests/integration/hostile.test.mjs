// The hostile-input matrix (issue 11, findings 4 and 5): raw bytes over a
// socket through the real bridge to an MDM stub that records every byte it
// receives, so "not forwarded" and "not smuggled" are read from the MDM's
// side, not assumed.
//
// Each case is one row of CASES: a name, the raw request bytes (built from
// a context with the Host, a bound bearer and a valid check-in body), the
// status the device must get, and what the MDM must see: nothing, or
// exactly the header lines listed. A refused request is answered with
// "Connection: close" and the bridge really closes: a request pipelined
// behind it (one the MDM would record) is never answered nor forwarded.
// To add a case, add a row.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import {
  enroll, freePort, metricsText, oidcTenant, startTestIdp, startWorld, stopAll,
} from './idp.mjs';

const CT = 'application/x-apple-aspen-mdm-checkin';
const ENROLLMENT = 'ENR-HOSTILE-1';

let idp;
let bridge;
let port;
let token;
let gid;
let mdm;
let mdmPort;

// ------------------------------------------------------------- MDM stub --

// A deliberately lenient HTTP/1.1 server on a raw socket: it frames by
// Content-Length only (what a naive MDM does), answers every request it
// finds, and records each request's raw head and body. Everything that
// arrives is also kept as one byte log per connection.
const mdmRequests = []; // { head: [lines], body }
const mdmBytes = []; // every chunk received, in order

function startMdm() {
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      mdmBytes.push(d);
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1').split('\r\n');
        const cl = head.find((l) => /^content-length:/i.test(l));
        const len = cl ? Number(cl.split(':')[1].trim()) : 0;
        if (buf.length < end + 4 + len) return;
        const body = buf.subarray(end + 4, end + 4 + len).toString('latin1');
        buf = buf.subarray(end + 4 + len);
        mdmRequests.push({ head, body });
        sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n');
      }
    });
    sock.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const mdmMark = () => ({ reqs: mdmRequests.length, bytes: mdmBytes.length });
const mdmSince = (m) => ({
  reqs: mdmRequests.slice(m.reqs),
  bytes: Buffer.concat(mdmBytes.slice(m.bytes)).toString('latin1'),
});

// -------------------------------------------------------------- helpers --

const plist = (entries) => '<?xml version="1.0" encoding="UTF-8"?>\n'
  + '<plist version="1.0"><dict>'
  + Object.entries(entries).map(([k, v]) => `<key>${k}</key><string>${v}</string>`).join('')
  + '</dict></plist>\n';

// Send bytes on one connection; resolve with what came back, whether the
// bridge closed the connection (EOF) and when. Never waits past ms.
function rawConn(bytes, ms = 3000) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks = [];
    let ended = false;
    const t0 = Date.now();
    const done = () => {
      clearTimeout(t);
      s.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), ended, ms: Date.now() - t0 });
    };
    const t = setTimeout(done, ms);
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => { ended = true; done(); });
    s.on('error', done);
    s.on('connect', () => s.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'latin1')));
  });
}

const statusLines = (text) => text.match(/HTTP\/1\.[01] \d{3}/g) ?? [];

// The pieces of a request that would be forwarded if nothing were wrong.
function ctx() {
  const host = `Host: 127.0.0.1:${port}`;
  const auth = `Authorization: Bearer ${token}`;
  const body = plist({ MessageType: 'TokenUpdate', Topic: 'com.apple.mgmt.test', Token: 'AAAA', EnrollmentID: ENROLLMENT });
  const put = (path, headers, b = body) => [
    `PUT /t/gen/mdm/${path} HTTP/1.1`, host, auth, `Content-Type: ${CT}`, ...headers, '', b,
  ].join('\r\n');
  const putCL = (path, headers = []) => put(path, [`Content-Length: ${body.length}`, ...headers]);
  // a request the MDM would record if the bridge read on after a refusal
  const smuggled = ['PUT /t/gen/mdm/smuggled HTTP/1.1', host, auth, `Content-Type: ${CT}`,
    `Content-Length: ${body.length}`, '', body].join('\r\n');
  const chunked = (s) => `${s.length.toString(16)}\r\n${s}\r\n0\r\n\r\n`;
  return { host, auth, body, put, putCL, smuggled, chunked };
}

// What the MDM must see of a request that passes: the header lines, in
// order, with the values the bridge computes shown as placeholders.
const FORWARDED_HEAD = [
  'PUT /base/checkin HTTP/1.1',
  'Host: 127.0.0.1:{MDM}',
  'Authorization: Bearer {TOKEN}',
  `Content-Type: ${CT}`,
  'X-Custom: kept',
  'X-Managed-Apple-ID: user1@appleid.generic.test',
  'X-Enrollment-Mode: BYOD',
  'X-Grant-ID: {GRANT}',
  'X-Enrollbridge-Managed-Apple-Account: user1@appleid.generic.test',
  'X-Enrollbridge-Enrollment-Mode: BYOD',
  'X-Enrollbridge-Grant-ID: {GRANT}',
  'X-Enrollbridge-Authenticated: 1',
  'X-Forwarded-For: 127.0.0.1',
  'X-Forwarded-Proto: http',
  'X-Forwarded-Host: 127.0.0.1:{PORT}',
  'X-Request-Id: {RID}',
  'traceparent: {TRACE}', // W3C trace context: the request's trace, our span
  'Content-Length: {LEN}',
];

// ----------------------------------------------------------------- cases --
//
// want: the status; mdm: 'nothing' or { head: [...] } (compared after
// placeholders); pipeline: a forwardable request is sent right behind it on
// the same connection and must be neither answered nor forwarded. Unless
// by: 'proxy' (refused by the proxy's path rules, framing sound) or 'router'
// (no route), a refusal
// comes from the server adapter before any route, carries "Connection:
// close", and the bridge closes the connection.

const BAD = 400;
const CASES = [
  // --- controls: the harness sees what is forwarded
  { name: 'control: a valid check-in', req: (c) => c.putCL('checkin', ['X-Custom: kept', 'Connection: close']), want: 200, mdm: { head: FORWARDED_HEAD } },
  {
    name: 'control: chunked body (framing re-done by the bridge)',
    req: (c) => c.put('checkin', ['Transfer-Encoding: chunked', 'X-Custom: kept', 'Connection: close'], c.chunked(c.body)),
    want: 200,
    mdm: { head: FORWARDED_HEAD },
  },
  {
    name: 'device copies of identity, forwarding, hop-by-hop headers are dropped',
    req: (c) => c.putCL('checkin', [
      'X-Managed-Apple-ID: victim@appleid.generic.test', 'X-Enrollment-Mode: adde', 'X-Grant-ID: forged',
      'X-Enrollbridge-Authenticated: 1', 'X-Enrollbridge-Anything: 1', 'X-Forwarded-For: 6.6.6.6',
      'X-Forwarded-Port: 1', 'Forwarded: for=6.6.6.6', 'X-Real-IP: 6.6.6.6', 'X-Request-Id: forged',
      'Connection: close, X-Drop-Me', 'X-Drop-Me: 1', 'Keep-Alive: timeout=5', 'TE: trailers',
      'Upgrade: h2c', 'Proxy-Authorization: Basic Zm9vOmJhcg==', 'Proxy-Connection: keep-alive',
      'X-Custom: kept',
    ]),
    want: 200,
    mdm: { head: FORWARDED_HEAD },
  },
  {
    name: 'identity header in a chunked trailer is not forwarded',
    req: (c) => c.put('checkin', ['Transfer-Encoding: chunked', 'X-Custom: kept', 'Connection: close'],
      c.chunked(c.body).replace(/\r\n\r\n$/, '\r\nX-Managed-Apple-ID: victim@appleid.generic.test\r\n\r\n')),
    want: 200,
    mdm: { head: FORWARDED_HEAD },
  },
  {
    name: 'control: HTTP/1.0 without Host',
    req: (c) => c.putCL('checkin', ['X-Custom: kept']).replace(`${c.host}\r\n`, '').replace('HTTP/1.1', 'HTTP/1.0'),
    want: 200,
    mdm: { head: FORWARDED_HEAD },
  },
  {
    name: 'path normalised once: an encoded ";" stays encoded (no new path parameter)',
    req: (c) => c.putCL('checkin%3bjsessionid=1', ['Connection: close']),
    want: 200,
    mdm: { path: '/base/checkin%3Bjsessionid=1' },
  },
  {
    name: 'path normalised once: escaped unreserved characters decoded',
    req: (c) => c.putCL('%61b%2dc/x%20y', ['Connection: close']),
    want: 200,
    mdm: { path: '/base/ab-c/x%20y' },
  },
  {
    name: 'absolute-form target: no route, never forwarded',
    req: (c) => c.putCL('checkin', ['Connection: close']).replace('PUT /t/', `PUT http://127.0.0.1:${port}/t/`),
    want: 404,
    mdm: 'nothing',
    by: 'router',
  },
  { name: 'control: a dotted name that is not a dot segment', req: (c) => c.putCL('a..b/.c/d..', ['Connection: close']), want: 200, mdm: { path: '/base/a..b/.c/d..' } },

  // --- finding 4: framing (RFC 9112), refused before any handler
  {
    name: 'obs-fold carrying an identity header',
    req: (c) => c.putCL('checkin', ['X-Foo: a', ' X-Managed-Apple-ID: victim@appleid.generic.test']),
    want: BAD, mdm: 'nothing', pipeline: true,
  },
  { name: 'obs-fold, tab, token-only continuation', req: (c) => c.putCL('checkin', ['X-Foo: a', '\tb']), want: BAD, mdm: 'nothing', pipeline: true },
  { name: 'obs-fold, empty continuation', req: (c) => c.putCL('checkin', ['X-Foo: a', ' ']), want: BAD, mdm: 'nothing', pipeline: true },
  {
    name: 'blank before the colon: "Transfer-Encoding : chunked" with Content-Length',
    req: (c) => c.putCL('checkin', ['Transfer-Encoding : chunked']),
    want: BAD, mdm: 'nothing', pipeline: true,
  },
  { name: 'tab before the colon', req: (c) => c.putCL('checkin', ['X-A\t: 1']), want: BAD, mdm: 'nothing', pipeline: true },
  { name: 'invalid field-name characters', req: (c) => c.putCL('checkin', ['X(y): 1']), want: BAD, mdm: 'nothing', pipeline: true },
  { name: 'empty field name', req: (c) => c.putCL('checkin', [': v']), want: BAD, mdm: 'nothing', pipeline: true },
  {
    name: 'Content-Length together with Transfer-Encoding, a request hidden in the body',
    req: (c) => c.put('checkin', [`Content-Length: ${c.chunked(c.body).length}`, 'Transfer-Encoding: chunked'],
      `${c.chunked(c.body)}${c.smuggled}`),
    want: BAD, mdm: 'nothing', pipeline: true,
  },
  {
    name: 'two differing Content-Lengths',
    req: (c) => c.put('checkin', ['Content-Length: 5', `Content-Length: ${c.body.length}`]),
    want: BAD, mdm: 'nothing', pipeline: true,
  },
  {
    name: 'two equal Content-Lengths',
    req: (c) => c.put('checkin', [`Content-Length: ${c.body.length}`, `Content-Length: ${c.body.length}`]),
    want: BAD, mdm: 'nothing', pipeline: true,
  },
  { name: 'unknown transfer coding', req: (c) => c.put('checkin', ['Transfer-Encoding: gzip'], 'abc'), want: 501, mdm: 'nothing' },
  {
    name: 'gzip, chunked',
    req: (c) => c.put('checkin', ['Transfer-Encoding: gzip, chunked'], c.chunked(c.body)),
    want: 501, mdm: 'nothing',
  },
  {
    name: 'two Transfer-Encoding fields',
    req: (c) => c.put('checkin', ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], c.chunked(c.body)),
    want: BAD, mdm: 'nothing',
  },
  {
    name: 'Transfer-Encoding in HTTP/1.0',
    req: (c) => c.put('checkin', ['Transfer-Encoding: chunked'], c.chunked(c.body)).replace('HTTP/1.1', 'HTTP/1.0'),
    want: BAD, mdm: 'nothing',
  },
  { name: 'no Host in HTTP/1.1', req: (c) => c.putCL('checkin').replace(`${c.host}\r\n`, ''), want: BAD, mdm: 'nothing', pipeline: true },
  { name: 'a second Host', req: (c) => c.putCL('checkin', ['Host: evil.example']), want: BAD, mdm: 'nothing', pipeline: true },
  {
    name: 'a second Authorization',
    req: (c) => c.putCL('checkin', ['Authorization: Bearer other']),
    want: BAD, mdm: 'nothing', pipeline: true,
  },
  { name: 'control character in a value', req: (c) => c.putCL('checkin', ['X-A: a\x01b']), want: BAD, mdm: 'nothing', pipeline: true },
  { name: 'DEL in a value', req: (c) => c.putCL('checkin', ['X-A: a\x7fb']), want: BAD, mdm: 'nothing', pipeline: true },
  {
    name: 'bare CR in a value (a lenient MDM splits the line there)',
    req: (c) => c.putCL('checkin', ['X-A: a\rX-Managed-Apple-ID: victim@appleid.generic.test']),
    want: BAD, mdm: 'nothing', pipeline: true,
  },
  { name: 'NUL in a value', req: (c) => c.putCL('checkin', ['X-A: a\x00X-Managed-Apple-ID: victim']), want: BAD, mdm: 'nothing', pipeline: true },
  { name: 'bare LF line endings', req: (c) => c.putCL('checkin', ['X-Custom: kept']).replace(/\r\n/g, '\n'), want: BAD, mdm: 'nothing', pipeline: true },
  { name: 'NUL in the last value', req: (c) => c.putCL('checkin', ['X-Custom: kept', 'X-A: a\x00b']), want: BAD, mdm: 'nothing', pipeline: true },

  // --- finding 5: paths stay inside the prefix
  ...[
    ['..;/admin', 'proxy', 'dot-dot with a ;parameter (Tomcat/Spring walk up)'],
    ['..%3B/admin', 'proxy', 'dot-dot with an encoded ;'],
    ['.;x/checkin', 'proxy', 'dot with a ;parameter'],
    ['..%20/admin', 'proxy', 'dot-dot and an encoded blank'],
    ['..%09/admin', 'server', 'dot-dot and an encoded tab'],
    ['.../admin', 'proxy', 'three dots'],
    ['%2e%2e/admin', 'proxy', 'encoded dot-dot'],
    ['%2E%2e;x/admin', 'proxy', 'encoded dot-dot, mixed case, ;parameter'],
    ['.%2e/admin', 'proxy', 'half-encoded dot-dot'],
    ['a/%2F/b', 'server', 'encoded slash'],
    ['a%2fb', 'server', 'encoded slash, lower case'],
    ['a%5Cb', 'server', 'encoded backslash'],
    ['a\\b', 'server', 'raw backslash'],
    ['a%5C..%5Cadmin', 'server', 'backslash dot-dot'],
    ['a%00b', 'server', 'encoded NUL'],
    ['a%00/../../admin', 'server', 'encoded NUL before dot-dots'],
    ['a%0d%0aX-Managed-Apple-ID:%20x', 'server', 'encoded CR LF'],
    ['%c0%ae%c0%ae/admin', 'server', 'overlong UTF-8 dots'],
    ['%e0%80%ae%e0%80%ae/admin', 'server', 'three-byte overlong dots'],
    ['%c0%af', 'server', 'overlong slash'],
    ['a%ff', 'server', 'invalid UTF-8'],
    ['a%ed%a0%80', 'server', 'UTF-16 surrogate in UTF-8'],
    ['a%zz', 'server', 'malformed percent-encoding'],
    ['a%4', 'server', 'truncated percent-encoding'],
  ].map(([path, by, what]) => ({
    name: `path: ${what} (${JSON.stringify(path)})`,
    req: (c) => c.putCL(path, by === 'proxy' ? ['Connection: close'] : []),
    want: BAD,
    mdm: 'nothing',
    by,
  })),
];

// ------------------------------------------------------------------ world --

before(async () => {
  port = await freePort();
  const pub = `http://127.0.0.1:${port}`;
  mdm = await startMdm();
  mdmPort = mdm.address().port;
  idp = await startTestIdp();
  const gen = oidcTenant(pub, idp, 'gen');
  gen.tenant.mdm = { upstream: `http://127.0.0.1:${mdmPort}/base/` };
  const world = await startWorld(port, [gen], { limits: { upstream_timeout: 3, threads: 2 } });
  ({ bridge } = world);
  const r = await enroll({ bridge, tenant: 'gen', login: 'user1' });
  assert.equal(r.status, 308, `sign-in stopped at ${r.stage}: ${r.status}`);
  token = r.token;
  gid = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).grant_id;
  // bind the grant to its enrollment with its first Authenticate
  const auth = plist({ MessageType: 'Authenticate', Topic: 'com.apple.mgmt.test', EnrollmentID: ENROLLMENT });
  const b = await fetch(`${pub}/t/gen/mdm/checkin`, {
    method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': CT }, body: auth,
  });
  await b.text();
  assert.equal(b.status, 200);
});

after(async () => {
  await stopAll(bridge, idp);
  await new Promise((r) => mdm.close(r));
});

// ------------------------------------------------------------------ tests --

function expand(line, c, req) {
  const rid = req.head.find((l) => l.startsWith('X-Request-Id: '))?.slice(14) ?? '';
  const tp = req.head.find((l) => l.startsWith('traceparent: '))?.slice(13) ?? '';
  return line.replace('{TRACE}', /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/.test(tp) ? tp : '<a version-00 traceparent>')
    .replace('{MDM}', String(mdmPort)).replace('{PORT}', String(port)).replace('{TOKEN}', token)
    .replace('{GRANT}', gid).replace('{RID}', /^[0-9a-f]{16}$/.test(rid) ? rid : '<16 hex digits>')
    .replace('{LEN}', String(c.body.length));
}

for (const k of CASES) {
  test(`hostile: ${k.name}`, async () => {
    const c = ctx();
    let bytes = k.req(c);
    if (k.pipeline) bytes += c.smuggled;
    const mark = mdmMark();
    const r = await rawConn(bytes);
    await new Promise((res) => setTimeout(res, 50)); // anything in flight reaches the stub
    const got = mdmSince(mark);
    const lines = statusLines(r.text);
    assert.equal(lines[0], `HTTP/1.1 ${k.want}`, `want ${k.want}, got:\n${r.text}`);
    if (k.mdm === 'nothing') {
      assert.equal(got.bytes, '', `the MDM received bytes:\n${got.bytes}`);
      if (k.by === 'proxy' || k.by === 'router') return; // framing is sound: it may keep the connection
      // refused: one answer, "Connection: close", and the bridge closes
      assert.equal(lines.length, 1, `more than one response (a request behind it was processed):\n${r.text}`);
      assert.match(r.text, /\r\nConnection: close\r\n/i);
      assert.ok(r.ended, `the bridge kept the connection open after ${r.ms} ms`);
      return;
    }
    assert.equal(got.reqs.length, 1, `the MDM saw ${got.reqs.length} requests:\n${got.bytes}`);
    const req = got.reqs[0];
    if (k.mdm.path) assert.equal(req.head[0], `PUT ${k.mdm.path} HTTP/1.1`);
    if (k.mdm.head) {
      assert.deepEqual(req.head, k.mdm.head.map((l) => expand(l, c, req)));
      assert.equal(req.body, c.body);
    }
  });
}

test('hostile: refusals are device errors, not MDM failures, in /metrics', async () => {
  const text = await metricsText(bridge);
  const series = (re) => text.split('\n').filter((l) => re.test(l));
  const count = (re) => series(re).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
  // refused by the server before any route: unmatched, 400 (501 for an
  // unknown transfer coding), one per framing row of the matrix
  const framing = CASES.filter((k) => k.mdm === 'nothing' && (k.by === undefined || k.by === 'server'));
  const want400 = framing.filter((k) => k.want === 400).length;
  const want501 = framing.filter((k) => k.want === 501).length;
  assert.ok(want400 > 10 && want501 > 0);
  assert.equal(count(/^enrollbridge_http_requests_total\{route="unmatched",status="400"\}/), want400, text);
  assert.equal(count(/^enrollbridge_http_requests_total\{route="unmatched",status="501"\}/), want501, text);
  // the proxy route answered no 5xx, and counted nothing but forwarded
  // requests and the device's bad requests (the path rows)
  assert.deepEqual(series(/^enrollbridge_http_requests_total\{route="mdm_proxy",status="5/), []);
  for (const l of series(/^enrollbridge_proxy_requests_total\{/)) {
    assert.match(l, /result="(forwarded|bad_request)"/, `unexpected proxy result: ${l}`);
  }
  const paths = CASES.filter((k) => k.by === 'proxy').length;
  assert.equal(count(/^enrollbridge_http_requests_total\{route="mdm_proxy",status="400"\}/), paths, text);
  assert.equal(count(/^enrollbridge_proxy_requests_total\{.*result="bad_request"/), paths, text);
});
