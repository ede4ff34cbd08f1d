// Tenant restrictions and the end of an enrollment (issue 13 sections 1
// and 5), against the real binary, real sign-ins at the test IdP and a fake
// MDM in this process:
//   - restrictions.min_os_version / model_families judged on the
//     MachineInfo of the enrollment POST (the first, before any sign-in,
//     and the second, with a bearer): 403 JSON, Apple's
//     software-update-required only for a device that says it can act on
//     it; MachineInfo built by device-sim, by openssl (no OS_VERSION) and
//     from real devices' Authenticate values (an iPad on iOS 9.3.5, an iMac
//     on macOS 10.12.6);
//   - the one enrollment-mode rule: the PRODUCT's family, the default for
//     an OS older than the first that sends discovery's model-family;
//   - restrictions.max_devices_per_user at the end of sign-in (HTML page
//     naming the limit), a re-authentication (takeover) not counted;
//   - a request without a valid token naming a retired enrollment: 403
//     com.apple.unrecognized.device, its CheckOut still forwarded, not when
//     a newer active grant holds the enrollment (an ADDE device enrolled
//     again keeps its UDID);
//   - device-sim enroll --state / checkin: "UNENROLLED", exit 3.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { drive, createJar } from '../idp/drive.mjs';
import {
  cliAsync, enrollPost, machineInfo, metricSum, SRC, sql, tmpDir,
} from './lib.mjs';
import {
  callback, enroll, freePort, metricsText, oidcTenant, startLogin, startTestIdp, startWorld, stopAll,
} from './idp.mjs';

const CT_CHECKIN = 'application/x-apple-aspen-mdm-checkin';
const PROFILE = path.join(SRC, 'tests/unit/data/profiles/enroll.mobileconfig');
const REAL_DIR = path.resolve(SRC, '../shared/fixtures/real-devices');

let idp;
let world;
let mdm;
const seen = [];

function startMdm() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(200, { 'content-length': 0 }).end();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const MALLORY = {
  login: 'mallory',
  claims: {
    sub: 'mallory', email: 'mallory@generic.test', email_verified: true, name: 'Mallory', preferred_username: 'mallory',
  },
};

before(async () => {
  mdm = await startMdm();
  const upstream = `http://127.0.0.1:${mdm.address().port}`;
  idp = await startTestIdp({ accounts: [MALLORY] });
  const port = await freePort();
  const pub = `http://127.0.0.1:${port}`;
  const res = oidcTenant(pub, idp, 'res');
  res.tenant.enrollment = { default: 'byod', by_model_family: { Mac: 'adde' } };
  res.tenant.restrictions = {
    min_os_version: { iOS: '17.0', macOS: '14.4' },
    model_families: ['iPhone', 'Mac'],
  };
  const lim = oidcTenant(pub, idp, 'lim');
  lim.tenant.restrictions = { max_devices_per_user: 1 };
  lim.tenant.mdm = { upstream };
  const gen = oidcTenant(pub, idp, 'gen');
  gen.tenant.mdm = { upstream, profile: { file: PROFILE } };
  const dev = oidcTenant(pub, idp, 'dev');
  dev.tenant.enrollment = { default: 'adde' };
  dev.tenant.mdm = { upstream };
  const macdc = oidcTenant(pub, idp, 'macdc');
  macdc.tenant.enrollment = { default: 'adde' };
  macdc.tenant.mdm = { upstream, allow_unauthenticated_device_channel: true };
  world = await startWorld(port, [res, lim, gen, dev, macdc]);
});

after(async () => {
  await stopAll(world?.bridge, idp);
  mdm?.closeAllConnections?.();
  await new Promise((r) => (mdm ? mdm.close(r) : r()));
});

const jwtClaims = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
const grantOf = (jwt) => jwtClaims(jwt).grant_id;

