// The MDM proxy (issue 5, "MDM proxy"): * /t/{T}/mdm/{rest} in front of a
// fake MDM (a node http server in this process that records what reaches
// it), with tokens from real apple-as-web sign-ins at the test IdP.
//
// No bearer -> 401 with the tenant's full challenge; a good bearer is
// forwarded with our identity headers, hop-by-hop and spoofed headers
// removed, and the MDM's answer passed back; the first Authenticate binds
// the grant to its enrollment (EnrollmentID for BYOD, UDID for ADDE) and
// another enrollment's request with the same token gets the challenge; a
// malformed check-in is 400 and never forwarded; CheckOut goes through with
// a stale genuine token of its enrollment; the macOS device channel goes
// through unauthenticated only when the tenant allows it; a revoked grant gets the challenge; MDM down,
// slow or too big -> 502/504/502 with Retry-After while /healthz stays fast.
//
// Everything here talks to the bridge asynchronously (fetch, raw sockets,
// cliAsync): the fake MDM lives in this process's event loop.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import { cliAsync, raw, statusOf } from './lib.mjs';
import {
  PASSWORD, callback, createJar, drive, enroll, freePort, metricsText, oidcTenant, parseMetric, sql, startLogin,
  startTestIdp, startWorld, stopAll,
} from './idp.mjs';

const CT_CHECKIN = 'application/x-apple-aspen-mdm-checkin';
const CT_COMMAND = 'application/x-apple-aspen-mdm';
const SLOW_MS = 6000;
const TIMEOUT_S = 2; // limits.upstream_timeout

let idp;
let world;
let bridge;
let pub;
let mdm; // the fake MDM
let mdmPort;
let downPort; // nothing listens there
const seen = []; // requests that reached the fake MDM

// ------------------------------------------------------------ fake MDM --

function startMdm() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, body });
      if (req.url.startsWith('/base/slow')) {
        const t = setTimeout(() => { res.writeHead(200); res.end('late'); }, SLOW_MS);
        res.on('close', () => clearTimeout(t));
        return;
      }
      if (req.url.startsWith('/base/big')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(Buffer.alloc(10 * 1024 * 1024, 0x61));
        return;
      }
      res.writeHead(req.url.startsWith('/base/created') ? 201 : 200, {
        'content-type': 'application/xml; charset=utf-8',
        'x-mdm-reply': 'ok',
        'set-cookie': 'mdm=1; Path=/',
        upgrade: 'h2c', // hop-by-hop: must not reach the device
        'x-hop': 'secret',
        connection: 'keep-alive, x-hop',
      });
      res.end(`<reply method="${req.method}">${body}</reply>`);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// ------------------------------------------------------------- helpers --

const plist = (entries) => '<?xml version="1.0" encoding="UTF-8"?>\n'
  + '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
  + '<plist version="1.0"><dict>'
  + Object.entries(entries).map(([k, v]) => `<key>${k}</key><string>${v}</string>`).join('')
  + '</dict></plist>\n';

const authenticate = (ids) => plist({ MessageType: 'Authenticate', Topic: 'com.apple.mgmt.test', ...ids });
const tokenUpdate = (ids) => plist({ MessageType: 'TokenUpdate', Topic: 'com.apple.mgmt.test', Token: 'AAAA', ...ids });

async function signIn(tenant) {
  const r = await enroll({ bridge, tenant, login: 'user1' });
  assert.equal(r.status, 308, `sign-in stopped at ${r.stage}: ${r.status} ${r.body?.slice(0, 200) ?? ''}`);
  assert.ok(r.token);
  return r.token;
}

// A token whose grant is bound (its first Authenticate) to the enrollment
// ids name: a grant may send nothing else before (issue 11).
async function boundToken(tenant, ids) {
  const token = await signIn(tenant);
  const r = await mdmReq(tenant, 'checkin', { token, body: authenticate(ids) });
  assert.ok(r.status === 200 || r.status === 502, `binding Authenticate: ${r.status} ${r.body}`);
  return token;
}

