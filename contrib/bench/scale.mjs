// Node side of contrib/bench/scale.sh: the test IdP, sign-ins without a
// browser and revocation propagation (the refresh storm's load client is
// wrk with refresh.lua). One subcommand a run:
//
//   idp --clients FILE [--rotate 0|1] [--exit-on-stdin-eof]
//       The test OpenID Provider (tests/idp, oidc-provider) on loopback,
//       with the clients of FILE (a JSON array). Prints one JSON line
//       {issuer, admin, ctl} and runs until SIGTERM (or its stdin closes).
//       --rotate 1 switches oidc-provider's refresh-token rotation on for
//       every client (the test IdP keeps the library default: rotation only
//       for public clients). ctl answers GET /count: the refresh_token
//       grants the IdP answered, {ok: {client: n}, err: {client: n}}.
//   web --pub URL --tenant T --n N [--conc C] --out FILE [--bind PLIST]
//       N apple-as-web sign-ins as a device would (tests/integration/idp.mjs),
//       the device tokens to FILE, one a line (0600). --bind: each token's
//       first check-in (Authenticate, PLIST with its own EnrollmentID) at
//       URL/t/T/mdm/checkin binds it: to PLIST's own EnrollmentID when N
//       is 1 (the enrollment of the load's check-ins), else to one of its own.
//   oauth2 --pub URL --tenant T --n N [--conc C] --out FILE
//       N apple-oauth2 sign-ins (authorize, the IdP's login, code, token),
//       each a grant of its own; the refresh tokens to FILE, one a line.
//   rp --issuer URL --client ID --secret S --n N [--conc C] --out FILE
//       N authorization-code flows straight at the IdP (PKCE, offline_access)
//       as a relying party; its refresh tokens to FILE, one a line.
//   revprop --a URL --b URL --tenant T --trials N --plist FILE
//       Revocation propagation between two replicas: per trial an
//       apple-oauth2 sign-in, the access token bound by a check-in at B
//       (and B's token cache warm), then the refresh token revoked at A
//       (RFC 7009) and B polled with check-ins until it answers 401. Prints
//       {trials, p50, p99, max, timeouts} (ms from the revocation request).
//
// Everything stays on 127.0.0.1. No token is ever printed.
import fs from 'node:fs';
import http from 'node:http';
import crypto from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const top = path.resolve(here, '../..');

const argv = process.argv.slice(2);
const cmd = argv[0];
function arg(name, def) {
  const i = argv.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= argv.length) {
    if (def === undefined) throw new Error(`--${name} missing`);
    return def;
  }
  return argv[i + 1];
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

// One HTTP request over the kept-alive agent -> {status, body, headers}.
function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({
      host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers, agent,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(30000, () => req.destroy(new Error(`timeout: ${method} ${u.pathname}`)));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// Run fn(i) for i < n, c at a time.
async function pool(n, c, fn) {
  let next = 0;
  const out = new Array(n);
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(c, n) }, worker));
  return out;
}

const quantile = (sorted, q) => (sorted.length === 0 ? 0
  : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]);

const writeLines = (file, lines) => fs.writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
const readLines = (file) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);

// PLIST with its MessageType set, and its EnrollmentID replaced unless eid is null
function plistBody(file, type, eid) {
  const s = fs.readFileSync(file, 'utf8').replace('TokenUpdate', type);
  return eid === null ? s : s.replace(/(<key>EnrollmentID<\/key>\s*<string>)[^<]*/, `$1${eid}`);
}

function checkin(url, tenant, token, body) {
  return request(`${url}/t/${tenant}/mdm/checkin`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-apple-aspen-mdm-checkin' },
    body,
  });
}

const enrollmentId = (i) => `4B0B3C8E-0D2F-4F6A-9E57-${crypto.randomBytes(6).toString('hex').toUpperCase()}${i}`;

