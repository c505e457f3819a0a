/**
 * The firewall's metrics against the real iptables in a network namespace:
 * the last apply's duration, and drift repairs counted only for rules changed
 * behind rcguard, never for the blocks a run makes or ends itself. Skips
 * without root (and fails under CI=true).
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
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

test('nftables: a firewall tool that fails counts errors_total{stage="firewall"} and keeps the last success time; the next run with the real tool advances it', async (t) => {
  if (!requireRoot(t)) return
  const ns = await netns(t)
  const s = setup(t)
  const prom = join(s.dir, 'rcguard.prom')
  oneLogConfig(s, {metrics: {textfile: prom}}, {backend: 'nftables'})
  // A fake nft first on PATH (the runner appends the sbin directories after PATH), failing as a kernel without nf_tables would.
  const bin = join(s.dir, 'fakebin')
  mkdirSync(bin)
  writeFileSync(join(bin, 'nft'), '#!/bin/sh\necho "nft (fake): Protocol not supported" >&2\nexit 1\n', {mode: 0o755})
  appendLines(s.log, burst(at(0), '203.0.113.7', 6))
  const failed = await cli(['hacks', '--config', s.config], {netns: ns.name, env: {...nowEnv(3), PATH: `${bin}:${process.env.PATH ?? ''}`}})
  assert.equal(failed.exitCode, 5, `${failed.stdout}${failed.stderr}`)
  let m = parseSamples(readFileSync(prom, 'utf8'))
  assert.equal(m.get('rcguard_errors_total{stage="firewall"}'), 1)
  assert.equal(m.get('rcguard_last_run_success_timestamp_seconds'), 0, 'a failed run is no success')
  assert.equal(m.get('rcguard_blocks_total{instance="master",reason="failures"}'), 1, 'the block was decided and saved all the same')
  const ok = await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(4)})
  assert.equal(ok.exitCode, 0, ok.stderr)
  m = parseSamples(readFileSync(prom, 'utf8'))
  assert.equal(m.get('rcguard_errors_total{stage="firewall"}'), 1, 'the error stays counted')
  assert.equal(m.get('rcguard_last_run_success_timestamp_seconds'), Date.parse(at(4).toISOString()) / 1000)
  assert.equal(m.get('rcguard_blocks_total{instance="master",reason="failures"}'), 1, 'the block is not counted twice')
  assert.match((await ns.run('nft', ['list', 'table', 'inet', 'rcguard'])).stdout, /203\.0\.113\.7/)
})
