// `enrollbridge import-sqlite -c FILE SQLITE_PATH`: an SQLite install moves
// into PostgreSQL and nobody signs in again. A bridge on SQLite signs a
// person in (apple-oauth2 through the test IdP), binds the grant with a
// check-in, holds an access and a refresh token, an admin mapping override
// and audit rows; it stops; the import copies it all into a fresh database
// (the PostgreSQL config keeps the state_dir, so the old seal.key opens what
// SQLite sealed, beside a seal_keys file); the bridge on PostgreSQL then takes
// the old access token at the proxy, rotates the old refresh token, lists
// the grant, and has every audit row. A second import and an import across
// schema versions are refused and change nothing.
//
// Needs EB_TEST_PG (contrib/pg-test.sh): skipped without it, a failure under
// CI (lib.mjs, as EB_TEST_BACKEND=pg in the integration-pg list).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { drive } from '../idp/drive.mjs';
import {
  BACKEND, cliAsync, enrollPost, pgDatabase, sql, startBridge, tmpDir, writeConfig,
} from './lib.mjs';
import { freePort, idpAdmin, oidcTenant, sha256hex, startTestIdp } from './idp.mjs';

if (BACKEND !== 'pg') {
  console.error('import.test.mjs runs in the integration-pg list (EB_TEST_BACKEND=pg)');
  process.exit(process.env.CI ? 1 : 77);
}

const REDIRECT = 'apple-remotemanagement-user-login:/oauth2/redirection';
const MDM = { client_id: 'mdm-im', client_secret: 'im-secret' };
const ENROLLMENT = 'ENR-IMPORT-1';
const OVERRIDE = 'moved.person@appleid.generic.test'; // in the tenant's managed domain
let idp, mdm, port, spec, sqliteConf, pgMain, pgDsn, bridge;
const seen = [];

function startMdm() {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url });
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end('<ok/>');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

