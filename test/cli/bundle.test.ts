/**
 * The CLI is a bundle (scripts/build.js): bin/run.js loads dist/cli.js and the
 * chunks a run needs, never a source module or a dependency's own files, so
 * every CLI test (they all run bin/run.js) exercises the bundle. Code only
 * some runs need sits in chunks of its own, and a cron run that finds nothing
 * new loads none of it: not the YAML parser for a JSON configuration, not
 * mail, the external-command runner, globbing or the list table's colours.
 *
 * What a run loads is seen from outside the product: the child is started
 * with test/helpers/module-log.mjs preloaded, which logs every module file
 * loaded; which chunk holds which package is read from esbuild's metafile
 * (dist/meta.json).
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join, relative} from 'node:path'
import {pathToFileURL} from 'node:url'
import {execa} from 'execa'
import {appendLines, BIN, f2, ROOT, setup, T0, tempDir, type Setup} from '../helpers/env.js'

const DIST = join(ROOT, 'dist')
const MODULE_LOG = join(ROOT, 'test', 'helpers', 'module-log.mjs')

interface Metafile {
  inputs: Record<string, unknown>
  outputs: Record<string, {inputs: Record<string, unknown>}>
}

function metafile(): Metafile {
  return JSON.parse(readFileSync(join(DIST, 'meta.json'), 'utf8')) as Metafile
}

/** The output files (as file: URLs) holding code from node_modules/`what` (a package's directory, or one file of it). */
function chunksOf(what: string): string[] {
  const prefix = what.includes('.') ? `node_modules/${what}` : `node_modules/${what}/`
  const files = Object.entries(metafile().outputs)
    .filter(([, o]) => Object.keys(o.inputs).some((i) => i.startsWith(prefix)))
    .map(([file]) => pathToFileURL(join(ROOT, file)).href)
  assert.ok(files.length > 0, `no output of the build holds ${what}: the check would prove nothing`)
  return files
}

/** Runs bin/run.js with the module log; the files it loaded, as paths relative to the repository. */
async function loaded(t: {after: (fn: () => void) => void}, args: string[]): Promise<{modules: string[]; urls: string[]; stdout: string; exitCode: number}> {
  const log = join(tempDir(t), 'modules.log')
  writeFileSync(log, '')
  const r = await execa('node', ['--import', pathToFileURL(MODULE_LOG).href, BIN, ...args], {
    reject: false,
    env: {RCGUARD_TEST_MODULE_LOG: log, NO_COLOR: '1', COLUMNS: '160'},
    input: '',
  })
  assert.equal(r.stderr, '', `rcguard ${args.join(' ')} wrote to stderr`)
  const urls = readFileSync(log, 'utf8').split('\n').filter((l) => l !== '')
  const modules = urls.map((u) => relative(ROOT, new URL(u).pathname))
  return {modules, urls, stdout: String(r.stdout), exitCode: r.exitCode ?? -1}
}

/** Every file loaded is bin/run.js or part of the bundle in dist/: no source module, no file of node_modules. */
function onlyTheBundle(modules: string[]): void {
  const some = `${modules.slice(0, 12).join(', ')}${modules.length > 12 ? `, ... (${modules.length} files)` : ''}`
  assert.ok(modules.includes('bin/run.js') && modules.includes('dist/cli.js'), `bin/run.js and dist/cli.js not both loaded: ${some}`)
  const foreign = modules.filter((m) => m !== 'bin/run.js' && !/^dist\/(chunks\/)?[\w-]+\.js$/.test(m))
  assert.deepEqual(foreign.slice(0, 12), [], `${foreign.length} files loaded from outside the bundle`)
}

/** A configuration with a log already read to its end, so that the next hacks run finds nothing new. */
async function readOnce(t: {after: (fn: () => void) => void}, yamlExtra = ''): Promise<Setup> {
  const s = setup(t, {}, yamlExtra)
  appendLines(s.log, [f2(T0, '198.51.100.1')])
  const first = await execa('node', [BIN, 'hacks', '--config', s.config], {reject: false})
  assert.equal(first.exitCode, 0, first.stderr)
  return s
}

test('a hacks run that finds nothing new, with a JSON configuration, loads only the bundle: no YAML, mail, command runner, globbing or colours', async (t) => {
  const s = await readOnce(t)
  const run = await loaded(t, ['hacks', '--config', s.config])
  assert.equal(run.exitCode, 0)
  assert.equal(run.stdout, '')
  onlyTheBundle(run.modules)
  // oclif has a CommonJS copy of tinyglobby for itself: rcguard's is the ES module.
  for (const name of ['yaml', 'nodemailer', 'execa', 'tinyglobby/dist/index.mjs', 'chalk', 'cli-progress']) {
    const hit = chunksOf(name).filter((c) => run.urls.includes(c))
    assert.deepEqual(hit, [], `the run loaded the chunk holding ${name}`)
  }
})

