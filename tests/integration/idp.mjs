// Helpers for the upstream sign-in tests (issue 3): a real OpenID Provider
// (tests/idp, oidc-provider) started in-process on loopback, bridge tenants
// pointing at it, and the whole apple-as-web flow as a device and its
// browser would run it:
//   POST /t/T/enroll -> 401 challenge url
//   GET  url?user-identifier=...        -> 302 to the IdP (+ eb_login cookie)
//   (the IdP's login form, headless)    -> the IdP's redirect to our callback
//   GET  /t/T/oidc/callback?code&state&iss (+ cookie) -> 308 apple-remotemanagement-user-login://...
import crypto from 'node:crypto';
import fs from 'node:fs';

import { startIdp } from '../idp/server.mjs';
import { drive, createJar, DriveError } from '../idp/drive.mjs';
import {
  TENANT_CONTOSO, TENANT_FABRIKAM, GROUP_STAFF, GROUP_ENROLL, GROUP_ADMINS, PASSWORD,
} from '../idp/accounts.mjs';
import { baseTenant, freePort, startBridge, writeConfig, enrollPost, sql } from './lib.mjs';

export {
  drive, createJar, DriveError, TENANT_CONTOSO, TENANT_FABRIKAM, GROUP_STAFF, GROUP_ENROLL,
  GROUP_ADMINS, PASSWORD,
};

export const APPLE_SCHEME = 'apple-remotemanagement-user-login:';
export const APPLE_RESULT = 'apple-remotemanagement-user-login://authentication-results';
export const ENTRA_PATH = `/${TENANT_CONTOSO}/v2.0`;

// ---------------------------------------------------------------- the IdP --