before(async () => {
  mdm = await startMdm();
  idp = await startTestIdp();
  port = await freePort();
  spec = oidcTenant(`http://127.0.0.1:${port}`, idp, 'im');
  spec.tenant.auth_method = 'apple-oauth2';
  spec.tenant.oauth2 = { client_id: 'apple-device', scope: 'mdm' };
  spec.tenant.mdm = { upstream: `http://127.0.0.1:${mdm.address().port}/base/`, clients: [MDM] };
  await idpAdmin(idp, '/clients', spec.client);

  // the SQLite install: a file, and the seal key in its state_dir
  const dir = tmpDir();
  sqliteConf = writeConfig({
    port,
    tenants: [spec.tenant],
    main: { database: path.join(dir, 'eb.db'), state_dir: path.join(dir, 'state'), limits: { upstream_timeout: 3 } },
  });
  // the same install on PostgreSQL: same state_dir, a fresh database, a
  // seal_keys file that seals from now on
  pgDsn = pgDatabase();
  const keyFile = path.join(sqliteConf.dir, 'seal_keys.key');
  fs.writeFileSync(keyFile, `${crypto.randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  const cfg = JSON.parse(fs.readFileSync(sqliteConf.main, 'utf8'));
  cfg.database = pgDsn;
  cfg.seal_keys = [`file:${keyFile}`];
  cfg.database_migrate = true;
  pgMain = path.join(sqliteConf.dir, 'pg.json');
  fs.writeFileSync(pgMain, JSON.stringify(cfg, null, 2));
});

after(async () => {
  await bridge?.stop();
  await idp?.close?.();
  mdm?.closeAllConnections?.();
  await new Promise((r) => (mdm ? mdm.close(r) : r()));
});

// ------------------------------------------------------------- helpers --

const url = () => `http://127.0.0.1:${port}`;

async function authorizeCode() {
  const r0 = await enrollPost(`${url()}/t/im/enroll`);
  assert.equal(r0.status, 401);
  const m = /authorization-url="([^"]+)"/.exec(r0.headers.get('www-authenticate'));
  assert.ok(m, r0.headers.get('www-authenticate'));
  const u = new URL(m[1]);
  const p = {
    response_type: 'code', client_id: 'apple-device', redirect_uri: REDIRECT, scope: 'mdm', state: 'st',
    login_hint: 'user1@im.generic.test',
  };
  for (const [k, v] of Object.entries(p)) u.searchParams.set(k, v);
  const r = await fetch(u, { redirect: 'manual' });
  assert.equal(r.status, 302, await r.text());
  const cookie = r.headers.get('set-cookie').split(';')[0];
  const cb = await drive(r.headers.get('location'), 'user1', 'secret', { consent: true });
  const r2 = await fetch(cb, { redirect: 'manual', headers: { cookie } });
  assert.equal(r2.status, 308);
  const back = r2.headers.get('location');
  assert.ok(back.startsWith(`${REDIRECT}?code=`), back);
  return new URL(back.replace(REDIRECT, 'http://device/cb')).searchParams.get('code');
}

async function token(form) {
  const r = await fetch(`${url()}/t/im/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: 'apple-device', ...form }),
  });
  return { status: r.status, json: await r.json() };
}

async function signIn() {
  const code = await authorizeCode();
  const t = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
  assert.equal(t.status, 200, JSON.stringify(t.json));
  return t.json;
}

const plist = (entries) => '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>'
  + Object.entries(entries).map(([k, v]) => `<key>${k}</key><string>${v}</string>`).join('')
  + '</dict></plist>\n';

// A check-in at the proxy; forwarded: whether the MDM saw it.
async function checkin(accessToken, type) {
  const n = seen.length;
  const r = await fetch(`${url()}/t/im/mdm/checkin`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/x-apple-aspen-mdm-checkin' },
    body: plist({ MessageType: type, Topic: 'com.apple.mgmt.test', EnrollmentID: ENROLLMENT }),
  });
  await r.text();
  await new Promise((res) => setTimeout(res, 20));
  return { status: r.status, forwarded: seen.length - n };
}

const grantOf = (db, rt) => sql(db, `select g.id, g.status, g.managed_apple_id, g.binding_kind, g.binding_value,
  g.idp_subject from grants g join tokens t on t.grant_id = g.id where t.hash = '${sha256hex(rt)}'`)[0];
// every table the import copies, counted
const TABLES = ['grants', 'tokens', 'auth_codes', 'login_flows', 'signing_keys', 'mapping_overrides', 'audit_events'];
const counts = (db) => Object.fromEntries(TABLES.map((t) => [t, sql(db, `select count(*) as n from ${t}`)[0].n]));
const importSqlite = (main, from) => cliAsync(['import-sqlite', '-c', main, from], { timeout: 60000 });

// --------------------------------------------------------------- tests --

let old; // what the device holds from the SQLite days
let before0; // the rows SQLite held

test('an SQLite install: a bound grant, tokens, an override and audit rows', async () => {
  bridge = await startBridge(sqliteConf.main);
  old = await signIn();
  const bound = await checkin(old.access_token, 'Authenticate');
  assert.deepEqual(bound, { status: 200, forwarded: 1 });
  // a refresh on SQLite too: the chain the device holds is a rotated one
  const r = await token({ grant_type: 'refresh_token', refresh_token: old.refresh_token });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  old = { access_token: old.access_token, refresh_token: r.json.refresh_token };
  await bridge.stop();
  bridge = undefined;

  const db = sqliteConf.cfg.database;
  const g = grantOf(db, old.refresh_token);
  assert.equal(g.status, 'active');
  assert.equal(g.binding_value, ENROLLMENT);
  // an admin's override of this person's Managed Apple Account
  sql(db, `insert into mapping_overrides (tenant, subject, managed_apple_id, note, created_at, updated_at)
    values ('im', '${g.idp_subject}', '${OVERRIDE}', 'moved', 1, 1)`);
  before0 = counts(db);
  for (const t of ['grants', 'tokens', 'signing_keys', 'mapping_overrides', 'audit_events']) {
    assert.ok(before0[t] > 0, `SQLite holds ${t}`);
  }
});

test('import-sqlite copies every row into the empty PostgreSQL database', async () => {
  const r = await importSqlite(pgMain, sqliteConf.cfg.database);
  assert.equal(r.code, 0, r.stderr);
  for (const t of TABLES) assert.match(r.stdout, new RegExp(`\\b${t}\\b.*\\b${before0[t]}\\b`), r.stdout);
  assert.deepEqual(counts(pgDsn), before0);
  assert.ok(!`${r.stdout}${r.stderr}`.includes('password'), 'no DSN secret in the output');
  // the rows themselves, not just their number
  const cols = 'id, tenant, status, managed_apple_id, binding_kind, binding_value, created_at, upstream_refresh_token is not null as has_rt';
  assert.deepEqual(sql(pgDsn, `select ${cols} from grants order by id`),
    sql(sqliteConf.cfg.database, `select ${cols} from grants order by id`).map((g) => ({ ...g, has_rt: g.has_rt === 1 })));
  assert.deepEqual(sql(pgDsn, 'select id, ts, event, subject from audit_events order by id'),
    sql(sqliteConf.cfg.database, 'select id, ts, event, subject from audit_events order by id'));
});

test('the bridge on PostgreSQL serves the old tokens; nobody signs in again', async () => {
  bridge = await startBridge(pgMain);
  // the old access token passes the proxy, the grant still bound
  assert.deepEqual(await checkin(old.access_token, 'TokenUpdate'), { status: 200, forwarded: 1 });
  // the old refresh token rotates (its sealed upstream token opens under
  // the state_dir key)
  const r = await token({ grant_type: 'refresh_token', refresh_token: old.refresh_token });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.deepEqual(await checkin(r.json.access_token, 'TokenUpdate'), { status: 200, forwarded: 1 });
  const g = grantOf(pgDsn, r.json.refresh_token);
  assert.equal(g.status, 'active');
  assert.equal(grantOf(pgDsn, old.refresh_token).id, g.id, 'the same grant');

  const list = await cliAsync(['grants', 'list', '-c', pgMain, '--json']);
  assert.equal(list.code, 0, list.stderr);
  const listed = list.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((x) => x.id === g.id);
  assert.ok(listed, list.stdout);
  assert.equal(listed.status, 'active');
  assert.equal(listed.binding_value, ENROLLMENT);
  // the admin override is in force on PostgreSQL (map asks the store)
  const claims = path.join(sqliteConf.dir, 'claims.json');
  fs.writeFileSync(claims, JSON.stringify({ sub: g.idp_subject, email: 'user1@im.generic.test' }));
  const m = await cliAsync(['map', '-c', pgMain, '--tenant', 'im', '--claims', claims]);
  assert.match(m.stdout, /^overrides: checked \(the PostgreSQL database\)$/m, m.stdout + m.stderr);
  assert.ok(!m.stdout.includes(pgDsn), 'the DSN is not printed');
  assert.match(m.stdout, new RegExp(`^managed_apple_id: ${OVERRIDE.replace(/\./g, '\\.')}$`, 'm'), m.stdout);

  // an admin revocation on PostgreSQL: its audit row gets an identity id
  // after the imported ones, and the old access token is refused
  const rv = await cliAsync(['grants', 'revoke', '-c', pgMain, g.id, '--reason', 'moved']);
  assert.equal(rv.code, 0, rv.stderr);
  const maxOld = sql(sqliteConf.cfg.database, 'select max(id) as m from audit_events')[0].m;
  const fresh = sql(pgDsn, `select id, event from audit_events where id > ${maxOld}`);
  assert.ok(fresh.some((e) => e.event === 'grant.revoked'), JSON.stringify(fresh));
  const deadline = Date.now() + 3000;
  let st;
  while (Date.now() < deadline && (st = (await checkin(old.access_token, 'TokenUpdate')).status) !== 401) {
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(st, 401, 'the revoked grant\'s old access token is refused');
  await bridge.stop();
  bridge = undefined;
});

test('a second import into the same database is refused and changes nothing', async () => {
  const was = counts(pgDsn);
  const r = await importSqlite(pgMain, sqliteConf.cfg.database);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, /import-sqlite: .*nothing imported: .*(not empty|holds data|already)/i);
  assert.deepEqual(counts(pgDsn), was);
});

test('an SQLite file at another schema version is refused, the target left empty', async () => {
  const copy = path.join(tmpDir(), 'future.db');
  fs.copyFileSync(sqliteConf.cfg.database, copy);
  sql(copy, "insert into schema_migrations (version, name, applied_at) values (999, 'from the future', 1)");
  const fresh = pgDatabase();
  const cfg = JSON.parse(fs.readFileSync(pgMain, 'utf8'));
  cfg.database = fresh;
  const main = path.join(sqliteConf.dir, 'fresh.json'); // tenants_dir is relative to it
  fs.writeFileSync(main, JSON.stringify(cfg));
  const r = await importSqlite(main, copy);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, /import-sqlite: .*(version|newer|schema)/i);
  // the target may have been migrated, never filled
  const schema = sql(fresh, "select count(*) as n from information_schema.tables where table_schema = 'public' and table_name = 'grants'")[0].n;
  if (schema > 0) assert.deepEqual(Object.values(counts(fresh)).filter((n) => n > 0), [], 'nothing imported');
  // and a file that is not a database at all
  const junk = path.join(path.dirname(copy), 'junk.db');
  fs.writeFileSync(junk, 'not a database'.repeat(100));
  const j = await importSqlite(main, junk);
  assert.equal(j.code, 1);
  assert.match(j.stderr, /import-sqlite: /);
});
