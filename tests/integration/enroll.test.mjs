// Account-driven enrollment end to end (issue 4, "Tests"; PROTOCOL.md
// sections 1-6): discovery, the first POST and its challenge, both sign-in
// methods against the real test IdP, the second POST and the enrollment
// profile (BYOD and ADDE chosen by model-family), Enrollment SSO, a signed
// profile, and hostile inputs. One bridge and one IdP for the whole file.
//
// Profiles are parsed with python3's plistlib and CMS is checked with the
// openssl CLI through spawnSync: that blocks this process, so it is only
// used while no request to the in-process IdP is in flight.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { BACKEND, cliAsync, enrollPost, machineInfo, raw, SRC, statusOf, tmpDir } from './lib.mjs';
import {
  APPLE_RESULT, callback, drive, freePort, oidcTenant, sha256hex, sql, startLogin, startTestIdp,
  startWorld, stopAll,
} from './idp.mjs';

const REDIRECT = 'apple-remotemanagement-user-login:/oauth2/redirection';
const ASPEN = 'application/x-apple-aspen-config';
const TEXT = 'text/plain; charset=utf-8';
const PROFILES = path.join(SRC, 'tests/unit/data/profiles');
const ENROLL_PROFILE = path.join(PROFILES, 'enroll.mobileconfig');
const ESSO_PROFILE = path.join(PROFILES, 'esso.mobileconfig');
const ACCOUNT = 'user1@appleid.generic.test'; // user1's email user1@generic.test, domain_map'd
const MAC = { family: 'Mac', udid: '00008103-001A2B3C4D5E6F70', serial: 'C02XK1ZZJGH5' };

let idp, world, bridge, pub, keys;
const secrets = []; // every token/code the bridge handed out: never in its logs

// ------------------------------------------------------------- helpers --

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { timeout: 30000, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.status} ${r.stderr}`);
  return r.stdout;
}

const PY = `
import plistlib, sys, json, base64, datetime
def enc(o):
    if isinstance(o, (bytes, bytearray)): return {'$data': base64.b64encode(o).decode()}
    if isinstance(o, datetime.datetime): return {'$date': o.isoformat()}
    raise TypeError(str(type(o)))
print(json.dumps(plistlib.loads(sys.stdin.buffer.read()), default=enc))
`;
// A plist (XML or binary) as JSON ($data / $date for the non-JSON types).
function plist(buf) {
  return JSON.parse(run('python3', ['-c', PY], { input: buf, encoding: 'utf8' }));
}

const fixture = plist(fs.readFileSync(ENROLL_PROFILE));
const payloads = (p) => p.PayloadContent;
const mdmPayloads = (p) => payloads(p).filter((x) => x.PayloadType === 'com.apple.mdm');
const fixtureMdm = mdmPayloads(fixture)[0];

// Self-signed certificate + key (PEM) in dir; returns their paths.
function selfSigned(dir, name, cn) {
  const cert = path.join(dir, `${name}.crt`), key = path.join(dir, `${name}.key`);
  run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '2', '-subj', `/CN=${cn}`]);
  return { cert, key };
}

// CMS SignedData (DER, content attached) over data, signed by a self-signed key.
function cmsSign(dir, data, signer) {
  const inp = path.join(dir, `in-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(inp, data);
  return run('openssl', ['cms', '-sign', '-binary', '-nodetach', '-outform', 'DER', '-in', inp,
    '-signer', signer.cert, '-inkey', signer.key]);
}

function xmlPlist(dict) {
  const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const body = Object.entries(dict).map(([k, v]) => `\t<key>${esc(k)}</key>\n\t<string>${esc(v)}</string>\n`).join('');
  return Buffer.from('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
    + `<plist version="1.0">\n<dict>\n${body}</dict>\n</plist>\n`);
}

const enrollUrl = (t) => `${pub}/t/${t}/enroll`;

