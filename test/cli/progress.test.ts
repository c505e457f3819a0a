/**
 * The progress bar: drawn on stderr for a large read on a terminal, never in
 * a pipe (cron), never with --json or --quiet. `script` gives the command a
 * terminal.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {execa} from 'execa'
import {BIN, burst, cli, setup, T0} from '../helpers/env.js'

test('a progress bar on a terminal for a large read; none in a pipe, with --json or with --quiet', async (t) => {
  const s = setup(t)
  const big = join(s.dir, 'big.log')
  const lines = burst(T0, '203.0.113.5', 180_000, 1)
  writeFileSync(big, `${lines.join('\n')}\n`)
  const typescript = join(s.dir, 'typescript')
  const onTerminal = async (args: string[]) => {
    const command = ['node', BIN, ...args].map((a) => `'${a}'`).join(' ')
    await execa('script', ['-qec', command, typescript], {env: {NO_COLOR: '1'}, stdout: 'ignore', reject: false})
    return readFileSync(typescript, 'utf8')
  }
  const base = ['scan', '--dry-run', '--replay', '--log', big, '--config', s.config]
  assert.match(await onTerminal(base), /reading big\.log \[.*\] 100% \| \d+\/\d+ MB/)
  assert.doesNotMatch(await onTerminal([...base, '--quiet']), /reading big\.log/)
  assert.doesNotMatch(await onTerminal([...base, '--json']), /reading big\.log/)
  const piped = await cli(base)
  assert.doesNotMatch(piped.stderr, /reading/)
  assert.match(piped.stdout, /180000 failed-login line\(s\) recognised/)
})
