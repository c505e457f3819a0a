import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {hacks, type HacksResult} from '../core/run/pipeline.js'
import {accountJson, accountLine, blockLine, firewallChangeLine, heldLine, liftedLine, scanReport, expiredLine} from '../ui/format.js'
import {progressBar} from '../ui/progress.js'
import {blockJson, eventJson, type BlockJson, type EventJson} from '../ui/json-stream.js'

export interface HacksJson {
  newlyBlocked: BlockJson[]
  expired: BlockJson[]
  /** Accounts reported under attack by this run (accountAlert). */
  accountAlerts: ReturnType<typeof accountJson>[]
  enabled: boolean
  firewall: HacksResult['firewall']
  stats: HacksResult['stats']
  files: HacksResult['files']
  warnings: string[]
  /** One line per notification sent. */
  notified: string[]
  /** With --verbose: every login line and the decision taken. */
  decisions?: (EventJson & {action: string; why: string})[]
  /** A cluster node: whether Redis was reached, the failures pushed, blocks of other nodes now held (with the node), blocks lifted on another node. */
  cluster?: {reached: boolean; pushed: number; held: (BlockJson & {node: string})[]; lifted: BlockJson[]}
}

function hacksJson(r: HacksResult): HacksJson {
  return {
    newlyBlocked: r.newlyBlocked.map(blockJson),
    expired: r.expired.map(blockJson),
    accountAlerts: r.accountAlerts.map(accountJson),
    enabled: r.enabled,
    firewall: {backend: r.firewall.backend, changed: r.firewall.changed, drift: r.firewall.drift, applied: r.firewall.applied, ...(r.firewall.cause === undefined ? {} : {cause: r.firewall.cause}), ...(r.firewall.rendered === undefined ? {} : {rendered: r.firewall.rendered})},
    stats: r.stats,
    files: r.files,
    warnings: r.warnings,
    notified: r.notified ?? [],
    ...(r.cluster === undefined ? {} : {cluster: {reached: r.cluster.reached, pushed: r.cluster.pushed, held: r.cluster.adopted.map((b) => ({...blockJson(b), node: b.node})), lifted: r.cluster.lifted.map(blockJson)}}),
    ...(r.events.length > 0 ? {decisions: r.decisions.map((d) => ({...eventJson(d.event), action: d.action, why: d.why}))} : {}),
  }
}

export default class Hacks extends BaseCommand<typeof Hacks> {
  static override summary = 'What cron runs: scan the logs, expire blocks, regenerate the firewall rules.'
  static override description =
    'Reads the new lines of every configured log, blocks addresses with too many failed logins, ends blocks whose time is over, and makes the firewall match the database. Prints nothing when nothing changed, so cron mails only news. Exits 75 quietly when another rcguard run holds the lock.'
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> hacks --verbose', '<%= config.bin %> hacks --dry-run --verbose --config examples/rcguard.yml']
  static override flags = {
    'dry-run': Flags.boolean({
      summary: 'Change nothing: no database write, no firewall command; print the rule set that would be applied.',
      default: false,
    }),
    quiet: Flags.boolean({char: 'q', summary: 'No progress bar and no report of blocks; errors and warnings still show.', default: false}),
  }

  protected override quietWhenBusy(): boolean {
    return true
  }

  async run(): Promise<HacksJson> {
    const {verbose} = this.flags
    const dryRun = this.flags['dry-run']
    const ctx = await this.loadContext({keepText: verbose})
    const result = await hacks(ctx, {dryRun, collect: verbose, progress: await progressBar(!this.jsonEnabled() && !this.flags.quiet)})
    for (const w of result.warnings) this.warning(w)
    if (verbose) {
      this.log(`configuration: ${ctx.loaded.path ?? 'built-in defaults'}; database: ${ctx.config.database}; firewall: ${result.firewall.backend}${ctx.config.firewall.backend === 'auto' ? ' (chosen by firewall.backend auto)' : ''}`)
      for (const line of scanReport(result)) this.log(line)
    }
    if (verbose) for (const n of result.notified ?? []) this.log(n)
    if (!this.flags.quiet) {
      for (const b of result.newlyBlocked) this.log(blockLine(b))
      for (const b of result.expired) this.log(expiredLine(b))
      for (const b of result.cluster?.adopted ?? []) this.log(heldLine(b))
      for (const b of result.cluster?.lifted ?? []) this.log(liftedLine(b))
      for (const a of result.accountAlerts) this.log(accountLine(a, ctx.config.accountAlert?.periodMinutes ?? 0))
    }
    if (result.firewallError !== undefined) throw result.firewallError
    if (this.flags.quiet) return hacksJson(result)
    if (!result.enabled && (verbose || result.firewall.changed)) this.log('rcguard is disabled (enabled: false): all its rules are removed')
    if (dryRun) {
      this.log(`rule set that would be applied (${result.firewall.backend}):`)
      this.log((result.firewall.rendered ?? '').trimEnd())
      return hacksJson(result)
    }
    if (verbose) {
      for (const d of result.firewall.drift) this.log(`drift: ${d}`)
      for (const c of this.commandsRun) this.log(`ran: ${c}`)
      for (const n of result.firewall.notes ?? []) this.log(`firewall: ${n}`)
      for (const a of result.firewall.applied) this.log(a.trimEnd())
      if (!result.firewall.changed && (result.firewall.warnings ?? []).length === 0) this.log('firewall already as wanted: nothing applied')
      else if (!result.firewall.changed) this.log("firewall rules as wanted, nothing applied, but rules of others let packets past rcguard's: the blocks do not hold (see the warnings)")
    } else if (result.firewall.changed && result.newlyBlocked.length === 0 && result.expired.length === 0 && (result.cluster?.adopted.length ?? 0) + (result.cluster?.lifted.length ?? 0) === 0) {
      this.log(firewallChangeLine(result.firewall))
    }
    return hacksJson(result)
  }
}