async function post(t, { body, token, family, udid, serial, headers = {} } = {}) {
  const h = { ...headers };
  if (token !== undefined) h.authorization = `Bearer ${token}`;
  const r = await enrollPost(enrollUrl(t), { body, family, udid, serial, headers: h });
  const buf = Buffer.from(await r.arrayBuffer());
  return { status: r.status, headers: r.headers, body: buf };
}

function asWebChallengeRe(t) {
  return new RegExp(`^Bearer method="apple-as-web", url="${pub}/t/${t}/auth/[A-Za-z0-9_-]{20,}"$`);
}
function oauth2ChallengeRe(t) {
  return new RegExp(`^Bearer method="apple-oauth2", authorization-url="(${pub}/t/${t}/oauth2/authorize\\?flow=[A-Za-z0-9_-]{20,})", token-url="(${pub}/t/${t}/oauth2/token)", redirect-url="(apple-remotemanagement-user-login:/oauth2/redirection)", client-id="(apple-device)", scope="(mdm)"$`);
}

// A 401 with the full challenge of tenant t for its method; returns its url(s).
function assertChallenge(r, t, method = 'apple-as-web') {
  assert.equal(r.status, 401, `want 401, got ${r.status}: ${r.body}`);
  const wa = r.headers.get('www-authenticate');
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.equal(r.headers.get('content-type'), TEXT);
  if (method === 'apple-as-web') {
    assert.match(wa, asWebChallengeRe(t));
    return /url="([^"]+)"/.exec(wa)[1];
  }
  const m = oauth2ChallengeRe(t).exec(wa);
  assert.ok(m, wa);
  return { authz: m[1], token: m[2] };
}

// A refused body: 400 (or 413), a plain text page, no challenge, no profile.
function assertRefused(r, status = 400, what = '') {
  assert.equal(r.status, status, `${what}: want ${status}, got ${r.status}: ${r.body}`);
  assert.equal(r.headers.get('www-authenticate'), null);
  assert.equal(r.headers.get('x-apple-mdm-esso'), null);
  assert.equal(r.headers.get('content-type'), TEXT);
  assert.ok(!r.body.includes('<plist') && !r.body.includes('com.apple.mdm'));
}

async function healthz() {
  assert.equal((await fetch(`${pub}/healthz`)).status, 200);
}

async function discovery(typed, family) {
  const u = new URL(`${pub}/.well-known/com.apple.remotemanagement`);
  u.searchParams.set('user-identifier', typed);
  if (family) u.searchParams.set('model-family', family);
  const r = await fetch(u);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/json');
  assert.equal(r.headers.get('cache-control'), 'no-store');
  const j = await r.json();
  assert.equal(j.Servers.length, 1);
  return j.Servers[0];
}

// apple-as-web from the first POST (this body) to the 308; returns the token.
async function webSignIn(t, { family = 'iPhone', udid, serial, typed = `user1@${t}.generic.test` } = {}) {
  const first = await post(t, { family, udid, serial });
  const url = assertChallenge(first, t);
  const st = await startLogin(url, typed);
  assert.equal(st.status, 302, st.body);
  const cb = await drive(st.location, 'user1', 'secret');
  const r = await callback(cb, st.cookie);
  assert.equal(r.status, 308, r.body);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.equal(r.headers.get('content-type'), TEXT);
  assert.ok(r.location.startsWith(`${APPLE_RESULT}?access-token=`), r.location);
  assert.match(r.token, /^[A-Za-z0-9_.-]+$/); // URL-safe
  assert.equal(r.location, `${APPLE_RESULT}?access-token=${r.token}`);
  secrets.push(r.token);
  return r.token;
}

