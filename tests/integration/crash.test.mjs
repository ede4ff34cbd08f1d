// Crash safety (issue 5): kill -9 the bridge in the middle of a refresh
// storm, restart it on the same database, and show that no grant is lost,
// that no grant ever holds two live refresh tokens, and that a revoked
// grant's tokens stay dead.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { drive } from '../idp/drive.mjs';
import { cli, enrollPost, integrityProblems, startBridge } from './lib.mjs';
import { freePort, oidcTenant, sql, sha256hex, startTestIdp, startWorld, stopAll } from './idp.mjs';

const REDIRECT = 'apple-remotemanagement-user-login:/oauth2/redirection';
const CHAINS = 6;
let idp, bridge;
after(async () => { await stopAll(bridge, idp); });

async function token(url, form) {
  const r = await fetch(`${url}/t/oa/oauth2/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form),
  });
  return { status: r.status, json: await r.json() };
}
const refreshForm = (rt) => ({ grant_type: 'refresh_token', refresh_token: rt, client_id: 'apple-device' });

async function signIn(url) {
  const r = await enrollPost(`${url}/t/oa/enroll`);
  const authz = /authorization-url="([^"]+)"/.exec(r.headers.get('www-authenticate'))[1];
  const u = new URL(authz);
  for (const [k, v] of Object.entries({ response_type: 'code', client_id: 'apple-device', redirect_uri: REDIRECT, scope: 'mdm', state: 's' })) u.searchParams.set(k, v);
  const r2 = await fetch(u, { redirect: 'manual' });
  const cookie = r2.headers.get('set-cookie').split(';')[0];
  const cb = await drive(r2.headers.get('location'), 'user1', 'secret');
  const r3 = await fetch(cb, { redirect: 'manual', headers: { cookie } });
  const code = new URL(r3.headers.get('location').replace(REDIRECT, 'http://d/cb')).searchParams.get('code');
  const t = await token(url, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: 'apple-device' });
  assert.equal(t.status, 200);
  return t.json;
}

test('kill -9 during a refresh storm loses nothing and accepts nothing twice', async () => {
  idp = await startTestIdp();
  const port = await freePort();
  const spec = oidcTenant(`http://127.0.0.1:${port}`, idp, 'oa');
  spec.tenant.auth_method = 'apple-oauth2';
  const world = await startWorld(port, [spec]);
  bridge = world.bridge;
  const url = bridge.url;

  const chains = [];
  for (let i = 0; i < CHAINS; i += 1) chains.push({ last: (await signIn(url)).refresh_token, ok: 0 });
  // one more grant, revoked by an admin before the crash
  const victim = await signIn(url);
  const victimGrant = sql(world.db, `select grant_id from tokens where hash = '${sha256hex(victim.refresh_token)}'`)[0].grant_id;
  const rv = cli(['grants', 'revoke', '-c', world.config.main, victimGrant]);
  assert.equal(rv.code, 0, rv.stderr);

  // the storm: every chain refreshes as fast as it can
  let stop = false;
  const storm = chains.map(async (c) => {
    while (!stop) {
      try {
        const r = await token(url, refreshForm(c.last));
        if (r.status !== 200) { c.error = r.json; return; }
        c.last = r.json.refresh_token;
        c.ok += 1;
      } catch { return; } // the server died under us
    }
  });
  await new Promise((r) => setTimeout(r, 1500));
  bridge.proc.kill('SIGKILL');
  stop = true;
  await Promise.all(storm);
  await bridge.exited;
  for (const c of chains) {
    assert.equal(c.error, undefined, `a chain failed before the crash: ${JSON.stringify(c.error)}`);
    assert.ok(c.ok > 0, 'the storm did refresh');
  }

  // the database is intact and never held two live refresh tokens per grant
  assert.deepEqual(integrityProblems(world.db), []);
  assert.deepEqual(sql(world.db, "select grant_id, count(*) n from tokens where kind = 'refresh' and status = 'active' group by grant_id having count(*) > 1"), []);

  bridge = await startBridge(world.config.main);
  // no grant lost: every chain goes on from the last token it received (a
  // response lost in the crash is covered by the 30 s grace window)
  for (const c of chains) {
    const r = await token(url, refreshForm(c.last));
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const next = r.json.refresh_token;
    const r2 = await token(url, refreshForm(next));
    assert.equal(r2.status, 200);
    const r3 = await token(url, refreshForm(r2.json.refresh_token));
    assert.equal(r3.status, 200);
    // next's successor has been used: next is dead, and presenting it
    // again kills the grant (theft): nothing is valid twice
    const again = await token(url, refreshForm(next));
    assert.equal(again.status, 400);
    assert.equal(again.json.error, 'invalid_grant');
  }
  assert.equal(sql(world.db, "select count(*) n from grants where status = 'active'")[0].n, 0);
  // the revoked grant stayed revoked across the crash
  const v = await token(url, refreshForm(victim.refresh_token));
  assert.equal(v.status, 400);
  assert.equal(sql(world.db, `select status from grants where id = '${victimGrant}'`)[0].status, 'revoked');
  assert.deepEqual(sql(world.db, "select grant_id, count(*) n from tokens where kind = 'refresh' and status = 'active' group by grant_id having count(*) > 1"), []);
});
