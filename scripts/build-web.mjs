#!/usr/bin/env node
// Builds the dashboard (web/) into build/web: one JS and one CSS bundle with
// content hashes (esbuild, from npm: its binary comes in @esbuild/linux-x64,
// no install script needed) and index.html pointing at them. No file is
// fetched at run time: everything the page loads is here.
// Usage: node scripts/build-web.mjs [--check]   (--check: type-check web/ first)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';

const repo = path.resolve(import.meta.dirname, '..');
const out = path.join(repo, 'build/web');
if (process.argv.includes('--check'))
  execFileSync(path.join(repo, 'node_modules/.bin/tsc'), ['-p', path.join(repo, 'web/tsconfig.json')], { stdio: 'inherit' });
fs.rmSync(out, { recursive: true, force: true });
const r = await esbuild.build({
  entryPoints: { app: path.join(repo, 'web/src/main.ts') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022'],
  outdir: path.join(out, 'assets'),
  entryNames: '[name]-[hash]',
  metafile: true,
  sourcemap: false,
  legalComments: 'linked',
  logLevel: 'warning',
});
const outs = Object.keys(r.metafile.outputs).map((f) => path.relative(path.join(out, 'assets'), path.resolve(repo, f)));
const js = outs.find((f) => f.endsWith('.js'));
const css = outs.find((f) => f.endsWith('.css'));
if (!js || !css) throw new Error(`build-web: expected a .js and a .css output, got ${outs.join(', ')}`);
const html = fs
  .readFileSync(path.join(repo, 'web/index.html'), 'utf8')
  .replace('%JS%', `/assets/${js}`)
  .replace('%CSS%', `/assets/${css}`);
fs.writeFileSync(path.join(out, 'index.html'), html);
const size = (f) => fs.statSync(path.join(out, 'assets', f)).size;
console.error(`[build-web] build/web: ${js} ${size(js)} B, ${css} ${size(css)} B`);
