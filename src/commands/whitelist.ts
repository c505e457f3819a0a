import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {firewallLine} from '../ui/format.js'
import {ExitCode, RcguardError} from '../core/errors.js'
import {whitelistAdd, whitelistList, whitelistRemove} from '../core/run/admin.js'
import {stillNeverLine} from '../ui/still.js'

export default class Whitelist extends BaseCommand<typeof Whitelist> {
  static override summary = 'Never block an address or network; lifts its current block now. Alone: list the whitelist.'
  static override enableJsonFlag = true
  static override strict = false
  static override args = {address: Args.string({description: 'IPv4/IPv6 address or CIDR network (several allowed)'})}
  static override flags = {
    remove: Flags.boolean({
      summary: 'Take the addresses or networks off the whitelist; one still never blocked for another reason is named (exit status 7).',
      default: false,
    }),
    comment: Flags.string({summary: 'A note stored with the entry (who, why).'}),
    quiet: Flags.boolean({char: 'q', summary: 'With --remove: a network that is not on the whitelist is no error.', default: false}),
  }
  static override examples = [
    '<%= config.bin %> whitelist',
    '<%= config.bin %> whitelist 198.51.100.0/24 --comment "office proxy"',
    '<%= config.bin %> whitelist --remove 198.51.100.0/24',
  ]

  async run(): Promise<unknown> {
    const {argv} = await this.parse(Whitelist)
    const args = argv as string[]
    const ctx = await this.loadContext()
    if (args.length === 0) {
      if (this.flags.remove) throw new RcguardError('--remove needs at least one address or network', ExitCode.USAGE)
      const entries = await whitelistList(ctx)
      for (const e of entries) this.log(`${e.cidr}\t${e.source}${e.comment === null ? '' : `\t${e.comment}`}`)
      return entries
    }
    const result = this.flags.remove
      ? await whitelistRemove(ctx, args)
      : await whitelistAdd(ctx, args, this.flags.comment ?? null)
    for (const line of result.done) this.log(line)
    for (const w of result.warnings) this.warning(w)
    if (result.done.length > 0) this.log(firewallLine(result.firewallChanged, result.warnings))
    const still = result.stillInForce ?? []
    if (still.length > 0) {
      const missing = result.notFound.length > 0 && !this.flags.quiet ? `; not on the whitelist: ${result.notFound.join(', ')}` : ''
      throw new RcguardError(`${still.map(stillNeverLine).join('; ')}${missing}`, ExitCode.STILL_IN_FORCE)
    }
    if (result.notFound.length > 0 && !this.flags.quiet) {
      throw new RcguardError(`not on the whitelist: ${result.notFound.join(', ')}`, ExitCode.NOT_FOUND)
    }
    return result
  }
}