async function post(tenant, body, token) {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  const r = await enrollPost(`${world.publicUrl}/t/${tenant}/enroll`, { body, headers });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

function assertRefused(r, code, message) {
  assert.equal(r.status, 403, r.text);
  assert.equal(r.headers.get('content-type'), 'application/json');
  assert.equal(r.headers.get('www-authenticate'), null, 'a refused device is not asked to sign in');
  const j = JSON.parse(r.text);
  assert.equal(j.code, code);
  assert.equal(typeof j.description, 'string');
  assert.match(j.message, message);
  return j;
}

// A whole sign-in from a given MachineInfo: the access token.
async function signInWith(tenant, body, login = 'user1') {
  const first = await post(tenant, body);
  assert.equal(first.status, 401, first.text);
  const url = /\burl="([^"]+)"/.exec(first.headers.get('www-authenticate'))[1];
  return finishSignIn(url, login, `${login}@${tenant}.generic.test`);
}

async function finishSignIn(url, login, typed) {
  const st = await startLogin(url, typed);
  assert.equal(st.status, 302, st.body);
  const cb = await drive(st.location, login, 'secret', { jar: createJar() });
  const r = await callback(cb, st.cookie);
  return r;
}

// A MachineInfo signed with openssl, from key/value strings.
function opensslMachineInfo(dict) {
  const dir = tmpDir();
  const key = path.join(dir, 'd.key'), crt = path.join(dir, 'd.crt'), inp = path.join(dir, 'mi.plist');
  const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  fs.writeFileSync(inp, '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>'
    + Object.entries(dict).map(([k, v]) => `<key>${esc(k)}</key><string>${esc(v)}</string>`).join('')
    + '</dict></plist>\n');
  const run = (args) => {
    const r = spawnSync('openssl', args, { timeout: 30000 });
    if (r.status !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
    return r.stdout;
  };
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key,
    '-out', crt, '-days', '1', '-subj', '/CN=device']);
  return run(['cms', '-sign', '-binary', '-nodetach', '-outform', 'DER', '-in', inp, '-signer', crt, '-inkey', key]);
}

// The values a real device reported in its Authenticate check-in.
function realDevice(file) {
  const x = fs.readFileSync(path.join(REAL_DIR, file), 'utf8');
  const get = (k) => new RegExp(`<key>${k}</key>\\s*<string>([^<]*)</string>`).exec(x)[1];
  return { PRODUCT: get('ProductName'), OS_VERSION: get('OSVersion'), VERSION: get('BuildVersion'), LANGUAGE: 'en-US' };
}

const audits = (event, tenant) => sql(world.db,
  `select subject, detail from audit_events where event = '${event}' and tenant = '${tenant}' order by id`);

// ------------------------------------------------------ device restrictions --

