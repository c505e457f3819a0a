import {createInterface} from 'node:readline/promises'
import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {ExitCode, RcguardError} from '../core/errors.js'
import {flush, flushInvalid, type FlushResult} from '../core/run/admin.js'
import {flushCluster} from '../core/run/cluster-admin.js'
import type {RepairResult} from '../core/admin/repair.js'
import type {InvalidRecord} from '../core/store/diagnose.js'

export default class Flush extends BaseCommand<typeof Flush> {
  static override summary = "Remove every firewall rule rcguard created and forget all offenders (the whitelist stays unless --all)."
  static override description =
    'Rules that rcguard did not create are never touched. Asks for confirmation on a terminal; scripts pass --yes. With --invalid, only the database records that fail validation are removed (listed first), the file as it was is kept beside it, and the firewall is brought in line with what is left.'
  static override enableJsonFlag = true
  static override flags = {
    yes: Flags.boolean({char: 'y', summary: 'Do not ask for confirmation.', default: false}),
    all: Flags.boolean({summary: 'Also empty the whitelist kept in the database.', default: false, exclusive: ['invalid']}),
    cluster: Flags.boolean({
      summary: "Also clear what the cluster shares in Redis (failures, blocks; the whitelist too with --all): every node drops the blocks it holds from before at its next run.",
      default: false,
      exclusive: ['invalid'],
    }),
    invalid: Flags.boolean({
      summary: 'Remove only the records that fail validation, keeping the rest and a copy of the file as it was; the firewall rules stay.',
      default: false,
    }),
  }
  static override examples = ['<%= config.bin %> flush --yes', '<%= config.bin %> flush --all --yes', '<%= config.bin %> flush --invalid']

  async run(): Promise<FlushResult | RepairResult | {cancelled: true}> {
    const ctx = await this.loadContext()
    if (this.flags.invalid) return this.removeInvalid(ctx)
    if (!this.flags.yes) {
      if (!process.stdin.isTTY) {
        throw new RcguardError('flush needs --yes when not run on a terminal', ExitCode.USAGE)
      }
      const rl = createInterface({input: process.stdin, output: process.stderr})
      const answer = await rl.question(
        `Remove all rcguard firewall rules and forget every offender${this.flags.all ? ' and the whitelist' : ''}${this.flags.cluster ? ', on every node of the cluster' : ''}? [y/N] `,
      )
      rl.close()
      if (!/^y(es)?$/i.test(answer.trim())) {
        this.log('nothing changed')
        return {cancelled: true}
      }
    }
    // The shared state first: when Redis cannot be reached nothing is changed, here either (exit status 8).
    const clusterKeys = this.flags.cluster ? await flushCluster(ctx.config, this.flags.all, ctx.now()) : null
    if (clusterKeys !== null) this.log(`cluster: removed ${clusterKeys} key${clusterKeys === 1 ? '' : 's'} from Redis; every node drops the blocks it holds from before at its next run`)
    const result = await flush(ctx, {all: this.flags.all})
    for (const line of result.firewall.kept ?? []) this.warning(line)
    this.log(
      `removed ${result.entriesRemoved} entr${result.entriesRemoved === 1 ? 'y' : 'ies'}${this.flags.all ? ` and ${result.whitelistRemoved} whitelist entr${result.whitelistRemoved === 1 ? 'y' : 'ies'}` : ''}; firewall ${result.firewall.changed ? 'rules removed' : 'had no rcguard rules'}`,
    )
    return result
  }

  /** `--invalid`: list the records at fault, ask (or take --yes), remove them. */
  private async removeInvalid(ctx: Awaited<ReturnType<Flush['loadContext']>>): Promise<RepairResult> {
    const confirm = async (records: InvalidRecord[]): Promise<boolean> => {
      for (const r of records) this.log(`invalid: ${r.where}: ${r.what}: ${r.problem}`)
      if (this.flags.yes) return true
      if (!process.stdin.isTTY) throw new RcguardError('flush --invalid needs --yes when not run on a terminal', ExitCode.USAGE)
      const rl = createInterface({input: process.stdin, output: process.stderr})
      const answer = await rl.question(`Remove ${records.length === 1 ? 'this record' : `these ${records.length} records`} and keep the rest? [y/N] `)
      rl.close()
      return /^y(es)?$/i.test(answer.trim())
    }
    const result = await flushInvalid(ctx, confirm)
    if (result.records.length === 0) this.log(`database ${ctx.store.location} has no invalid records: nothing to remove`)
    else if (!result.removed) this.log('nothing changed')
    else {
      const n = result.records.length
      this.log(`removed ${n} invalid record${n === 1 ? '' : 's'}; the database as it was is kept as ${result.kept ?? '?'}; firewall ${result.firewallChanged ? 'updated' : 'unchanged'}`)
    }
    return result
  }
}
