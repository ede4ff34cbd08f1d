// `enrollbridge device-sim enroll` (issue 4, "Device simulator") against a
// real deployment: the bridge, the real test IdP (whose login form the
// simulator fills headlessly) and a fake MDM in this process behind the
// bridge's MDM proxy. One whole enrollment per method and mode:
// apple-as-web BYOD (iPhone), apple-as-web ADDE (Mac: by_model_family Mac:
// adde), apple-oauth2 (code, token, refresh); then deployments that must
// fail with a clear FAIL line: a wrong password, and a dead MDM.
//
// The fake MDM lives in this event loop, so the CLI runs with cliAsync.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { drive } from '../idp/drive.mjs';
import { BIN, cliAsync, SRC, tmpDir } from './lib.mjs';
import { freePort, oidcTenant, startTestIdp, startWorld, stopAll } from './idp.mjs';

const PROFILE = path.join(SRC, 'tests/unit/data/profiles/enroll.mobileconfig');
const EMPTY_PLIST = '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict/></plist>\n';

let idp;
let world;
let keyDir;
const MAID_UUID = '0f1e2d3c-4b5a-4978-8877-665544332211';
const maidKeys = {
  ec: crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  rsa: crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }),
};
let mdm;
const seen = []; // what reached the fake MDM