test('restrictions at the enrollment POST: old OS, unlisted families, before any sign-in', async () => {
  const before = await refusedSoFar();
  // allowed: a current iPhone, a Mac on exactly the minimum
  assert.equal((await post('res', machineInfo({ family: 'iPhone', osVersion: '18.1' }))).status, 401);
  assert.equal((await post('res', machineInfo({ family: 'Mac', osVersion: '14.4' }))).status, 401);
  // iOS 16.7.10 < 17.0, compared by number (17.0 would pass, "9" > "17" as text)
  let j = assertRefused(await post('res', machineInfo({ family: 'iPhone', osVersion: '16.7.10' })),
    'com.apple.enrollment.restricted', /iOS 16\.7\.10.*iOS 17\.0 or later/);
  assert.equal(j.details, undefined);
  assertRefused(await post('res', machineInfo({ family: 'iPhone', osVersion: '9.3' })),
    'com.apple.enrollment.restricted', /iOS 17\.0/);
  assert.equal((await post('res', machineInfo({ family: 'iPhone', osVersion: '17.10' }))).status, 401);
  // families not listed
  assertRefused(await post('res', machineInfo({ family: 'iPad', osVersion: '18.1' })),
    'com.apple.enrollment.restricted', /does not allow enrolling this device \(iPad\)/);
  assertRefused(await post('res', machineInfo({ family: 'RealityDevice', osVersion: '2.0' })),
    'com.apple.enrollment.restricted', /RealityDevice/);
  // a Setup Assistant Mac that can update: Apple's code, with the minimum
  j = assertRefused(await post('res', machineInfo({ family: 'Mac', osVersion: '14.2', canRequestUpdate: true })),
    'com.apple.softwareupdate.required', /macOS 14\.2.*macOS 14\.4 or later/);
  assert.deepEqual(j.details, { OSVersion: '14.4' });
  // the same Mac without the flag: the plain code
  assertRefused(await post('res', machineInfo({ family: 'Mac', osVersion: '14.2' })),
    'com.apple.enrollment.restricted', /macOS 14\.4/);
  // macOS 13 predates Apple's code: the plain one, whatever the flag
  assertRefused(await post('res', machineInfo({ family: 'Mac', osVersion: '13.6.1', canRequestUpdate: true })),
    'com.apple.enrollment.restricted', /macOS 13\.6\.1/);
  // no OS_VERSION at all: nothing shows it meets the minimum
  assertRefused(await post('res', opensslMachineInfo({ PRODUCT: 'iPhone17,2', VERSION: '22B83', LANGUAGE: 'en-US' })),
    'com.apple.enrollment.restricted', /did not report its iOS version/);
  // real devices: an iPad on iOS 9.3.5 (family not listed), an iMac on 10.12.6
  assertRefused(await post('res', opensslMachineInfo(realDevice('Authenticate.1.plist'))),
    'com.apple.enrollment.restricted', /\(iPad\)/);
  assertRefused(await post('res', opensslMachineInfo(realDevice('Authenticate.2.plist'))),
    'com.apple.enrollment.restricted', /macOS 10\.12\.6.*macOS 14\.4/);
  // the same devices pass a tenant without restrictions
  assert.equal((await post('gen', opensslMachineInfo(realDevice('Authenticate.2.plist')))).status, 401);
  // anyone can self-sign a MachineInfo: counted by code, not audited
  const m = await metricsText(world.bridge);
  assert.equal(metricSum(m, 'enrollbridge_enroll_refused_total',
    { tenant: 'res', code: 'com.apple.enrollment.restricted' }), before.restricted + 9);
  assert.equal(metricSum(m, 'enrollbridge_enroll_refused_total',
    { tenant: 'res', code: 'com.apple.softwareupdate.required' }), before.update + 1);
  await new Promise((ok) => setTimeout(ok, 200));
  assert.equal(audits('enroll.refused', 'res').length, before.audited, 'no audit row without a person');
});

test('a flood of anonymous refused POSTs: counted, logged at most once a second, no audit row', async () => {
  const before = await refusedSoFar();
  const logged = () => world.bridge.logs.filter((l) => /enrollment refused before sign-in/.test(l)).length;
  const lines = logged();
  const body = machineInfo({ family: 'iPad', osVersion: '18.1' });
  // out of the second in which the previous refusal was logged
  await new Promise((ok) => setTimeout(ok, 1100));
  const t0 = Date.now();
  const rs = await Promise.all(Array.from({ length: 40 }, () => post('res', body)));
  const secs = Math.ceil((Date.now() - t0) / 1000) + 1;
  for (const r of rs) assertRefused(r, 'com.apple.enrollment.restricted', /iPad/);
  const after = await refusedSoFar();
  assert.equal(after.restricted, before.restricted + 40);
  await new Promise((ok) => setTimeout(ok, 200));
  assert.equal(audits('enroll.refused', 'res').length, before.audited);
  const n = logged() - lines;
  assert.ok(n >= 1 && n <= secs, `${n} log lines for 40 refusals in ${secs} s`);
});

// The refused counts and audit rows so far, on tenant res.
async function refusedSoFar() {
  const m = await metricsText(world.bridge);
  return {
    restricted: metricSum(m, 'enrollbridge_enroll_refused_total', { tenant: 'res', code: 'com.apple.enrollment.restricted' }),
    update: metricSum(m, 'enrollbridge_enroll_refused_total', { tenant: 'res', code: 'com.apple.softwareupdate.required' }),
    audited: audits('enroll.refused', 'res').length,
  };
}