// The device signs in again from the challenge url its refused request got.
async function reauth(url, login = 'user1') {
  const st = await startLogin(url, login);
  assert.equal(st.status, 302);
  const cb = await drive(st.location, login, PASSWORD, { jar: createJar() });
  const r = await callback(cb, st.cookie);
  assert.equal(r.status, 308);
  return r.token;
}

const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());

async function mdmReq(tenant, rest, { method = 'PUT', token, body, ct = CT_CHECKIN, headers = {} } = {}) {
  const h = { ...headers };
  if (token !== undefined) h.authorization = `Bearer ${token}`;
  if (body !== undefined && ct) h['content-type'] = ct;
  const t0 = Date.now();
  const r = await fetch(`${bridge.url}/t/${tenant}/mdm/${rest}`, { method, headers: h, body });
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text, ms: Date.now() - t0 };
}

// Run fn and return the requests that reached the MDM meanwhile.
async function reaching(fn) {
  const n = seen.length;
  const r = await fn();
  // the MDM logs on 'end'; give a forwarded request a moment
  await new Promise((res) => setTimeout(res, 20));
  return { r, got: seen.slice(n) };
}

function assertChallenge(r, tenant) {
  assert.equal(r.status, 401, `want 401, got ${r.status}: ${r.body}`);
  const wa = r.headers.get('www-authenticate');
  assert.match(wa, new RegExp(`^Bearer method="apple-as-web", url="${pub}/t/${tenant}/auth/[A-Za-z0-9_-]{20,}"$`));
  assert.equal(r.headers.get('cache-control'), 'no-store');
  return /url="([^"]+)"/.exec(wa)[1];
}

// ---------------------------------------------------------------- world --

before(async () => {
  const port = await freePort();
  pub = `http://127.0.0.1:${port}`;
  mdm = await startMdm();
  mdmPort = mdm.address().port;
  downPort = await freePort();
  idp = await startTestIdp();
  const upstream = `http://127.0.0.1:${mdmPort}/base/`;
  const gen = oidcTenant(pub, idp, 'gen');
  gen.tenant.mdm = { upstream };
  const adde = oidcTenant(pub, idp, 'adde', { domains: ['adde.generic.test'] });
  adde.tenant.enrollment = { default: 'adde' };
  adde.tenant.mdm = { upstream };
  const mac = oidcTenant(pub, idp, 'mac', { domains: ['mac.generic.test'] });
  mac.tenant.mdm = { upstream, allow_unauthenticated_device_channel: true };
  const down = oidcTenant(pub, idp, 'down', { domains: ['down.generic.test'] });
  down.tenant.mdm = { upstream: `http://127.0.0.1:${downPort}` };
  const none = oidcTenant(pub, idp, 'none', { domains: ['none.generic.test'] });
  world = await startWorld(port, [gen, adde, mac, down, none], {
    limits: { upstream_timeout: TIMEOUT_S, threads: 2 },
  });
  ({ bridge } = world);
});

after(async () => {
  await stopAll(bridge, idp);
  mdm.closeAllConnections?.();
  await new Promise((r) => mdm.close(r));
});

// ---------------------------------------------------------------- tests --

test('no bearer: 401 with the full challenge, nothing forwarded', async () => {
  const { r, got } = await reaching(() => mdmReq('gen', 'checkin', { body: authenticate({ EnrollmentID: 'E-none' }) }));
  const url = assertChallenge(r, 'gen');
  assert.equal(got.length, 0);
  // the challenge is a live one: its url starts a sign-in
  const st = await startLogin(url, 'user1');
  assert.equal(st.status, 302);
  // garbage bearer and a foreign scheme: the same
  for (const authorization of ['Bearer not-a-token', 'Basic dXNlcjpwYXNz', 'Bearer ']) {
    const x = await reaching(() => mdmReq('gen', 'checkin', {
      headers: { authorization }, body: authenticate({ EnrollmentID: 'E-none' }),
    }));
    assertChallenge(x.r, 'gen');
    assert.equal(x.got.length, 0);
  }
});

