// Real-browser test (issue 4, "Tests"): headless Chromium (Debian's
// /usr/bin/chromium) driven by npm playwright-core (tests/browser, never a
// downloaded browser) runs the apple-as-web flow the way a device's web
// authentication session does, through the test IdP's own login and consent
// pages:
//
//   POST /t/T/enroll (the device, not the browser)  -> 401 url="..."
//   browser: url?user-identifier=alice@contoso.com   -> 302 to the IdP
//   IdP login page (login, password), consent page   -> 303 to our callback
//   callback (with the browser's own eb_login cookie) -> 308 to
//   apple-remotemanagement-user-login://authentication-results?access-token=...
//
// Chromium cannot load that scheme; the attempted navigation is still seen
// as a Playwright 'request' redirected from the callback (then
// 'requestfailed'), which is where the token is captured.
//
// A second run, on an emulated iPhone, signs in a person the tenant's policy
// refuses (a required group nobody has) and screenshots the 403 page; the
// PNG is also copied to /tmp/enrollbridge-denied.png for people to look at.
//
// Skips (with the reason) only when /usr/bin/chromium or
// tests/browser/node_modules/playwright-core is missing; contrib/test.sh
// installs both.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { tmpDir } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BROWSER_DIR = path.resolve(HERE, '..', 'browser');
const CHROMIUM = '/usr/bin/chromium';
const DENIED_COPY = '/tmp/enrollbridge-denied.png';
const NOBODY_GROUP = 'some-group-nobody-has';
const LOGIN = 'alice@contoso.com';

// The flags this machine kind needs (closed network: no background
// connections). Playwright adds its own fresh --user-data-dir per launch
// (a new temporary profile, removed on close) and refuses one in args.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// An iPhone (the device's web authentication session is Mobile Safari).
const IPHONE = {
  viewport: { width: 390, height: 844 },
  screen: { width: 390, height: 844 },
  deviceScaleFactor: 3,
  isMobile: true,
  hasTouch: true,
  userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 ' +
    '(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  locale: 'en-US',
};

function findPlaywright() {
  if (!fs.existsSync(CHROMIUM)) return { skip: `${CHROMIUM} is missing (apt-get install chromium; contrib/install-deps.sh)` };
  const pkg = path.join(BROWSER_DIR, 'node_modules', 'playwright-core', 'package.json');
  if (!fs.existsSync(pkg)) return { skip: 'tests/browser/node_modules/playwright-core is missing (cd tests/browser && npm ci)' };
  return { pw: createRequire(path.join(BROWSER_DIR, 'package.json'))('playwright-core') };
}

const { skip: skipReason, pw } = findPlaywright();

let h; // ../integration/idp.mjs, imported only when the test runs
let idp;
let world;
let browser;
const timings = {};

// promise, or after ms the value of onTimeout() (which may throw); the
// timer is cleared either way, so it does not hold the process open.
async function within(promise, ms, onTimeout) {
  let timer;
  const late = new Promise((resolve, reject) => {
    timer = setTimeout(() => { try { resolve(onTimeout()); } catch (e) { reject(e); } }, ms);
  });
  try { return await Promise.race([promise, late]); } finally { clearTimeout(timer); }
}

async function timed(name, fn) {
  const t0 = Date.now();
  try { return await fn(); } finally { timings[name] = Date.now() - t0; }
}

before(async () => {
  if (skipReason) return;
  h = await import('./idp.mjs');
  const { startIdp } = await import('../idp/server.mjs');
  await timed('setup', async () => {
    const port = await h.freePort();
    const pub = `http://127.0.0.1:${port}`;
    // the IdP's own consent page is shown (no autoConsent): the browser presses Allow
    idp = await startIdp({ issuerPath: h.ENTRA_PATH });
    world = await h.startWorld(port, [
      h.entraTenant(pub, idp, 'contoso'),
      h.entraTenant(pub, idp, 'strict', { domains: ['strict.contoso.test'], requireGroups: [NOBODY_GROUP] }),
    ]);
    browser = await pw.chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30000 });
  });
});

after(async () => {
  if (skipReason) return;
  const t0 = Date.now();
  await browser?.close().catch(() => {});
  await h.stopAll(world?.bridge, idp);
  timings.teardown = Date.now() - t0;
  console.log(`browser test timings (ms): ${JSON.stringify(timings)}`);
});

