/**
 * The metrics textfile (`metrics.textfile`): what each `hacks` run and each
 * `watch` cycle leave for node_exporter's textfile collector, in the
 * Prometheus text format (exposition.ts), replaced atomically.
 *
 * - **Counters survive runs.** They are kept in the database (`metrics`,
 *   store/schema.ts) and saved with the run's own write, which happens before
 *   the firewall is applied. What a run counts after that write (a drift
 *   repair, a firewall or notification failure) is in the textfile only; the
 *   next run takes every counter as the larger of the database's and the last
 *   file's (`fold`), so nothing is lost between writes, a run that changes
 *   nothing need not rewrite the database, and a counter never goes down when
 *   the database is replaced by an older copy.
 * - **A failed run still writes the file**: its error counted under its
 *   stage, the last success time kept as it was.
 * - **Bounded series**: one per configured instance and fixed label value
 *   (never an address or a user name); series of instances no longer
 *   configured are dropped.
 * - **Never fails the run**: a file that cannot be written is one warning.
 */
import {performance} from 'node:perf_hooks'
import {ConfigError, errorMessage, FirewallError, RcguardError, StoreError} from '../errors.js'
import type {Config} from '../config/config.js'
import type {Decision} from '../decisions/decide.js'
import {isBlockActive} from '../decisions/decide.js'
import type {StoreData} from '../store/schema.js'
import {atomicWrite, readOwnFile} from '../store/safe-files.js'
import {parseSamples, render, seriesKey, type Family} from './exposition.js'

/** The stages an error is counted under (rcguard_errors_total{stage}). */
export const ERROR_STAGES = ['config', 'store', 'log', 'firewall', 'notify', 'cluster', 'other'] as const
export type ErrorStage = (typeof ERROR_STAGES)[number]

/** The rule kinds a block is counted under (rcguard_blocks_total{reason}): decisions/windows.ts RULE_PATTERN without its numbers. */
export const BLOCK_REASONS = ['failures', 'users', 'network', 'account', 'hand'] as const
export type BlockReason = (typeof BLOCK_REASONS)[number]

export const FAMILIES = ['ipv4', 'ipv6'] as const

const M = {
  lastSuccess: 'rcguard_last_run_success_timestamp_seconds',
  duration: 'rcguard_last_run_duration_seconds',
  lines: 'rcguard_log_lines_read_total',
  failures: 'rcguard_login_failures_total',
  blocks: 'rcguard_blocks_total',
  active: 'rcguard_active_blocks',
  apply: 'rcguard_firewall_apply_duration_seconds',
  repairs: 'rcguard_firewall_drift_repairs_total',
  errors: 'rcguard_errors_total',
} as const

/** A block's reason: the kind of the rule that made it (`failures:6/10` → failures); no rule: the first rule. */
export function reasonOf(rule: string | undefined): BlockReason {
  const kind = rule?.split(':')[0]
  return (BLOCK_REASONS as readonly string[]).includes(kind ?? '') ? (kind as BlockReason) : 'failures'
}

/**
 * Whether a failed login counted against an address (counted="true"): the
 * decider added it to an entry (`counted`, `blocked`, `already-blocked`).
 * counted="false": `ignored` (no address, or the parser does not count it:
 * a countErrors code not listed, a doubtful line, history before the window
 * on a first read), `duplicate` (the same attempt's twin line in the other
 * log) and `never-block` (whitelist, trusted proxy, this host).
 */
export function countedFailure(d: Decision): boolean {
  return d.action === 'counted' || d.action === 'blocked' || d.action === 'already-blocked'
}

/** What one read of the logs adds to the counters, per instance. */
export interface RunTally {
  lines: Map<string, number>
  failures: Map<string, {counted: number; ignored: number}>
  blocks: Map<string, Map<BlockReason, number>>
  errors: Map<ErrorStage, number>
}

export function newTally(): RunTally {
  return {lines: new Map(), failures: new Map(), blocks: new Map(), errors: new Map()}
}

function bump<K>(map: Map<K, number>, key: K, n = 1): void {
  map.set(key, (map.get(key) ?? 0) + n)
}

