// Builds the pages into dist/ (or the directory given as the first
// argument): one bundle per page, the shared style sheet and the HTML.
// The output is committed, so `cstalk serve` needs no npm at run time.
import * as esbuild from 'esbuild';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] || join(here, 'dist');
const pages = ['console', 'customer', 'admin', 'guide'];

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });
await esbuild.build({
  entryPoints: [
    ...pages.map((p) => join(here, 'src', `${p}.js`)),
    join(here, 'src', 'style.css'),
  ],
  outdir: join(out, 'assets'),
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome100', 'safari15', 'firefox100'],
  // sockjs-client was written for browserify and reads `global`.
  define: { global: 'globalThis' },
  legalComments: 'eof',
  logLevel: 'warning',
});
for (const p of pages) cpSync(join(here, 'src', `${p}.html`), join(out, `${p}.html`));
// SockJS's iframe transports load sockjs-client into an iframe from this
// host (/assets/sockjs.min.js), never from a CDN.
cpSync(join(here, 'node_modules', 'sockjs-client', 'dist', 'sockjs.min.js'), join(out, 'assets', 'sockjs.min.js'));