test('good bearer: forwarded with identity headers, hop-by-hop and spoofed headers removed', async () => {
  const token = await boundToken('gen', { EnrollmentID: 'ENR-GOOD' });
  const { grant_id: gid } = claimsOf(token);
  // any label: the body is checked for what it is (a command result)
  const body = plist({ EnrollmentID: 'ENR-GOOD', Status: 'Acknowledged' });
  const req = [
    'POST /t/gen/mdm/created/a%20b/c?x=1&y=%2F HTTP/1.1',
    `Host: 127.0.0.1:${new URL(pub).port}`,
    `Authorization: Bearer ${token}`,
    'Content-Type: text/plain',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close, X-Drop-Me',
    'X-Drop-Me: 1',
    'Keep-Alive: timeout=5',
    'TE: trailers',
    'Proxy-Authorization: Basic Zm9vOmJhcg==',
    'X-Managed-Apple-ID: mallory@appleid.generic.test',
    'X-Grant-ID: forged',
    'X-Enrollment-Mode: ADDE',
    'X-Enrollbridge-Authenticated: 0',
    'X-Forwarded-For: 6.6.6.6',
    'Mdm-Signature: c2lnbmF0dXJl',
    'X-Custom: kept',
    '', body,
  ].join('\r\n');
  const n = seen.length;
  const resp = await raw(Number(new URL(pub).port), req);
  assert.equal(statusOf(resp), 201, resp);
  const [head, respBody] = resp.split('\r\n\r\n');
  assert.equal(respBody, `<reply method="POST">${body}</reply>`);
  assert.match(head, /\r\nx-mdm-reply: ok/i);
  assert.match(head, /\r\nset-cookie: mdm=1; Path=\//i);
  assert.match(head, /\r\ncontent-type: application\/xml; charset=utf-8/i);
  assert.doesNotMatch(head, /\r\nupgrade:/i);
  assert.doesNotMatch(head, /\r\nx-hop:/i);
  assert.doesNotMatch(head, /\r\nkeep-alive:/i);

  assert.equal(seen.length, n + 1);
  const up = seen[n];
  assert.equal(up.method, 'POST');
  assert.equal(up.url, '/base/created/a%20b/c?x=1&y=%2F');
  assert.equal(up.body, body);
  const h = up.headers;
  assert.equal(h.authorization, `Bearer ${token}`);
  assert.equal(h['x-managed-apple-id'], 'user1@appleid.generic.test');
  assert.equal(h['x-enrollment-mode'], 'BYOD');
  assert.equal(h['x-grant-id'], gid);
  assert.equal(h['x-enrollbridge-authenticated'], '1');
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.equal(h['x-forwarded-host'], new URL(pub).host);
  assert.equal(h['mdm-signature'], 'c2lnbmF0dXJl');
  assert.equal(h['x-custom'], 'kept');
  assert.equal(h['content-type'], 'text/plain');
  assert.equal(h.host, `127.0.0.1:${mdmPort}`);
  for (const k of ['x-drop-me', 'keep-alive', 'te', 'proxy-authorization']) assert.equal(h[k], undefined, k);
  // exactly one of each identity header: the device's copies are gone
  const names = up.rawHeaders.filter((_, i) => i % 2 === 0).map((x) => x.toLowerCase());
  for (const k of ['x-managed-apple-id', 'x-grant-id', 'x-enrollment-mode', 'x-enrollbridge-authenticated', 'x-forwarded-for']) {
    assert.equal(names.filter((x) => x === k).length, 1, k);
  }
  assert.ok(!/close/i.test(h.connection ?? ''), 'the device\'s Connection header is not passed on');

  // GET without a body, and the request id reaches the MDM
  const g = await reaching(() => mdmReq('gen', 'profile', { method: 'GET', token }));
  assert.equal(g.r.status, 200);
  assert.equal(g.got[0].method, 'GET');
  assert.equal(g.got[0].url, '/base/profile');
  assert.equal(g.got[0].headers['content-type'], undefined);
  assert.equal(g.got[0].headers['x-request-id'], g.r.headers.get('x-request-id'));
});

test('traceparent: the MDM gets the device\'s trace id under our span; a malformed one starts a new trace and is never passed on', async () => {
  const token = await boundToken('gen', { EnrollmentID: 'ENR-TRACE' });
  const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const incoming = `00-${trace}-00f067aa0ba902b7-01`;
  const g = await reaching(() => mdmReq('gen', 'profile', { method: 'GET', token, headers: { traceparent: incoming } }));
  assert.equal(g.r.status, 200);
  const tp = g.got[0].headers.traceparent;
  assert.match(tp, new RegExp(`^00-${trace}-[0-9a-f]{16}-01$`), tp);
  assert.notEqual(tp, incoming, 'our own span id, not the caller\'s');
  const rid = g.r.headers.get('x-request-id');
  const line = await bridge.waitLog(new RegExp(`"msg":"access".*"rid":"${rid}"`));
  assert.equal(JSON.parse(line).trace_id, trace);

  const hostile = `00-${trace}-00f067aa0ba902b7-01\tX`;
  const h = await reaching(() => mdmReq('gen', 'profile', { method: 'GET', token, headers: { traceparent: hostile } }));
  assert.equal(h.r.status, 200);
  const tp2 = h.got[0].headers.traceparent;
  assert.match(tp2, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/, tp2);
  assert.ok(!tp2.includes(trace), 'a malformed traceparent is not continued');
  assert.ok(!bridge.logs.some((l) => l.includes('00f067aa0ba902b7')), 'the caller\'s span id is never logged');
});

test('Authenticate binds the grant (EnrollmentID); another enrollment with the same token: 401', async () => {
  const token = await signIn('gen');
  const { grant_id: gid } = claimsOf(token);
  const ids = { EnrollmentID: 'ENR-A-1', EnrollmentUserID: 'USR-A' };
  let x = await reaching(() => mdmReq('gen', 'checkin', { token, body: authenticate(ids) }));
  assert.equal(x.r.status, 200, x.r.body);
  assert.equal(x.got.length, 1);
  assert.equal(x.got[0].headers['content-type'], CT_CHECKIN);
  assert.ok(x.got[0].body.includes('ENR-A-1'));
  const [g] = sql(world.db, `select binding_kind, binding_value from grants where id='${gid}'`);
  assert.deepEqual(g, { binding_kind: 'EnrollmentID', binding_value: 'ENR-A-1' });

  // the same enrollment goes on: TokenUpdate, a command result
  x = await reaching(() => mdmReq('gen', 'checkin', { token, body: tokenUpdate(ids) }));
  assert.equal(x.r.status, 200);
  x = await reaching(() => mdmReq('gen', 'server', {
    token, ct: CT_COMMAND, body: plist({ EnrollmentID: 'ENR-A-1', Status: 'Idle' }),
  }));
  assert.equal(x.r.status, 200);
  assert.equal(x.got.length, 1);

  // another enrollment presenting this token: check-in and command
  for (const r of [
    await reaching(() => mdmReq('gen', 'checkin', { token, body: authenticate({ EnrollmentID: 'ENR-B-2' }) })),
    await reaching(() => mdmReq('gen', 'checkin', { token, body: tokenUpdate({ EnrollmentID: 'ENR-B-2' }) })),
    await reaching(() => mdmReq('gen', 'server', {
      token, ct: CT_COMMAND, body: plist({ EnrollmentID: 'ENR-B-2', Status: 'Idle' }),
    })),
    // a device enrollment's UDID instead of the EnrollmentID
    await reaching(() => mdmReq('gen', 'checkin', { token, body: tokenUpdate({ UDID: 'UDID-X' }) })),
  ]) {
    assertChallenge(r.r, 'gen');
    assert.equal(r.got.length, 0);
  }
  // the binding did not move
  const [g2] = sql(world.db, `select binding_value from grants where id='${gid}'`);
  assert.equal(g2.binding_value, 'ENR-A-1');
});

test('ADDE: the first Authenticate binds the UDID; another device is refused', async () => {
  const token = await signIn('adde');
  const { grant_id: gid, enrollment_mode: mode } = claimsOf(token);
  assert.equal(mode, 'ADDE');
  // before its Authenticate, a grant sends nothing else (issue 11)
  let x = await reaching(() => mdmReq('adde', 'checkin', { token, body: tokenUpdate({ UDID: 'UDID-1111' }) }));
  assertChallenge(x.r, 'adde');
  assert.equal(x.got.length, 0);
  x = await reaching(() => mdmReq('adde', 'checkin', { token, body: authenticate({ UDID: 'UDID-1111' }) }));
  assert.equal(x.r.status, 200);
  assert.equal(x.got[0].headers['x-enrollment-mode'], 'ADDE');
  assert.deepEqual(sql(world.db, `select binding_kind, binding_value from grants where id='${gid}'`)[0],
    { binding_kind: 'UDID', binding_value: 'UDID-1111' });
  x = await reaching(() => mdmReq('adde', 'checkin', { token, body: authenticate({ UDID: 'UDID-2222' }) }));
  assertChallenge(x.r, 'adde');
  assert.equal(x.got.length, 0);
  x = await reaching(() => mdmReq('adde', 'server', { token, ct: CT_COMMAND, body: plist({ UDID: 'UDID-1111', Status: 'Idle' }) }));
  assert.equal(x.r.status, 200);
});

test('malformed check-in plist: 400 even with a good bearer, never forwarded', async () => {
  const token = await signIn('gen');
  for (const [ct, body] of [
    [CT_CHECKIN, '<?xml version="1.0"?><plist><dict><key>MessageType</key>'],
    [CT_CHECKIN, 'not a plist at all'],
    [CT_CHECKIN, plist({ Topic: 'no message type' })],
    [CT_COMMAND, 'bplist00garbage'],
  ]) {
    const x = await reaching(() => mdmReq('gen', 'checkin', { token, ct, body }));
    assert.equal(x.r.status, 400, `${body}: ${x.r.status}`);
    assert.equal(x.got.length, 0);
  }
  // no grant was bound by any of it
  const { grant_id: gid } = claimsOf(token);
  assert.equal(sql(world.db, `select binding_kind from grants where id='${gid}'`)[0].binding_kind, null);
});

test('CheckOut is forwarded with a stale genuine token of its enrollment, marked unauthenticated', async () => {
  const token = await boundToken('gen', { EnrollmentID: 'ENR-gone' });
  const { grant_id: gid } = claimsOf(token);
  const c = await cliAsync(['grants', 'revoke', '-c', world.config.main, gid]);
  assert.equal(c.code, 0, c.stderr);
  const checkout = (eid) => plist({ MessageType: 'CheckOut', Topic: 'com.apple.mgmt.test', EnrollmentID: eid });
  let x = await reaching(() => mdmReq('gen', 'checkin', { token, body: checkout('ENR-gone') }));
  assert.equal(x.r.status, 200, x.r.body);
  assert.equal(x.got.length, 1);
  const h = x.got[0].headers;
  assert.equal(h['x-enrollbridge-authenticated'], '0');
  assert.equal(h['x-managed-apple-id'], undefined);
  assert.equal(h['x-grant-id'], undefined);
  // another enrollment, a forged or no token: never (issue 11)
  for (const [headers, eid] of [
    [{ authorization: `Bearer ${token}` }, 'ENR-other'],
    [{ authorization: 'Bearer stale.token.value' }, 'ENR-gone'],
    [{}, 'ENR-gone'],
  ]) {
    x = await reaching(() => mdmReq('gen', 'checkin', { headers, body: checkout(eid) }));
    assertChallenge(x.r, 'gen');
    assert.equal(x.got.length, 0);
  }
  // any other message with the stale token: the challenge
  x = await reaching(() => mdmReq('gen', 'checkin', {
    token,
    body: plist({ MessageType: 'TokenUpdate', EnrollmentID: 'ENR-gone' }),
  }));
  assertChallenge(x.r, 'gen');
  assert.equal(x.got.length, 0);
});

test('macOS device channel: forwarded unauthenticated when allowed, 401 otherwise', async () => {
  const body = plist({ MessageType: 'TokenUpdate', UDID: 'MAC-UDID', Topic: 'com.apple.mgmt.test' });
  let x = await reaching(() => mdmReq('mac', 'checkin', {
    body, headers: { 'x-managed-apple-id': 'forged@appleid.generic.test', 'x-enrollbridge-authenticated': '1' },
  }));
  assert.equal(x.r.status, 200);
  assert.equal(x.got.length, 1);
  assert.equal(x.got[0].headers['x-enrollbridge-authenticated'], '0');
  assert.equal(x.got[0].headers['x-managed-apple-id'], undefined);
  // with a bad bearer on that tenant: the user channel, so the challenge
  x = await reaching(() => mdmReq('mac', 'checkin', { token: 'bad', body }));
  assertChallenge(x.r, 'mac');
  assert.equal(x.got.length, 0);
  // a tenant that does not allow it
  x = await reaching(() => mdmReq('gen', 'checkin', { body }));
  assertChallenge(x.r, 'gen');
  assert.equal(x.got.length, 0);
});

test('revoked grant: the next check-in gets the challenge', async () => {
  const token = await signIn('gen');
  const { grant_id: gid } = claimsOf(token);
  const ids = { EnrollmentID: 'ENR-REV' };
  let x = await reaching(() => mdmReq('gen', 'checkin', { token, body: authenticate(ids) }));
  assert.equal(x.r.status, 200);
  const c = await cliAsync(['grants', 'revoke', '-c', world.config.main, gid]);
  assert.equal(c.code, 0, c.stderr);
  x = await reaching(() => mdmReq('gen', 'checkin', { token, body: tokenUpdate(ids) }));
  assertChallenge(x.r, 'gen');
  assert.equal(x.got.length, 0);
  // re-authentication from that challenge: a new token that takes over the
  // enrollment, and the retried check-in reaches the MDM
  const token2 = await reauth(assertChallenge(x.r, 'gen'));
  x = await reaching(() => mdmReq('gen', 'checkin', { token: token2, body: tokenUpdate(ids) }));
  assert.equal(x.r.status, 200);
  assert.equal(x.got.length, 1);
});

test('MDM down: 502 with Retry-After; no grant touched', async () => {
  const token = await boundToken('down', { EnrollmentID: 'ENR-DOWN' });
  const { grant_id: gid } = claimsOf(token);
  const before = sql(world.db, `select status, binding_kind, updated_at from grants where id='${gid}'`)[0];
  const r = await mdmReq('down', 'server', { token, ct: CT_COMMAND, body: plist({ EnrollmentID: 'ENR-DOWN', Status: 'Idle' }) });
  assert.equal(r.status, 502);
  assert.match(r.headers.get('retry-after') ?? '', /^\d+$/);
  assert.deepEqual(sql(world.db, `select status, binding_kind, updated_at from grants where id='${gid}'`)[0], before);
  // a tenant without an upstream
  const t2 = await signIn('none'); // 404 before any binding question
  assert.equal((await mdmReq('none', 'x', { token: t2, method: 'GET' })).status, 404);
});

test('MDM slow: 504 within the timeout with Retry-After, and no server thread is blocked', async () => {
  const token = await boundToken('gen', { EnrollmentID: 'ENR-SLOW' });
  // more slow requests than the server has threads (limits.threads 2)
  const slow = Array.from({ length: 8 }, () => mdmReq('gen', 'slow', { token, method: 'GET' }));
  await new Promise((r) => setTimeout(r, 300));
  const t0 = Date.now();
  const hz = await fetch(`${bridge.url}/healthz`);
  const hzMs = Date.now() - t0;
  assert.equal(hz.status, 200);
  assert.ok(hzMs < 500, `/healthz took ${hzMs} ms while upstream calls were pending`);
  // an authenticated, forwarded request is not held up either
  const fast = await mdmReq('gen', 'fast', { token, method: 'GET' });
  assert.equal(fast.status, 200);
  assert.ok(fast.ms < 1000, `a fast MDM request took ${fast.ms} ms`);
  for (const r of await Promise.all(slow)) {
    assert.equal(r.status, 504);
    assert.match(r.headers.get('retry-after') ?? '', /^\d+$/);
    assert.ok(r.ms >= TIMEOUT_S * 1000 - 100 && r.ms < TIMEOUT_S * 1000 + 2000, `answered after ${r.ms} ms`);
  }
});

test('MDM response over limits.upstream_max_bytes: 502', async () => {
  const token = await boundToken('gen', { EnrollmentID: 'ENR-BIG' });
  const r = await mdmReq('gen', 'big', { token, method: 'GET' });
  assert.equal(r.status, 502);
  assert.match(r.headers.get('retry-after') ?? '', /^\d+$/);
  assert.ok(r.body.length < 1000);
});

test('metrics: proxied requests by tenant and result, upstream latency', async () => {
  const text = await metricsText(bridge);
  const samples = parseMetric(text, 'enrollbridge_proxy_requests_total');
  const get = (tenant, result) => samples.find((s) => s.labels.tenant === tenant && s.labels.result === result)?.value ?? 0;
  assert.ok(get('gen', 'forwarded') >= 5);
  assert.ok(get('gen', 'unauthorized') >= 5);
  assert.ok(get('gen', 'bad_request') >= 4);
  assert.ok(get('gen', 'checkout_unauthenticated') >= 1);
  assert.ok(get('gen', 'upstream_timeout') >= 8);
  assert.ok(get('gen', 'upstream_too_large') >= 1);
  assert.ok(get('down', 'upstream_error') >= 1);
  assert.ok(get('mac', 'device_channel') >= 1);
  const count = parseMetric(text, 'enrollbridge_proxy_upstream_seconds_count').find((s) => s.labels.tenant === 'gen');
  const sum = parseMetric(text, 'enrollbridge_proxy_upstream_seconds_sum').find((s) => s.labels.tenant === 'gen');
  assert.ok(count.value >= 10);
  assert.ok(sum.value >= 8 * TIMEOUT_S * 0.9, `upstream seconds ${sum.value}`);
  // the upstreams here are plain http:// at 127.0.0.1: the native client
  // carried the transfers, over kept-alive connections
  const xfers = parseMetric(text, 'enrollbridge_upstream_transfers_total');
  const native = xfers.find((s) => s.labels.client === 'native')?.value ?? 0;
  assert.ok(native >= count.value, `native transfers ${native}`);
  const reused = parseMetric(text, 'enrollbridge_upstream_reused_total')[0]?.value ?? 0;
  assert.ok(reused >= 1, `reused ${reused}`);
  const cache = parseMetric(text, 'enrollbridge_bearer_cache_total');
  const lookups = cache.reduce((n, s) => n + s.value, 0);
  assert.ok(lookups >= get('gen', 'forwarded'), `bearer cache lookups ${lookups}`);
  // no token in the logs
  assert.ok(!bridge.logs.some((l) => /eyJ[A-Za-z0-9_-]{20,}\./.test(l)), 'a JWT in the logs');
});

test('clean shutdown with the upstream client running (no sanitizer report)', async () => {
  const token = await boundToken('gen', { EnrollmentID: 'ENR-STOP' });
  // one call still under way when the bridge is told to stop
  const pending = mdmReq('gen', 'slow', { token, method: 'GET' }).catch((e) => e);
  await new Promise((r) => setTimeout(r, 200));
  const { code, signal } = await bridge.stop();
  await pending;
  const bad = bridge.logs.filter((l) => /Sanitizer|runtime error/.test(l));
  assert.deepEqual(bad, []);
  assert.equal(signal, null);
  assert.equal(code, 0);
});
