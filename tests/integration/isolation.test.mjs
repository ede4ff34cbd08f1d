// Tenants are isolated from each other's slow upstreams: sign-ins at a
// tenant whose IdP hangs take at most half of the upstream threads, so
// another tenant's sign-in still starts at once (src/core/workq.c,
// eb_workq_submit_keyed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  challenge, freePort, oidcTenant, startLogin, startTestIdp, startWorld, stopAll,
} from './idp.mjs';

const UPSTREAM_TIMEOUT = 6;
let idpHung;
let idpFine;
let world;

before(async () => {
  // the hung tenant's IdP never answers its discovery document
  idpHung = await startTestIdp({ baseModes: [{ mode: 'discovery_hang' }] });
  idpFine = await startTestIdp();
  const port = await freePort();
  const pub = `http://127.0.0.1:${port}`;
  world = await startWorld(port, [oidcTenant(pub, idpHung, 'hung'), oidcTenant(pub, idpFine, 'fine')],
    { limits: { upstream_timeout: UPSTREAM_TIMEOUT } });
});
after(() => stopAll(world?.bridge, idpHung, idpFine));

test("a tenant whose IdP hangs does not stall another tenant's sign-ins", async () => {
  // more sign-ins at the hung tenant than there are upstream threads (16)
  const hung = [];
  for (let i = 0; i < 24; i++) {
    const c = await challenge(world.bridge, 'hung');
    assert.equal(c.status, 401);
    hung.push(startLogin(c.url, `user${i}@hung.generic.test`).catch((e) => e));
  }
  await new Promise((r) => setTimeout(r, 500)); // they hold their threads now
  const c = await challenge(world.bridge, 'fine');
  assert.equal(c.status, 401);
  const t0 = Date.now();
  const r = await startLogin(c.url, 'user1@fine.generic.test');
  const took = Date.now() - t0;
  assert.equal(r.status, 302, r.body.slice(0, 300));
  assert.ok(r.location.startsWith(idpFine.origin), r.location);
  assert.ok(took < (UPSTREAM_TIMEOUT * 1000) / 2, `the other tenant's sign-in took ${took} ms`);
  // the hung tenant's sign-ins end (an error page with Retry-After), none
  // is sent on to an IdP
  const results = await Promise.all(hung);
  for (const h of results) {
    assert.ok(!(h instanceof Error), String(h));
    assert.ok(h.status === 502 || h.status === 503, `status ${h.status}`);
  }
});
