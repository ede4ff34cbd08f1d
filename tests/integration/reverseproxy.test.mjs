// The reverse-proxy examples (contrib/reverse-proxy: nginx.conf, Caddyfile)
// in front of the real binary: each proxy runs as an unprivileged process
// on loopback with a throwaway self-signed certificate and its
// configuration rendered from the example, the bridge behind it on plain
// HTTP with trusted_proxies set to the proxy's address. Checked through the
// proxy: discovery (exactly application/json), the enrollment 401 challenge
// with the public https URL, and that the bridge logged the client's
// address from the forwarding header (the client connects from 127.0.0.5,
// the proxy from 127.0.0.1). Without nginx or caddy the case is skipped,
// under CI it fails. Each proxy is stopped by its PID.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { SRC, baseTenant, freePort, machineInfo, startBridge, tmpDir, writeConfig } from './lib.mjs';

const CLIENT = '127.0.0.5'; // not a trusted proxy
const EXAMPLES = path.join(SRC, 'contrib', 'reverse-proxy');
const running = [];

after(async () => {
  for (const stop of running.reverse()) await stop();
});

function which(cmd) {
  for (const d of (process.env.PATH || '').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = path.join(d, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch { /* next */ }
  }
  return null;
}

// The binary, or null after skipping (a failure under CI).
function need(t, cmd) {
  const p = which(cmd);
  if (p) return p;
  if (process.env.CI === 'true') assert.fail(`${cmd} is not installed (contrib/install-deps.sh installs it)`);
  t.skip(`${cmd} is not installed: the ${cmd} example is not tested`);
  return null;
}

// A throwaway directory the proxy may write to (it runs as nobody when we
// are root).
function workDir(prefix) {
  const d = tmpDir(prefix);
  fs.chmodSync(d, 0o755);
  if (process.getuid() === 0) fs.chownSync(d, 65534, 65534);
  return d;
}

function makeCert(dir) {
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
  { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  fs.chmodSync(key, 0o644); // throwaway, read by the unprivileged proxy
  return { key, cert };
}

// Start argv as an unprivileged process (nobody, when we are root); a stop
// function that ends it by its PID and waits.
function startUnprivileged(argv, env, logFile) {
  const cmd = process.getuid() === 0
    ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--', ...argv]
    : argv;
  const out = fs.openSync(logFile, 'a');
  const p = spawn(cmd[0], cmd.slice(1), { env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const exited = new Promise((r) => p.on('exit', r));
  const stop = async () => {
    if (p.exitCode === null && p.signalCode === null) process.kill(p.pid, 'SIGTERM');
    const t = setTimeout(() => { if (p.exitCode === null) process.kill(p.pid, 'SIGKILL'); }, 5000);
    await exited;
    clearTimeout(t);
  };
  running.push(stop);
  return { proc: p, stop };
}

// Wait until port accepts TLS connections (at most 10 s).
async function waitTls(port, proc, logFile) {
  const end = Date.now() + 10000;
  while (Date.now() < end) {
    if (proc.exitCode !== null) break;
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`proxy did not come up on ${port}:\n${fs.readFileSync(logFile, 'utf8')}`);
}

// One request through the proxy from CLIENT: { status, headers, body }.
function request(port, ca, p, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port, path: p, method, headers, ca, localAddress: CLIENT, agent: false,
    }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function startBehind(proxyPort) {
  const port = await freePort();
  const conf = writeConfig({
    port,
    tenants: [baseTenant('gen', ['generic.test'])],
    main: { public_url: `https://127.0.0.1:${proxyPort}`, trusted_proxies: ['127.0.0.1/32'] },
  });
  const bridge = await startBridge(conf.main, { url: `http://127.0.0.1:${port}` });
  running.push(() => bridge.stop());
  return { port, bridge };
}

// The three checks through a proxy on proxyPort.
async function checkThrough(proxyPort, ca, bridge) {
  const disc = await request(proxyPort, ca,
    '/.well-known/com.apple.remotemanagement?user-identifier=alice@generic.test&model-family=iPhone');
  assert.equal(disc.status, 200, disc.body);
  assert.equal(disc.headers['content-type'], 'application/json');
  assert.equal(JSON.parse(disc.body).Servers[0].BaseURL, `https://127.0.0.1:${proxyPort}/t/gen/enroll`);

  const body = machineInfo();
  const enr = await request(proxyPort, ca, '/t/gen/enroll', {
    method: 'POST',
    headers: {
      'content-type': 'application/pkcs7-signature',
      'user-agent': 'DeviceManagementClient/1.0',
      'content-length': body.length,
      // spoofed: the proxy appends the real peer, which the bridge takes
      'x-forwarded-for': '6.6.6.6',
    },
    body,
  });
  assert.equal(enr.status, 401, enr.body);
  assert.match(enr.headers['www-authenticate'],
    new RegExp(`^Bearer method="apple-as-web", url="https://127\\.0\\.0\\.1:${proxyPort}/t/gen/auth/[A-Za-z0-9_-]{20,}"$`));

  for (const r of [disc, enr]) {
    const rid = r.headers['x-request-id'];
    const line = await bridge.waitLog(new RegExp(`"rid":"${rid}".*"msg":"access"|"msg":"access".*"rid":"${rid}"`));
    assert.equal(JSON.parse(line).remote, CLIENT, line);
  }
}

test('nginx example: TLS termination in front of the bridge', async (t) => {
  const nginx = need(t, 'nginx');
  if (!nginx) return;
  const dir = workDir('eb-nginx-');
  const { key, cert } = makeCert(dir);
  const proxyPort = await freePort();
  const { port, bridge } = await startBehind(proxyPort);
  const site = fs.readFileSync(path.join(EXAMPLES, 'nginx.conf'), 'utf8')
    .replace(/^\s*listen \[::\]:443 .*$/m, '')
    .replace('listen 443 ssl http2;', `listen 127.0.0.1:${proxyPort} ssl http2;`)
    .replace('/etc/letsencrypt/live/enroll.example.com/fullchain.pem', cert)
    .replace('/etc/letsencrypt/live/enroll.example.com/privkey.pem', key)
    .replace('http://127.0.0.1:8080', `http://127.0.0.1:${port}`);
  assert.ok(site.includes(`127.0.0.1:${port}`) && site.includes(cert), 'the example changed: update this test');
  fs.writeFileSync(path.join(dir, 'site.conf'), site);
  const log = path.join(dir, 'error.log');
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${log} warn;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path ${dir}/body;
	proxy_temp_path ${dir}/proxy;
	fastcgi_temp_path ${dir}/fastcgi;
	uwsgi_temp_path ${dir}/uwsgi;
	scgi_temp_path ${dir}/scgi;
	include ${dir}/site.conf;
}
`);
  const { proc } = startUnprivileged([nginx, '-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', log],
    process.env, path.join(dir, 'stdout.log'));
  await waitTls(proxyPort, proc, log);
  await checkThrough(proxyPort, fs.readFileSync(cert), bridge);
});

test('Caddy example: TLS termination in front of the bridge', async (t) => {
  const caddy = need(t, 'caddy');
  if (!caddy) return;
  const dir = workDir('eb-caddy-');
  const { key, cert } = makeCert(dir);
  const proxyPort = await freePort();
  const { port, bridge } = await startBehind(proxyPort);
  const site = fs.readFileSync(path.join(EXAMPLES, 'Caddyfile'), 'utf8')
    .replace('enroll.example.com {', `https://127.0.0.1:${proxyPort} {`)
    .replace(/# tls \/etc\/ssl\/\S+ \/etc\/ssl\/\S+/, `tls ${cert} ${key}`)
    .replace('reverse_proxy 127.0.0.1:8080', `reverse_proxy 127.0.0.1:${port}`);
  assert.ok(site.includes(`tls ${cert}`) && site.includes(`127.0.0.1:${port}`), 'the example changed: update this test');
  const file = path.join(dir, 'Caddyfile');
  // global options for a throwaway instance: no admin endpoint, no
  // redirect listener on :80, state in dir
  fs.writeFileSync(file, `{
	admin off
	auto_https disable_redirects
	skip_install_trust
	storage file_system ${dir}/data
}
${site}`);
  const log = path.join(dir, 'caddy.log');
  const env = { ...process.env, HOME: dir, XDG_DATA_HOME: `${dir}/data`, XDG_CONFIG_HOME: `${dir}/data` };
  const { proc } = startUnprivileged([caddy, 'run', '--config', file, '--adapter', 'caddyfile'], env, log);
  await waitTls(proxyPort, proc, log);
  await checkThrough(proxyPort, fs.readFileSync(cert), bridge);
});
