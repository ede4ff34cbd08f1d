// What a person sees (issue 14): the bridge's own pages rendered by a real
// headless Chromium (Debian's /usr/bin/chromium, driven by npm
// playwright-core from tests/browser) on a phone-sized viewport (390x844):
// a refusal (a policy that requires a group nobody has, after a real sign-in
// at the test IdP) and an error page (a callback whose sign-in this browser
// never started: "This sign-in has expired"), each in two languages chosen
// by the browser's Accept-Language. Checked: <html lang>, Content-Language
// and Vary, the headings, the tenant's branding (name, colour, text colour
// with at least 4.5:1 contrast, support contacts), the Reference, no
// sideways scrolling. Screenshots go to $EB_BINARY_DIR/screenshots/.
//
// Without /usr/bin/chromium or tests/browser/node_modules it skips, with
// the reason; under CI=true it fails instead.
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
const LOGIN = 'alice@contoso.com';
const BRAND = {
  name: 'Contoso <IT> & Co',
  primary_color: '#0b3d91',
  support: { email: 'help@contoso.com', url: 'https://help.contoso.com/apple', phone: '+49 30 1234 5678' },
};
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const PHONE = {
  viewport: { width: 390, height: 844 },
  screen: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 ' +
    '(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
};
// What each language's page must say.
const WORDS = {
  en: { denied: "You can't enroll this device", expired: 'This sign-in has expired', ref: 'Reference', help: 'Need help?' },
  de: { denied: 'Sie können dieses Gerät nicht registrieren', expired: 'Diese Anmeldung ist abgelaufen', ref: 'Referenz', help: 'Brauchen Sie Hilfe?' },
  ja: { denied: 'このデバイスは登録できません', expired: 'このサインインは期限切れです', ref: '参照番号', help: 'お困りですか?' },
};

function findPlaywright() {
  let why;
  if (!fs.existsSync(CHROMIUM)) why = `${CHROMIUM} is missing (apt-get install chromium; contrib/install-deps.sh)`;
  else if (!fs.existsSync(path.join(BROWSER_DIR, 'node_modules', 'playwright-core', 'package.json')))
    why = 'tests/browser/node_modules/playwright-core is missing (cd tests/browser && npm ci)';
  if (why && process.env.CI) throw new Error(`under CI the browser test must run: ${why}`);
  if (why) return { skip: why };
  return { pw: createRequire(path.join(BROWSER_DIR, 'package.json'))('playwright-core') };
}

const { skip: skipReason, pw } = findPlaywright();
const SHOTS = process.env.EB_BINARY_DIR ? path.join(process.env.EB_BINARY_DIR, 'screenshots') : tmpDir('eb-shots-');

let h;
let idp;
let world;
let browser;

before(async () => {
  if (skipReason) return;
  fs.mkdirSync(SHOTS, { recursive: true });
  h = await import('./idp.mjs');
  const { startIdp } = await import('../idp/server.mjs');
  const port = await h.freePort();
  const pub = `http://127.0.0.1:${port}`;
  idp = await startIdp({ issuerPath: h.ENTRA_PATH, autoConsent: true });
  const spec = h.entraTenant(pub, idp, 'brand', { requireGroups: ['some-group-nobody-has'] });
  spec.tenant.branding = BRAND;
  world = await h.startWorld(port, [spec]);
  browser = await pw.chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 20000 });
});

after(async () => {
  if (skipReason) return;
  await browser?.close().catch(() => {});
  await h.stopAll(world?.bridge, idp);
});

// Sign in through the IdP's login page up to the bridge's callback answer.
async function refusal(page) {
  const callback = page.waitForResponse((r) => new URL(r.url()).pathname === '/t/brand/oidc/callback');
  const ch = await h.challenge(world.bridge, 'brand');
  assert.equal(ch.status, 401, ch.wwwAuth);
  const start = new URL(ch.url);
  start.searchParams.set('user-identifier', LOGIN);
  await page.goto(start.href);
  await page.waitForSelector('#login-form');
  await page.fill('#login', LOGIN);
  await page.fill('#password', h.PASSWORD);
  await page.click('#submit', { noWaitAfter: true });
  const r = await callback;
  await page.waitForURL((u) => u.pathname === '/t/brand/oidc/callback', { waitUntil: 'load' });
  return r;
}

// A callback this browser never started: the "expired" error page.
async function expired(page) {
  return page.goto(`${world.publicUrl}/t/brand/oidc/callback?state=never-issued&code=abc`);
}

