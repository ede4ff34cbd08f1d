#!/usr/bin/env node
// Loopback OpenID Provider for enrollbridge integration tests.
//
//   node server.mjs --port 0 [--client-id ID --client-secret S --redirect-uri URI
//                    --auth-method client_secret_basic|client_secret_post]
//                   [--clients clients.json] [--issuer-path /TENANT/v2.0] [--auto-consent]
//
// Prints one JSON line on stdout when ready: {"issuer":..,"port":..,"admin":..}.
// See README.md for accounts, the admin API and the hostile modes.
// Test use only: it listens on loopback and has an unauthenticated admin API.

import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

// oidc-provider is imported lazily so that key generation runs while it loads (fast start).
import { defaultAccounts } from './accounts.mjs';

const HUGE_DEFAULT = 10 * 1024 * 1024;
const TARGETS = {
  discovery: (p) => p === '/.well-known/openid-configuration',
  jwks: (p) => p === '/jwks',
  token: (p) => p === '/token',
  userinfo: (p) => p === '/me',
  auth: (p) => p === '/auth' || p.startsWith('/auth/'),
  any: (p) => !p.startsWith('/__admin'),
  graph: (p) => p.startsWith(GRAPH_PREFIX),
};
// A Microsoft-Graph-like endpoint (tenant idp.graph_url = ORIGIN/graph):
// the current groups of the user owning the bearer access token.
const GRAPH_PREFIX = '/graph/';
const GRAPH_MEMBER_OBJECTS = '/graph/v1.0/me/getMemberObjects';
const BEHAVIOURS = new Set(['malformed', 'huge', 'hang', 'slow', '503', 'close', 'redirect', 'html', 'empty']);
const ID_TOKEN_MODES = new Set([
  'alg_none', 'hs256_pubkey', 'unknown_kid', 'foreign_key', 'alg_kty_mismatch',
  'wrong_iss', 'wrong_aud', 'multi_aud_no_azp', 'multi_aud_wrong_azp', 'expired',
  'iat_future', 'no_nonce', 'wrong_nonce', 'patch_id_token', 'no_id_token', 'bad_signature',
]);
const OTHER_MODES = new Set(['mixup_iss', 'no_iss', 'jwks_many', 'discovery_patch', 'down', 'down_close', 'no_refresh_token']);

export function knownMode(name) {
  if (ID_TOKEN_MODES.has(name) || OTHER_MODES.has(name)) return true;
  const m = /^([a-z]+)_([a-z0-9]+)$/.exec(name);
  return !!(m && TARGETS[m[1]] && BEHAVIOURS.has(m[2]));
}

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const rnd = (n = 8) => crypto.randomBytes(n).toString('hex');

function decodeJwt(jwt) {
  const [h, p] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString()),
  };
}

// Sign a compact JWS with node's crypto. key: KeyObject (RS256/ES256) or string/Buffer (HS256).
export function signJwt(header, payload, key) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(payload))}`;
  let sig;
  switch (header.alg) {
    case 'none': sig = Buffer.alloc(0); break;
    case 'HS256': sig = crypto.createHmac('sha256', key).update(input).digest(); break;
    case 'RS256': sig = crypto.sign('sha256', Buffer.from(input), key); break;
    case 'ES256': sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }); break;
    default: throw new Error(`signJwt: unsupported alg ${header.alg}`);
  }
  return `${input}.${b64u(sig)}`;
}

async function makeKey(type) {
  const { privateKey, publicKey } = await new Promise((resolve, reject) => {
    const cb = (err, publicKey, privateKey) => (err ? reject(err) : resolve({ publicKey, privateKey }));
    if (type === 'RSA') crypto.generateKeyPair('rsa', { modulusLength: 2048 }, cb);
    else crypto.generateKeyPair('ec', { namedCurve: 'P-256' }, cb);
  });
  const pub = publicKey.export({ format: 'jwk' });
  const thumbInput = type === 'RSA'
    ? JSON.stringify({ e: pub.e, kty: 'RSA', n: pub.n })
    : JSON.stringify({
      crv: pub.crv, kty: 'EC', x: pub.x, y: pub.y,
    });
  const kid = b64u(crypto.createHash('sha256').update(thumbInput).digest());
  const alg = type === 'RSA' ? 'RS256' : 'ES256';
  return {
    kid,
    alg,
    privateKey,
    publicKey,
    privateJwk: {
      ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig',
    },
    publicJwk: {
      ...pub, kid, alg, use: 'sig',
    },
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }),
  };
}

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:28em;margin:2em auto;padding:0 1em}
input{display:block;width:100%;margin:.3em 0 1em;padding:.5em;box-sizing:border-box}
button{padding:.6em 1.2em;margin-right:.5em}.err{color:#b00}</style></head>
<body><h1>${esc(title)}</h1>${body}</body></html>`;
}