// Run the device's part (the challenge) and the browser's part up to the
// answer to the IdP's redirect to our callback. Returns what the browser saw.
async function browserSignIn(context, tenant, login) {
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const seen = { consentShown: false, trail: [] };

  // the final navigation: a request for the custom scheme, redirected from the callback
  const appleRequest = new Promise((resolve) => {
    page.on('request', (r) => {
      seen.trail.push(r.url().split('?')[0]);
      if (r.url().startsWith(h.APPLE_SCHEME)) resolve(r);
    });
  });
  const appleFailed = new Promise((resolve) => {
    page.on('requestfailed', (r) => { if (r.url().startsWith(h.APPLE_SCHEME)) resolve(r.failure()?.errorText); });
  });
  const callbackResponse = page.waitForResponse((r) => new URL(r.url()).pathname === `/t/${tenant}/oidc/callback`);

  const ch = await h.challenge(world.bridge, tenant);
  assert.equal(ch.status, 401, `challenge: ${ch.status} ${ch.wwwAuth}`);
  assert.match(ch.wwwAuth, /^Bearer method="apple-as-web", url="[^"]+"$/);
  const start = new URL(ch.url);
  start.searchParams.set('user-identifier', login);

  const first = await page.goto(start.href);
  assert.equal(first.status(), 200);
  // the bridge sent the browser to the IdP, which shows its own login page
  assert.equal(new URL(page.url()).origin, new URL(idp.issuer).origin, page.url());
  await page.waitForSelector('#login-form');
  seen.prefilled = await page.inputValue('#login');
  await page.fill('#login', login);
  await page.fill('#password', h.PASSWORD);
  await page.click('#submit', { noWaitAfter: true });

  // consent (oidc-provider asks for offline_access), unless the redirect came first
  const next = await Promise.race([
    page.waitForSelector('#consent-form').then(() => 'consent'),
    callbackResponse.then(() => 'callback'),
  ]);
  if (next === 'consent') {
    seen.consentShown = true;
    await page.click('#allow', { noWaitAfter: true });
  }
  seen.callback = await callbackResponse;
  return { page, seen, appleRequest, appleFailed };
}

test('apple-as-web in Chromium: IdP login page, consent, then the apple-remotemanagement-user-login redirect', { timeout: 45000 }, async (t) => {
  if (skipReason) return t.skip(skipReason);
  const context = await browser.newContext(IPHONE);
  try {
    const t0 = Date.now();
    const { seen, appleRequest, appleFailed } = await browserSignIn(context, 'contoso', LOGIN);
    const req = await within(appleRequest, 10000, () => {
      throw new Error(`no ${h.APPLE_SCHEME} navigation; trail: ${seen.trail.join(' -> ')}`);
    });
    timings.signin = Date.now() - t0;

    assert.equal(seen.prefilled, LOGIN, 'the typed identifier reached the IdP as login_hint');
    assert.ok(seen.consentShown, "the IdP's consent page was shown and accepted");

    // the callback answered 308 with exactly that Location, and the browser followed it
    const cb = seen.callback;
    assert.equal(cb.status(), 308, `callback: ${cb.status()} ${await cb.text().catch(() => '')}`);
    const cbHeaders = await cb.allHeaders();
    assert.equal(cbHeaders.location, req.url());
    assert.equal(cbHeaders['cache-control'], 'no-store');
    assert.equal(req.redirectedFrom()?.url(), cb.url(), 'the scheme navigation is the redirect from the callback');
    assert.ok(req.isNavigationRequest());

    const u = new URL(req.url());
    assert.equal(`${u.protocol}//${u.host}`, h.APPLE_RESULT);
    assert.deepEqual([...u.searchParams.keys()], ['access-token']);
    const token = u.searchParams.get('access-token');
    // URL-safe: only RFC 3986 unreserved characters (a JWT's dots included)
    assert.match(token, /^[A-Za-z0-9._~-]{32,}$/, 'URL-safe token');
    assert.equal(req.url(), `${h.APPLE_RESULT}?access-token=${token}`, 'no escaping needed: the token is used as is');

    // Chromium cannot open the scheme: the navigation is aborted, nothing else is loaded
    const failure = await within(appleFailed, 5000, () => '(no requestfailed within 5 s)');
    console.log(`captured: ${h.APPLE_RESULT}?access-token=${token.slice(0, 6)}... (${token.length} chars); chromium: ${failure}`);
    console.log(`browser trail: ${seen.trail.map((x) => x.replace(/^http:\/\/127\.0\.0\.1:\d+/, '')).join(' -> ')}`);

    // the token is a real grant of the bridge (its SHA-256 in the store)
    const rows = h.sql(world.db, `select g.tenant from grants g join tokens t on t.grant_id = g.id where t.hash='${h.sha256hex(token)}'`);
    assert.deepEqual(rows.map((r) => r.tenant), ['contoso']);
  } finally {
    await context.close();
  }
});