/** A login event's decision: a failure is counted, counted="true" or "false" (countedFailure). */
export function tallyDecision(tally: RunTally, d: Decision): void {
  if (d.event.outcome !== 'failure') return
  let f = tally.failures.get(d.event.instance)
  if (f === undefined) tally.failures.set(d.event.instance, (f = {counted: 0, ignored: 0}))
  if (countedFailure(d)) f.counted++
  else f.ignored++
}

/** A block this run made (a decision `blocked`, of the windows or of the rules beside them). */
export function tallyBlock(tally: RunTally, d: Decision): void {
  if (d.action !== 'blocked') return
  let b = tally.blocks.get(d.event.instance)
  if (b === undefined) tally.blocks.set(d.event.instance, (b = new Map()))
  bump(b, reasonOf(d.rule))
}

export function tallyLines(tally: RunTally, instance: string, lines: number): void {
  bump(tally.lines, instance, lines)
}

export function tallyError(tally: RunTally, stage: ErrorStage, n = 1): void {
  if (n > 0) bump(tally.errors, stage, n)
}

/** The stage an error that failed a run belongs to. */
export function stageOf(err: unknown): ErrorStage {
  if (err instanceof StoreError) return 'store'
  if (err instanceof FirewallError) return 'firewall'
  if (err instanceof ConfigError) return 'config'
  return 'other'
}

const instanceKey = (name: string, instance: string, more: [string, string][] = []): string => seriesKey(name, [['instance', instance], ...more])

/** Every counter series the configuration has, each key once, in the file's order (pre-initialised to 0). */
export function counterKeys(config: Config): string[] {
  const names = config.instances.map((i) => i.name)
  return [
    ...names.map((i) => instanceKey(M.lines, i)),
    ...names.flatMap((i) => ['true', 'false'].map((c) => instanceKey(M.failures, i, [['counted', c]]))),
    ...names.flatMap((i) => BLOCK_REASONS.map((r) => instanceKey(M.blocks, i, [['reason', r]]))),
    M.repairs,
    ...ERROR_STAGES.map((s) => seriesKey(M.errors, [['stage', s]])),
  ]
}

/** The counters: for each series of the configuration, the larger of the stored value and the last file's. */
export function fold(config: Config, stored: Record<string, number> | undefined, floor: Map<string, number>): Record<string, number> {
  const series: Record<string, number> = {}
  for (const key of counterKeys(config)) series[key] = Math.max(stored?.[key] ?? 0, Math.floor(floor.get(key) ?? 0))
  return series
}

/** Adds a tally to the counters (instances not configured are passed over). */
export function addTally(series: Record<string, number>, tally: RunTally): void {
  const add = (key: string, n: number): void => {
    if (n > 0 && key in series) series[key] = (series[key] ?? 0) + n
  }
  for (const [i, n] of tally.lines) add(instanceKey(M.lines, i), n)
  for (const [i, f] of tally.failures) {
    add(instanceKey(M.failures, i, [['counted', 'true']]), f.counted)
    add(instanceKey(M.failures, i, [['counted', 'false']]), f.ignored)
  }
  for (const [i, b] of tally.blocks) for (const [r, n] of b) add(instanceKey(M.blocks, i, [['reason', r]]), n)
  for (const [s, n] of tally.errors) add(seriesKey(M.errors, [['stage', s]]), n)
}

export function addDriftRepair(series: Record<string, number>): void {
  series[M.repairs] = (series[M.repairs] ?? 0) + 1
}

/** The blocks in force now, per configured instance and address family. */
export function activeBlocks(config: Config, data: StoreData, now: number): Map<string, number> {
  const active = new Map<string, number>()
  for (const i of config.instances) for (const f of FAMILIES) active.set(instanceKey(M.active, i.name, [['family', f]]), 0)
  for (const e of data.entries) {
    if (!isBlockActive(e, now)) continue
    const key = instanceKey(M.active, e.instance, [['family', e.ip.includes(':') ? 'ipv6' : 'ipv4']])
    if (active.has(key)) active.set(key, (active.get(key) ?? 0) + 1)
  }
  return active
}