async function readForm(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > limit) throw new Error('form too large');
    chunks.push(c);
  }
  return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString()));
}

async function readJson(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const s = Buffer.concat(chunks).toString().trim();
  return s ? JSON.parse(s) : {};
}

function normalizeClient(c) {
  const client = { ...c };
  if (!client.client_id) throw new Error('client needs client_id');
  if (!Array.isArray(client.redirect_uris)) {
    client.redirect_uris = client.redirect_uris ? [client.redirect_uris] : [];
  }
  client.grant_types ??= ['authorization_code', 'refresh_token'];
  client.response_types ??= ['code'];
  client.token_endpoint_auth_method ??= 'client_secret_basic';
  return client;
}

// In-memory adapter that can be enumerated (to revoke a user's grants).
function makeAdapter(stores) {
  return class Adapter {
    constructor(name) {
      this.name = name;
      if (!stores.has(name)) stores.set(name, new Map());
      this.s = stores.get(name);
    }

    async upsert(id, payload, expiresIn) {
      this.s.set(id, { payload, exp: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    }

    async find(id) {
      const e = this.s.get(id);
      if (!e) return undefined;
      if (e.exp < Date.now()) { this.s.delete(id); return undefined; }
      return e.payload;
    }

    async findBy(field, value) {
      for (const [id, e] of this.s) if (e.payload[field] === value) return this.find(id);
      return undefined;
    }

    async findByUid(uid) { return this.findBy('uid', uid); }

    async findByUserCode(userCode) { return this.findBy('userCode', userCode); }

    async consume(id) {
      const e = this.s.get(id);
      if (e) e.payload.consumed = now();
    }

    async destroy(id) { this.s.delete(id); }

    async revokeByGrantId(grantId) {
      for (const [id, e] of this.s) if (e.payload.grantId === grantId) this.s.delete(id);
    }
  };
}

export async function startIdp(opts = {}) {
  const host = opts.host ?? '127.0.0.1';
  if (!['127.0.0.1', '::1', 'localhost'].includes(host)) throw new Error('the test IdP listens on loopback only');
  let prefix = opts.issuerPath ?? '';
  if (prefix && !prefix.startsWith('/')) prefix = `/${prefix}`;
  prefix = prefix.replace(/\/+$/, '');
  const autoConsent = !!opts.autoConsent;

  const accounts = new Map();
  for (const a of [...defaultAccounts(), ...(opts.accounts ?? []).map((x) => ({ password: 'secret', kind: 'custom', ...x }))]) accounts.set(a.login.toLowerCase(), a);
  // what /__admin/reset restores after run-time claim and group changes
  const pristine = new Map([...accounts].map(([k, a]) => [k, structuredClone(a)]));
  const bySub = () => new Map([...accounts.values()].map((a) => [a.claims.sub, a]));
  const disabled = new Set(); // of sub

  // foreign: "another issuer's" key, never published
  const [{ default: Provider }, rsa, ec, foreign] = await Promise.all([
    import('oidc-provider'), makeKey('RSA'), makeKey('EC'), makeKey('RSA'),
  ]);

  const stores = new Map();
  const Adapter = makeAdapter(stores);

  const state = {
    modes: [], // {mode, remaining (null = until reset), opts}
    hung: new Set(),
    log: [],
  };

  const server = http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, resolve);
  });
  const { port } = server.address();
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const issuer = origin + prefix;

  const findAccount = async (ctx, sub) => {
    const a = bySub().get(sub);
    if (!a || disabled.has(sub)) return undefined;
    return {
      accountId: sub,
      async claims() { return structuredClone(a.claims); },
    };
  };

  const provider = new Provider(issuer, {
    adapter: Adapter,
    clients: (opts.clients ?? []).map(normalizeClient),
    jwks: { keys: [rsa.privateJwk, ec.privateJwk] },
    cookies: { keys: [rnd(16), rnd(16)] },
    findAccount,
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub', 'tid', 'oid', 'upn', 'hd', 'groups', 'hasgroups'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    extraParams: ['access_type', 'domain_hint', 'hd', 'include_granted_scopes'],
    responseTypes: ['code'],
    pkce: { methods: ['S256'], required: () => true },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      introspection: { enabled: true },
      userinfo: { enabled: true },
    },
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256', 'ES256'],
    },
    interactions: {
      url: async (ctx, interaction) => `${prefix}/interaction/${interaction.uid}`,
    },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 120,
      IdToken: 3600,
      RefreshToken: 14 * 24 * 3600,
      Interaction: 3600,
      Session: 3600,
      Grant: 14 * 24 * 3600,
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Sign-in error', `<p class="err" id="error">${esc(out.error)}</p><p id="error_description">${esc(out.error_description)}</p>`);
    },
  });
  provider.on('server_error', (ctx, err) => { process.stderr.write(`test-idp server_error: ${err.stack}\n`); });
  if (process.env.TEST_IDP_DEBUG) {
    for (const ev of ['authorization.error', 'end_session.error', 'grant.error', 'userinfo.error', 'introspection.error', 'revocation.error', 'discovery.error', 'jwks.error']) {
      provider.on(ev, (ctx, err) => { process.stderr.write(`test-idp ${ev}: ${err.message} ${err.error_detail ?? ''}\n`); });
    }
  }

  // ----- mode bookkeeping ---------------------------------------------------
  // info: what the request is ({grant_type} at the token endpoint); a mode
  // added with opts.grant_type applies only to token requests of that grant
  function takeMode(pred, info) {
    const i = state.modes.findIndex((m) => pred(m.mode)
      && (m.opts.grant_type === undefined || m.opts.grant_type === info?.grant_type));
    if (i < 0) return undefined;
    const m = state.modes[i];
    if (m.remaining !== null) {
      m.remaining -= 1;
      if (m.remaining <= 0) state.modes.splice(i, 1);
    }
    return m;
  }

  function endpointMode(path) {
    return takeMode((mode) => {
      if (mode === 'down') return TARGETS.any(path) ? true : false;
      if (mode === 'down_close') return TARGETS.any(path);
      if (mode === 'jwks_many') return TARGETS.jwks(path);
      const m = /^([a-z]+)_([a-z0-9]+)$/.exec(mode);
      return !!(m && TARGETS[m[1]] && BEHAVIOURS.has(m[2]) && TARGETS[m[1]](path));
    });
  }

  function releaseHung() {
    for (const { req } of state.hung) req.socket.destroy();
    state.hung.clear();
  }

  function jwksMany(count) {
    const keys = [];
    for (let i = 0; i < count; i += 1) {
      keys.push({
        kty: 'RSA', use: 'sig', alg: 'RS256', kid: `bulk-${i}-${rnd(4)}`, e: 'AQAB', n: b64u(crypto.randomBytes(256)),
      });
    }
    keys.push(rsa.publicJwk, ec.publicJwk);
    return { keys };
  }

  function behave(ctx, m) {
    const behaviour = m.mode === 'down' ? '503' : m.mode === 'down_close' ? 'close' : m.mode === 'jwks_many' ? 'many' : m.mode.split('_').pop();
    switch (behaviour) {
      case '503':
        ctx.status = 503;
        ctx.set('Retry-After', '1');
        ctx.type = 'text/plain';
        ctx.body = 'service unavailable (test IdP is down)';
        return;
      case 'close':
        ctx.respond = false;
        ctx.req.socket.destroy();
        return;
      case 'hang':
        ctx.respond = false;
        state.hung.add({ req: ctx.req, res: ctx.res });
        return;
      case 'malformed':
        ctx.status = 200;
        ctx.type = 'application/json';
        ctx.body = m.opts.body ?? `{"issuer": "${issuer}", "keys": [ {"kty": "RSA", "n": "`;
        return;
      case 'empty':
        ctx.status = 200;
        ctx.type = 'application/json';
        ctx.body = '';
        return;
      case 'html':
        ctx.status = 200;
        ctx.type = 'html';
        ctx.body = '<html><body>Sign in to continue</body></html>';
        return;
      case 'huge': {
        const size = Number(m.opts.size ?? HUGE_DEFAULT);
        const head = '{"access_token":"';
        const tail = '","token_type":"Bearer","keys":[]}';
        ctx.status = 200;
        ctx.type = 'application/json';
        ctx.body = Buffer.concat([Buffer.from(head), Buffer.alloc(Math.max(0, size - head.length - tail.length), 'A'), Buffer.from(tail)]);
        return;
      }
      case 'redirect':
        ctx.status = 307;
        ctx.set('Location', `${origin}/__redirected${ctx.path}`);
        ctx.body = '';
        return;
      case 'many':
        ctx.status = 200;
        ctx.type = 'application/json';
        ctx.body = JSON.stringify(jwksMany(Number(m.opts.keys ?? 10000)));
        return;
      default:
        ctx.status = 500;
        ctx.body = `unknown behaviour ${behaviour}`;
    }
  }

  function tamperIdToken(body, m) {
    const { header, payload } = decodeJwt(body.id_token);
    const o = m.opts;
    const real = header.alg === 'ES256' ? ec : rsa;
    let h = { alg: real.alg, typ: header.typ ?? 'JWT', kid: real.kid };
    let p = { ...payload };
    let key = real.privateKey;
    const t = now();
    switch (m.mode) {
      case 'no_id_token': {
        const { id_token: _, ...rest } = body;
        return rest;
      }
      case 'alg_none':
        h = { alg: 'none', typ: 'JWT' };
        key = null;
        break;
      case 'hs256_pubkey':
        h = { alg: 'HS256', typ: 'JWT', kid: rsa.kid };
        key = o.pem === 'jwk' ? JSON.stringify(rsa.publicJwk) : rsa.publicPem;
        break;
      case 'unknown_kid':
        h.kid = o.kid ?? `unknown-${rnd()}`;
        break;
      case 'foreign_key':
        h = { alg: 'RS256', typ: 'JWT', kid: o.foreignKid ? foreign.kid : rsa.kid };
        key = foreign.privateKey;
        break;
      case 'alg_kty_mismatch':
        // ES256 signature, but the kid names the RSA key.
        h = { alg: 'ES256', typ: 'JWT', kid: rsa.kid };
        key = ec.privateKey;
        break;
      case 'bad_signature':
        break; // signature corrupted below
      case 'wrong_iss': p.iss = o.iss ?? 'https://idp.attacker.test'; break;
      case 'wrong_aud': p.aud = o.aud ?? 'some-other-client'; delete p.azp; break;
      case 'multi_aud_no_azp':
        p.aud = [payload.aud, o.aud ?? 'some-other-client'].flat();
        delete p.azp;
        break;
      case 'multi_aud_wrong_azp':
        p.aud = [payload.aud, o.aud ?? 'some-other-client'].flat();
        p.azp = o.azp ?? 'some-other-client';
        break;
      case 'expired': p.iat = t - 7200; p.exp = t - 3600; if (p.auth_time) p.auth_time = t - 7200; break;
      case 'iat_future': p.iat = t + 3600; p.exp = t + 7200; break;
      case 'no_nonce': delete p.nonce; break;
      case 'wrong_nonce': p.nonce = o.nonce ?? `wrong-${rnd()}`; break;
      case 'patch_id_token':
        for (const [k, v] of Object.entries(o.claims ?? {})) { if (v === null) delete p[k]; else p[k] = v; }
        for (const [k, v] of Object.entries(o.header ?? {})) { if (v === null) delete h[k]; else h[k] = v; }
        break;
      default:
        return body;
    }
    if (m.mode !== 'alg_none' && m.mode !== 'hs256_pubkey' && h.alg === 'none') key = null;
    let jwt = signJwt(h, p, key);
    if (m.mode === 'bad_signature') {
      const [a, b, s] = jwt.split('.');
      const sig = Buffer.from(s, 'base64url');
      sig[sig.length - 1] ^= 0x01;
      jwt = `${a}.${b}.${b64u(sig)}`;
    }
    return { ...body, id_token: jwt };
  }

  // ----- admin API ----------------------------------------------------------
  function userFor(id) {
    const key = decodeURIComponent(id).toLowerCase();
    return accounts.get(key) ?? [...accounts.values()].find((a) => a.claims.sub === decodeURIComponent(id));
  }

  function revokeUser(sub, { sessions = true, sessionsOnly = false } = {}) {
    const grants = stores.get('Grant') ?? new Map();
    const grantIds = new Set();
    if (!sessionsOnly) for (const [id, e] of grants) if (e.payload.accountId === sub) grantIds.add(id);
    let revoked = 0;
    for (const [, store] of stores) {
      for (const [id, e] of store) {
        const p = e.payload;
        if ((p.grantId && grantIds.has(p.grantId)) || (!sessionsOnly && p.kind === 'Grant' && p.accountId === sub)
          || (sessions && p.kind === 'Session' && p.accountId === sub)) {
          store.delete(id);
          revoked += 1;
        }
      }
    }
    for (const id of grantIds) grants.delete(id);
    return revoked;
  }

  // The directory's groups of account a: what the Graph endpoint answers.
  function groupsOf(a) {
    return a.directoryGroups ?? (Array.isArray(a.claims.groups) ? a.claims.groups : []);
  }

  // POST /graph/v1.0/me/getMemberObjects with "Authorization: Bearer AT":
  // {"value": [group ids]} of the account the access token was issued to.
  async function graph(ctx) {
    const json = (status, body) => { ctx.status = status; ctx.type = 'application/json'; ctx.body = JSON.stringify(body); };
    if (ctx.path !== GRAPH_MEMBER_OBJECTS) return json(404, { error: { code: 'Request_ResourceNotFound' } });
    if (ctx.method !== 'POST') return json(405, { error: { code: 'Request_BadRequest' } });
    const m = /^Bearer (\S+)$/.exec(ctx.get('authorization') ?? '');
    const at = m ? await provider.AccessToken.find(m[1]) : undefined;
    if (!at || !at.accountId) {
      ctx.set('WWW-Authenticate', 'Bearer error="invalid_token"');
      return json(401, { error: { code: 'InvalidAuthenticationToken', message: 'Access token is unknown or expired.' } });
    }
    const a = bySub().get(at.accountId);
    if (!a || disabled.has(at.accountId)) return json(401, { error: { code: 'InvalidAuthenticationToken', message: 'The user is gone or disabled.' } });
    return json(200, { value: [...groupsOf(a)] });
  }

  function adminState() {
    return {
      issuer,
      modes: state.modes.map(({ mode, remaining, opts: o }) => ({ mode, remaining, opts: o })),
      hung: state.hung.size,
      users: [...accounts.values()].map((a) => ({
        login: a.login, sub: a.claims.sub, kind: a.kind, disabled: disabled.has(a.claims.sub),
      })),
      keys: {
        rsa: { kid: rsa.kid, jwk: rsa.publicJwk, pem: rsa.publicPem },
        ec: { kid: ec.kid, jwk: ec.publicJwk, pem: ec.publicPem },
        foreign: { kid: foreign.kid, jwk: foreign.publicJwk, pem: foreign.publicPem },
      },
    };
  }

  async function admin(ctx) {
    const path = ctx.path.slice('/__admin'.length) || '/';
    const json = (status, body) => { ctx.status = status; ctx.type = 'application/json'; ctx.body = JSON.stringify(body); };
    let m;
    try {
      if (ctx.method === 'GET' && (path === '/' || path === '/state')) return json(200, adminState());
      if (ctx.method === 'GET' && path === '/log') return json(200, state.log);
      if (ctx.method !== 'POST' && ctx.method !== 'DELETE') return json(405, { error: 'method not allowed' });
      if (path === '/reset') {
        state.modes = [];
        releaseHung();
        disabled.clear();
        for (const [k, a] of pristine) accounts.set(k, structuredClone(a));
        state.log = [];
        return json(200, { ok: true });
      }
      if (path === '/release') { releaseHung(); return json(200, { ok: true }); }
      if (path === '/mode' || (m = /^\/mode\/([a-z0-9_]+)$/.exec(path))) {
        const body = ctx.method === 'POST' ? await readJson(ctx.req) : {};
        const q = Object.fromEntries(new URLSearchParams(ctx.querystring));
        const all = { ...q, ...body };
        const mode = m ? m[1] : all.mode;
        if (ctx.method === 'DELETE') {
          state.modes = state.modes.filter((x) => x.mode !== mode);
          return json(200, { ok: true, modes: state.modes });
        }
        if (!knownMode(mode)) return json(400, { error: `unknown mode ${mode}` });
        const { mode: _m, count, ...rest } = all;
        const remaining = count === undefined || count === null || count === '' ? null : Number(count);
        if (remaining !== null && !(remaining > 0)) return json(400, { error: 'count must be > 0' });
        state.modes.push({ mode, remaining, opts: rest });
        return json(200, { ok: true, modes: state.modes });
      }
      if ((m = /^\/users\/([^/]+)\/(disable|enable|revoke)$/.exec(path))) {
        const a = userFor(m[1]);
        if (!a) return json(404, { error: 'no such user' });
        const sub = a.claims.sub;
        if (m[2] === 'disable') { disabled.add(sub); revokeUser(sub, { sessionsOnly: true }); }
        // disable: refresh tokens stay stored but findAccount refuses -> invalid_grant
        if (m[2] === 'enable') disabled.delete(sub);
        let revoked;
        if (m[2] === 'revoke') revoked = revokeUser(sub);
        return json(200, {
          ok: true, login: a.login, sub, disabled: disabled.has(sub), revoked,
        });
      }
      if ((m = /^\/users\/([^/]+)\/(claims|groups)$/.exec(path))) {
        const a = userFor(m[1]);
        if (!a) return json(404, { error: 'no such user' });
        const body = await readJson(ctx.req);
        if (m[2] === 'claims') {
          if (!body || typeof body !== 'object' || Array.isArray(body)) return json(400, { error: 'need a JSON object of claims' });
          if ('sub' in body) return json(400, { error: 'sub cannot change' });
          for (const [k, v] of Object.entries(body)) { if (v === null) delete a.claims[k]; else a.claims[k] = v; }
        } else {
          if (!Array.isArray(body.groups) || !body.groups.every((g) => typeof g === 'string')) return json(400, { error: 'need {"groups": [strings]}' });
          // the directory's membership (what Graph answers), and the token's
          // groups claim when the account carries one (no overage)
          a.directoryGroups = [...body.groups];
          if (Array.isArray(a.claims.groups)) a.claims.groups = [...body.groups];
        }
        return json(200, {
          ok: true, login: a.login, claims: a.claims, groups: groupsOf(a),
        });
      }
      if (path === '/clients') {
        const c = normalizeClient(await readJson(ctx.req));
        await new Adapter('Client').upsert(c.client_id, c);
        return json(200, { ok: true, client: c });
      }
      if (path === '/accounts') {
        const a = await readJson(ctx.req);
        if (!a.login || !a.claims?.sub) return json(400, { error: 'need login and claims.sub' });
        accounts.set(a.login.toLowerCase(), { password: 'secret', kind: 'custom', ...a });
        return json(200, { ok: true });
      }
      return json(404, { error: 'no such admin endpoint' });
    } catch (e) {
      return json(400, { error: String(e.message ?? e) });
    }
  }

  // ----- own login / consent pages -----------------------------------------
  function loginPage(uid, details, { error, login } = {}) {
    const hint = login ?? details.params.login_hint ?? '';
    return page('Sign in', `
<p>Test IdP sign-in for <code id="client">${esc(details.params.client_id)}</code></p>
${error ? `<p class="err" id="error">${esc(error)}</p>` : ''}
<form method="post" action="${prefix}/interaction/${esc(uid)}/login" id="login-form">
<label>Login <input name="login" id="login" autocomplete="username" value="${esc(hint)}" autofocus></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password"></label>
<button type="submit" name="action" value="login" id="submit">Sign in</button>
<button type="submit" name="action" value="abort" id="abort" formnovalidate>Cancel</button>
</form>`);
  }

  function consentPage(uid, details) {
    const scopes = details.prompt.details.missingOIDCScope ?? [];
    return page('Allow access', `
<p>Allow <code id="client">${esc(details.params.client_id)}</code> to access: <span id="scopes">${esc(scopes.join(' '))}</span></p>
<form method="post" action="${prefix}/interaction/${esc(uid)}/confirm" id="consent-form">
<button type="submit" name="action" value="allow" id="allow">Allow</button>
<button type="submit" name="action" value="deny" id="deny">Deny</button>
</form>`);
  }

  async function grantConsent(details) {
    const { prompt: { details: pd }, params, session: { accountId } } = details;
    let grant;
    if (details.grantId) grant = await provider.Grant.find(details.grantId);
    if (!grant) grant = new provider.Grant({ accountId, clientId: params.client_id });
    if (pd.missingOIDCScope) grant.addOIDCScope(pd.missingOIDCScope.join(' '));
    if (pd.missingOIDCClaims) grant.addOIDCClaims(pd.missingOIDCClaims);
    if (pd.missingResourceScopes) {
      for (const [ind, sc] of Object.entries(pd.missingResourceScopes)) grant.addResourceScope(ind, sc.join(' '));
    }
    const grantId = await grant.save();
    return details.grantId ? {} : { grantId };
  }

  async function finish(ctx, result, merge) {
    const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
    ctx.status = 303;
    ctx.set('Location', to);
    ctx.body = '';
  }

  async function interaction(ctx, uid, action) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== uid) throw new Error('interaction mismatch');
    ctx.set('Cache-Control', 'no-store');
    const prompt = details.prompt.name;
    if (!action) {
      if (prompt === 'login') { ctx.type = 'html'; ctx.body = loginPage(uid, details); return; }
      if (prompt === 'consent') {
        if (autoConsent) { await finish(ctx, { consent: await grantConsent(details) }, true); return; }
        ctx.type = 'html'; ctx.body = consentPage(uid, details); return;
      }
      throw new Error(`unsupported prompt ${prompt}`);
    }
    const form = ctx.method === 'POST' ? await readForm(ctx.req) : {};
    if (form.action === 'abort' || form.action === 'deny') {
      await finish(ctx, { error: 'access_denied', error_description: 'End-User aborted interaction' }, false);
      return;
    }
    if (action === 'login') {
      if (prompt !== 'login') throw new Error('not a login prompt');
      const a = accounts.get(String(form.login ?? '').trim().toLowerCase());
      let error;
      if (!a || !form.password || form.password !== a.password) error = 'Invalid login or password.';
      else if (disabled.has(a.claims.sub)) error = 'This account is disabled.';
      if (error) {
        ctx.status = 200; ctx.type = 'html'; ctx.body = loginPage(uid, details, { error, login: form.login });
        return;
      }
      await finish(ctx, { login: { accountId: a.claims.sub } }, false);
      return;
    }
    if (action === 'confirm') {
      if (prompt !== 'consent') throw new Error('not a consent prompt');
      await finish(ctx, { consent: await grantConsent(details) }, true);
      return;
    }
    ctx.status = 404;
  }

  // ----- the one middleware in front of oidc-provider ----------------------
  provider.use(async (ctx, next) => {
    const path = ctx.path;
    if (path === '/__admin' || path.startsWith('/__admin/')) {
      const ra = ctx.req.socket.remoteAddress ?? '';
      if (!(ra.startsWith('127.') || ra === '::1' || ra.startsWith('::ffff:127.'))) { ctx.status = 403; return; }
      await admin(ctx);
      return;
    }
    if (path.startsWith('/__redirected/')) {
      state.log.push({
        t: Date.now(), method: ctx.method, path, redirected: true,
      });
      ctx.type = 'application/json';
      ctx.body = '{"error":"redirect_followed","error_description":"the client followed a redirect"}';
      ctx.status = 400;
      return;
    }

    const entry = {
      t: Date.now(), method: ctx.method, path, query: { ...ctx.query },
    };
    const authz = ctx.get('authorization');
    if (authz) entry.authorization = authz.split(' ')[0];
    // W3C trace context the client sent (not a secret): a relying party
    // that propagates its trace shows it here
    const tp = ctx.get('traceparent');
    if (tp) entry.traceparent = tp;
    if (state.log.length >= 1000) state.log.shift();
    state.log.push(entry);

    const em = endpointMode(path);
    if (em && em.mode.endsWith('_slow')) {
      // answered as usual after a delay; a client that hung up meanwhile
      // (killed) gets nothing, and its request is never processed
      entry.mode = em.mode;
      await new Promise((r) => { setTimeout(r, Number(em.opts.ms ?? 1000)); });
      if (ctx.req.socket.destroyed || !ctx.req.socket.writable) {
        entry.dropped = true;
        ctx.respond = false;
        return;
      }
    } else if (em) { entry.mode = em.mode; behave(ctx, em); return; }

    if (TARGETS.graph(path)) { await graph(ctx); return; }

    const mi = /^\/interaction\/([^/]+)(?:\/(login|confirm))?$/.exec(path);
    if (mi) {
      try {
        await interaction(ctx, mi[1], mi[2]);
      } catch (e) {
        ctx.status = 400;
        ctx.type = 'html';
        ctx.body = page('Sign-in error', `<p class="err" id="error">${esc(e.message)}</p>`);
      }
      return;
    }

    // Google-style access_type=offline, and offline_access without prompt=consent (Entra style):
    // oidc-provider only honours offline_access with prompt=consent, so add it.
    if (ctx.method === 'GET' && path === '/auth') {
      const q = { ...ctx.query };
      const scopes = new Set(String(q.scope ?? '').split(' ').filter(Boolean));
      const wantsOffline = scopes.has('offline_access') || q.access_type === 'offline';
      if (wantsOffline && scopes.has('openid')) {
        scopes.add('offline_access');
        q.scope = [...scopes].join(' ');
        const prompts = new Set(String(q.prompt ?? '').split(' ').filter(Boolean));
        if (!prompts.has('none')) { prompts.add('consent'); q.prompt = [...prompts].join(' '); }
        ctx.query = q;
      }
    }

    await next();

    if (ctx.method === 'POST' && path === '/token') {
      if (ctx.oidc?.body) {
        const { client_secret: _s, ...b } = ctx.oidc.body;
        entry.body = b;
        if (_s) entry.client_secret_in_body = true;
      }
      entry.status = ctx.status;
      if (ctx.status === 200 && ctx.body && typeof ctx.body === 'object' && !Buffer.isBuffer(ctx.body) && ctx.body.refresh_token) {
        const nm = takeMode((mode) => mode === 'no_refresh_token', { grant_type: ctx.oidc?.body?.grant_type });
        if (nm) {
          entry.mode = nm.mode;
          const { refresh_token: _r, ...rest } = ctx.body;
          ctx.body = rest;
        }
      }
      if (ctx.status === 200 && ctx.body && typeof ctx.body === 'object' && !Buffer.isBuffer(ctx.body) && ctx.body.id_token) {
        const tm = takeMode((mode) => ID_TOKEN_MODES.has(mode), { grant_type: ctx.oidc?.body?.grant_type });
        if (tm) { entry.mode = tm.mode; ctx.body = tamperIdToken(ctx.body, tm); }
      }
    }

    if (ctx.status >= 300 && ctx.status < 400 && (path === '/auth' || path.startsWith('/auth/'))) {
      const loc = ctx.response.get('Location');
      if (loc && !loc.startsWith(origin)) {
        let u;
        try { u = new URL(loc); } catch { u = undefined; }
        if (u && (u.searchParams.has('code') || u.searchParams.has('error'))) {
          const am = takeMode((mode) => mode === 'mixup_iss' || mode === 'no_iss');
          if (am) {
            entry.mode = am.mode;
            if (am.mode === 'mixup_iss') u.searchParams.set('iss', am.opts.iss ?? 'https://idp.attacker.test');
            else u.searchParams.delete('iss');
            ctx.set('Location', u.href);
          }
        }
      }
    }

    if (ctx.method === 'GET' && path === '/.well-known/openid-configuration' && ctx.status === 200) {
      const dm = takeMode((mode) => mode === 'discovery_patch');
      if (dm) {
        const doc = typeof ctx.body === 'string' ? JSON.parse(ctx.body) : { ...ctx.body };
        for (const [k, v] of Object.entries(dm.opts.patch ?? {})) { if (v === null) delete doc[k]; else doc[k] = v; }
        ctx.body = doc;
      }
    }
  });

  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (prefix && (req.url === prefix || req.url.startsWith(`${prefix}/`) || req.url.startsWith(`${prefix}?`))) {
      req.originalUrl = req.url;
      req.url = req.url.slice(prefix.length) || '/';
      if (req.url.startsWith('?')) req.url = `/${req.url}`;
    }
    callback(req, res);
  });

  const sockets = new Set();
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });

  return {
    issuer,
    port,
    origin,
    admin: `${origin}/__admin`,
    provider,
    keys: { rsa, ec, foreign },
    async close() {
      releaseHung();
      for (const s of sockets) s.destroy();
      await new Promise((r) => { server.close(() => r()); });
    },
  };
}