test('restrictions at the second POST too: a bearer does not get an old device its profile', async () => {
  const r = await signInWith('res', machineInfo({ family: 'iPhone', osVersion: '18.1' }));
  assert.equal(r.status, 308, r.body);
  const before = await refusedSoFar();
  assertRefused(await post('res', machineInfo({ family: 'iPhone', osVersion: '16.0' }), r.token),
    'com.apple.enrollment.restricted', /iOS 17\.0/);
  assertRefused(await post('res', machineInfo({ family: 'iPad', osVersion: '18.1' }), r.token),
    'com.apple.enrollment.restricted', /iPad/);
  // audited, naming the person's grant and what the device sent
  await new Promise((ok) => setTimeout(ok, 200));
  const d = audits('enroll.refused', 'res').map((x) => JSON.parse(x.detail));
  assert.equal(d.length, before.audited + 2);
  const mine = d.slice(-2);
  const maid = sql(world.db, `select managed_apple_id from grants where id = '${grantOf(r.token)}'`)[0].managed_apple_id;
  assert.match(maid, /^user1@/);
  for (const x of mine) {
    assert.equal(x.grant, grantOf(r.token));
    assert.equal(x.managed_apple_id, maid);
    assert.equal(x.code, 'com.apple.enrollment.restricted');
  }
  assert.ok(mine.some((x) => x.os_version === '16.0'));
  assert.ok(mine.some((x) => x.product.startsWith('iPad')));
  // not counted as anonymous refusals
  const after = await refusedSoFar();
  assert.equal(after.restricted, before.restricted);
});

// ------------------------------------------------------------ the mode rule --

test('one enrollment-mode rule: the PRODUCT\'s family, the default for an OS that sent no model-family', async () => {
  const disco = async (family) => {
    const u = new URL(`${world.publicUrl}/.well-known/com.apple.remotemanagement`);
    u.searchParams.set('user-identifier', 'user1@res.generic.test');
    if (family) u.searchParams.set('model-family', family);
    return (await (await fetch(u)).json()).Servers[0].Version;
  };
  assert.equal(await disco('Mac'), 'mdm-adde');
  assert.equal(await disco('iPhone'), 'mdm-byod');
  assert.equal(await disco(), 'mdm-byod');
  // a Mac on macOS 15 sends model-family=Mac: ADDE, as discovery said
  let r = await signInWith('res', machineInfo({ family: 'Mac', osVersion: '15.1' }));
  assert.equal(r.status, 308, r.body);
  assert.equal(jwtClaims(r.token).enrollment_mode, 'ADDE');
  // an iPhone: BYOD
  r = await signInWith('res', machineInfo({ family: 'iPhone', osVersion: '18.1' }));
  assert.equal(jwtClaims(r.token).enrollment_mode, 'BYOD');
  // a Mac on macOS 13 sends no model-family (discovery answered the default
  // mdm-byod): the profile says BYOD too. On a tenant without a minimum.
  const g = await signInWith('gen', machineInfo({ family: 'Mac', osVersion: '13.6' }));
  assert.equal(g.status, 308, g.body);
  assert.equal(jwtClaims(g.token).enrollment_mode, 'BYOD');
});

// ------------------------------------------------------- the device limit --

async function putTo(tenant, token, body) {
  const n = seen.length;
  const headers = { 'content-type': CT_CHECKIN };
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(`${world.publicUrl}/t/${tenant}/mdm/checkin`, { method: 'PUT', headers, body });
  const res = { status: r.status, headers: r.headers, body: await r.text() };
  await new Promise((ok) => setTimeout(ok, 30));
  return { r: res, got: seen.slice(n) };
}

const checkin = (type, ids) => '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>'
  + Object.entries({ MessageType: type, Topic: 'com.apple.mgmt.test', ...ids })
    .map(([k, v]) => `<key>${k}</key><string>${v}</string>`).join('')
  + '</dict></plist>\n';