// Start one test IdP in this process. baseModes are (re)applied after every
// reset (e.g. the multi-tenant discovery template).
export async function startTestIdp({ issuerPath = '', baseModes = [], accounts } = {}) {
  const idp = await startIdp({ issuerPath, autoConsent: true, accounts });
  // the bridge hangs up on oversized answers (10 MB, 10,000 keys) on purpose
  idp.provider.app.on('error', (e) => {
    if (!['ECONNRESET', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE'].includes(e.code)) process.stderr.write(`test IdP: ${e.stack}\n`);
  });
  idp.baseModes = baseModes;
  for (const m of baseModes) await idpMode(idp, m);
  return idp;
}

export async function idpAdmin(idp, path, body, method = 'POST') {
  const r = await fetch(`${idp.admin}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: method === 'GET' ? undefined : JSON.stringify(body ?? {}),
  });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`IdP admin ${path}: ${r.status} ${text}`);
  return JSON.parse(text);
}

export const idpMode = (idp, mode) => idpAdmin(idp, '/mode', typeof mode === 'string' ? { mode } : mode);
export const idpLog = (idp) => idpAdmin(idp, '/log', undefined, 'GET');
export async function idpReset(idp) {
  await idpAdmin(idp, '/reset');
  for (const m of idp.baseModes ?? []) await idpMode(idp, m);
}

// ---------------------------------------------------------- the tenants --

// Tenant builders: each returns { tenant, client } where client is the
// metadata to register at the IdP for that tenant (its own client id and
// auth method, so the IdP itself enforces basic vs post).
function clientFor(publicUrl, id, authMethod) {
  return {
    client_id: `eb-${id}`,
    client_secret: `secret-${id}-${crypto.randomBytes(12).toString('hex')}`,
    redirect_uris: [`${publicUrl}/t/${id}/oidc/callback`],
    token_endpoint_auth_method: authMethod,
  };
}

function build(publicUrl, id, domains, idp, idpExtra, extra, authMethod = 'client_secret_basic') {
  const client = clientFor(publicUrl, id, authMethod);
  const tenant = baseTenant(id, domains, {
    idp: {
      issuer: idp.issuer,
      client_id: client.client_id,
      client_secret: client.client_secret,
      client_auth: authMethod,
      ...idpExtra,
    },
    ...extra,
  });
  return { tenant, client, idp };
}

// Generic OIDC; user1@generic.test -> user1@appleid.generic.test (domain_map).
export function oidcTenant(publicUrl, idp, id = 'gen', {
  domains = [`${id}.generic.test`], clientAuth = 'client_secret_basic', mapping, access,
} = {}) {
  return build(publicUrl, id, domains, idp, { type: 'oidc' }, {
    managed_apple_id: mapping ?? { claim: 'email', domain_map: { 'generic.test': 'appleid.generic.test' } },
    ...(access ? { access } : {}),
  }, clientAuth);
}

// Entra single tenant (tenant_id = contoso's tid); upn + domain_map; the
// enroll group required.
export function entraTenant(publicUrl, idp, id = 'contoso', {
  domains = ['contoso.com'], requireGroups = [GROUP_ENROLL], extraIdp = {},
} = {}) {
  return build(publicUrl, id, domains, idp, {
    type: 'entra', tenant_id: TENANT_CONTOSO, domain_hint: 'contoso.com', ...extraIdp,
  }, {
    managed_apple_id: { claim: 'upn', domain_map: { 'contoso.com': 'appleid.contoso.com' } },
    ...(requireGroups.length ? { access: { require_groups: requireGroups } } : {}),
  });
}

// Entra multi-tenant: the IdP's metadata issuer is the {tenantid} template
// (see multiTenantIdp), allowed_tenants lists contoso only.
export function entraMultiTenant(publicUrl, idp, id = 'multi', {
  domains = ['contoso.net'], allowed = [TENANT_CONTOSO],
} = {}) {
  return build(publicUrl, id, domains, idp, { type: 'entra', allowed_tenants: allowed }, {
    managed_apple_id: {
      claim: 'upn',
      domain_map: { 'contoso.com': 'appleid.contoso.com', 'fabrikam.com': 'appleid.fabrikam.com' },
    },
  });
}

// Google Workspace with hosted_domain example.org.
export function googleTenant(publicUrl, idp, id = 'goog', { domains = ['example.org'] } = {}) {
  return build(publicUrl, id, domains, idp, { type: 'google', hosted_domain: 'example.org' }, {
    managed_apple_id: { claim: 'email', domain_map: { 'example.org': 'appleid.example.org' } },
  });
}

// An IdP whose discovery document says issuer "http://127.0.0.1:P/{tenantid}/v2.0"
// (Entra's multi-tenant metadata) while serving everything under contoso's
// tid, so its ID tokens carry iss = the template filled with the tid.
export async function multiTenantIdp() {
  const idp = await startTestIdp({ issuerPath: ENTRA_PATH });
  idp.baseModes = [{ mode: 'discovery_patch', patch: { issuer: `${idp.origin}/{tenantid}/v2.0` } }];
  for (const m of idp.baseModes) await idpMode(idp, m);
  return idp;
}

// Register the tenants' clients at their IdPs, write the config, start the
// bridge. main is merged into the main config (limits.upstream_timeout 3 by
// default). Returns { bridge, config, db, tenants: {id: {tenant, client, idp}} }.
export async function startWorld(port, specs, main = {}) {
  for (const s of specs) await idpAdmin(s.idp, '/clients', s.client);
  const config = writeConfig({
    port,
    tenants: specs.map((s) => s.tenant),
    main: { limits: { upstream_timeout: 3 }, ...main },
  });
  const bridge = await startBridge(config.main);
  const tenants = Object.fromEntries(specs.map((s) => [s.tenant.id, s]));
  return { bridge, config, db: config.cfg.database, tenants, port, publicUrl: `http://127.0.0.1:${port}` };
}

export { freePort };

// ------------------------------------------------------------- the flow --

function cookieFrom(res, name = 'eb_login') {
  const list = typeof res.headers.getSetCookie === 'function' ? res.headers.getSetCookie() : [];
  const sc = list.find((c) => c.startsWith(`${name}=`));
  return sc ? { header: sc, pair: sc.split(';')[0].trim() } : undefined;
}

// Step 1: POST /t/T/enroll; returns { status, wwwAuth, url }.
export async function challenge(bridge, tenant) {
  const r = await enrollPost(`${bridge.url}/t/${tenant}/enroll`);
  await r.arrayBuffer();
  const wwwAuth = r.headers.get('www-authenticate') ?? '';
  const m = /\burl="([^"]+)"/.exec(wwwAuth);
  return { status: r.status, wwwAuth, url: m ? m[1] : undefined };
}

// Step 2: the device opens the challenge url with its query replaced.
export async function startLogin(url, typed, { cookie } = {}) {
  const u = new URL(url);
  u.search = '';
  if (typed !== undefined) u.searchParams.set('user-identifier', typed);
  const r = await fetch(u, { redirect: 'manual', headers: cookie ? { cookie } : {} });
  const body = await r.text();
  const c = cookieFrom(r);
  return {
    status: r.status,
    headers: r.headers,
    location: r.headers.get('location') ?? undefined,
    setCookie: c?.header,
    cookie: c?.pair,
    body,
  };
}

// Step 4: the browser follows the IdP's redirect to our callback.
export async function callback(url, cookie) {
  const r = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
  const body = await r.text();
  const location = r.headers.get('location') ?? undefined;
  let token;
  if (location && location.startsWith(APPLE_RESULT)) {
    token = new URL(location).searchParams.get('access-token') ?? undefined;
  }
  return { status: r.status, headers: r.headers, location, token, body };
}

// Steps 1-4. Stops at the first step that does not go as in the happy path;
// `stage` says where ('challenge', 'auth', 'idp', 'callback').
// tamper(callbackUrl) may rewrite the callback URL before it is requested.
export async function enroll({
  bridge, tenant, typed, login, password = PASSWORD, jar, driveOptions = {}, tamper, cookie: cookieOverride,
}) {
  const out = { stage: 'challenge' };
  const ch = await challenge(bridge, tenant);
  out.challenge = ch;
  if (ch.status !== 401 || !ch.url) return { ...out, status: ch.status };
  out.stage = 'auth';
  const st = await startLogin(ch.url, typed ?? login);
  out.start = st;
  out.cookie = st.cookie;
  if (st.status !== 302 || !st.location) {
    return { ...out, status: st.status, headers: st.headers, body: st.body, location: st.location };
  }
  out.authUrl = st.location;
  out.stage = 'idp';
  let cb;
  try {
    cb = await drive(st.location, login, password, { jar: jar ?? createJar(), ...driveOptions });
  } catch (e) {
    if (!(e instanceof DriveError)) throw e;
    return { ...out, status: 0, driveError: e };
  }
  out.idpCallbackUrl = cb;
  if (tamper) cb = tamper(cb);
  out.callbackUrl = cb;
  out.stage = 'callback';
  const t0 = Date.now();
  const r = await callback(cb, cookieOverride === undefined ? st.cookie : cookieOverride);
  return { ...out, ...r, ms: Date.now() - t0 };
}

// ---------------------------------------------------- bridge inspection --

// sql(db, query): rows from the SQLite file or PostgreSQL DSN (lib.mjs).
export { sql };

export const sha256hex = (s) => crypto.createHash('sha256').update(s).digest('hex');

// Whether needle appears in the database files (main, WAL, journal).
export function dbFilesContain(db, needle) {
  for (const f of [db, `${db}-wal`, `${db}-journal`, `${db}-shm`]) {
    if (fs.existsSync(f) && fs.readFileSync(f).includes(Buffer.from(needle))) return f;
  }
  return null;
}

export async function metricsText(bridge) {
  return (await fetch(`${bridge.url}/metrics`)).text();
}

// All samples of one metric: [{labels: {...}, value}].
export function parseMetric(text, name) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^[a-z_:]+(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const lm of (m[1] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
    out.push({ labels, value: Number(m[2]) });
  }
  return out;
}

// { code: count } of enrollbridge_idp_errors_total for one tenant.
export async function idpErrors(bridge, tenant) {
  const res = {};
  for (const s of parseMetric(await metricsText(bridge), 'enrollbridge_idp_errors_total')) {
    if (s.labels.tenant === tenant) res[s.labels.code] = (res[s.labels.code] ?? 0) + s.value;
  }
  return res;
}

export function diffCounts(before, after) {
  const d = {};
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] ?? 0)) d[k] = v - (before[k] ?? 0);
  return d;
}

// An error page fit for a phone.
export function isHtmlPage(r) {
  return r.headers?.get('content-type') === 'text/html; charset=utf-8' && /<meta name="viewport"/i.test(r.body ?? '');
}

export async function healthz(bridge) {
  return (await fetch(`${bridge.url}/healthz`)).status;
}

export function stopAll(...things) {
  return Promise.allSettled(things.filter(Boolean).map((t) => (t.stop ? t.stop() : t.close())));
}
