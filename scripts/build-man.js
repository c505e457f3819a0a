#!/usr/bin/env node
/**
 * Builds the man pages: man/<name>.<section>.md (ronn-style markdown) into
 * man/<name>.<section> (roff) with the installed marked-man.
 *
 *   node scripts/build-man.js                 write the pages next to their sources
 *   node scripts/build-man.js --out-dir DIR   write them into DIR instead (used by
 *                                             test/docs/man.test.ts to check that the
 *                                             committed pages are up to date)
 *
 * The output depends only on the sources: the date in the page header is the
 * constant below (bump it when the pages change for a release), the version is
 * package.json's, and marked is kept from reading a personal ~/.marked.json.
 */
import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

/** The date shown in the page headers (marked-man prints month and year). */
const MAN_DATE = '2026-11-25'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const manDir = join(root, 'man')

function parseArgs(argv) {
  let outDir = manDir
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out-dir' && argv[i + 1] !== undefined) {
      outDir = resolve(argv[++i])
    } else {
      process.stderr.write(`build-man: unexpected argument ${argv[i]}\nusage: node scripts/build-man.js [--out-dir DIR]\n`)
      process.exit(2)
    }
  }
  return {outDir}
}

function main() {
  const {outDir} = parseArgs(process.argv.slice(2))
  const {version} = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  const markedMan = realpathSync(join(root, 'node_modules', '.bin', 'marked-man'))
  const sources = readdirSync(manDir)
    .filter((f) => /^[\w.-]+\.\d\.md$/.test(f))
    .sort()
  if (sources.length === 0) throw new Error(`no man page sources (*.<section>.md) in ${manDir}`)
  mkdirSync(outDir, {recursive: true})
  // An empty HOME: marked's CLI otherwise loads ~/.marked.json or ~/.marked.js.
  const home = mkdtempSync(join(tmpdir(), 'rcguard-man-'))
  try {
    for (const source of sources) {
      const page = source.slice(0, -'.md'.length)
      const section = page.slice(page.lastIndexOf('.') + 1)
      const output = join(outDir, page)
      execFileSync(
        process.execPath,
        [
          markedMan,
          '--no-breaks',
          '--section', section,
          '--date', MAN_DATE,
          '--version', version,
          '-i', join(manDir, source),
          '-o', output,
        ],
        {cwd: root, env: {...process.env, HOME: home, SOURCE_DATE_EPOCH: ''}, stdio: ['ignore', 'inherit', 'inherit']},
      )
      process.stdout.write(`${join('man', source)} -> ${output}\n`)
    }
  } finally {
    rmSync(home, {recursive: true, force: true})
  }
}

main()