function parseArgs(argv) {
  const o = { clients: [] };
  const one = {};
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      i += 1;
      return argv[i];
    };
    switch (a) {
      case '--port': o.port = Number(val()); break;
      case '--host': o.host = val(); break;
      case '--issuer-path': o.issuerPath = val(); break;
      case '--auto-consent': o.autoConsent = true; break;
      case '--exit-on-stdin-eof': break;
      case '--clients': {
        const f = JSON.parse(fs.readFileSync(val(), 'utf8'));
        o.clients.push(...(Array.isArray(f) ? f : f.clients ?? [f]));
        break;
      }
      case '--accounts': {
        const f = JSON.parse(fs.readFileSync(val(), 'utf8'));
        o.accounts = Array.isArray(f) ? f : f.accounts;
        break;
      }
      case '--client-id': one.client_id = val(); break;
      case '--client-secret': one.client_secret = val(); break;
      case '--redirect-uri': (one.redirect_uris ??= []).push(val()); break;
      case '--auth-method': one.token_endpoint_auth_method = val(); break;
      case '--id-token-alg': one.id_token_signed_response_alg = val(); break;
      case '-h': case '--help':
        process.stdout.write('usage: node server.mjs --port N [--client-id ID --client-secret S --redirect-uri URI [--auth-method M] [--id-token-alg RS256|ES256]] [--clients FILE] [--accounts FILE] [--issuer-path /P] [--auto-consent] [--exit-on-stdin-eof]\n');
        process.exit(0);
        break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (one.client_id) o.clients.push(one);
  return o;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  let idp;
  try {
    idp = await startIdp(parseArgs(process.argv.slice(2)));
  } catch (e) {
    process.stderr.write(`test-idp: ${e.message}\n`);
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify({ issuer: idp.issuer, port: idp.port, admin: idp.admin })}\n`);
  const stop = () => { idp.close().finally(() => process.exit(0)); setTimeout(() => process.exit(0), 1000).unref(); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // --exit-on-stdin-eof: exit when the parent closes our stdin (a test that dies leaves no IdP behind)
  if (process.argv.includes('--exit-on-stdin-eof')) {
    process.stdin.on('end', stop);
    process.stdin.on('error', () => {});
    process.stdin.resume();
  }
}
