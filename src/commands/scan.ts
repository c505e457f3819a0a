import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {scan, scanFile, type ScanResult} from '../core/guard.js'
import {UsageError} from '../core/errors.js'
import {blockLine, scanReport} from '../ui/format.js'

export interface ScanJson {
  events: {
    line: number
    time: string
    ip: string | null
    user: string
    grammar: string
    counted: boolean
    reason: string
    file: string
    instance: string
  }[]
  newlyBlocked: ScanResult['newlyBlocked']
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
  ]
  static override flags = {
    'dry-run': Flags.boolean({summary: 'Change nothing: neither the database nor the saved log positions.', default: false}),
    log: Flags.string({summary: 'With --dry-run: read this file from its start instead of the configured logs.'}),
    instance: Flags.string({summary: 'With --log: the instance the file belongs to (default: the first configured).'}),
  }

  async run(): Promise<ScanJson> {
    const {verbose, log, instance} = this.flags
    const dryRun = this.flags['dry-run']
    if (log !== undefined && !dryRun) throw new UsageError('--log reads a file for testing and needs --dry-run')
    if (instance !== undefined && log === undefined) throw new UsageError('--instance goes with --log')
    const ctx = await this.loadContext({keepText: verbose})
    const result =
      log === undefined ? await scan(ctx, {dryRun}) : await scanFile(ctx, log, instance ?? ctx.config.instances[0]?.name ?? 'master')
    for (const w of result.warnings) this.warn(w)
    const failures = result.events.filter((e) => e.outcome === 'failure')
    if (verbose) {
      for (const line of scanReport(result)) this.log(line)
    }
    for (const b of result.newlyBlocked) this.log(`${dryRun ? 'would have ' : ''}${blockLine(b)}`)
    if (log !== undefined || verbose) {
      const counted = failures.filter((e) => e.counted).length
      const ips = new Set(failures.filter((e) => e.counted).map((e) => e.ip)).size
      this.log(`${failures.length} failed logins recognised, ${counted} counted, from ${ips} address(es)`)
    }
    return {
      events: failures.map((e) => ({
        line: e.lineNo,
        time: new Date(e.time).toISOString(),
        ip: e.ip,
        user: e.user,
        grammar: e.grammar,
        counted: e.counted,
        reason: e.reason,
        file: e.file,
        instance: e.instance,
      })),
      newlyBlocked: result.newlyBlocked,
      files: result.files,
      warnings: result.warnings,
    }
  }
}