test('the same run with a YAML configuration loads the YAML chunk, and still nothing outside the bundle', async (t) => {
  // A comment makes the file YAML that is no longer JSON.
  const s = await readOnce(t, '# maintained by hand\n')
  const run = await loaded(t, ['hacks', '--config', s.config])
  assert.equal(run.exitCode, 0)
  onlyTheBundle(run.modules)
  assert.ok(chunksOf('yaml').some((c) => run.urls.includes(c)), 'the YAML parser was not loaded for a YAML file')
  assert.ok(!chunksOf('nodemailer').some((c) => run.urls.includes(c)), 'nodemailer was loaded')
})

test('help comes from the bundle too: rcguard --help lists every command, rcguard help hacks shows its flags', async (t) => {
  const root = await loaded(t, ['--help'])
  assert.equal(root.exitCode, 0)
  onlyTheBundle(root.modules)
  for (const id of ['block', 'flush', 'hacks', 'help', 'list', 'scan', 'unblock', 'whitelist']) {
    assert.match(root.stdout, new RegExp(`^ {2}${id} +\\S`, 'm'), `rcguard --help does not list ${id}`)
  }
  const hacks = await loaded(t, ['help', 'hacks'])
  assert.equal(hacks.exitCode, 0)
  onlyTheBundle(hacks.modules)
  assert.match(hacks.stdout, /^ {2}\$ rcguard hacks \[--json\] \[-c <value>\] \[-v\] \[--dry-run\] \[-q\]$/m)
  assert.match(hacks.stdout, /^ {2}-c, --config=<value> +\[env: RCGUARD_CONFIG\]/m)
})

test('dist/ holds the bundle, not a module per source file, and the bundle holds every command', async () => {
  const files = readdirSync(DIST, {recursive: true, withFileTypes: true})
    .filter((d) => d.isFile())
    .map((d) => relative(DIST, join(d.parentPath, d.name)))
    .sort()
  const unexpected = files.filter((f) => !/^(cli\.js|index\.js|meta\.json|chunks\/[\w-]+\.js)$/.test(f))
  assert.deepEqual(unexpected, [], 'files in dist/ that are not the bundle')
  const inputs = Object.keys(metafile().inputs)
  for (const file of readdirSync(join(ROOT, 'src', 'commands'))) {
    assert.ok(inputs.includes(`src/commands/${file}`), `src/commands/${file} is not in the bundle`)
  }
})

test('src/cli.ts exports every command of src/commands (and help), and oclif.manifest.json lists the same', async () => {
  const {COMMANDS} = (await import('../../src/cli.js')) as {COMMANDS: Record<string, unknown>}
  const files = readdirSync(join(ROOT, 'src', 'commands')).map((f) => f.replace(/\.ts$/, ''))
  assert.deepEqual(Object.keys(COMMANDS).sort(), [...files, 'help'].sort())
  const manifest = JSON.parse(readFileSync(join(ROOT, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, unknown>}
  assert.deepEqual(Object.keys(manifest.commands).sort(), Object.keys(COMMANDS).sort())
  // The bundle sorts command ids by code unit, not with localeCompare (scripts/build.js): the same order for these ids.
  const ids = Object.keys(COMMANDS)
  assert.ok(ids.every((id) => /^[a-z][a-z0-9-]*$/.test(id)), `a command id that is not a lowercase ASCII word: ${ids.join(', ')}`)
  assert.deepEqual([...ids].sort(), [...ids].sort((a, b) => a.localeCompare(b)))
})

test('npm pack ships bin/, the bundle, man/ and examples/: no source, no source map, no metafile', async () => {
  const r = await execa('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {cwd: ROOT})
  const [pack] = JSON.parse(String(r.stdout)) as [{files: {path: string}[]}]
  const files = pack.files.map((f) => f.path)
  for (const f of ['bin/run.js', 'dist/cli.js', 'dist/index.js', 'man/rcguard.8', 'man/rcguard.yml.5', 'examples/rcguard.yml', 'oclif.manifest.json', 'package.json']) {
    assert.ok(files.includes(f), `${f} is not in the package`)
  }
  assert.ok(files.some((f) => /^dist\/chunks\/[\w-]+\.js$/.test(f)), 'no chunk of the bundle in the package')
  const unwanted = files.filter((f) => /^(src|test|bench|scripts)\//.test(f) || f.endsWith('.map') || f.endsWith('.ts') || f === 'dist/meta.json')
  assert.deepEqual(unwanted, [])
})
