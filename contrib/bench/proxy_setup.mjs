// Setup for contrib/bench/proxy.sh: a bridge with one tenant whose MDM
// upstream is the benchmark's upstream, and a real device token for it.
//
//   node proxy_setup.mjs --bin EB --dir DIR --port P --upstream URL
//
// Starts the test OpenID Provider (tests/idp) on loopback, writes DIR/
// enrollbridge.json + DIR/tenants/contoso.json (access log off), starts
// `EB serve` detached (pid in DIR/eb.pid, output in DIR/eb.log), runs the
// apple-as-web sign-in as a device would (tests/integration/idp.mjs),
// binds the token with one Authenticate check-in through the proxy, writes
// the token to DIR/token (0600), stops the IdP and exits; the bridge keeps
// running for the benchmark (the proxy never needs the IdP).
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const top = path.resolve(here, '../..');
const { startIdp } = await import(path.join(top, 'tests/idp/server.mjs'));
const { enroll } = await import(path.join(top, 'tests/integration/idp.mjs'));

const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`--${name} missing`);
  return process.argv[i + 1];
};
const bin = arg('bin');
const dir = arg('dir');
const port = Number(arg('port'));
const upstream = arg('upstream');
const pub = `http://127.0.0.1:${port}`;

const idp = await startIdp({
  port: 0,
  autoConsent: true,
  clients: [{ client_id: 'bench', client_secret: 'bench-secret', redirect_uris: [`${pub}/t/contoso/oidc/callback`] }],
});

fs.mkdirSync(path.join(dir, 'tenants'), { recursive: true });
fs.mkdirSync(path.join(dir, 'state'), { recursive: true, mode: 0o700 });
fs.writeFileSync(path.join(dir, 'enrollbridge.json'), JSON.stringify({
  listen: `127.0.0.1:${port}`,
  public_url: pub,
  database: path.join(dir, 'eb.db'),
  state_dir: path.join(dir, 'state'),
  tenants_dir: 'tenants',
  log: { format: 'json', level: 'warn', access: false },
  ...(process.env.EB_THREADS ? { limits: { threads: Number(process.env.EB_THREADS) } } : {}),
}, null, 2));
fs.writeFileSync(path.join(dir, 'tenants', 'contoso.json'), JSON.stringify({
  id: 'contoso',
  domains: ['generic.test'],
  enrollment: { default: 'byod' },
  auth_method: 'apple-as-web',
  idp: { type: 'oidc', issuer: idp.issuer, client_id: 'bench', client_secret: 'bench-secret' },
  managed_apple_id: { claim: 'email', domain_map: { 'generic.test': 'appleid.generic.test' } },
  mdm: { upstream },
}, null, 2));

const out = fs.openSync(path.join(dir, 'eb.log'), 'a');
const eb = spawn(bin, ['serve', '-c', path.join(dir, 'enrollbridge.json')], {
  detached: true, stdio: ['ignore', out, out],
});
eb.unref();
fs.writeFileSync(path.join(dir, 'eb.pid'), `${eb.pid}\n`);

const deadline = Date.now() + 15000;
for (;;) {
  try {
    if ((await fetch(`${pub}/healthz`)).status === 200) break;
  } catch { /* not up yet */ }
  if (Date.now() > deadline) throw new Error(`bridge not up; see ${dir}/eb.log`);
  await new Promise((r) => setTimeout(r, 50));
}

const r = await enroll({ bridge: { url: pub }, tenant: 'contoso', login: 'user1' });
if (r.status !== 308 || !r.token) throw new Error(`sign-in failed at ${r.stage}: ${r.status} ${r.body?.slice(0, 200)}`);
const checkin = await fetch(`${pub}/t/contoso/mdm/checkin`, {
  method: 'PUT',
  headers: { authorization: `Bearer ${r.token}`, 'content-type': 'application/x-apple-aspen-mdm-checkin' },
  body: fs.readFileSync(path.join(here, 'checkin.plist'), 'utf8').replace('TokenUpdate', 'Authenticate'),
});
if (checkin.status !== 200) throw new Error(`binding check-in: ${checkin.status} ${await checkin.text()}`);
fs.writeFileSync(path.join(dir, 'token'), r.token, { mode: 0o600 });
await idp.close?.();
process.exit(0);