// WCAG 2 contrast ratio of two CSS rgb() colours.
function contrast(a, b) {
  const lum = (c) => {
    const [r, g, bl] = c.match(/\d+/g).slice(0, 3).map((v) => {
      const s = Number(v) / 255;
      return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

async function checkPage(page, r, { lang, status, heading, name }) {
  const w = WORDS[lang];
  assert.equal(r.status(), status);
  const headers = await r.allHeaders();
  assert.equal(headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(headers['content-language'], lang);
  assert.match(headers.vary ?? '', /Accept-Language/i);
  assert.equal(await page.getAttribute('html', 'lang'), lang);
  assert.match(await page.getAttribute('meta[name="viewport"]', 'content') ?? '', /width=device-width/);
  assert.equal(await page.title(), heading);
  const h1 = page.getByRole('heading', { level: 1 });
  assert.equal(await h1.count(), 1, 'one main heading');
  assert.equal((await h1.textContent()).trim(), heading);
  assert.equal((await page.getByRole('heading', { level: 2 }).textContent()).trim(), w.help);

  // the branding, escaped, in its colour, its text readable on it
  const header = page.locator('header');
  assert.equal((await header.textContent()).trim(), BRAND.name);
  const style = await header.evaluate((e) => ({ bg: getComputedStyle(e).backgroundColor, fg: getComputedStyle(e).color }));
  assert.equal(style.bg, 'rgb(11, 61, 145)');
  assert.ok(contrast(style.bg, style.fg) >= 4.5, `header contrast ${contrast(style.bg, style.fg)}`);
  assert.equal(await page.getAttribute('a[href^="mailto:"]', 'href'), `mailto:${BRAND.support.email}`);
  assert.equal(await page.getAttribute('a[href^="tel:"]', 'href'), `tel:${BRAND.support.phone}`);
  assert.equal(await page.getAttribute(`a[href="${BRAND.support.url}"]`, 'href'), BRAND.support.url);

  // the Reference is the request id the bridge logged
  const ref = (await page.locator('.rid').textContent()).trim();
  const m = new RegExp(`^${w.ref}\\s?: (\\S+)$`).exec(ref);
  assert.ok(m, `reference line: ${ref}`);
  assert.ok(await page.locator('.rid').isVisible());

  // laid out for the phone
  const lay = await page.evaluate(() => ({
    innerWidth: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    font: parseFloat(getComputedStyle(document.querySelector('main p')).fontSize),
  }));
  assert.equal(lay.innerWidth, 390);
  assert.ok(lay.scrollWidth <= lay.innerWidth, `no sideways scrolling: ${JSON.stringify(lay)}`);
  assert.ok(lay.font >= 16, `text ${lay.font}px`);

  const shot = path.join(SHOTS, `${name}-${lang}.png`);
  await page.screenshot({ path: shot, fullPage: true });
  const png = fs.readFileSync(shot);
  assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'a PNG');
  assert.equal(png.readUInt32BE(16), 390 * PHONE.deviceScaleFactor);
  console.log(`screenshot: ${shot} (${png.length} bytes)`);
  return m[1];
}

async function withPage(locale, fn) {
  const context = await browser.newContext({ ...PHONE, locale });
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(10000);
    return await fn(page);
  } finally {
    await context.close();
  }
}

for (const [locale, lang] of [['en-US', 'en'], ['ja-JP', 'ja']]) {
  test(`refusal page in Chromium, ${locale} -> ${lang}`, { timeout: 20000 }, async (t) => {
    if (skipReason) return t.skip(skipReason);
    await withPage(locale, async (page) => {
      const r = await refusal(page);
      const rid = await checkPage(page, r, { lang, status: 403, heading: WORDS[lang].denied, name: 'refusal' });
      const text = await page.locator('main').textContent();
      assert.ok(!text.includes('some-group-nobody-has'), 'the group is not shown');
      if (lang === 'en') assert.match(text, /not a member of a group allowed to enroll devices/);
      else assert.match(text, /グループのメンバーではない/);
      await world.bridge.waitLog(new RegExp(rid));
    });
  });
}

for (const [locale, lang] of [['en-GB', 'en'], ['de-AT', 'de']]) {
  test(`error page in Chromium, ${locale} -> ${lang}`, { timeout: 15000 }, async (t) => {
    if (skipReason) return t.skip(skipReason);
    await withPage(locale, async (page) => {
      const r = await expired(page);
      await checkPage(page, r, { lang, status: 400, heading: WORDS[lang].expired, name: 'error' });
    });
  });
}