export interface Snapshot {
  series: Record<string, number>
  /** Epoch ms of the last successful run; undefined: none yet (written as 0). */
  lastSuccess: number | undefined
  /** Seconds. */
  runDuration: number
  /** Seconds; undefined: never applied (written as 0). */
  applyDuration: number | undefined
  active: Map<string, number>
}

const seconds = (ms: number): number => Math.round(ms) / 1000

/** The textfile's families: HELP and TYPE lines, every series of the configuration. */
export function families(config: Config, s: Snapshot): Family[] {
  const counters = (name: string): Family['samples'] =>
    counterKeys(config)
      .filter((k) => k === name || k.startsWith(`${name}{`))
      .map((k) => ({labels: labelsOf(k), value: s.series[k] ?? 0}))
  return [
    {name: M.lastSuccess, type: 'gauge', help: 'When the last rcguard run that succeeded ended (Unix time); 0: none yet.', samples: [{labels: [], value: s.lastSuccess === undefined ? 0 : seconds(s.lastSuccess)}]},
    {name: M.duration, type: 'gauge', help: 'How long the last rcguard run took, failed or not.', samples: [{labels: [], value: Math.round(s.runDuration * 1000) / 1000}]},
    {name: M.lines, type: 'counter', help: 'Log lines read, per instance.', samples: counters(M.lines)},
    {name: M.failures, type: 'counter', help: 'Failed logins read, per instance; counted="true": counted against an address, "false": ignored, a duplicate or never blocked.', samples: counters(M.failures)},
    {name: M.blocks, type: 'counter', help: 'Blocks made, per instance and the kind of rule that made them.', samples: counters(M.blocks)},
    {name: M.active, type: 'gauge', help: 'Blocks in force, per instance and address family.', samples: [...s.active].map(([k, v]) => ({labels: labelsOf(k), value: v}))},
    {name: M.apply, type: 'gauge', help: 'How long the last firewall apply took; 0: none yet.', samples: [{labels: [], value: Math.round((s.applyDuration ?? 0) * 1000) / 1000}]},
    {name: M.repairs, type: 'counter', help: 'Runs that found the firewall rules changed behind rcguard and put them right.', samples: counters(M.repairs)},
    {name: M.errors, type: 'counter', help: 'Errors, per stage of the run.', samples: counters(M.errors)},
  ]
}

/** The labels of a key rcguard made (values unescaped). */
function labelsOf(key: string): [string, string][] {
  const open = key.indexOf('{')
  if (open === -1) return []
  const out: [string, string][] = []
  const re = /([a-z_]+)="((?:[^"\\]|\\.)*)"/g
  for (const m of key.slice(open + 1, -1).matchAll(re)) {
    out.push([m[1] as string, (m[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))])
  }
  return out
}

export function renderSnapshot(config: Config, s: Snapshot): string {
  return render(families(config, s))
}

/** The samples of the textfile as the last run left it: empty when there is none or it cannot be read. */
export async function readTextfile(path: string): Promise<Map<string, number>> {
  try {
    const bytes = await readOwnFile(path)
    return bytes === null || bytes.length > 4 << 20 ? new Map() : parseSamples(bytes.toString('utf8'))
  } catch {
    return new Map()
  }
}

/**
 * One run's metrics, from its start to its textfile: null when there is no
 * textfile to write (none configured, or a dry run, which changes nothing).
 */
export class MetricsRun {
  private readonly started = performance.now()
  private floor: Map<string, number> | null = null
  private series: Record<string, number> | null = null
  private lastSuccess: number | undefined
  private applyDuration: number | undefined
  private active: Map<string, number> | null = null
  private readonly late = newTally()
  private written = false

  private constructor(
    private readonly config: Config,
    readonly path: string,
    private readonly now: () => number,
  ) {}

  static start(config: Config, now: () => number, dryRun: boolean): MetricsRun | null {
    const path = config.metrics?.textfile
    return path === undefined || dryRun ? null : new MetricsRun(config, path, now)
  }

  private async load(): Promise<Map<string, number>> {
    this.floor ??= await readTextfile(this.path)
    return this.floor
  }

