// `enrollbridge grants retire` (issue 13 section 1), against the real
// binary, real sign-ins at the test IdP and a fake MDM in this process that
// records every request reaching it: after a retire, the grant's tokens get
// 403 with the "unrecognized device" JSON body and nothing is forwarded,
// except a CheckOut of its own enrollment; a revoke still gives 401 and the
// challenge.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import { cliAsync } from './lib.mjs';
import {
  enroll, freePort, oidcTenant, startTestIdp, startWorld, stopAll,
} from './idp.mjs';

const CT_CHECKIN = 'application/x-apple-aspen-mdm-checkin';

let idp;
let world;
let bridge;
let mdm;
const seen = []; // requests that reached the fake MDM

function startMdm() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end('<ok/>');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const checkin = (type, ids) => '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>'
  + Object.entries({ MessageType: type, Topic: 'com.apple.mgmt.test', ...ids })
    .map(([k, v]) => `<key>${k}</key><string>${v}</string>`).join('')
  + '</dict></plist>\n';

const grantOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()).grant_id;

const MALLORY = {
  login: 'mallory',
  claims: {
    sub: 'mallory', email: 'mallory@generic.test', email_verified: true, name: 'Mallory', preferred_username: 'mallory',
  },
};

async function signIn(login = 'user1') {
  const r = await enroll({ bridge, tenant: 'gen', login });
  assert.equal(r.status, 308, `sign-in stopped at ${r.stage}: ${r.status}`);
  return r.token;
}

// A check-in PUT; the response and the requests that reached the MDM.
async function put(token, body) {
  const n = seen.length;
  const r = await fetch(`${bridge.url}/t/gen/mdm/checkin`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': CT_CHECKIN },
    body,
  });
  const res = { status: r.status, headers: r.headers, body: await r.text() };
  await new Promise((ok) => setTimeout(ok, 30));
  return { r: res, got: seen.slice(n) };
}

