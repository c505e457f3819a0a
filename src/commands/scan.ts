import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {scan, scanFile, type ScanResult} from '../core/run/pipeline.js'
import {UsageError} from '../core/errors.js'
import type {LogConfig} from '../core/config/config.js'
import {ENVELOPE_IDS} from '../core/parser/envelopes.js'
import type {SourcedEvent} from '../core/decisions/decide.js'
import {accountJson, accountLine, blockLine, replaySummary, scanReport, time, until} from '../ui/format.js'
import {ruleText} from '../core/decisions/windows.js'
import {progressBar} from '../ui/progress.js'
import {blockJson, JsonEventStream, type BlockJson, type EventJson} from '../ui/json-stream.js'

export interface ScanJson {
  events: EventJson[]
  newlyBlocked: BlockJson[]
  /** With --replay: every block on the file's timeline. */
  replay?: {ip: string; instance: string; at: string; until: string | null; rule: string}[]
  /** Accounts reported under attack (accountAlert); with --replay, every report on the file's timeline. */
  accountAlerts: ReturnType<typeof accountJson>[]
  stats: ScanResult['stats']
  files: ScanResult['files']
  warnings: string[]
}

export default class Scan extends BaseCommand<typeof Scan> {
  static override summary = 'Read new log lines into the database; no firewall change.'
  static override description =
    'Reads what the configured logs gained since the last run and updates the database. With --dry-run --log FILE it reads FILE from its start and changes nothing, to test what rcguard recognises in a log (like fail2ban-regex).'
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> scan',
    '<%= config.bin %> scan --dry-run --log /var/log/roundcube/errors.log --verbose',
    '<%= config.bin %> scan --dry-run --log errors.log --json',
    '<%= config.bin %> scan --dry-run --replay --log /var/log/roundcube/userlogins.log',
  ]
  static override flags = {
    'dry-run': Flags.boolean({summary: 'Change nothing: neither the database nor the saved log positions.', default: false}),
    log: Flags.string({summary: 'With --dry-run: read this file from its start instead of the configured logs.'}),
    instance: Flags.string({summary: 'With --log: the instance the file belongs to (default: the first configured).'}),
    format: Flags.string({
      summary: 'With --log: the log format (default: detected from the lines).',
      options: ['auto', ...ENVELOPE_IDS],
    }),
    quiet: Flags.boolean({char: 'q', summary: 'No progress bar and no report; errors and warnings still show.', default: false}),
    replay: Flags.boolean({
      summary: 'With --log: run the decisions over the file\'s own timeline and report every block that would have happened.',
      default: false,
    }),
  }

  async run(): Promise<undefined> {
    const {verbose, log, instance, replay, format} = this.flags
    const dryRun = this.flags['dry-run']
    if (log !== undefined && !dryRun) throw new UsageError('--log reads a file for testing and needs --dry-run')
    for (const [flag, given] of [['--instance', instance], ['--format', format], ['--replay', replay || undefined]] as const) {
      if (given !== undefined && log === undefined) throw new UsageError(`${flag} goes with --log`)
    }
    const ctx = await this.loadContext({keepText: verbose})
    // --json streams one event at a time: a log of any size is reported in flat memory.
    const stream = this.jsonEnabled() ? new JsonEventStream(process.stdout) : undefined
    const onEvent = stream === undefined ? undefined : (e: SourcedEvent) => stream.event(e)
    const progress = await progressBar(stream === undefined && !this.flags.quiet)
    const fileResult =
      log === undefined
        ? undefined
        : await scanFile(ctx, log, {
            instance: instance ?? ctx.config.instances[0]?.name ?? 'master',
            format: format as LogConfig['format'] | undefined,
            replay,
            collect: verbose,
            onEvent,
            before: () => stream?.open(),
            progress,
          })
    const result = fileResult ?? (await scan(ctx, {dryRun, collect: verbose, onEvent, before: () => stream?.open(), progress}))
    for (const w of result.warnings) this.warning(w)
    const summary: Omit<ScanJson, 'events'> = {
      newlyBlocked: result.newlyBlocked.map(blockJson),
      ...(replay && fileResult !== undefined
        ? {
            replay: fileResult.replayBlocks.map((b) => ({
              ip: b.ip,
              instance: b.instance,
              at: new Date(b.at).toISOString(),
              until: b.until === null ? null : new Date(b.until).toISOString(),
              rule: b.rule,
            })),
          }
        : {}),
      accountAlerts: result.accountAlerts.map(accountJson),
      stats: result.stats,
      files: result.files,
      warnings: result.warnings,
    }
    if (stream !== undefined) {
      stream.close(summary)
      return undefined
    }
    if (this.flags.quiet) return undefined
    if (verbose) {
      for (const line of scanReport(result)) this.log(line)
    }
    const period = ctx.config.accountAlert?.periodMinutes ?? 0
    if (fileResult === undefined) {
      for (const b of result.newlyBlocked) this.log(blockLine(b))
      for (const a of result.accountAlerts) this.log(accountLine(a, period))
    } else if (replay) {
      for (const a of result.accountAlerts) this.log(`would report at ${time(a.at)}: ${accountLine(a, period)}`)
      for (const b of fileResult.replayBlocks) {
        this.log(`would block ${b.ip} on ${b.instance} at ${time(b.at)} ${until({blockedUntil: b.until})} by ${ruleText(b.rule)}`)
      }
      for (const line of replaySummary(fileResult.replayBlocks, ctx.config)) this.log(line)
    }
    if (log !== undefined || verbose) {
      const {stats} = result
      const twins = stats.duplicates > 0 ? ` (${stats.duplicates} twin line(s) of an attempt already counted)` : ''
      this.log(`${stats.failures} failed-login line(s) recognised, ${stats.counted} counted against an address${twins}, from ${stats.addresses} address(es)`)
    }
    return undefined
  }
}