test('max_devices_per_user: refused at the end of sign-in with the limit named; a takeover is not counted', async () => {
  const first = await enroll({ bridge: world.bridge, tenant: 'lim', login: 'user1' });
  assert.equal(first.status, 308, `${first.stage} ${first.status}`);
  const t1 = first.token;
  // a second device of the same person: the HTML refusal page
  const second = await enroll({ bridge: world.bridge, tenant: 'lim', login: 'user1' });
  assert.equal(second.status, 403);
  assert.match(second.headers.get('content-type'), /^text\/html/);
  assert.match(second.body, /You already have 1 enrolled device, the most your organization allows \(1 per person\)/);
  assert.match(second.body, /IT department can retire it/);
  // someone else is not affected
  const m = await enroll({ bridge: world.bridge, tenant: 'lim', login: 'mallory' });
  assert.equal(m.status, 308);
  // the enrolled device signs in again (its check-in names another
  // enrollment: 401 with a challenge that replaces its grant): allowed
  assert.equal((await putTo('lim', t1, checkin('Authenticate', { EnrollmentID: 'ENR-LIM-1' }))).r.status, 200);
  const re = await putTo('lim', t1, checkin('TokenUpdate', { EnrollmentID: 'ENR-LIM-OTHER' }));
  assert.equal(re.r.status, 401);
  const url = /\burl="([^"]+)"/.exec(re.r.headers.get('www-authenticate'))[1];
  const again = await finishSignIn(url, 'user1', 'user1@lim.generic.test');
  assert.equal(again.status, 308, again.body);
  const g = sql(world.db, `select status, superseded_by from grants where id = '${grantOf(t1)}'`)[0];
  assert.equal(g.status, 'superseded');
  assert.equal(g.superseded_by, grantOf(again.token));
  // still one device: another new one is refused
  assert.equal((await enroll({ bridge: world.bridge, tenant: 'lim', login: 'user1' })).status, 403);
  // after retiring it, the person may enroll a new device
  const c = await cliAsync(['grants', 'retire', '-c', world.config.main, grantOf(again.token)]);
  assert.equal(c.code, 0, c.stderr);
  assert.equal((await enroll({ bridge: world.bridge, tenant: 'lim', login: 'user1' })).status, 308);
  // audited as login.deny with the code
  const d = audits('login.deny', 'lim').map((x) => JSON.parse(x.detail));
  assert.equal(d.filter((x) => x.code === 'device_limit').length, 2);
});

// --------------------------------------------------- retired, token lost --

test('a retired enrollment without a valid token: 403 unrecognized device, its CheckOut forwarded', async () => {
  const r = await enroll({ bridge: world.bridge, tenant: 'gen', login: 'user1' });
  assert.equal(r.status, 308);
  const E = { EnrollmentID: 'ENR-LOST-1' };
  assert.equal((await putTo('gen', r.token, checkin('Authenticate', E))).r.status, 200);
  // before the retire: no token is the challenge
  let u = await putTo('gen', null, checkin('TokenUpdate', E));
  assert.equal(u.r.status, 401);
  const c = await cliAsync(['grants', 'retire', '-c', world.config.main, grantOf(r.token)]);
  assert.equal(c.code, 0, c.stderr);
  // no token: 403, nothing forwarded
  u = await putTo('gen', null, checkin('TokenUpdate', E));
  assert.equal(u.r.status, 403, u.r.body);
  assert.equal(u.r.headers.get('content-type'), 'application/json');
  assert.equal(JSON.parse(u.r.body).code, 'com.apple.unrecognized.device');
  assert.equal(u.got.length, 0);
  // a forged token: no body is read, the challenge as before
  const fake = r.token.split('.');
  const forged = await putTo('gen', `${fake[0]}.${fake[1]}x.${fake[2]}`, checkin('TokenUpdate', E));
  assert.equal(forged.r.status, 401);
  assert.equal(forged.got.length, 0);
  // its token gone from the store (a restored database): 403 too
  sql(world.db, `delete from tokens where grant_id = '${grantOf(r.token)}'`);
  u = await putTo('gen', r.token, checkin('TokenUpdate', E));
  assert.equal(u.r.status, 403, u.r.body);
  assert.equal(JSON.parse(u.r.body).code, 'com.apple.unrecognized.device');
  assert.equal(u.got.length, 0);
  // another enrollment, no token: the challenge as before
  u = await putTo('gen', null, checkin('TokenUpdate', { EnrollmentID: 'ENR-NEVER' }));
  assert.equal(u.r.status, 401);
  // the CheckOut of the retired enrollment still reaches the MDM
  u = await putTo('gen', null, checkin('CheckOut', E));
  assert.equal(u.r.status, 200, u.r.body);
  assert.equal(u.got.length, 1);
  assert.equal(u.got[0].headers['x-enrollbridge-authenticated'], '0');
  assert.equal(u.got[0].headers.authorization, undefined);
});

