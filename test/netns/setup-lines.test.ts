/**
 * What `rcguard hacks` says when it changes the firewall without a block
 * made or ended (cron mails every such line to the admin): the rules set up
 * by the first run of a database, set up again after `rcguard flush` and
 * after `enabled` is switched back on — never "corrected … missing" as if
 * someone had removed them — and "corrected" with the difference only when
 * someone did. Against the real tools of each backend, each in a network
 * namespace of its own; the tool's own listing shows the rules there.
 * Skips without root (and fails under CI=true).
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {cli, netns, nowEnv, requireRoot, setup, type Setup} from '../helpers/env.js'

const BACKENDS = [
  {backend: 'nftables', list: ['nft', ['list', 'ruleset']], present: /table inet rcguard/, remove: ['nft', ['delete', 'table', 'inet', 'rcguard']]},
  // The namespace is fresh: INPUT's first rule is rcguard's jump.
  {backend: 'ipset', list: ['iptables-save', []], present: /-A INPUT .*rcguard/, remove: ['iptables', ['-w', '-D', 'INPUT', '1']]},
  {backend: 'iptables', list: ['iptables-save', []], present: /-A INPUT .*rcguard/, remove: ['iptables', ['-w', '-F', 'rcguard-master']]},
] as const

function configure(s: Setup, backend: string, enabled: boolean): void {
  writeFileSync(s.config, JSON.stringify({database: s.db, enabled, instances: [{name: 'master', logs: [s.log], ports: [443]}], firewall: {backend}}))
}

for (const b of BACKENDS) {
  test(`${b.backend}: the first run, the run after flush and the run after enabled is back say the rules were set up; a rule removed by someone is "corrected"`, async (t) => {
    if (!requireRoot(t)) return
    const ns = await netns(t)
    const s = setup(t)
    configure(s, b.backend, true)
    const hacks = async (): Promise<string> => {
      const r = await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(1)})
      assert.equal(r.exitCode, 0, `${r.stdout}${r.stderr}`)
      return r.stdout
    }
    const listing = async (): Promise<string> => (await ns.run(b.list[0], [...b.list[1]])).stdout

    const first = await hacks()
    assert.equal(first, `firewall rules set up (${b.backend}): the first run with this database`)
    assert.match(await listing(), b.present)
    // A run with nothing to change says nothing (cron mails nothing).
    assert.equal(await hacks(), '')

    const f = await cli(['flush', '--yes', '--config', s.config], {netns: ns.name})
    assert.equal(f.exitCode, 0, f.stderr)
    assert.doesNotMatch(await listing(), b.present)
    assert.equal(await hacks(), `firewall rules set up again (${b.backend}) after rcguard flush`)
    assert.match(await listing(), b.present)

    configure(s, b.backend, false)
    assert.match(await hacks(), /^rcguard is disabled \(enabled: false\): all its rules are removed$/m)
    assert.doesNotMatch(await listing(), b.present)
    assert.equal(await hacks(), '', 'disabled and already removed: nothing to say')
    configure(s, b.backend, true)
    assert.equal(await hacks(), `firewall rules set up again (${b.backend}): rcguard is enabled again`)
    assert.match(await listing(), b.present)

    // Someone else removed rcguard's rules: that is drift, and the line says what differed.
    const r = await ns.run(b.remove[0], [...b.remove[1]])
    assert.equal(r.exitCode, 0, r.stderr)
    assert.match(await hacks(), /^firewall rules corrected: .+/)
    assert.equal(await hacks(), '')
  })
}
