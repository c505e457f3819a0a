/**
 * The systemd unit shipped for `rcguard watch` (examples/): a simple service
 * that runs `rcguard watch` with the sbin directories on PATH and stops it
 * with SIGTERM; where systemd-analyze is installed, it finds nothing wrong
 * with it beyond the man pages not being installed on this machine.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {execa} from 'execa'
import {ROOT} from '../helpers/env.js'

const UNIT = join(ROOT, 'examples', 'rcguard-watch.service')

function keys(text: string): Map<string, string> {
  const out = new Map<string, string>()
  let section = ''
  for (const line of text.split('\n')) {
    const head = /^\[(\w+)\]$/.exec(line)
    if (head) section = head[1] ?? ''
    const kv = /^(\w+)=(.*)$/.exec(line)
    if (kv) out.set(`${section}.${kv[1]}`, kv[2] ?? '')
  }
  return out
}

test('examples/rcguard-watch.service runs rcguard watch as a simple service, stopped by SIGTERM, with the firewall tools on PATH', () => {
  const k = keys(readFileSync(UNIT, 'utf8'))
  assert.equal(k.get('Service.Type'), 'simple')
  assert.match(k.get('Service.ExecStart') ?? '', /^\/\S+ (\S+ )?rcguard watch$/)
  assert.equal(k.get('Service.KillSignal') ?? 'SIGTERM', 'SIGTERM')
  assert.match(k.get('Service.Environment') ?? '', /^PATH=(.*:)?\/usr\/sbin(:|$)/)
  assert.equal(k.get('Install.WantedBy'), 'multi-user.target')
})

test('systemd-analyze verify finds nothing wrong with the unit (when systemd is installed)', async (t) => {
  const which = await execa('sh', ['-c', 'command -v systemd-analyze'], {reject: false})
  if (which.exitCode !== 0) {
    // Visible in the test report: on a machine without systemd only the static checks above ran.
    t.skip('systemd-analyze is not installed')
    return
  }
  const r = await execa('systemd-analyze', ['verify', UNIT], {reject: false})
  const problems = `${String(r.stdout)}\n${String(r.stderr)}`
    .split('\n')
    .filter((l) => l.trim() !== '' && !/Command 'man [^']+' failed/.test(l))
  assert.deepEqual(problems, [])
})
