// What the person at the device is told (issue 13, section 6): the
// tenant's access.deny_message on the refusal page, and the IdP's own
// error / error_description (e.g. an Entra AADSTS code) on the error page
// and in the log, escaped and bounded.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  ENTRA_PATH, enroll, entraTenant, freePort, idpReset, isHtmlPage, sql, startTestIdp, startWorld,
  stopAll,
} from './idp.mjs';

const DENY = 'Ask the <b>service desk</b> & "Apple devices" group.';
const DENY_HTML = 'Ask the &lt;b&gt;service desk&lt;/b&gt; &amp; &quot;Apple devices&quot; group.';

let idp;
let bridge;
let db;

before(async () => {
  const port = await freePort();
  const pub = `http://127.0.0.1:${port}`;
  idp = await startTestIdp({ issuerPath: ENTRA_PATH });
  const withMsg = entraTenant(pub, idp, 'contoso');
  withMsg.tenant.access.deny_message = DENY;
  const plain = entraTenant(pub, idp, 'plain', { domains: ['plain.test'] });
  ({ bridge, db } = await startWorld(port, [withMsg, plain]));
});

after(async () => {
  await stopAll(bridge, idp);
});

const tokens = () => sql(db, 'select count(*) as n from tokens')[0].n;

test('a refused sign-in shows the tenant\'s deny_message, HTML-escaped', async () => {
  await idpReset(idp);
  const n = tokens();
  const r = await enroll({ bridge, tenant: 'contoso', login: 'erin@contoso.com' });
  assert.equal(r.stage, 'callback', `stopped at ${r.stage}`);
  assert.equal(r.status, 403, r.body);
  assert.ok(isHtmlPage(r));
  assert.ok(r.body.includes(DENY_HTML), r.body);
  assert.ok(!r.body.includes('<b>service desk'), 'deny_message not escaped');
  assert.equal(r.token, undefined);
  assert.equal(tokens(), n);
});

test('without deny_message the refusal page has no extra text', async () => {
  await idpReset(idp);
  const r = await enroll({ bridge, tenant: 'plain', typed: 'erin@plain.test', login: 'erin@contoso.com' });
  assert.equal(r.status, 403, r.body);
  assert.ok(!r.body.includes('service desk'), r.body);
});

test('access_denied from the IdP: its description on the 403 page and in the log', async () => {
  await idpReset(idp);
  const r = await enroll({
    bridge, tenant: 'contoso', login: 'alice@contoso.com', driveOptions: { abortLogin: true },
  });
  assert.equal(r.stage, 'callback', `stopped at ${r.stage}`);
  assert.equal(new URL(r.callbackUrl).searchParams.get('error'), 'access_denied');
  assert.equal(r.status, 403, r.body);
  assert.ok(r.body.includes('access_denied - End-User aborted interaction'), r.body);
  assert.ok(bridge.logs.some((l) => l.includes('error_description') && l.includes('End-User aborted interaction')),
    bridge.logs.slice(-5).join('\n'));
});

test('an Entra-style error: AADSTS code shown escaped and bounded, logged escaped, no token', async () => {
  await idpReset(idp);
  const n = tokens();
  const desc = `AADSTS50105: The signed in user is not assigned <script>alert(1)</script>\nFORGED LOG LINE ${'x'.repeat(2000)}`;
  const r = await enroll({
    bridge,
    tenant: 'contoso',
    login: 'alice@contoso.com',
    driveOptions: { abortLogin: true },
    tamper: (u) => {
      const x = new URL(u);
      x.searchParams.set('error', 'invalid_request');
      x.searchParams.set('error_description', desc);
      return x.href;
    },
  });
  assert.equal(r.stage, 'callback');
  assert.equal(r.status, 502, r.body);
  assert.ok(isHtmlPage(r));
  assert.ok(r.body.includes('invalid_request - AADSTS50105: The signed in user is not assigned &lt;script&gt;'), r.body);
  assert.ok(!r.body.includes('<script>alert'), 'error_description not escaped');
  assert.ok(!r.body.includes('x'.repeat(400)), 'error_description not bounded');
  assert.ok(r.body.includes('...'));
  assert.equal(r.token, undefined);
  assert.equal(tokens(), n);
  const line = bridge.logs.find((l) => l.includes('AADSTS50105'));
  assert.ok(line, bridge.logs.slice(-5).join('\n'));
  assert.ok(line.includes('error=invalid_request'), line);
  assert.ok(!line.includes('x'.repeat(600)), 'logged description not bounded');
  assert.ok(!bridge.logs.some((l) => /^\s*FORGED LOG LINE/.test(l)), 'a newline in the description split the log');
});

test('the bridge stops cleanly', async () => {
  const { code, signal } = await bridge.stop();
  assert.equal(signal, null);
  assert.equal(code, 0, bridge.logs.slice(-20).join('\n'));
});
