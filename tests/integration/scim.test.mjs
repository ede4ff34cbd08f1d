// SCIM 2.0 deprovisioning (issue 13 section 2c) against the real binary,
// real sign-ins at the test IdP and a fake MDM in this process: the
// requests Microsoft Entra provisioning sends (a userName filter, POST,
// the filter again, PATCH with op "Replace" and the string "False",
// DELETE), with its headers, and Okta's PUT of the whole resource with
// active false. A deactivated or deleted person's device is refused at its
// next MDM request: 403 "unrecognized device" on a tenant with
// on_access_lost "unenroll", 401 and the challenge with "reauth". The time
// from the SCIM answer to the first refused device request is printed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import { cliAsync, sql } from './lib.mjs';
import {
  ENTRA_PATH, enroll, entraTenant, freePort, oidcTenant, startTestIdp, startWorld, stopAll,
} from './idp.mjs';

const CT_CHECKIN = 'application/x-apple-aspen-mdm-checkin';
const ALICE = 'alice@contoso.com';
const ALICE_OID = '00000000-0000-0000-66f3-3332eca7ea81';
const TOKEN = 'scim-token-unenroll-0123456789abcdef';
const TOKEN_R = 'scim-token-reauth-0123456789abcdef';
const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

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
      seen.push({ method: req.method, url: req.url, body: Buffer.concat(chunks).toString() });
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

// A device check-in PUT of tenant; the answer and what reached the MDM.
async function put(tenant, token, body) {
  const n = seen.length;
  const r = await fetch(`${bridge.url}/t/${tenant}/mdm/checkin`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': CT_CHECKIN },
    body,
  });
  const res = { status: r.status, headers: r.headers, body: await r.text() };
  return { r: res, got: seen.slice(n) };
}

async function signIn(tenant) {
  const r = await enroll({ bridge, tenant, login: ALICE });
  assert.equal(r.status, 308, `sign-in stopped at ${r.stage}: ${r.status}`);
  return r.token;
}

// A SCIM request the way Entra's provisioning service sends it.
async function scim(tenant, method, path, body, { token = TOKEN, headers = {} } = {}) {
  const h = {
    authorization: `Bearer ${token}`,
    accept: 'application/scim+json',
    'user-agent': 'Azure-Provisioning-Service',
    ...headers,
  };
  if (body !== undefined) h['content-type'] = 'application/scim+json; charset=utf-8';
  const r = await fetch(`${bridge.url}/t/${tenant}/scim/v2${path}`, {
    method,
    headers: h,
    body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
  });
  const text = await r.text();
  let json;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: r.status, headers: r.headers, text, json, at: Date.now() };
}

// Entra's create request (its documented shape).
const entraUser = (userName, externalId) => ({
  schemas: [USER_SCHEMA, ENTERPRISE],
  externalId,
  userName,
  active: true,
  emails: [{ primary: true, type: 'work', value: userName }],
  meta: { resourceType: 'User' },
  name: { formatted: 'Alice Smith', familyName: 'Smith', givenName: 'Alice' },
  roles: [],
});

const deactivate = { schemas: [PATCH_SCHEMA], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] };

const filterPath = (attr, v) => `/Users?filter=${encodeURIComponent(`${attr} eq "${v}"`)}`;

function assertScimError(r, status, scimType) {
  assert.equal(r.status, status, r.text);
  assert.match(r.headers.get('content-type') ?? '', /^application\/scim\+json/);
  assert.deepEqual(r.json.schemas, [ERROR_SCHEMA]);
  assert.equal(r.json.status, String(status));
  if (scimType) assert.equal(r.json.scimType, scimType);
}