// ------------------------------------------------------------------ idp --
async function cmdIdp() {
  const { startIdp } = await import(path.join(top, 'tests/idp/server.mjs'));
  const clients = JSON.parse(fs.readFileSync(arg('clients'), 'utf8'));
  const idp = await startIdp({ port: 0, autoConsent: true, clients });
  idp.provider.app.on('error', () => {});
  if (arg('rotate', '0') === '1') {
    const { default: instance } = await import(path.join(top,
      'tests/idp/node_modules/oidc-provider/lib/helpers/weak_cache.js'));
    instance(idp.provider).configuration().rotateRefreshToken = true;
  }
  const count = { ok: {}, err: {} };
  const bump = (k, ctx) => {
    if (ctx.oidc?.params?.grant_type !== 'refresh_token') return;
    const c = ctx.oidc.client?.clientId ?? '?';
    count[k][c] = (count[k][c] ?? 0) + 1;
  };
  idp.provider.on('grant.success', (ctx) => bump('ok', ctx));
  idp.provider.on('grant.error', (ctx) => bump('err', ctx));
  const ctl = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(count));
  });
  await new Promise((r) => ctl.listen(0, '127.0.0.1', r));
  process.stdout.write(`${JSON.stringify({ issuer: idp.issuer, admin: idp.admin, ctl: `http://127.0.0.1:${ctl.address().port}` })}\n`);
  const stop = () => { ctl.close(); idp.close().finally(() => process.exit(0)); setTimeout(() => process.exit(0), 1000).unref(); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (argv.includes('--exit-on-stdin-eof')) {
    process.stdin.on('end', stop);
    process.stdin.on('error', () => {});
    process.stdin.resume();
  }
}

// ------------------------------------------------------------------ web --
async function cmdWeb() {
  const { enroll } = await import(path.join(top, 'tests/integration/idp.mjs'));
  const pub = arg('pub');
  const tenant = arg('tenant');
  const bind = arg('bind', '');
  const n = Number(arg('n'));
  const tokens = await pool(n, Number(arg('conc', '4')), async (i) => {
    const r = await enroll({ bridge: { url: pub }, tenant, login: 'user1' });
    if (r.status !== 308 || !r.token) throw new Error(`sign-in ${i} failed at ${r.stage}: ${r.status}`);
    if (bind) {
      const body = plistBody(bind, 'Authenticate', null);
      const c = await checkin(pub, tenant, r.token, n === 1 ? body : plistBody(bind, 'Authenticate', enrollmentId(i)));
      if (c.status !== 200) throw new Error(`binding check-in ${i}: ${c.status}`);
    }
    return r.token;
  });
  writeLines(arg('out'), tokens);
}

// --------------------------------------------------------------- oauth2 --
const REDIRECT = 'apple-remotemanagement-user-login:/oauth2/redirection';

async function oauth2SignIn(pub, tenant) {
  const { drive } = await import(path.join(top, 'tests/idp/drive.mjs'));
  const { enrollPost } = await import(path.join(top, 'tests/integration/lib.mjs'));
  const e = await enrollPost(`${pub}/t/${tenant}/enroll`);
  await e.arrayBuffer();
  const m = /authorization-url="([^"]+)"/.exec(e.headers.get('www-authenticate') ?? '');
  if (e.status !== 401 || !m) throw new Error(`oauth2 challenge: ${e.status}`);
  const u = new URL(m[1]);
  const p = {
    response_type: 'code', client_id: 'apple-device', redirect_uri: REDIRECT, scope: 'mdm', state: 'st',
    login_hint: `user1@${tenant}.generic.test`,
  };
  for (const [k, v] of Object.entries(p)) u.searchParams.set(k, v);
  const r = await fetch(u, { redirect: 'manual' });
  await r.arrayBuffer();
  if (r.status !== 302) throw new Error(`oauth2 authorize: ${r.status}`);
  const cookie = r.headers.get('set-cookie').split(';')[0];
  const cb = await drive(r.headers.get('location'), 'user1', 'secret', { consent: true });
  const r2 = await fetch(cb, { redirect: 'manual', headers: { cookie } });
  await r2.arrayBuffer();
  const back = r2.headers.get('location') ?? '';
  if (r2.status !== 308 || !back.startsWith(`${REDIRECT}?code=`)) throw new Error(`oauth2 callback: ${r2.status}`);
  const code = new URL(back.replace(REDIRECT, 'http://device/cb')).searchParams.get('code');
  const t = await request(`${pub}/t/${tenant}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: 'apple-device',
    }).toString(),
  });
  if (t.status !== 200) throw new Error(`oauth2 token: ${t.status}`);
  return JSON.parse(t.body);
}

async function cmdOauth2() {
  const pub = arg('pub');
  const tenant = arg('tenant');
  const out = await pool(Number(arg('n')), Number(arg('conc', '4')), async () => (await oauth2SignIn(pub, tenant)).refresh_token);
  writeLines(arg('out'), out);
}

// ------------------------------------------------------------------- rp --
async function cmdRp() {
  const { drive } = await import(path.join(top, 'tests/idp/drive.mjs'));
  const issuer = arg('issuer');
  const client = arg('client');
  const secret = arg('secret');
  const redirect = 'http://127.0.0.1:9/cb';
  const basic = `Basic ${Buffer.from(`${client}:${secret}`).toString('base64')}`;
  const out = await pool(Number(arg('n')), Number(arg('conc', '4')), async (i) => {
    const verifier = crypto.randomBytes(32).toString('base64url');
    const u = new URL(`${issuer}/auth`);
    const p = {
      client_id: client, response_type: 'code', redirect_uri: redirect, scope: 'openid email offline_access',
      prompt: 'consent', state: `s${i}`, nonce: `n${i}`, code_challenge_method: 'S256',
      code_challenge: crypto.createHash('sha256').update(verifier).digest('base64url'),
    };
    for (const [k, v] of Object.entries(p)) u.searchParams.set(k, v);
    const cb = new URL(await drive(u.toString(), 'user1', 'secret'));
    const code = cb.searchParams.get('code');
    if (!code) throw new Error(`rp sign-in ${i}: ${cb.searchParams.get('error')}`);
    const t = await request(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
      body: new URLSearchParams({
        grant_type: 'authorization_code', code, redirect_uri: redirect, code_verifier: verifier,
      }).toString(),
    });
    const j = JSON.parse(t.body);
    if (t.status !== 200 || !j.refresh_token) throw new Error(`rp token ${i}: ${t.status} ${j.error ?? 'no refresh_token'}`);
    return j.refresh_token;
  });
  writeLines(arg('out'), out);
}

// -------------------------------------------------------------- revprop --
async function cmdRevprop() {
  const a = arg('a');
  const b = arg('b');
  const tenant = arg('tenant');
  const trials = Number(arg('trials'));
  const plist = arg('plist');
  const d = [];
  let timeouts = 0;
  for (let i = 0; i < trials; i++) {
    const t = await oauth2SignIn(a, tenant);
    const eid = enrollmentId(i);
    const bound = await checkin(b, tenant, t.access_token, plistBody(plist, 'Authenticate', eid));
    if (bound.status !== 200) throw new Error(`revprop ${i}: binding check-in at B: ${bound.status}`);
    const body = plistBody(plist, 'TokenUpdate', eid);
    const warm = await checkin(b, tenant, t.access_token, body);
    if (warm.status !== 200) throw new Error(`revprop ${i}: check-in at B: ${warm.status}`);
    const s = process.hrtime.bigint();
    const rv = await request(`${a}/t/${tenant}/oauth2/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: t.refresh_token, token_type_hint: 'refresh_token', client_id: 'apple-device' }).toString(),
    });
    if (rv.status !== 200) throw new Error(`revprop ${i}: revocation at A: ${rv.status}`);
    const limit = Date.now() + 10000;
    for (;;) {
      const c = await checkin(b, tenant, t.access_token, body);
      if (c.status === 401) { d.push(Number(process.hrtime.bigint() - s) / 1e6); break; }
      if (c.status !== 200) throw new Error(`revprop ${i}: check-in at B: ${c.status}`);
      if (Date.now() > limit) { timeouts++; break; }
    }
  }
  d.sort((x, y) => x - y);
  process.stdout.write(`${JSON.stringify({
    trials, p50: quantile(d, 0.5), p99: quantile(d, 0.99), max: d.at(-1) ?? 0, timeouts,
  })}\n`);
}

const cmds = {
  idp: cmdIdp, web: cmdWeb, oauth2: cmdOauth2, rp: cmdRp, revprop: cmdRevprop,
};
if (!cmds[cmd]) {
  process.stderr.write(`usage: node scale.mjs ${Object.keys(cmds).join('|')} ...\n`);
  process.exit(2);
}
try {
  await cmds[cmd]();
  if (cmd !== 'idp') process.exit(0);
} catch (e) {
  process.stderr.write(`scale.mjs ${cmd}: ${e.message}\n`);
  process.exit(1);
}
