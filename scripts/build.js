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
import {readFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'dist.new')
rmSync(out, {recursive: true, force: true})

// oclif sorts the command list with String#localeCompare at every start, and
// the first localeCompare of a process builds an ICU collator: about 10 ms of a
// 0.25 s cron run. Command ids are lowercase ASCII words, for which plain
// code-unit order is the same order (test/cli/bundle.test.ts checks the ids).
// The build fails if oclif's line is not found (an upgrade changed it), so the
// substitution is never silently lost or applied to anything else.
const LOCALE_SORT = '.sort((a, b) => a.id.localeCompare(b.id))'
const PLAIN_SORT = '.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))'
const plainCommandSort = {
  name: 'oclif-plain-command-sort',
  setup(b) {
    b.onLoad({filter: /[\\/]@oclif[\\/]core[\\/]lib[\\/]config[\\/]plugin\.js$/}, async (args) => {
      const source = await readFile(args.path, 'utf8')
      const patched = source.replace(LOCALE_SORT, PLAIN_SORT)
      if (patched === source) throw new Error(`${args.path} no longer sorts commands with ${LOCALE_SORT}: review plainCommandSort in scripts/build.js`)
      return {contents: patched, loader: 'js'}
    })
  },
}

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
  plugins: [plainCommandSort],
  metafile: true,
  logLevel: 'warning',
  legalComments: 'eof',
  // Less text for V8 to read at every start (cli.js 675 -> 434 KiB): a no-op hacks about 30 ms faster
  // (bench/run.ts with BENCH_BASELINE_BIN set to the unminified build). Names are kept, so stack traces still read.
  minifyWhitespace: true,
  minifySyntax: true,
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
