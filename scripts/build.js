#!/usr/bin/env node
// npm run build: bundles the CLI with esbuild into dist/ (type checking is
// tsc's, run before this by the build script).
//
// Why a bundle: the cron job starts every minute, and resolving and loading
// some 500 module files was most of a run that finds nothing new. Now a run
// loads dist/cli.js and the few chunks its work needs: code only some runs
// need (YAML, mail, the firewall tools' runner, globbing, the list output) is
// imported with import() in the sources, and esbuild's code splitting puts it
// in chunks of its own that are read only when a run gets there.
//
// dist/cli.js exports the commands for oclif's "explicit" command discovery
// (package.json oclif.commands) and oclif's run/flush/Errors for bin/run.js,
// so that the CLI and its commands share the one bundled copy of @oclif/core.
// dist/index.js is the core library (package.json main) for scripts.
//
// The build is written to dist.new and renamed to dist only when complete.
import {build} from 'esbuild'
import {renameSync, rmSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'dist.new')
rmSync(out, {recursive: true, force: true})

const result = await build({
  absWorkingDir: root,
  entryPoints: {cli: 'src/cli.ts', index: 'src/index.ts'},
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.17',
  chunkNames: 'chunks/[name]-[hash]',
  // CommonJS dependencies (oclif, nodemailer, ...) call require(): an ES module has none of its own.
  banner: {js: "import {createRequire as __rcguardCreateRequire} from 'node:module';\nconst require = __rcguardCreateRequire(import.meta.url);"},
  // oclif loads these only to run TypeScript sources in development (bin/dev.js), never from a built CLI.
  external: ['typescript', 'tsx', 'tsx/*', 'ts-node'],
  metafile: true,
  logLevel: 'warning',
  legalComments: 'eof',
})

// What each output file holds and imports: test/cli/bundle.test.ts reads it
// to check what a run's start loads. Not part of the package (see package.json files).
writeFileSync(join(out, 'meta.json'), `${JSON.stringify(result.metafile).replaceAll('"dist.new/', '"dist/')}\n`)

rmSync(join(root, 'dist'), {recursive: true, force: true})
renameSync(out, join(root, 'dist'))
const outputs = Object.entries(result.metafile.outputs).filter(([file]) => file.endsWith('.js'))
const kib = (n) => `${(n / 1024).toFixed(0)} KiB`
const entry = (name) => outputs.find(([file]) => file.endsWith(`dist.new/${name}.js`))?.[1].bytes ?? 0
console.log(`dist/: cli.js ${kib(entry('cli'))}, index.js ${kib(entry('index'))}, ${outputs.length - 2} chunks`)