test('access denied in Chromium on an iPhone: a readable 403 page, screenshot', { timeout: 45000 }, async (t) => {
  if (skipReason) return t.skip(skipReason);
  const context = await browser.newContext(IPHONE);
  try {
    const t0 = Date.now();
    const { page, seen } = await browserSignIn(context, 'strict', LOGIN);
    const r = seen.callback;
    await page.waitForURL((u) => u.pathname === '/t/strict/oidc/callback', { waitUntil: 'load' });
    timings.denied = Date.now() - t0;

    assert.equal(r.status(), 403, `callback: ${r.status()}`);
    const headers = await r.allHeaders();
    assert.equal(headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(headers['cache-control'], 'no-store');
    assert.equal(headers.location, undefined);
    assert.equal(page.url(), r.url(), 'the page shown is the callback answer');

    const viewport = await page.getAttribute('meta[name="viewport"]', 'content');
    assert.match(viewport ?? '', /width=device-width/);
    assert.match(viewport ?? '', /initial-scale=1/);
    await assert.doesNotReject(page.getByRole('heading', { name: "You can't enroll this device" }).waitFor({ state: 'visible' }));
    const reason = page.getByText(/not a member of a group allowed to enroll devices/);
    assert.ok(await reason.isVisible(), 'the reason is visible');
    assert.ok(await page.getByText(/Ask your IT administrator/).isVisible(), 'the hint is visible');
    assert.ok(await page.getByText(/^Reference: \S+/).isVisible(), 'the reference is visible');
    const html = await page.content();
    assert.ok(!html.includes(NOBODY_GROUP), 'the group ids are not shown to the person');

    // laid out for the phone: no sideways scrolling, readable text
    const m = await page.evaluate(() => {
      const p = document.querySelector('main p') ?? document.body;
      const main = document.querySelector('main') ?? document.body;
      const rect = main.getBoundingClientRect();
      return {
        innerWidth: window.innerWidth,
        scrollWidth: document.documentElement.scrollWidth,
        bodyFontPx: parseFloat(getComputedStyle(p).fontSize),
        mainLeft: rect.left,
        mainRight: rect.right,
        mainBottom: rect.bottom,
      };
    });
    assert.equal(m.innerWidth, IPHONE.viewport.width, 'the viewport meta gives the device width');
    assert.ok(m.scrollWidth <= m.innerWidth, `no horizontal scrolling (${m.scrollWidth} > ${m.innerWidth})`);
    assert.ok(m.bodyFontPx >= 16, `body text ${m.bodyFontPx}px`);
    assert.ok(m.mainLeft >= 0 && m.mainRight <= m.innerWidth, `card inside the screen: ${JSON.stringify(m)}`);

    const dir = tmpDir('eb-browser-');
    const shot = path.join(dir, 'denied.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = fs.readFileSync(shot);
    assert.ok(png.length > 1000, `screenshot is ${png.length} bytes`);
    assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'a PNG');
    assert.equal(png.readUInt32BE(16), IPHONE.viewport.width * IPHONE.deviceScaleFactor, 'PNG width = 390 CSS px at 3x');
    fs.copyFileSync(shot, DENIED_COPY);
    console.log(`denied page screenshot: ${shot} (${png.length} bytes, ${png.readUInt32BE(16)}x${png.readUInt32BE(20)}), copied to ${DENIED_COPY}`);
    console.log(`denied page layout: ${JSON.stringify(m)}`);

    await world.bridge.waitLog(/enrollment refused: group_required/);
  } finally {
    await context.close();
  }
});
