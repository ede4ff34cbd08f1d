// Headless "browser" for the test IdP: follows the authorization URL through the
// login and consent forms with fetch and a cookie jar, and returns the URL the IdP
// finally redirects to outside itself (the relying party's callback, with
// code/state/iss or error) WITHOUT requesting it.
//
//   import { drive, createJar } from './drive.mjs';
//   const callback = await drive(authorizationUrl, 'alice@contoso.com', 'secret');
//   const u = new URL(callback); u.searchParams.get('code') ...
//
// Options (4th argument): { jar, consent = true, abortLogin = false, stopAt,
//   maxSteps = 25, fetch, trace: [] }
// Throws DriveError (with .code, .status, .url, .body) when the dance cannot complete:
//   LOGIN_FAILED  the login form came back with an error (wrong password, disabled user)
//   IDP_ERROR     the IdP showed an error page instead of redirecting
//   UNEXPECTED    anything else (no form, too many steps, non-HTML page)

export class DriveError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.name = 'DriveError';
    this.code = code;
    Object.assign(this, extra);
  }
}

// A minimal cookie jar: name -> value, for one IdP origin (host-only cookies, paths ignored
// except that expired/cleared cookies are removed).
export function createJar() {
  const cookies = new Map();
  return {
    cookies,
    store(res) {
      const list = typeof res.headers.getSetCookie === 'function' ? res.headers.getSetCookie() : [];
      for (const sc of list) {
        const [pair, ...attrs] = sc.split(';');
        const eq = pair.indexOf('=');
        if (eq < 0) continue;
        const name = pair.slice(0, eq).trim();
        const value = pair.slice(eq + 1).trim();
        const expired = attrs.some((a) => {
          const [k, v] = a.split('=').map((x) => x && x.trim().toLowerCase());
          return (k === 'max-age' && Number(v) <= 0) || (k === 'expires' && Date.parse(v) < Date.now());
        });
        if (expired || value === '') cookies.delete(name);
        else cookies.set(name, value);
      }
    },
    header() {
      return [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    },
  };
}

function decodeEntities(s) {
  return s.replace(/&(amp|lt|gt|quot|#39);/g, (m, e) => ({
    amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'",
  }[e]));
}

function attr(tag, name) {
  const m = new RegExp(`\\b${name}\\s*=\\s*"([^"]*)"`, 'i').exec(tag);
  return m ? decodeEntities(m[1]) : undefined;
}

function parseForm(html) {
  const fm = /<form\b[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!fm) return undefined;
  const formTag = /<form\b[^>]*>/i.exec(fm[0])[0];
  const fields = {};
  for (const m of fm[1].matchAll(/<input\b[^>]*>/gi)) {
    const name = attr(m[0], 'name');
    if (name) fields[name] = attr(m[0], 'value') ?? '';
  }
  const buttons = [...fm[1].matchAll(/<button\b[^>]*>/gi)].map((m) => ({ name: attr(m[0], 'name'), value: attr(m[0], 'value') }));
  return {
    action: attr(formTag, 'action'),
    method: (attr(formTag, 'method') ?? 'get').toLowerCase(),
    id: attr(formTag, 'id'),
    fields,
    buttons,
  };
}

function pageError(html) {
  const m = /id="error"[^>]*>([\s\S]*?)</.exec(html);
  const d = /id="error_description"[^>]*>([\s\S]*?)</.exec(html);
  return [m && decodeEntities(m[1]), d && decodeEntities(d[1])].filter(Boolean).join(': ');
}

export async function drive(authorizationUrl, login, password, options = {}) {
  const {
    jar = createJar(), consent = true, abortLogin = false, stopAt, maxSteps = 25,
    fetch: f = globalThis.fetch, trace,
  } = options;
  const idpOrigin = new URL(authorizationUrl).origin;
  let url = new URL(authorizationUrl).href;
  let init = { method: 'GET' };
  let loginSubmitted = false;

  for (let step = 0; step < maxSteps; step += 1) {
    const headers = { ...(init.headers ?? {}), accept: 'text/html,application/json;q=0.9' };
    const cookie = jar.header();
    if (cookie) headers.cookie = cookie;
    const res = await f(url, { ...init, headers, redirect: 'manual' });
    jar.store(res);
    trace?.push({ method: init.method, url, status: res.status });

    if (res.status >= 300 && res.status < 400) {
      const loc = res.headers.get('location');
      await res.arrayBuffer().catch(() => {});
      if (!loc) throw new DriveError('UNEXPECTED', `redirect without Location from ${url}`, { status: res.status, url });
      const next = new URL(loc, url).href;
      if ((stopAt && next.startsWith(stopAt)) || (!stopAt && new URL(next).origin !== idpOrigin)) return next;
      url = next;
      init = { method: 'GET' };
      continue;
    }

    const body = await res.text();
    if (res.status !== 200 || !/html/i.test(res.headers.get('content-type') ?? '')) {
      throw new DriveError('IDP_ERROR', `IdP answered ${res.status} at ${url}: ${pageError(body) || body.slice(0, 200)}`, { status: res.status, url, body });
    }
    const form = parseForm(body);
    if (!form) {
      throw new DriveError('IDP_ERROR', `IdP page without a form at ${url}: ${pageError(body) || body.slice(0, 200)}`, { status: res.status, url, body });
    }
    const fields = { ...form.fields };
    if ('login' in fields && 'password' in fields) {
      if (loginSubmitted) {
        throw new DriveError('LOGIN_FAILED', `login failed: ${pageError(body) || 'login form shown again'}`, { status: res.status, url, body });
      }
      loginSubmitted = true;
      if (abortLogin) {
        fields.action = 'abort';
      } else {
        fields.login = login;
        fields.password = password;
        fields.action = 'login';
      }
    } else {
      // consent (or any other one-button form)
      const wanted = consent ? ['allow', 'login', 'submit'] : ['deny', 'abort'];
      const b = form.buttons.find((x) => wanted.includes(x.value)) ?? (consent ? form.buttons[0] : undefined);
      if (!b) throw new DriveError('UNEXPECTED', `no suitable button on form at ${url}`, { url, body });
      if (b.name) fields[b.name] = b.value ?? '';
    }
    const target = new URL(form.action ?? url, url).href;
    if (form.method === 'post') {
      init = {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields).toString(),
      };
      url = target;
    } else {
      const u = new URL(target);
      for (const [k, v] of Object.entries(fields)) u.searchParams.set(k, v);
      url = u.href;
      init = { method: 'GET' };
    }
  }
  throw new DriveError('UNEXPECTED', `gave up after ${maxSteps} steps at ${url}`, { url });
}

export default drive;