async function grants(...more) {
  const c = await cliAsync(['grants', 'list', '-c', world.config.main, '--json', ...more]);
  assert.equal(c.code, 0, c.stderr);
  return c.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

const grant = async (id) => (await grants()).find((g) => g.id === id);

before(async () => {
  const port = await freePort();
  mdm = await startMdm();
  idp = await startTestIdp({ accounts: [MALLORY] });
  const gen = oidcTenant(`http://127.0.0.1:${port}`, idp, 'gen');
  gen.tenant.mdm = { upstream: `http://127.0.0.1:${mdm.address().port}/base/` };
  world = await startWorld(port, [gen]);
  ({ bridge } = world);
});

after(async () => {
  await stopAll(bridge, idp);
  mdm.closeAllConnections?.();
  await new Promise((r) => mdm.close(r));
});

test('retire by id: 403 unrecognized device, nothing forwarded but the CheckOut', async () => {
  const t = await signIn();
  const E = { EnrollmentID: 'ENR-RETIRE-1' };
  const a = await put(t, checkin('Authenticate', E));
  assert.equal(a.r.status, 200);
  assert.equal(a.got.length, 1);
  const c = await cliAsync(['grants', 'retire', '-c', world.config.main, grantOf(t), '--reason', 'lost phone']);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /retired/);
  const g = await grant(grantOf(t));
  assert.equal(g.status, 'revoked');
  assert.equal(g.revoke_reason, 'lost phone');
  assert.ok(g.retired_at > 0, 'retired_at set');

  const u = await put(t, checkin('TokenUpdate', E));
  assert.equal(u.r.status, 403);
  assert.match(u.r.headers.get('content-type'), /^application\/json\b/);
  const body = JSON.parse(u.r.body);
  assert.equal(body.code, 'com.apple.unrecognized.device');
  assert.equal(typeof body.message, 'string');
  assert.ok(body.message.length > 0);
  assert.equal(u.got.length, 0, 'a retired grant reached the MDM');
  // another enrollment's CheckOut is not its own: 403 too, not forwarded
  const o = await put(t, checkin('CheckOut', { EnrollmentID: 'ENR-OTHER' }));
  assert.equal(o.r.status, 403);
  assert.equal(o.got.length, 0);
  // its own CheckOut still reaches the MDM
  const out = await put(t, checkin('CheckOut', E));
  assert.equal(out.r.status, 200, out.r.body);
  assert.equal(out.got.length, 1);
  assert.equal(out.got[0].headers['x-enrollbridge-authenticated'], '0');

  // again: still retired, exit 0
  const again = await cliAsync(['grants', 'retire', '-c', world.config.main, grantOf(t)]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((await grant(grantOf(t))).retired_at, g.retired_at);
});

test('revoke still answers 401 with the challenge; a revoked grant can be retired later', async () => {
  const t = await signIn();
  const E = { EnrollmentID: 'ENR-REVOKE-1' };
  assert.equal((await put(t, checkin('Authenticate', E))).r.status, 200);
  const c = await cliAsync(['grants', 'revoke', '-c', world.config.main, grantOf(t)]);
  assert.equal(c.code, 0, c.stderr);
  const u = await put(t, checkin('TokenUpdate', E));
  assert.equal(u.r.status, 401);
  assert.match(u.r.headers.get('www-authenticate') ?? '', /^Bearer method=/);
  assert.equal(u.got.length, 0);
  assert.equal((await grant(grantOf(t))).retired_at, 0);
  const r = await cliAsync(['grants', 'retire', '-c', world.config.main, grantOf(t)]);
  assert.equal(r.code, 0, r.stderr);
  const v = await put(t, checkin('TokenUpdate', E));
  assert.equal(v.r.status, 403);
  assert.equal(v.got.length, 0);
});

test('retire: unknown grant and usage errors', async () => {
  const c = await cliAsync(['grants', 'retire', '-c', world.config.main, 'no-such-grant']);
  assert.equal(c.code, 1);
  assert.match(c.stderr, /no grant no-such-grant/);
  const u = await cliAsync(['grants', 'retire', '-c', world.config.main]);
  assert.equal(u.code, 2);
  assert.match(u.stderr, /retire needs a GRANT_ID or --user/);
});

test('--user: list, retire and revoke every active grant of one person, no one else\'s', async () => {
  const a1 = await signIn();
  const a2 = await signIn();
  const m = await signIn('mallory');
  const subject = (await grant(grantOf(a1))).idp_subject;
  const apple = (await grant(grantOf(a1))).managed_apple_id;
  assert.ok(subject && apple);
  const mine = await grants('--user', subject);
  assert.ok(mine.length >= 2);
  assert.ok(mine.every((g) => g.idp_subject === subject));
  assert.ok(!mine.some((g) => g.id === grantOf(m)));
  // by Managed Apple Account, any case: the same grants
  assert.deepEqual((await grants('--user', apple.toUpperCase())).map((g) => g.id), mine.map((g) => g.id));

  const c = await cliAsync(['grants', 'retire', '-c', world.config.main, '--user', subject, '--tenant', 'gen']);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, new RegExp(`${grantOf(a1)} retired`));
  assert.match(c.stdout, new RegExp(`${grantOf(a2)} retired`));
  for (const t of [a1, a2]) {
    const g = await grant(grantOf(t));
    assert.equal(g.status, 'revoked');
    assert.ok(g.retired_at > 0);
    const u = await put(t, checkin('Authenticate', { EnrollmentID: `ENR-${grantOf(t)}` }));
    assert.equal(u.r.status, 403);
    assert.equal(u.got.length, 0);
  }
  const mg = await grant(grantOf(m));
  assert.equal(mg.status, 'active');
  assert.equal(mg.retired_at, 0);
  // nothing active left for that person: exit 1
  const none = await cliAsync(['grants', 'retire', '-c', world.config.main, '--user', subject]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no active grant/);

  // revoke --user: Mallory's grant revoked, not retired: 401 + challenge
  const r = await cliAsync(['grants', 'revoke', '-c', world.config.main, '--user', 'mallory']);
  assert.equal(r.code, 0, r.stderr);
  const mg2 = await grant(grantOf(m));
  assert.equal(mg2.status, 'revoked');
  assert.equal(mg2.retired_at, 0);
  const u = await put(m, checkin('Authenticate', { EnrollmentID: 'ENR-M' }));
  assert.equal(u.r.status, 401);
  assert.match(u.r.headers.get('www-authenticate') ?? '', /^Bearer method=/);
  assert.equal(u.got.length, 0);
  // GRANT_ID and --user together, or --tenant with a GRANT_ID: usage errors
  assert.equal((await cliAsync(['grants', 'revoke', '-c', world.config.main, 'x', '--user', 'y'])).code, 2);
  assert.equal((await cliAsync(['grants', 'revoke', '-c', world.config.main, 'x', '--tenant', 'gen'])).code, 2);
});
