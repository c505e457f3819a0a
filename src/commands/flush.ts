import {createInterface} from 'node:readline/promises'
import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {ExitCode, RcguardError} from '../core/errors.js'
import {flush, type FlushResult} from '../core/guard.js'

export default class Flush extends BaseCommand<typeof Flush> {
  static override summary = "Remove every firewall rule rcguard created and forget all offenders (the whitelist stays unless --all)."
  static override description = 'Rules that rcguard did not create are never touched. Asks for confirmation on a terminal; scripts pass --yes.'
  static override enableJsonFlag = true
  static override flags = {
    yes: Flags.boolean({char: 'y', summary: 'Do not ask for confirmation.', default: false}),
    all: Flags.boolean({summary: 'Also empty the whitelist kept in the database.', default: false}),
  }
  static override examples = ['<%= config.bin %> flush --yes', '<%= config.bin %> flush --all --yes']

  async run(): Promise<FlushResult | {cancelled: true}> {
    const ctx = await this.loadContext()
    if (!this.flags.yes) {
      if (!process.stdin.isTTY) {
        throw new RcguardError('flush needs --yes when not run on a terminal', ExitCode.USAGE)
      }
      const rl = createInterface({input: process.stdin, output: process.stderr})
      const answer = await rl.question(
        `Remove all rcguard firewall rules and forget every offender${this.flags.all ? ' and the whitelist' : ''}? [y/N] `,
      )
      rl.close()
      if (!/^y(es)?$/i.test(answer.trim())) {
        this.log('nothing changed')
        return {cancelled: true}
      }
    }
    const result = await flush(ctx, {all: this.flags.all})
    for (const line of result.firewall.kept ?? []) this.warning(line)
    this.log(
      `removed ${result.entriesRemoved} entr${result.entriesRemoved === 1 ? 'y' : 'ies'}${this.flags.all ? ` and ${result.whitelistRemoved} whitelist entr${result.whitelistRemoved === 1 ? 'y' : 'ies'}` : ''}; firewall ${result.firewall.changed ? 'rules removed' : 'had no rcguard rules'}`,
    )
    return result
  }
}