// apple-oauth2 from the first POST to the code; returns { code, state, ch }.
async function oauthCode(t, { family = 'iPhone', udid, serial, state = 'st-ÅÄ/+&=' } = {}) {
  const first = await post(t, { family, udid, serial });
  const ch = assertChallenge(first, t, 'apple-oauth2');
  const u = new URL(ch.authz);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: 'apple-device', redirect_uri: REDIRECT, scope: 'mdm', state,
    login_hint: `user1@${t}.generic.test`,
  })) u.searchParams.set(k, v);
  assert.ok(u.searchParams.get('flow'), 'the authorization-url keeps its own query');
  const r = await fetch(u, { redirect: 'manual' });
  assert.equal(r.status, 302);
  const cookie = r.headers.get('set-cookie').split(';')[0];
  const cb = await drive(r.headers.get('location'), 'user1', 'secret');
  const r2 = await fetch(cb, { redirect: 'manual', headers: { cookie } });
  await r2.arrayBuffer();
  assert.equal(r2.status, 308);
  assert.equal(r2.headers.get('cache-control'), 'no-store');
  const loc = r2.headers.get('location');
  assert.ok(loc.startsWith(`${REDIRECT}?code=`), loc);
  const q = new URL(loc.replace(REDIRECT, 'http://device/cb')).searchParams;
  assert.equal(q.get('state'), state);
  secrets.push(q.get('code'));
  return { code: q.get('code'), ch };
}

async function tokenCall(t, form) {
  const r = await fetch(`${pub}/t/${t}/oauth2/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form),
  });
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.match(r.headers.get('content-type'), /^application\/json(;|$)/);
  const json = await r.json();
  if (r.status === 200) {
    assert.equal(json.token_type, 'Bearer');
    assert.ok(Number.isInteger(json.expires_in) && json.expires_in > 0);
    secrets.push(json.access_token, json.refresh_token);
  }
  return { status: r.status, json };
}

// The second POST with a bearer; asserts a 200 profile and returns it parsed.
async function profileFor(t, token, opts = {}) {
  const r = await post(t, { token, ...opts });
  assert.equal(r.status, 200, `want 200, got ${r.status}: ${r.body}`);
  assert.equal(r.headers.get('content-type'), ASPEN);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.equal(r.headers.get('www-authenticate'), null);
  return { raw: r.body, profile: opts.signed ? null : plist(r.body) };
}

// The patched profile against the fixture: every PROTOCOL.md section 4 key.
function checkProfile(p, t, mode, account = ACCOUNT) {
  const mdms = mdmPayloads(p);
  assert.equal(mdms.length, 1);
  const m = mdms[0];
  assert.equal(m.EnrollmentMode, mode);
  assert.equal(m.AssignedManagedAppleID, account);
  assert.ok(!('ManagedAppleID' in m), 'ManagedAppleID must be removed');
  if (mode === 'BYOD') assert.ok(!('AccessRights' in m), 'AccessRights must be absent for BYOD');
  else assert.equal(m.AccessRights, fixtureMdm.AccessRights);
  assert.equal(m.ServerURL, `${pub}/t/${t}/mdm/mdm/server`);
  assert.equal(m.CheckInURL, `${pub}/t/${t}/mdm/mdm/checkin?tenant=acme`);
  for (const k of ['Topic', 'IdentityCertificateUUID', 'ServerCapabilities', 'SignMessage',
    'CheckOutWhenRemoved', 'PayloadIdentifier', 'PayloadUUID', 'PayloadType', 'PayloadVersion',
    'PayloadDisplayName', 'PayloadDescription']) {
    assert.deepEqual(m[k], fixtureMdm[k], k);
  }
  assert.match(m.Topic, /^com\.apple\.mgmt\./);
  // nothing else in the MDM payload changed, added or lost
  const changed = new Set(['EnrollmentMode', 'AssignedManagedAppleID', 'AccessRights', 'ManagedAppleID', 'ServerURL', 'CheckInURL']);
  const rest = (o) => Object.fromEntries(Object.entries(o).filter(([k]) => !changed.has(k)));
  assert.deepEqual(rest(m), rest(fixtureMdm));
  // other payloads and top-level keys kept
  assert.deepEqual(payloads(p).filter((x) => x.PayloadType !== 'com.apple.mdm'),
    payloads(fixture).filter((x) => x.PayloadType !== 'com.apple.mdm'));
  const top = (o) => Object.fromEntries(Object.entries(o).filter(([k]) => k !== 'PayloadContent'));
  assert.deepEqual(top(p), top(fixture));
}

const grantOf = (token) => sql(world.db, `select g.* from grants g join tokens t on t.grant_id = g.id where t.hash = '${sha256hex(token)}'`)[0];

// -------------------------------------------------------------- world --

before(async () => {
  idp = await startTestIdp();
  const port = await freePort();
  pub = `http://127.0.0.1:${port}`;
  const fakeMdm = `http://127.0.0.1:${await freePort()}`; // never reached here
  const deadPort = await freePort();
  keys = tmpDir('eb-enroll-keys-');
  const signer = selfSigned(keys, 'profile-signer', 'enrollbridge test profile signer');
  keys = { dir: keys, signer, device: selfSigned(keys, 'device', 'fake device') };

  const mdm = (extra = {}) => ({ profile: { file: ENROLL_PROFILE }, upstream: fakeMdm, use_proxy: true, ...extra });
  const specs = [];
  const add = (id, extra) => {
    const s = oidcTenant(pub, idp, id);
    s.tenant.enrollment = { default: 'byod', by_model_family: { Mac: 'adde' } };
    Object.assign(s.tenant, extra);
    specs.push(s);
    return s;
  };
  add('web', { mdm: mdm() });
  add('oa', { mdm: mdm(), auth_method: 'apple-oauth2', oauth2: { client_id: 'apple-device', scope: 'mdm' } });
  add('esso', {
    mdm: mdm(),
    auth_method: 'apple-oauth2',
    oauth2: { client_id: 'apple-device', scope: 'mdm' },
    esso: {
      app_store_id: 123456789,
      associated_domains: ['authsrv:login.example.com', 'webcredentials:login.example.com'],
      profile_file: ESSO_PROFILE,
      developer: { app_ids: ['ABCDE12345.com.example.sso'] },
    },
  });
  add('essoprod', {
    mdm: mdm(),
    esso: { app_store_id: 987654321, profile_file: ESSO_PROFILE },
  });
  add('sig', { mdm: mdm({ signing_cert: signer.cert, signing_key: signer.key }) });
  add('dead', { mdm: { profile: { url: `http://127.0.0.1:${deadPort}/mdm/enroll` } } });
  world = await startWorld(port, specs, { limits: { upstream_timeout: 3, max_body_bytes: 65536 } });
  ({ bridge } = world);
});