test('an ADDE device enrolled again after its retirement keeps its UDID: not unenrolled again', async () => {
  const udid = '00008120-RETIRED-AGAIN';
  const a = await enroll({ bridge: world.bridge, tenant: 'dev', login: 'user1' });
  assert.equal(a.status, 308);
  assert.equal(jwtClaims(a.token).enrollment_mode, 'ADDE');
  assert.equal((await putTo('dev', a.token, checkin('Authenticate', { UDID: udid }))).r.status, 200);
  const c = await cliAsync(['grants', 'retire', '-c', world.config.main, grantOf(a.token)]);
  assert.equal(c.code, 0, c.stderr);
  assert.equal((await putTo('dev', null, checkin('TokenUpdate', { UDID: udid }))).r.status, 403);
  // enrolled again: a new grant binds the same UDID
  const b = await enroll({ bridge: world.bridge, tenant: 'dev', login: 'user1' });
  assert.equal(b.status, 308);
  assert.equal((await putTo('dev', b.token, checkin('Authenticate', { UDID: udid }))).r.status, 200);
  // a request without token naming it now: the challenge, not the unenroll
  const u = await putTo('dev', null, checkin('TokenUpdate', { UDID: udid }));
  assert.equal(u.r.status, 401, u.r.body);
  assert.match(u.r.headers.get('www-authenticate') ?? '', /^Bearer method=/);
  // and the old token's grant is still retired: 403 for it
  assert.equal((await putTo('dev', a.token, checkin('TokenUpdate', { UDID: udid }))).r.status, 403);
});

test('the macOS device channel (no bearer) of a retired enrollment unenrolls too; others still pass', async () => {
  const udid = 'MAC-DC-RETIRED-1';
  const a = await enroll({ bridge: world.bridge, tenant: 'macdc', login: 'user1' });
  assert.equal(a.status, 308);
  assert.equal((await putTo('macdc', a.token, checkin('Authenticate', { UDID: udid }))).r.status, 200);
  // the device channel, bearer-less, is forwarded while enrolled
  let u = await putTo('macdc', null, checkin('TokenUpdate', { UDID: udid }));
  assert.equal(u.r.status, 200, u.r.body);
  assert.equal(u.got.length, 1);
  const c = await cliAsync(['grants', 'retire', '-c', world.config.main, grantOf(a.token)]);
  assert.equal(c.code, 0, c.stderr);
  u = await putTo('macdc', null, checkin('TokenUpdate', { UDID: udid }));
  assert.equal(u.r.status, 403, u.r.body);
  assert.equal(JSON.parse(u.r.body).code, 'com.apple.unrecognized.device');
  assert.equal(u.got.length, 0);
  u = await putTo('macdc', null, checkin('CheckOut', { UDID: udid }));
  assert.equal(u.r.status, 200);
  assert.equal(u.got.length, 1);
  // another Mac's device channel: forwarded as before
  u = await putTo('macdc', null, checkin('TokenUpdate', { UDID: 'MAC-DC-OTHER' }));
  assert.equal(u.r.status, 200);
  assert.equal(u.got.length, 1);
});

