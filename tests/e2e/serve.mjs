// Serves the built page (dist/) on a free local port for the browser tests, and the Chromium flags they share.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';

export const DIST = process.env.DIST_DIR ?? path.resolve(import.meta.dirname, '../../dist');
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css', '.bin': 'application/octet-stream' };

export const BASE_ARGS = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-default-browser-check'];

/**
 * Serves dist/ as a plain static host would: at the root, or under a sub-path (`prefix`, e.g.
 * '/backdoor-lab/', as a GitHub project site or a course site's folder), where anything outside the
 * prefix is 404 and the bare folder name redirects to the folder.
 */
export async function serveDist({ prefix = '/', host = '127.0.0.1' } = {}) {
  assert.ok(fs.existsSync(path.join(DIST, 'index.html')), `no built page in ${DIST}: run trunk build first`);
  const server = http.createServer((req, res) => {
    let url;
    try { url = new URL(req.url, 'http://x'); } catch { res.writeHead(400); res.end(); return; }
    if (prefix !== '/' && url.pathname === prefix.slice(0, -1)) { res.writeHead(301, { location: prefix }); res.end(); return; }
    if (!url.pathname.startsWith(prefix)) { res.writeHead(404); res.end(); return; }
    const rel = '/' + url.pathname.slice(prefix.length);
    let file;
    try { file = path.join(DIST, decodeURIComponent(rel === '/' ? '/index.html' : rel)); } catch { res.writeHead(400); res.end(); return; }
    if (!file.startsWith(DIST) || !fs.existsSync(file) || !fs.statSync(file).isFile()) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'max-age=3600' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((ok) => server.listen(0, host, ok));
  return { server, origin: `http://${host}:${server.address().port}` };
}

/** Serves one HTML page (and 404 for anything else) on its own port: another site's page. */
export async function servePage(html, host = '127.0.0.1') {
  const server = http.createServer((req, res) => {
    if (req.url !== '/' && !req.url.startsWith('/?')) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(html);
  });
  await new Promise((ok) => server.listen(0, host, ok));
  return { server, origin: `http://${host}:${server.address().port}` };
}