  /** Before the run's database write: the counters folded (see the module comment) and this read's tally added, into data. */
  async count(data: StoreData, tally: RunTally): Promise<void> {
    const floor = await this.load()
    const series = fold(this.config, data.metrics?.series, floor)
    addTally(series, tally)
    const fromFile = floor.get(M.lastSuccess)
    const last = Math.max(data.metrics?.lastSuccess ?? 0, fromFile === undefined ? 0 : Math.round(fromFile * 1000))
    this.lastSuccess = last > 0 ? last : undefined
    data.metrics = {series, ...(this.lastSuccess === undefined ? {} : {lastSuccess: this.lastSuccess})}
    // The file holds what the database holds, and what comes after the write.
    this.series = {...series}
  }

  /** After the write: the firewall applied in `ms` (repaired: it had drifted), the blocks in force. */
  applied(ms: number, repaired: boolean): void {
    this.applyDuration = ms / 1000
    if (repaired && this.series !== null) addDriftRepair(this.series)
  }

  blocksInForce(data: StoreData, now: number): void {
    this.active = activeBlocks(this.config, data, now)
  }

  /** An error of the run (counted after the database write, or for a run that failed). */
  error(stage: ErrorStage, n = 1): void {
    tallyError(this.late, stage, n)
  }

  get done(): boolean {
    return this.written
  }

  /**
   * Writes the textfile: `ok` advances the last success time. A run that
   * failed before it counted takes its counters from the last file. Returns
   * the one warning line of a file that could not be written, or null.
   */
  async write(ok: boolean): Promise<string | null> {
    this.written = true
    const floor = await this.load()
    const series = this.series ?? fold(this.config, undefined, floor)
    addTally(series, this.late)
    if (this.series === null) {
      const fromFile = floor.get(M.lastSuccess)
      this.lastSuccess = fromFile === undefined || fromFile === 0 ? undefined : Math.round(fromFile * 1000)
    }
    let active = this.active
    if (active === null) {
      // Not known (the database could not be read): as the last file told them.
      active = new Map()
      for (const i of this.config.instances) for (const f of FAMILIES) {
        const key = instanceKey(M.active, i.name, [['family', f]])
        active.set(key, floor.get(key) ?? 0)
      }
    }
    const applyDuration = this.applyDuration ?? floor.get(M.apply)
    const snapshot: Snapshot = {
      series,
      lastSuccess: ok ? this.now() : this.lastSuccess,
      runDuration: (performance.now() - this.started) / 1000,
      applyDuration,
      active,
    }
    try {
      await atomicWrite(this.path, renderSnapshot(this.config, snapshot), {mode: 0o644})
      return null
    } catch (err) {
      return `cannot write the metrics textfile ${this.path}: ${errorMessage(err)}; the run itself is not affected`
    }
  }
}

/** The stage of an error a run failed with, counted, and the file written; the error is the caller's to throw. */
export async function failedRun(run: MetricsRun | null, err: unknown): Promise<void> {
  if (run === null || run.done || !(err instanceof RcguardError)) return
  run.error(stageOf(err))
  await run.write(false)
}

/**
 * Blocks made by hand (`rcguard block`), counted in the database (reason
 * "hand"), folded as a run folds them: the next run's textfile shows them.
 */
export async function countHandBlocks(config: Config, data: StoreData, instances: string[]): Promise<void> {
  if (config.metrics === undefined || instances.length === 0) return
  const floor = await readTextfile(config.metrics.textfile)
  const series = fold(config, data.metrics?.series, floor)
  const tally = newTally()
  for (const i of instances) {
    let b = tally.blocks.get(i)
    if (b === undefined) tally.blocks.set(i, (b = new Map()))
    bump(b, 'hand')
  }
  addTally(series, tally)
  const fromFile = floor.get(M.lastSuccess)
  const last = Math.max(data.metrics?.lastSuccess ?? 0, fromFile === undefined ? 0 : Math.round(fromFile * 1000))
  data.metrics = {series, ...(last > 0 ? {lastSuccess: last} : {})}
}