function startMdm() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const ct = req.headers['content-type'] ?? '';
      seen.push({ method: req.method, url: req.url, ct, body, headers: req.headers });
      if (ct === 'application/x-apple-aspen-mdm') {
        res.writeHead(200, { 'content-type': 'application/xml' }).end(EMPTY_PLIST);
      } else {
        res.writeHead(200, { 'content-length': 0 }).end();
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

before(async () => {
  mdm = await startMdm();
  const upstream = `http://127.0.0.1:${mdm.address().port}`;
  const dead = `http://127.0.0.1:${await freePort()}`;
  idp = await startTestIdp();
  const port = await freePort();
  const pub = `http://127.0.0.1:${port}`;
  const web = oidcTenant(pub, idp, 'web');
  web.tenant.mdm = { upstream, profile: { file: PROFILE } };
  const oa = oidcTenant(pub, idp, 'oa');
  oa.tenant.auth_method = 'apple-oauth2';
  oa.tenant.mdm = { upstream, profile: { file: PROFILE } };
  const down = oidcTenant(pub, idp, 'down');
  down.tenant.mdm = { upstream: dead, profile: { file: PROFILE } };
  keyDir = tmpDir();
  const maid = [];
  for (const [kind, k] of Object.entries(maidKeys)) {
    fs.writeFileSync(path.join(keyDir, `${kind}.pem`), k.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    fs.writeFileSync(path.join(keyDir, `${kind}.pub`), k.publicKey.export({ type: 'spki', format: 'pem' }));
    const t = oidcTenant(pub, idp, `maid${kind}`);
    t.tenant.mdm = { upstream, profile: { file: PROFILE } };
    t.tenant.apple_business = { server_uuid: MAID_UUID, private_key: `file:${path.join(keyDir, `${kind}.pem`)}` };
    maid.push(t);
  }
  world = await startWorld(port, [web, oa, down, ...maid]);
});

after(async () => {
  await stopAll(world?.bridge, idp);
  await new Promise((r) => (mdm ? mdm.close(r) : r()));
});

async function sim(id, ...extra) {
  const r = await cliAsync(['device-sim', 'enroll', id, '--base', world.publicUrl, ...extra], { timeout: 40000 });
  return r;
}

// The line of a step: "PASS name: detail" (the last one with that name).
function step(out, name) {
  const lines = out.split('\n').filter((l) => new RegExp(`^(PASS|FAIL|WARN|INFO) ${name}: `).test(l));
  return lines.at(-1) ?? '';
}

function assertPassed(r, names) {
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  for (const n of names) assert.match(step(r.stdout, n), /^PASS /, `${n}:\n${r.stdout}`);
  assert.doesNotMatch(r.stdout, /^FAIL /m);
  assert.match(r.stdout, /^OK: the whole enrollment passed/m);
}

const COMMON = [
  'discovery', 'content-type', 'version', 'base-url', 'enroll-challenge', 'challenge', 'challenge-method',
  'web-login', 'profile-status', 'profile', 'enrollment-mode', 'managed-apple-id', 'access-rights', 'topic',
  'server-url', 'checkin-authenticate', 'checkin-tokenupdate', 'command-idle',
];

test('apple-as-web BYOD (iPhone): a whole enrollment, tokens never printed', async () => {
  const n = seen.length;
  const r = await sim('user1@web.generic.test', '--model-family', 'iPhone', '--login', 'user1', '--password', 'secret');
  assertPassed(r, [...COMMON, 'web-result']);
  assert.match(step(r.stdout, 'version'), /mdm-byod/);
  assert.match(step(r.stdout, 'machineinfo'), /PRODUCT iPhone.*no UDID\/SERIAL/);
  assert.match(step(r.stdout, 'challenge-method'), /apple-as-web, url http:\/\/127\.0\.0\.1:\d+\/t\/web\/auth\//);
  assert.match(step(r.stdout, 'web-result'), /access-token=<\d+ chars, fp [0-9a-f]{12}>/);
  assert.match(step(r.stdout, 'enrollment-mode'), /BYOD, matching mdm-byod/);
  assert.match(step(r.stdout, 'managed-apple-id'), /user1@appleid\.generic\.test/);
  assert.match(step(r.stdout, 'access-rights'), /no AccessRights \(BYOD\)/);
  assert.match(step(r.stdout, 'server-url'), /\/t\/web\/mdm\/mdm\/server$/);
  // what reached the MDM: Authenticate, TokenUpdate (EnrollmentID, no UDID), Idle
  const got = seen.slice(n);
  assert.deepEqual(got.map((g) => /<key>(?:MessageType|Status)<\/key>\s*<string>(\w+)</.exec(g.body)?.[1]),
    ['Authenticate', 'TokenUpdate', 'Idle']);
  assert.equal(got[0].url, '/mdm/checkin?tenant=acme');
  assert.equal(got[2].url, '/mdm/server');
  assert.match(got[0].body, /<key>EnrollmentID<\/key>/);
  assert.doesNotMatch(got[0].body, /<key>UDID<\/key>/);
  assert.match(got[1].body, /<key>Token<\/key>\s*<data>/);
  // the token is never printed: the one the MDM saw is nowhere in the output
  const token = /^Bearer (.+)$/.exec(got[0].headers.authorization ?? '')?.[1];
  assert.ok(token && token.length > 20, 'the MDM saw the device token');
  assert.ok(!r.stdout.includes(token) && !r.stderr.includes(token));
  assert.ok(!r.stdout.includes(token.slice(0, 16)));
});

test('apple-as-web ADDE (Mac): UDID in MachineInfo and check-ins, AccessRights allowed', async () => {
  const n = seen.length;
  const udid = '00008110-000A1B2C3D4E5F60';
  const r = await sim('user1@web.generic.test', '--model-family', 'Mac', '--udid', udid,
    '--login', 'user1', '--password', 'secret', '--json');
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const j = JSON.parse(r.stdout);
  assert.equal(j.ok, true);
  assert.equal(j.version, 'mdm-adde');
  const by = Object.fromEntries(j.steps.map((s) => [s.name, s]));
  for (const n2 of COMMON) assert.notEqual(by[n2]?.result, 'fail', n2);
  assert.equal(by['enrollment-mode'].result, 'pass');
  assert.match(by['enrollment-mode'].detail, /^ADDE/);
  assert.match(by.machineinfo.detail, new RegExp(`UDID ${udid}, SERIAL C02`));
  assert.equal(by['access-rights'].result, 'info');
  const got = seen.slice(n);
  assert.equal(got.length, 3);
  assert.match(got[0].body, new RegExp(`<key>UDID</key>\\s*<string>${udid}</string>`));
  assert.doesNotMatch(got[0].body, /EnrollmentID/);
});

test('apple-oauth2: code with the device state, token, refresh rotates, enrollment', async () => {
  const r = await sim('user1@oa.generic.test', '--login', 'user1', '--password', 'secret');
  assertPassed(r, [...COMMON, 'oauth2-authorize', 'oauth2-token', 'oauth2-refresh']);
  assert.match(step(r.stdout, 'challenge-method'), /apple-oauth2, authorization-url .*\/t\/oa\/oauth2\/authorize/);
  assert.match(step(r.stdout, 'oauth2-authorize'), /code=<\d+ chars, fp [0-9a-f]{12}> with the device's state/);
  assert.match(step(r.stdout, 'oauth2-token'), /Bearer access token \(\d+ chars, fp [0-9a-f]{12}\), expires_in \d+, refresh token/);
  assert.match(step(r.stdout, 'oauth2-refresh'), /a new refresh token/);
});

test('--interactive: prints the URL for a person, reads the final URL pasted back', async () => {
  const p = spawn(BIN, ['device-sim', 'enroll', 'user1@web.generic.test', '--base', world.publicUrl, '--interactive']);
  let stdout = '';
  let stderr = '';
  const done = new Promise((resolve) => p.on('close', resolve));
  const killer = setTimeout(() => p.kill('SIGKILL'), 30000);
  p.stderr.on('data', (d) => { stderr += d; });
  const url = await new Promise((resolve, reject) => {
    p.stdout.on('data', (d) => {
      stdout += d;
      const m = /^INFO web-open: open this URL in a browser and sign in: (\S+)$/m.exec(stdout);
      if (m) resolve(m[1]);
    });
    p.on('close', () => reject(new Error(`exited early:\n${stdout}\n${stderr}`)));
  });
  assert.match(url, /\/t\/web\/auth\/[^?]+\?user-identifier=user1%40web\.generic\.test$/);
  // the person: a browser that signs in and shows the custom-scheme URL
  const final = await drive(url, 'user1', 'secret', { stopAt: 'apple-remotemanagement-user-login:' });
  p.stdin.end(`${final}\n`);
  const code = await done;
  clearTimeout(killer);
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  assert.match(stdout, /^PASS web-result: /m);
  assert.match(stdout, /^PASS checkin-tokenupdate: /m);
  assert.match(stderr, /paste it here/);
});

test('a wrong password fails the web login with the IdP\'s message, exit 1', async () => {
  const r = await sim('user1@web.generic.test', '--login', 'user1', '--password', 'wrong');
  assert.equal(r.code, 1, r.stdout);
  assert.match(step(r.stdout, 'web-login'), /^FAIL web-login: .*Invalid login or password/);
  assert.match(r.stdout, /hint: check --login and --password/);
  assert.match(r.stdout, /^FAILED: 1 step failed/m);
  assert.equal(step(r.stdout, 'profile-status'), '', 'no step after the failure');
});

test('a dead MDM: the enrollment passes up to the check-in, which fails with a hint', async () => {
  const r = await sim('user1@down.generic.test', '--login', 'user1', '--password', 'secret');
  assert.equal(r.code, 1, r.stdout);
  assert.match(step(r.stdout, 'profile'), /^PASS /);
  assert.match(step(r.stdout, 'checkin-authenticate'), /^FAIL checkin-authenticate: Authenticate: HTTP 502/);
  assert.match(r.stdout, /hint: the bridge could not reach the MDM/);
});

for (const [kind, alg] of [['ec', 'ES256'], ['rsa', 'RS256']]) {
  test(`--maid-key: GetToken com.apple.maid answered by the bridge, ${alg} verified, claims exact`, async () => {
    const n = seen.length;
    const r = await sim(`user1@maid${kind}.generic.test`, '--login', 'user1', '--password', 'secret',
      '--maid-key', path.join(keyDir, `${kind}.pub`), '--maid-server-uuid', MAID_UUID.toUpperCase());
    assertPassed(r, [...COMMON, 'checkin-gettoken', 'gettoken-maid']);
    assert.match(step(r.stdout, 'gettoken-maid'), new RegExp(`^PASS gettoken-maid: ${alg} JWT \\(\\d+ chars, fp [0-9a-f]{12}\\) verifies with the key, claims exact \\(iss ${MAID_UUID}\\)`));
    const got = seen.slice(n);
    assert.equal(got.filter((g) => /GetToken/.test(g.body)).length, 0, 'the GetToken reached the MDM');
  });
}

test('--maid-key: the wrong key, the wrong UUID, a tenant without apple_business all FAIL', async () => {
  let r = await sim('user1@maidec.generic.test', '--login', 'user1', '--password', 'secret',
    '--maid-key', path.join(keyDir, 'rsa.pub'));
  assert.equal(r.code, 1, r.stdout);
  assert.match(step(r.stdout, 'gettoken-maid'), /^FAIL gettoken-maid: header alg is not the key's/);
  const other = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  fs.writeFileSync(path.join(keyDir, 'other.pub'), other.export({ type: 'spki', format: 'pem' }));
  r = await sim('user1@maidec.generic.test', '--login', 'user1', '--password', 'secret',
    '--maid-key', path.join(keyDir, 'other.pub'));
  assert.equal(r.code, 1, r.stdout);
  assert.match(step(r.stdout, 'gettoken-maid'), /^FAIL gettoken-maid: bad signature/);
  r = await sim('user1@maidec.generic.test', '--login', 'user1', '--password', 'secret',
    '--maid-key', path.join(keyDir, 'ec.pub'), '--maid-server-uuid', '00000000-0000-4000-8000-000000000000');
  assert.equal(r.code, 1, r.stdout);
  assert.match(step(r.stdout, 'gettoken-maid'), /^FAIL gettoken-maid: iss is not the server UUID given/);
  const n = seen.length;
  r = await sim('user1@web.generic.test', '--login', 'user1', '--password', 'secret',
    '--maid-key', path.join(keyDir, 'ec.pub'));
  assert.equal(r.code, 1, r.stdout);
  assert.match(step(r.stdout, 'gettoken-maid'), /^FAIL gettoken-maid: the answer is not a plist dict with TokenData/);
  assert.equal(seen.slice(n).filter((g) => /com\.apple\.maid/.test(g.body)).length, 1, 'forwarded to the MDM');
});

test('usage errors exit 2', async () => {
  for (const args of [[], ['not-an-id'], ['a@b.example', '--login', 'x'], ['a@b.example', '--model-family', 'Toaster'],
    ['a@b.example', '--maid-server-uuid', MAID_UUID]]) {
    const r = await cliAsync(['device-sim', 'enroll', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
  }
});