// Time from the SCIM answer to the device's first refused request.
async function refusalAfter(tenant, token, ids, scimAnswer, want) {
  for (;;) {
    const u = await put(tenant, token, checkin('TokenUpdate', ids));
    if (u.r.status === want) {
      const ms = Date.now() - scimAnswer.at;
      console.log(`scim→refusal: ${ms} ms (${tenant}, ${want})`);
      assert.ok(ms < 5000, `refused only after ${ms} ms`);
      assert.equal(u.got.length, 0, 'a deprovisioned device reached the MDM');
      return u;
    }
    assert.equal(u.r.status, 200, u.r.body);
    assert.ok(Date.now() - scimAnswer.at < 5000, 'still not refused after 5 s');
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

async function grants(...more) {
  const c = await cliAsync(['grants', 'list', '-c', world.config.main, '--json', ...more]);
  assert.equal(c.code, 0, c.stderr);
  return c.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}
const grant = async (id) => (await grants()).find((g) => g.id === id);

before(async () => {
  const port = await freePort();
  const pub = `http://127.0.0.1:${port}`;
  mdm = await startMdm();
  idp = await startTestIdp({ issuerPath: ENTRA_PATH });
  const upstream = `http://127.0.0.1:${mdm.address().port}/base/`;
  const a = entraTenant(pub, idp, 'contoso');
  a.tenant.mdm = { upstream };
  a.tenant.on_access_lost = 'unenroll';
  a.tenant.scim = { token: TOKEN };
  const b = entraTenant(pub, idp, 'contosor', { domains: ['contoso.org'] });
  b.tenant.mdm = { upstream };
  b.tenant.scim = { token: TOKEN_R }; // on_access_lost: reauth (default)
  const g = oidcTenant(pub, idp, 'gen');
  world = await startWorld(port, [a, b, g]);
  ({ bridge } = world);
});

after(async () => {
  await stopAll(bridge, idp);
  mdm.closeAllConnections?.();
  await new Promise((r) => mdm.close(r));
});

test('Entra provisioning on an unenroll tenant: deactivated -> 403, reactivated may sign in, deleted -> 403', async () => {
  const t = await signIn('contoso');
  const E = { EnrollmentID: 'ENR-SCIM-1' };
  assert.equal((await put('contoso', t, checkin('Authenticate', E))).r.status, 200);
  const g = await grant(grantOf(t));
  assert.equal(g.status, 'active');
  assert.equal(g.idp_login, ALICE); // what a SCIM userName matches

  // Entra looks the user up first: nobody
  const q0 = await scim('contoso', 'GET', filterPath('userName', ALICE));
  assert.equal(q0.status, 200, q0.text);
  assert.match(q0.headers.get('content-type'), /^application\/scim\+json/);
  assert.deepEqual(q0.json.schemas, [LIST_SCHEMA]);
  assert.equal(q0.json.totalResults, 0);
  assert.deepEqual(q0.json.Resources, []);
  assert.equal(q0.json.startIndex, 1);

  // then creates it
  const c = await scim('contoso', 'POST', '/Users', entraUser(ALICE, ALICE_OID));
  assert.equal(c.status, 201, c.text);
  assert.match(c.headers.get('content-type'), /^application\/scim\+json/);
  const id = c.json.id;
  assert.match(id, /^[A-Za-z0-9_-]{16,}$/);
  assert.equal(c.headers.get('location'), `${world.publicUrl}/t/contoso/scim/v2/Users/${id}`);
  assert.equal(c.json.meta.location, c.headers.get('location'));
  assert.equal(c.json.meta.resourceType, 'User');
  assert.match(c.json.meta.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(c.json.meta.version, 'W/"1"');
  assert.equal(c.json.userName, ALICE);
  assert.equal(c.json.externalId, ALICE_OID);
  assert.equal(c.json.active, true);
  assert.equal(c.json.name.givenName, 'Alice');

  // an active user changes nothing
  assert.equal((await put('contoso', t, checkin('TokenUpdate', E))).r.status, 200);

  // found by either filter now, and by id
  const q1 = await scim('contoso', 'GET', filterPath('userName', ALICE.toUpperCase()));
  assert.equal(q1.status, 200);
  assert.equal(q1.json.totalResults, 1);
  assert.equal(q1.json.itemsPerPage, 1);
  assert.equal(q1.json.Resources[0].id, id);
  const q2 = await scim('contoso', 'GET', filterPath('externalId', ALICE_OID));
  assert.equal(q2.json.totalResults, 1);
  const one = await scim('contoso', 'GET', `/Users/${id}`);
  assert.equal(one.status, 200);
  assert.equal(one.json.userName, ALICE);
  assert.equal(one.headers.get('etag'), 'W/"1"');

  // an attribute update the way Entra sends it: still active
  const upd = await scim('contoso', 'PATCH', `/Users/${id}`, {
    schemas: [PATCH_SCHEMA],
    Operations: [
      { op: 'Add', path: 'emails[type eq "work"].value', value: 'alice.smith@contoso.com' },
      { op: 'Replace', path: 'name.familyName', value: 'Smith-Jones' },
      { op: 'Add', value: { [`${ENTERPRISE}:department`]: 'Sales' } },
    ],
  });
  assert.equal(upd.status, 200, upd.text);
  assert.equal(upd.json.emails[0].value, 'alice.smith@contoso.com');
  assert.equal(upd.json.name.familyName, 'Smith-Jones');
  assert.equal(upd.json[ENTERPRISE].department, 'Sales');
  assert.equal(upd.json.active, true);
  assert.equal(upd.json.meta.version, 'W/"2"');
  assert.equal((await put('contoso', t, checkin('TokenUpdate', E))).r.status, 200);

  // the deactivation: op "Replace", value the string "False"
  const d = await scim('contoso', 'PATCH', `/Users/${id}`, deactivate);
  assert.equal(d.status, 200, d.text);
  assert.equal(d.json.active, false);
  const u = await refusalAfter('contoso', t, E, d, 403);
  assert.equal(JSON.parse(u.r.body).code, 'com.apple.unrecognized.device');
  const ended = await grant(grantOf(t));
  assert.equal(ended.status, 'revoked');
  assert.ok(ended.retired_at > 0, 'retired, not only revoked');
  assert.equal(ended.revoke_reason, 'deprovisioned by SCIM');
  const ev = sql(world.db, "select subject, detail from audit_events where event = 'scim.deprovision' and tenant = 'contoso'");
  assert.ok(ev.length >= 1);
  const det = JSON.parse(ev[ev.length - 1].detail);
  assert.equal(ev[ev.length - 1].subject, id);
  assert.equal(det.grants, 1);
  assert.equal(det.ended, 1);
  assert.equal(det.action, 'retire');

  // while deactivated, a new sign-in is refused (the IdP may still let
  // her in: Entra deactivates a user taken out of the app's scope)
  const no = await enroll({ bridge, tenant: 'contoso', login: ALICE });
  assert.equal(no.stage, 'callback');
  assert.equal(no.status, 403);
  assert.match(no.body, /deactivated your account/);

  // reactivated: may sign in again; the old grant stays ended
  const re = await scim('contoso', 'PATCH', `/Users/${id}`, {
    schemas: [PATCH_SCHEMA], Operations: [{ op: 'Replace', path: 'active', value: 'True' }],
  });
  assert.equal(re.status, 200);
  assert.equal(re.json.active, true);
  const t2 = await signIn('contoso');
  const E2 = { EnrollmentID: 'ENR-SCIM-2' };
  assert.equal((await put('contoso', t2, checkin('Authenticate', E2))).r.status, 200);
  assert.equal((await put('contoso', t, checkin('TokenUpdate', E))).r.status, 403);

  // hard delete: 204, then her new device is refused too
  const del = await scim('contoso', 'DELETE', `/Users/${id}`);
  assert.equal(del.status, 204);
  await refusalAfter('contoso', t2, E2, del, 403);
  assertScimError(await scim('contoso', 'GET', `/Users/${id}`), 404);
  assertScimError(await scim('contoso', 'DELETE', `/Users/${id}`), 404);
  assertScimError(await scim('contoso', 'PATCH', `/Users/${id}`, deactivate), 404);
  const q3 = await scim('contoso', 'GET', filterPath('userName', ALICE));
  assert.equal(q3.json.totalResults, 0);

  // the token never reached a log line
  assert.ok(!bridge.logs.some((l) => l.includes(TOKEN) || l.includes(TOKEN_R)), 'a SCIM token was logged');
});

test('Entra deactivation on a reauth tenant: 401 and the challenge', async () => {
  const t = await signIn('contosor');
  const E = { EnrollmentID: 'ENR-SCIM-R1' };
  assert.equal((await put('contosor', t, checkin('Authenticate', E))).r.status, 200);
  const opt = { token: TOKEN_R };
  assert.equal((await scim('contosor', 'GET', filterPath('userName', ALICE), undefined, opt)).json.totalResults, 0);
  const c = await scim('contosor', 'POST', '/Users', entraUser(ALICE, ALICE_OID), opt);
  assert.equal(c.status, 201, c.text);
  const d = await scim('contosor', 'PATCH', `/Users/${c.json.id}`, deactivate, opt);
  assert.equal(d.status, 200, d.text);
  const u = await refusalAfter('contosor', t, E, d, 401);
  assert.match(u.r.headers.get('www-authenticate') ?? '', /^Bearer method=/);
  const g = await grant(grantOf(t));
  assert.equal(g.status, 'revoked');
  assert.equal(g.retired_at, 0);
  // clean up for the Okta test: gone
  assert.equal((await scim('contosor', 'DELETE', `/Users/${c.json.id}`, undefined, opt)).status, 204);
});

test('Okta: PUT of the whole resource with active false, matched by userName alone', async () => {
  const opt = { token: TOKEN_R, headers: { 'user-agent': 'Okta SCIM Client 1.0.0' } };
  const okta = {
    schemas: [USER_SCHEMA],
    userName: ALICE,
    name: { givenName: 'Alice', familyName: 'Smith' },
    emails: [{ primary: true, value: ALICE, type: 'work' }],
    displayName: 'Alice Smith',
    locale: 'en-US',
    groups: [],
    password: 'not-kept-anywhere-but-the-resource',
    active: true,
  };
  const c = await scim('contosor', 'POST', '/Users', okta, opt);
  assert.equal(c.status, 201, c.text);
  const t = await signIn('contosor');
  const E = { EnrollmentID: 'ENR-SCIM-OKTA' };
  assert.equal((await put('contosor', t, checkin('Authenticate', E))).r.status, 200);
  const p = await scim('contosor', 'PUT', `/Users/${c.json.id}`, { ...okta, id: c.json.id, active: false }, opt);
  assert.equal(p.status, 200, p.text);
  assert.equal(p.json.active, false);
  assert.equal(p.json.id, c.json.id);
  assert.equal(p.json.displayName, 'Alice Smith');
  await refusalAfter('contosor', t, E, p, 401);
  // an unknown id: 404
  assertScimError(await scim('contosor', 'PUT', '/Users/nope', okta, opt), 404);
});

test('tokens, errors and discovery documents', async () => {
  // no token, a wrong one, another tenant's
  assertScimError(await scim('contoso', 'GET', '/Users', undefined, { token: '' }), 401);
  assertScimError(await scim('contoso', 'GET', '/Users', undefined, { token: `${TOKEN}x` }), 401);
  assertScimError(await scim('contoso', 'GET', '/Users', undefined, { token: TOKEN_R }), 401);
  const noAuth = await fetch(`${bridge.url}/t/contoso/scim/v2/Users`);
  assert.equal(noAuth.status, 401);
  assert.match(noAuth.headers.get('www-authenticate') ?? '', /^Bearer/);
  // a tenant without scim, and no tenant at all
  assertScimError(await scim('gen', 'GET', '/Users'), 404);
  assert.equal((await scim('nosuch', 'GET', '/Users')).status, 404);

  // duplicate userName (any case): 409 uniqueness
  const a = await scim('contoso', 'POST', '/Users', entraUser('dup@contoso.com', 'oid-dup'));
  assert.equal(a.status, 201, a.text);
  assertScimError(await scim('contoso', 'POST', '/Users', entraUser('DUP@contoso.com', 'oid-dup2')), 409, 'uniqueness');
  // filters the endpoint does not know, bad bodies
  assertScimError(await scim('contoso', 'GET', `/Users?filter=${encodeURIComponent('displayName eq "x"')}`), 400, 'invalidFilter');
  assertScimError(await scim('contoso', 'GET', `/Users?filter=${encodeURIComponent('userName co "x"')}`), 400, 'invalidFilter');
  assertScimError(await scim('contoso', 'POST', '/Users', '{"schemas":['), 400, 'invalidSyntax');
  assertScimError(await scim('contoso', 'POST', '/Users', { schemas: [USER_SCHEMA] }), 400, 'invalidValue');
  assertScimError(await scim('contoso', 'PATCH', `/Users/${a.json.id}`, { Operations: [] }), 400, 'invalidSyntax');
  assertScimError(await scim('contoso', 'PATCH', `/Users/${a.json.id}`, {
    schemas: [PATCH_SCHEMA], Operations: [{ op: 'Replace', path: 'active', value: 'maybe' }],
  }), 400, 'invalidValue');
  // too large a body: refused before it is read whole
  const big = await scim('contoso', 'POST', '/Users', { ...entraUser('big@contoso.com', 'b'), pad: 'x'.repeat(70000) });
  assert.equal(big.status, 413);
  // a list without a filter, paged
  const all = await scim('contoso', 'GET', '/Users?startIndex=1&count=1');
  assert.equal(all.status, 200);
  assert.equal(all.json.itemsPerPage, 1);
  assert.ok(all.json.totalResults >= 1);
  assert.equal((await scim('contoso', 'DELETE', `/Users/${a.json.id}`)).status, 204);

  const spc = await scim('contoso', 'GET', '/ServiceProviderConfig');
  assert.equal(spc.status, 200);
  assert.equal(spc.json.patch.supported, true);
  assert.equal(spc.json.filter.supported, true);
  assert.equal(spc.json.authenticationSchemes[0].type, 'oauthbearertoken');
  const rt = await scim('contoso', 'GET', '/ResourceTypes');
  assert.equal(rt.json.Resources[0].endpoint, '/Users');
  const sc = await scim('contoso', 'GET', '/Schemas');
  assert.equal(sc.json.Resources[0].id, USER_SCHEMA);
  assertScimError(await scim('contoso', 'GET', '/Groups'), 404);
});