test('the device channel of an enrolled Mac is not a store read per request; a retire is seen by the next one', async () => {
  const udid = 'MAC-DC-CACHED-1';
  const a = await enroll({ bridge: world.bridge, tenant: 'macdc', login: 'user1' });
  assert.equal(a.status, 308);
  assert.equal((await putTo('macdc', a.token, checkin('Authenticate', { UDID: udid }))).r.status, 200);
  const checks = async () => {
    const m = await metricsText(world.bridge);
    return {
      hit: metricSum(m, 'enrollbridge_retired_check_total', { result: 'hit' }),
      miss: metricSum(m, 'enrollbridge_retired_check_total', { result: 'miss' }),
    };
  };
  const send = () => fetch(`${world.publicUrl}/t/macdc/mdm/checkin`, {
    method: 'PUT', headers: { 'content-type': CT_CHECKIN }, body: checkin('TokenUpdate', { UDID: udid }),
  }).then(async (r) => { await r.arrayBuffer(); return r.status; });
  const N = 200;
  const c0 = await checks();
  const t0 = Date.now();
  for (let i = 0; i < N; i += 10) {
    const st = await Promise.all(Array.from({ length: 10 }, send));
    assert.deepEqual(st, st.map(() => 200));
  }
  const secs = Math.ceil((Date.now() - t0) / 1000);
  const c1 = await checks();
  const hits = c1.hit - c0.hit, misses = c1.miss - c0.miss;
  assert.equal(hits + misses, N, 'one retired check per request');
  // a store read per worker thread and second at most (the set's TTL)
  const bound = os.availableParallelism() * (secs + 1);
  assert.ok(misses <= bound && misses < N / 4, `${misses} of ${N} checks read the store (bound ${bound})`);
  // `grants retire` touches the change file: the next request unenrolls
  const c = await cliAsync(['grants', 'retire', '-c', world.config.main, grantOf(a.token)]);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(await send(), 403);
  assert.equal(await send(), 403);
});

// --------------------------------------------------------------- device-sim --

test('device-sim: enroll --state, retire, then checkin reports UNENROLLED (exit 3), with and without token', async () => {
  const dir = tmpDir();
  const state = path.join(dir, 'device.json');
  const e = await cliAsync(['device-sim', 'enroll', 'user1@gen.generic.test', '--base', world.publicUrl,
    '--login', 'user1', '--password', 'secret', '--state', state], { timeout: 40000 });
  assert.equal(e.code, 0, `${e.stdout}\n${e.stderr}`);
  assert.equal(fs.statSync(state).mode & 0o777, 0o600);
  const saved = JSON.parse(fs.readFileSync(state, 'utf8'));
  assert.ok(saved.enrollment_id && saved.server_url && saved.token);
  // still enrolled: accepted
  let r = await cliAsync(['device-sim', 'checkin', '--state', state]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^OK: Idle accepted/m);
  const gid = grantOf(saved.token);
  const c = await cliAsync(['grants', 'retire', '-c', world.config.main, gid]);
  assert.equal(c.code, 0, c.stderr);
  r = await cliAsync(['device-sim', 'checkin', '--state', state, '--message', 'TokenUpdate']);
  assert.equal(r.code, 3, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^UNENROLLED: the server ended this enrollment \(403 com\.apple\.unrecognized\.device\)/m);
  assert.match(r.stdout, /^INFO checkin: TokenUpdate: HTTP 403 com\.apple\.unrecognized\.device.*\(unenrolled\)/m);
  assert.ok(!r.stdout.includes(saved.token));
  // the device lost its token: the same
  r = await cliAsync(['device-sim', 'checkin', '--state', state, '--no-token']);
  assert.equal(r.code, 3, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^UNENROLLED/m);
  // usage errors: exit 2
  assert.equal((await cliAsync(['device-sim', 'checkin'])).code, 2);
  assert.equal((await cliAsync(['device-sim', 'checkin', '--state', state, '--message', 'Wipe'])).code, 2);
  assert.equal((await cliAsync(['device-sim', 'checkin', '--state', path.join(dir, 'none.json')])).code, 2);
});
