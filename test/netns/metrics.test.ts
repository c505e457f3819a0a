/**
 * The firewall's metrics against the real iptables in a network namespace:
 * the last apply's duration, and drift repairs counted only for rules changed
 * behind rcguard, never for the blocks a run makes or ends itself. Skips
 * without root (and fails under CI=true).
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {appendLines, at, burst, cli, netns, nowEnv, oneLogConfig, requireRoot, setup} from '../helpers/env.js'
import {parseSamples} from '../../src/core/metrics/exposition.js'

const REPAIRS = 'rcguard_firewall_drift_repairs_total'
const APPLY = 'rcguard_firewall_apply_duration_seconds'

test('iptables: a rule removed behind rcguard is one drift repair; blocks made and ended by runs are none', async (t) => {
  if (!requireRoot(t)) return
  const ns = await netns(t)
  const s = setup(t)
  const prom = join(s.dir, 'rcguard.prom')
  oneLogConfig(s, {blockMinutes: 5, metrics: {textfile: prom}}, {backend: 'iptables'})
  const run = async (min: number): Promise<Map<string, number>> => {
    const r = await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(min)})
    assert.equal(r.exitCode, 0, r.stderr)
    return parseSamples(readFileSync(prom, 'utf8'))
  }
  // The first run makes the chains: rcguard had applied nothing before, no repair.
  let m = await run(0)
  assert.equal(m.get(REPAIRS), 0)
  assert.ok((m.get(APPLY) ?? 0) > 0, 'the apply took no time')
  // A block made by the run: a change, not a repair.
  appendLines(s.log, burst(at(0), '203.0.113.7', 6))
  m = await run(3)
  assert.equal(m.get(REPAIRS), 0)
  assert.equal(m.get('rcguard_active_blocks{instance="master",family="ipv4"}'), 1)
  // Someone flushes rcguard's chain: the next run puts the block back, one repair.
  const flushed = await ns.run('iptables', ['-F', 'rcguard-master'])
  assert.equal(flushed.exitCode, 0, flushed.stderr)
  m = await run(4)
  assert.equal(m.get(REPAIRS), 1)
  // Nothing changed: no repair.
  m = await run(5)
  assert.equal(m.get(REPAIRS), 1)
  // The block ends: a change the run makes, not a repair.
  m = await run(9)
  assert.equal(m.get(REPAIRS), 1)
  assert.equal(m.get('rcguard_active_blocks{instance="master",family="ipv4"}'), 0)
  const r = await ns.run('iptables-save', ['-t', 'filter'])
  assert.doesNotMatch(r.stdout, /203\.0\.113\.7/)
})
