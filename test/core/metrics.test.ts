/**
 * The metrics textfile's pieces (core/metrics): the exposition format and its
 * escaping, the way back from a file, the counters' fold, and the mapping of
 * decisions and rules to label values.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {escapeLabelValue, parseSamples, render, seriesKey, SERIES_KEY} from '../../src/core/metrics/exposition.js'
import {
  activeBlocks,
  addTally,
  countedFailure,
  counterKeys,
  fold,
  newTally,
  reasonOf,
  renderSnapshot,
  tallyBlock,
  tallyDecision,
  type Snapshot,
} from '../../src/core/metrics/metrics.js'
import {validateConfig, type Config} from '../../src/core/config/config.js'
import type {Decision, DecisionAction} from '../../src/core/decisions/decide.js'
import {emptyData} from '../../src/core/store/schema.js'
import {validateData} from '../../src/core/store/codec.js'
import {ConfigError} from '../../src/core/errors.js'

const config = (extra: Record<string, unknown> = {}): Config =>
  validateConfig({instances: [{name: 'master', logs: ['/x.log'], ports: [443]}], metrics: {textfile: '/m/rcguard.prom'}, ...extra}, 'test', '/')

test('label values escape backslash, double quote and line feed, and nothing else', () => {
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd')
  assert.equal(escapeLabelValue('plain-name_1 é'), 'plain-name_1 é')
  assert.equal(seriesKey('rcguard_x_total', [['instance', 'we"ird\\\n']]), 'rcguard_x_total{instance="we\\"ird\\\\\\n"}')
})

test('an instance name with a quote, a backslash and a line feed is written escaped (the renderer does not rely on the configuration refusing them)', () => {
  const c = config()
  // Past the configuration's own check: the renderer must still escape.
  c.instances[0]!.name = 'a"b\\c\nd'
  const snapshot: Snapshot = {series: fold(c, undefined, new Map()), lastSuccess: undefined, runDuration: 0.5, applyDuration: undefined, active: activeBlocks(c, emptyData(), 0)}
  const text = renderSnapshot(c, snapshot)
  assert.match(text, /^rcguard_log_lines_read_total\{instance="a\\"b\\\\c\\nd"\} 0$/m)
  // Every sample line is one line: the line feed in the name never splits it.
  for (const line of text.trimEnd().split('\n')) assert.match(line, /^(# (HELP|TYPE) rcguard_[a-z_]+ .+|rcguard_[a-z_]+(\{.*\})? [0-9.]+)$/, line)
  // And the way back reads the same keys.
  const back = parseSamples(text)
  assert.equal(back.get(seriesKey('rcguard_log_lines_read_total', [['instance', 'a"b\\c\nd']])), 0)
})

test('the configuration refuses instance names with characters a label value would have to escape', () => {
  for (const name of ['a"b', 'a\\b', 'a\nb', 'a b']) {
    assert.throws(() => config({instances: [{name, logs: ['/x.log'], ports: [443]}]}), ConfigError)
  }
})

test('metrics.textfile must end in .prom: one line naming the key', () => {
  assert.throws(
    () => config({metrics: {textfile: '/var/lib/node_exporter/rcguard.txt'}}),
    (err: Error) => err instanceof ConfigError && /metrics\.textfile: must name a file ending in \.prom/.test(err.message) && !err.message.includes('\n'),
  )
  assert.throws(() => config({metrics: {textfile: '/dir/.prom'}}), ConfigError)
  assert.throws(() => config({metrics: {textfile: '/a.prom', other: 1}}), /metrics: unknown key other/)
  assert.equal(config({metrics: {textfile: 'rel/rcguard.prom'}}).metrics?.textfile, '/rel/rcguard.prom')
  assert.equal(validateConfig({}, 'test', '/').metrics, undefined)
})

test('render: HELP and TYPE once per family, samples after, no timestamps, a final line feed', () => {
  const text = render([
    {name: 'rcguard_a_total', help: 'A back\\slash\nand a line.', type: 'counter', samples: [{labels: [['stage', 'x']], value: 3}]},
    {name: 'rcguard_b_seconds', help: 'B.', type: 'gauge', samples: [{labels: [], value: 0.25}]},
  ])
  assert.equal(
    text,
    '# HELP rcguard_a_total A back\\\\slash\\nand a line.\n# TYPE rcguard_a_total counter\nrcguard_a_total{stage="x"} 3\n# HELP rcguard_b_seconds B.\n# TYPE rcguard_b_seconds gauge\nrcguard_b_seconds 0.25\n',
  )
})

test('parseSamples keeps only rcguard series with finite non-negative values', () => {
  const back = parseSamples(
    [
      '# HELP rcguard_a_total x',
      'rcguard_a_total{stage="store"} 4',
      'rcguard_b 1e3',
      'other_metric 5',
      'rcguard_c_total -1',
      'rcguard_d_total NaN',
      'rcguard_e_total{instance="x"} +Inf',
      'garbage',
      'rcguard_f_total{instance="unterminated} 1',
    ].join('\n'),
  )
  assert.deepEqual([...back], [['rcguard_a_total{stage="store"}', 4], ['rcguard_b', 1000]])
})

test('every counter key of a configuration is one the store accepts', () => {
  const c = config({instances: [{name: 'master', logs: ['/x.log'], ports: [443]}, {name: 'web-2_b', logs: ['/y.log'], ports: [80]}]})
  const keys = counterKeys(c)
  assert.equal(new Set(keys).size, keys.length)
  for (const k of keys) assert.match(k, SERIES_KEY)
  const data = {...emptyData(), metrics: {series: Object.fromEntries(keys.map((k) => [k, 1])), lastSuccess: 1}}
  assert.equal(validateData(data).success, true)
  assert.equal(validateData({...emptyData(), metrics: {series: {'192.0.2.1': 1}}}).success, false)
  assert.equal(validateData({...emptyData(), metrics: {series: {rcguard_x_total: -1}}}).success, false)
  // An older database without the field loads.
  assert.equal(validateData(emptyData()).success, true)
})

test('fold: each counter is the larger of the stored and the file value; series of other instances are dropped', () => {
  const c = config()
  const lines = seriesKey('rcguard_log_lines_read_total', [['instance', 'master']])
  const gone = seriesKey('rcguard_log_lines_read_total', [['instance', 'old']])
  const store = seriesKey('rcguard_errors_total', [['stage', 'store']])
  const series = fold(c, {[lines]: 10, [store]: 0, [gone]: 5}, new Map([[lines, 7], [store, 2]]))
  assert.equal(series[lines], 10)
  assert.equal(series[store], 2)
  assert.equal(gone in series, false)
})

const decision = (action: DecisionAction, outcome: 'failure' | 'success' = 'failure', rule?: string): Decision =>
  ({action, why: '', event: {instance: 'master', outcome}, ...(rule === undefined ? {} : {rule})}) as unknown as Decision

test('failures: counted, blocked and already-blocked count against an address; ignored, duplicate and never-block do not; successes are no failures', () => {
  for (const a of ['counted', 'blocked', 'already-blocked'] as const) assert.equal(countedFailure(decision(a)), true, a)
  for (const a of ['ignored', 'duplicate', 'never-block'] as const) assert.equal(countedFailure(decision(a)), false, a)
  const t = newTally()
  for (const a of ['counted', 'blocked', 'already-blocked', 'ignored', 'duplicate', 'never-block'] as const) tallyDecision(t, decision(a))
  tallyDecision(t, decision('reset', 'success'))
  tallyDecision(t, decision('ignored', 'success'))
  assert.deepEqual(t.failures.get('master'), {counted: 3, ignored: 3})
})

test('blocks: the reason is the kind of the rule, never its numbers', () => {
  assert.equal(reasonOf('failures:6/10'), 'failures')
  assert.equal(reasonOf('users:5/60'), 'users')
  assert.equal(reasonOf('network:8/10'), 'network')
  assert.equal(reasonOf('account:10/30'), 'account')
  assert.equal(reasonOf('hand'), 'hand')
  assert.equal(reasonOf(undefined), 'failures')
  const c = config()
  const t = newTally()
  tallyBlock(t, decision('blocked', 'failure', 'users:5/60'))
  tallyBlock(t, decision('blocked', 'failure', 'network:8/10.5'))
  tallyBlock(t, decision('already-blocked', 'failure', 'users:5/60'))
  const series = fold(c, undefined, new Map())
  addTally(series, t)
  assert.equal(series[seriesKey('rcguard_blocks_total', [['instance', 'master'], ['reason', 'users']])], 1)
  assert.equal(series[seriesKey('rcguard_blocks_total', [['instance', 'master'], ['reason', 'network']])], 1)
  assert.equal(Object.keys(series).some((k) => /[0-9]\//.test(k)), false)
})

test('active blocks: per instance and family, only blocks in force', () => {
  const c = config()
  const data = emptyData()
  const e = (ip: string, until: number | null, instance = 'master') => ({ip, instance, failures: [], attempts: 0, firstSeen: 0, lastSeen: 0, lastUser: '', blockedAt: 1, blockedUntil: until, blocks: 1, lastBlockEnd: null, users: [], comment: null})
  data.entries.push(e('192.0.2.1', null), e('192.0.2.2', 5), e('2001:db8::/64', 100), e('2001:db8:1::1', 100), e('192.0.2.3', null, 'gone'))
  const active = activeBlocks(c, data, 10)
  assert.deepEqual([...active], [
    ['rcguard_active_blocks{instance="master",family="ipv4"}', 1],
    ['rcguard_active_blocks{instance="master",family="ipv6"}', 2],
  ])
})
