import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {watch} from '../core/run/watch.js'
import {blockLine, expiredLine, firewallChangeLine, heldLine, liftedLine} from '../ui/format.js'

export default class Watch extends BaseCommand<typeof Watch> {
  static override summary = 'Follow the logs and block within seconds: what hacks does, whenever a log grows (for systemd).'
  static override description =
    'Runs until SIGTERM or SIGINT. Whenever a configured log grows (inotify, and a look at every log each --interval), runs what hacks runs: scan, expire, regenerate the firewall rules. Holds the lock only while it works, so cron runs and admin commands go on beside it. Failures are reported and retried; it exits 0 when stopped.'
  static override examples = ['<%= config.bin %> watch', '<%= config.bin %> watch --verbose --interval 2']
  static override flags = {
    interval: Flags.integer({
      summary: 'Look at every log at least this often, in seconds (where inotify works it wakes sooner).',
      default: 1,
      min: 1,
      max: 60,
    }),
  }

  async run(): Promise<void> {
    const {verbose} = this.flags
    const ctx = await this.loadContext()
    const stop = new AbortController()
    const onSignal = (): void => stop.abort()
    process.once('SIGTERM', onSignal)
    process.once('SIGINT', onSignal)
    const logs = ctx.config.instances.reduce((n, i) => n + i.logs.length, 0)
    this.log(`rcguard watch: following ${logs} log(s) of ${ctx.config.instances.length} instance(s), database ${ctx.config.database}, firewall ${ctx.firewall.name}`)
    try {
      const summary = await watch(ctx, {
        signal: stop.signal,
        pollMs: this.flags.interval * 1000,
        onProblem: (line) => this.warning(line),
        onNote: verbose ? (line) => this.log(line) : undefined,
        onCycle: (result) => {
          for (const b of result.newlyBlocked) this.log(blockLine(b))
          for (const b of result.expired) this.log(expiredLine(b))
          for (const b of result.cluster?.adopted ?? []) this.log(heldLine(b))
          for (const b of result.cluster?.lifted ?? []) this.log(liftedLine(b))
          if (verbose) {
            for (const c of this.commandsRun.splice(0)) this.log(`ran: ${c}`)
            for (const d of result.firewall.drift) this.log(`drift: ${d}`)
          } else {
            this.commandsRun.length = 0
            const shared = (result.cluster?.adopted.length ?? 0) + (result.cluster?.lifted.length ?? 0)
            if (result.firewall.changed && result.newlyBlocked.length === 0 && result.expired.length === 0 && shared === 0) this.log(firewallChangeLine(result.firewall))
          }
        },
      })
      this.log(`rcguard watch: stopped after ${summary.cycles} cycle(s)${summary.failed > 0 ? `, ${summary.failed} failed` : ''}`)
    } finally {
      process.removeListener('SIGTERM', onSignal)
      process.removeListener('SIGINT', onSignal)
    }
  }
}