after(async () => {
  await stopAll(bridge, idp);
  if (keys?.dir) fs.rmSync(keys.dir, { recursive: true, force: true });
});

// ---------------------------------------------------------- 1: as-web --

test('apple-as-web BYOD (iPhone): discovery, one exact challenge, 308 token, patched profile', async () => {
  const d = await discovery('user1@web.generic.test', 'iPhone');
  assert.deepEqual(d, { Version: 'mdm-byod', BaseURL: enrollUrl('web') });
  assert.equal((await discovery('user1@web.generic.test')).Version, 'mdm-byod'); // older OS: no model-family

  // exactly ONE WWW-Authenticate line on the wire
  const body = machineInfo({ family: 'iPhone' });
  const resp = await raw(Number(new URL(pub).port), Buffer.concat([Buffer.from(
    `POST /t/web/enroll HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: DeviceManagementClient/1.0\r\n`
    + `Content-Type: application/pkcs7-signature\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`), body]));
  assert.equal(statusOf(resp), 401);
  const head = resp.split('\r\n\r\n')[0];
  const lines = head.split('\r\n').filter((l) => /^www-authenticate:/i.test(l));
  assert.equal(lines.length, 1, head);
  assert.match(lines[0].replace(/^www-authenticate:\s*/i, ''), asWebChallengeRe('web'));
  assert.ok(!/^x-apple-mdm-esso/im.test(head), 'no ESSO header without esso settings');

  const token = await webSignIn('web');
  // iOS 15 sent the same bytes as form-urlencoded: never parse by Content-Type
  const { profile } = await profileFor('web', token, { headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  checkProfile(profile, 'web', 'BYOD');
  const g = grantOf(token);
  assert.equal(g.enrollment_mode, 'BYOD');
  assert.equal(g.managed_apple_id, ACCOUNT);
  assert.equal(g.auth_method, 'apple-as-web');
  assert.equal(g.status, 'active');
});

// ---------------------------------------------------------- 2: as-web ADDE --

test('apple-as-web ADDE chosen by model-family Mac: mdm-adde, EnrollmentMode ADDE with AccessRights', async () => {
  const d = await discovery('user1@web.generic.test', 'Mac');
  assert.deepEqual(d, { Version: 'mdm-adde', BaseURL: enrollUrl('web') });
  const token = await webSignIn('web', MAC);
  const { profile } = await profileFor('web', token, MAC);
  checkProfile(profile, 'web', 'ADDE');
  const g = grantOf(token);
  assert.equal(g.enrollment_mode, 'ADDE');
  assert.equal(g.managed_apple_id, ACCOUNT);
});

// ---------------------------------------------------------- 3: oauth2 --

for (const [mode, dev] of [['BYOD', { family: 'iPhone' }], ['ADDE', MAC]]) {
  test(`apple-oauth2 ${mode}: challenge, code, tokens, profile; after a refresh the new token gets the same mode`, async () => {
    const d = await discovery('user1@oa.generic.test', dev.family);
    assert.deepEqual(d, { Version: mode === 'BYOD' ? 'mdm-byod' : 'mdm-adde', BaseURL: enrollUrl('oa') });
    const { code, ch } = await oauthCode('oa', { ...dev, state: `state-${mode}` });
    assert.equal(ch.token, `${pub}/t/oa/oauth2/token`);
    const t0 = await tokenCall('oa', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: 'apple-device' });
    assert.equal(t0.status, 200, JSON.stringify(t0.json));
    const p0 = (await profileFor('oa', t0.json.access_token, dev)).profile;
    checkProfile(p0, 'oa', mode);
    assert.equal(grantOf(t0.json.access_token).enrollment_mode, mode);

    const t1 = await tokenCall('oa', { grant_type: 'refresh_token', refresh_token: t0.json.refresh_token, client_id: 'apple-device' });
    assert.equal(t1.status, 200, JSON.stringify(t1.json));
    assert.notEqual(t1.json.access_token, t0.json.access_token);
    // the refreshed token, from a device whose body now says iPhone: the grant's mode wins
    const p1 = (await profileFor('oa', t1.json.access_token, { family: 'iPhone' })).profile;
    checkProfile(p1, 'oa', mode);
    assert.equal(mdmPayloads(p1)[0].EnrollmentMode, mdmPayloads(p0)[0].EnrollmentMode);
    assert.equal(mdmPayloads(p1)[0].AssignedManagedAppleID, mdmPayloads(p0)[0].AssignedManagedAppleID);
  });
}

// ---------------------------------------------------------- 4: ESSO --

test('Enrollment SSO: the 401 names esso.json (and its developer twin); the documents', async () => {
  const r = await post('esso');
  assertChallenge(r, 'esso', 'apple-oauth2');
  assert.equal(r.headers.get('x-apple-mdm-esso'), `${pub}/t/esso/esso.json`);
  assert.equal(r.headers.get('x-apple-mdm-esso-developer'), `${pub}/t/esso/esso.json?developer=1`);

  const fixtureBytes = fs.readFileSync(ESSO_PROFILE);
  let g = await fetch(`${pub}/t/esso/esso.json`);
  assert.equal(g.status, 200);
  assert.equal(g.headers.get('content-type'), 'application/json');
  assert.equal(g.headers.get('cache-control'), 'no-store');
  let doc = await g.json();
  assert.ok(Number.isInteger(doc.iTunesStoreID));
  assert.equal(doc.iTunesStoreID, 123456789);
  assert.deepEqual(doc.AssociatedDomains, ['authsrv:login.example.com', 'webcredentials:login.example.com']);
  assert.ok(!('AppIDs' in doc));
  assert.equal(typeof doc.ConfigurationProfile, 'string');
  assert.match(doc.ConfigurationProfile, /^[A-Za-z0-9+/]+=*$/);
  assert.ok(Buffer.from(doc.ConfigurationProfile, 'base64').equals(fixtureBytes));
  if ('AssociatedDomainsEnableDirectDownloads' in doc) assert.equal(typeof doc.AssociatedDomainsEnableDirectDownloads, 'boolean');

  g = await fetch(`${pub}/t/esso/esso.json?developer=1`);
  assert.equal(g.status, 200);
  assert.equal(g.headers.get('content-type'), 'application/json');
  assert.equal(g.headers.get('cache-control'), 'no-store');
  doc = await g.json();
  assert.deepEqual(doc.AppIDs, ['ABCDE12345.com.example.sso']);
  assert.ok(!('iTunesStoreID' in doc));
  assert.ok(Buffer.from(doc.ConfigurationProfile, 'base64').equals(fixtureBytes));

  // ESSO without developer app ids: no developer header, no developer document
  const r2 = await post('essoprod');
  assertChallenge(r2, 'essoprod');
  assert.equal(r2.headers.get('x-apple-mdm-esso'), `${pub}/t/essoprod/esso.json`);
  assert.equal(r2.headers.get('x-apple-mdm-esso-developer'), null);
  g = await fetch(`${pub}/t/essoprod/esso.json`);
  assert.equal(g.status, 200);
  assert.equal((await g.json()).iTunesStoreID, 987654321);
  assert.equal((await fetch(`${pub}/t/essoprod/esso.json?developer=1`)).status, 404);
  // a tenant without esso has no document
  assert.equal((await fetch(`${pub}/t/web/esso.json`)).status, 404);
});

// ---------------------------------------------------------- 5: signed --

test('signed profile: DER CMS that openssl verifies against the tenant cert, content = the patched profile', async () => {
  const token = await webSignIn('sig');
  const { raw: der } = await profileFor('sig', token, { signed: true });
  assert.equal(der[0], 0x30, 'DER SEQUENCE');
  assert.ok(!der.subarray(0, 64).toString('latin1').includes('<?xml'));
  const f = path.join(keys.dir, 'signed.der');
  fs.writeFileSync(f, der);
  const content = run('openssl', ['cms', '-verify', '-CAfile', keys.signer.cert, '-inform', 'DER', '-in', f]);
  checkProfile(plist(content), 'sig', 'BYOD');
  // and not against another CA
  const r = spawnSync('openssl', ['cms', '-verify', '-CAfile', keys.device.cert, '-inform', 'DER', '-in', f]);
  assert.notEqual(r.status, 0);
});

// ---------------------------------------------------------- 6: hostile --

// Issue 11 finding 8 changed this contract: opening the URL no longer writes
// a row either (the flow travels sealed in the IdP's state until a valid
// callback), and a reload is a second attempt beside the first.
test('a challenge stores nothing, and neither does opening its sign-in URL or reloading it', async () => {
  const flows = () => sql(world.db, 'select count(*) as n from login_flows')[0].n;
  const before = flows();
  const urls = [];
  for (let i = 0; i < 30; i++) urls.push(assertChallenge(await post('web', { family: 'iPhone', serial: `SERIAL${i}` }), 'web'));
  assert.equal(new Set(urls).size, 30, 'every challenge its own flow');
  assert.equal(flows(), before, 'no row for a challenge');
  // the device's identifiers are not readable in the URL
  assert.ok(!urls.some((u) => u.includes('SERIAL')), 'serial number in a challenge URL');
  const st = await startLogin(urls[7], 'user1@web.generic.test');
  assert.equal(st.status, 302, st.body);
  assert.equal(flows(), before, 'no row once the sign-in starts');
  const state = new URL(st.location).searchParams.get('state');
  assert.ok(state && state.length < 2048, `state of ${state?.length} bytes`);
  assert.ok(!st.location.includes('SERIAL'), 'serial number in the IdP URL');
  const again = await startLogin(urls[7], 'user1@web.generic.test');
  assert.equal(again.status, 302, again.body);
  assert.equal(flows(), before, 'no row for a reload either');
  assert.notEqual(new URL(again.location).searchParams.get('state'), state, 'a reload is an attempt of its own');
  assert.notEqual(again.cookie, st.cookie);
  // the same flow under another tenant's path, or altered: the expired page
  const moved = await startLogin(urls[3].replace('/t/web/', '/t/sig/'), 'user1@sig.generic.test');
  assert.equal(moved.status, 400, moved.body);
  const last = urls[3].slice(-1) === 'A' ? 'B' : 'A';
  const altered = await startLogin(urls[3].slice(0, -1) + last, 'user1@web.generic.test');
  assert.equal(altered.status, 400, altered.body);
  assert.equal(flows(), before);
});

test('hostile first POST bodies: 400 (413 oversize), never a challenge, the server keeps answering', async () => {
  const real = machineInfo({ family: 'iPhone' });
  const altered = Buffer.from(real);
  const at = altered.indexOf('iPhone', altered.indexOf('PRODUCT'));
  assert.ok(at > 0, 'PRODUCT value inside the signed content');
  altered[at + 3] ^= 0x01; // iPhone -> iPhne-ish, still text
  const noProduct = cmsSign(keys.dir, xmlPlist({ LANGUAGE: 'en', VERSION: '22A3354', OS_VERSION: '18.0' }), keys.device);
  const withProduct = cmsSign(keys.dir, xmlPlist({ PRODUCT: 'iPhone17,2', LANGUAGE: 'en', VERSION: '22A3354' }), keys.device);
  const rawPlist = (inner) => Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n${inner}</dict>\n</plist>\n`);
  const detachedIn = path.join(keys.dir, 'detached.plist');
  fs.writeFileSync(detachedIn, xmlPlist({ PRODUCT: 'iPhone17,2' }));
  const detached = run('openssl', ['cms', '-sign', '-binary', '-outform', 'DER', '-in', detachedIn,
    '-signer', keys.device.cert, '-inkey', keys.device.key]);
  const cases = {
    garbage: Buffer.from('\x00\xffnot a cms at all\r\n'.repeat(20), 'latin1'),
    empty: Buffer.alloc(0),
    truncated: real.subarray(0, Math.floor(real.length / 2)),
    'plain plist': xmlPlist({ PRODUCT: 'iPhone17,2', LANGUAGE: 'en', VERSION: '22A3354' }),
    'altered content': altered,
    'no PRODUCT': noProduct,
    'PRODUCT not a string': cmsSign(keys.dir, rawPlist('<key>PRODUCT</key><integer>17</integer>\n'), keys.device),
    'PRODUCT with a control character': cmsSign(keys.dir, rawPlist('<key>PRODUCT</key><string>iPhone\t17,2</string>\n'), keys.device),
    'MachineInfo not a dict': cmsSign(keys.dir, rawPlist('').toString().replace('<dict>\n</dict>', '<array><string>PRODUCT</string></array>'), keys.device),
    'detached CMS (no content)': detached,
  };
  for (const t of ['web', 'oa']) {
    for (const [name, body] of Object.entries(cases)) {
      const r = await post(t, { body });
      assertRefused({ ...r, body: r.body.toString('latin1') }, 400, `${t}: ${name}`);
      await healthz();
    }
    // the same self-signed CMS with a PRODUCT is fine: the 400 above is the missing PRODUCT
    assertChallenge(await post(t, { body: withProduct }), t, t === 'web' ? 'apple-as-web' : 'apple-oauth2');
  }
  // over limits.max_body_bytes (65536): Content-Length, then chunked
  const big = Buffer.alloc(200 * 1024, 0x41);
  const r = await post('web', { body: big });
  assertRefused({ ...r, body: r.body.toString('latin1') }, 413);
  await healthz();
  const port = Number(new URL(pub).port);
  let chunked = Buffer.from('POST /t/web/enroll HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n');
  for (let i = 0; i < 50; i++) chunked = Buffer.concat([chunked, Buffer.from('1000\r\n'), Buffer.alloc(4096, 0x42), Buffer.from('\r\n')]);
  chunked = Buffer.concat([chunked, Buffer.from('0\r\n\r\n')]);
  const rr = await raw(port, chunked);
  assert.equal(statusOf(rr), 413, rr.slice(0, 300));
  assert.ok(!/www-authenticate/i.test(rr));
  await healthz();
  // a malformed body with a valid bearer is refused too, no profile
  const token = await webSignIn('web');
  const rb = await post('web', { body: cases.truncated, token });
  assertRefused({ ...rb, body: rb.body.toString('latin1') }, 400);
});

test('hostile bearers: garbage, expired-looking, another tenant, revoked grant -> 401 with the full challenge', async () => {
  const token = await webSignIn('web');
  await profileFor('web', token); // it works...
  const [h, p, s] = token.split('.');
  assert.ok(h && p && s, 'a JWS');
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  const expired = [h, Buffer.from(JSON.stringify({ ...claims, iat: claims.iat - 7200, exp: claims.iat - 3600 })).toString('base64url'), s].join('.');
  for (const bad of ['garbage', 'a.b.c', expired, `${token}x`, token.toUpperCase(), '']) {
    const r = await post('web', { token: bad });
    assertChallenge({ ...r, body: r.body.toString() }, 'web');
  }
  // a good token of tenant web at tenant sig (and at the oauth2 tenant)
  assertChallenge({ ...(await post('sig', { token })) }, 'sig');
  assertChallenge({ ...(await post('oa', { token })) }, 'oa', 'apple-oauth2');
  await profileFor('web', token); // ...and still works at home

  const g = grantOf(token);
  const rv = await cliAsync(['grants', 'revoke', '-c', world.config.main, g.id]);
  assert.equal(rv.code, 0, rv.stderr);
  // on PostgreSQL another process's revocation reaches the server through
  // the change feed: within its bound (NOTIFY, else the 250 ms poll), not
  // before the CLI returns
  let r = await post('web', { token });
  const until = Date.now() + (BACKEND === 'pg' ? 1000 : 0);
  while (r.status === 200 && Date.now() < until) {
    await new Promise((res) => setTimeout(res, 25));
    r = await post('web', { token });
  }
  assertChallenge({ ...r, body: r.body.toString() }, 'web');
  assert.equal(grantOf(token).status, 'revoked');
});

test('profile from a dead MDM: a valid bearer gets 502 with Retry-After and no profile', async () => {
  const token = await webSignIn('dead');
  const r = await post('dead', { token });
  const text = r.body.toString('latin1');
  assert.equal(r.status, 502, text);
  assert.ok(r.headers.get('retry-after'), 'Retry-After');
  assert.match(r.headers.get('retry-after'), /^\d+$/);
  assert.equal(r.headers.get('content-type'), TEXT);
  assert.notEqual(r.headers.get('content-type'), ASPEN);
  assert.equal(r.headers.get('www-authenticate'), null);
  assert.ok(!text.includes('<plist') && !text.includes('com.apple.mdm'), text);
  await healthz();
});

test('no token or code handed out appears in the bridge logs; clean shutdown, no sanitizer report', async () => {
  assert.ok(secrets.length >= 10);
  const ex = await bridge.stop();
  assert.equal(ex.code, 0, JSON.stringify(ex));
  await new Promise((r) => setTimeout(r, 200)); // stderr may trail the exit
  const logs = bridge.logs.join('\n');
  for (const s of secrets) {
    assert.ok(s && s.length >= 16);
    assert.ok(!logs.includes(s), `a secret (${s.slice(0, 8)}...) is in the log`);
    // nor a JWS's signature part alone
    const sig = s.split('.').pop();
    if (sig.length >= 16) assert.ok(!logs.includes(sig));
  }
  assert.doesNotMatch(logs, /AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:/);
});
