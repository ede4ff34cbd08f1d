#!/usr/bin/env node
// A fake MDM server for the demo (no dependencies): the upstream behind the
// bridge's MDM proxy (config/demo/tenants/demo.json, mdm.upstream). It
// answers check-ins (PUT, application/x-apple-aspen-mdm-checkin) with 200 and
// an empty body, and command requests (PUT, application/x-apple-aspen-mdm)
// with 200 and an empty plist (no command queued), and logs one line per
// request: method, path, content type, MessageType/Status and the device's
// identifiers. It never logs the Authorization header.
//
//   node contrib/demo/fake-mdm.mjs [--port 9091] [--host 127.0.0.1]
import http from 'node:http';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const port = Number(opt('--port', '9091'));
const host = opt('--host', '127.0.0.1');
const MAX_BODY = 1024 * 1024;

const EMPTY_PLIST = '<?xml version="1.0" encoding="UTF-8"?>\n'
  + '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
  + '<plist version="1.0">\n<dict/>\n</plist>\n';

// The string value of <key>k</key><string>v</string> in an XML plist.
function plistString(xml, k) {
  const m = new RegExp(`<key>${k}</key>\\s*<string>([^<]{0,200})</string>`).exec(xml);
  return m ? m[1] : undefined;
}

const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (d) => {
    size += d.length;
    if (size > MAX_BODY) { res.writeHead(413).end(); req.destroy(); return; }
    chunks.push(d);
  });
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const ct = (req.headers['content-type'] ?? '').split(';')[0].trim();
    const what = [];
    for (const k of ['MessageType', 'Status', 'CommandUUID', 'EnrollmentID', 'UDID', 'Topic']) {
      const v = plistString(body, k);
      if (v !== undefined) what.push(`${k}=${v}`);
    }
    const fwd = ['x-managed-apple-id', 'x-enrollment-mode', 'x-enrollbridge-authenticated']
      .filter((h) => req.headers[h]).map((h) => `${h}=${req.headers[h]}`);
    process.stdout.write(`${new Date().toISOString()} fake-mdm: ${req.method} ${req.url} `
      + `${ct || '-'} ${size} bytes ${what.join(' ')} ${fwd.join(' ')}\n`);
    if (req.method === 'PUT' && ct === 'application/x-apple-aspen-mdm-checkin') {
      res.writeHead(200, { 'content-length': 0 }).end();
    } else if (req.method === 'PUT' && ct === 'application/x-apple-aspen-mdm') {
      res.writeHead(200, { 'content-type': 'application/xml' }).end(EMPTY_PLIST);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('fake MDM: check-in and command PUTs only\n');
    }
  });
});
server.listen(port, host, () => process.stdout.write(`fake-mdm: listening on http://${host}:${port}\n`));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
