import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {firewallLine} from '../ui/format.js'
import {ExitCode, RcguardError} from '../core/errors.js'
import {unblock, type ChangeResult} from '../core/run/admin.js'
import {stillBlockedLine} from '../ui/still.js'

export default class Unblock extends BaseCommand<typeof Unblock> {
  static override summary = 'Delete entries: lift their blocks now; they can be blocked again if they misbehave again.'
  static override description =
    "Deletes the entries that each argument counts against: the address's own, or with firewall.ipv6Prefix its network's; for a network in CIDR notation, every entry inside it. A wider network entry (such as a network blocked with rcguard block) that still blocks the address is not lifted on the way: it is named, with the command that lifts it, and the exit status is 7."
  static override enableJsonFlag = true
  static override strict = false
  static override args = {address: Args.string({description: 'IPv4 or IPv6 address, or CIDR network (several allowed)', required: true})}
  static override flags = {
    quiet: Flags.boolean({char: 'q', summary: 'An address that is not in the database is no error.', default: false}),
  }
  static override examples = ['<%= config.bin %> unblock 192.0.2.10', '<%= config.bin %> unblock 192.0.2.10 2001:db8::25', '<%= config.bin %> unblock 2001:db8:1:2::/64', '<%= config.bin %> unblock 198.51.100.0/24']

  async run(): Promise<ChangeResult> {
    const {argv} = await this.parse(Unblock)
    const ctx = await this.loadContext()
    const result = await unblock(ctx, argv as string[])
    for (const line of result.done) this.log(line)
    for (const w of result.warnings) this.warning(w)
    if (result.done.length > 0) this.log(firewallLine(result.firewallChanged, result.warnings))
    const still = result.stillInForce ?? []
    if (still.length > 0) {
      // Still blocked outweighs not found: a block in force is what the admin must hear about.
      const missing = result.notFound.length > 0 && !this.flags.quiet ? `; not in the database: ${result.notFound.join(', ')}` : ''
      throw new RcguardError(`${still.map(stillBlockedLine).join('; ')}${missing}`, ExitCode.STILL_IN_FORCE)
    }
    if (result.notFound.length > 0 && !this.flags.quiet) {
      throw new RcguardError(`not in the database: ${result.notFound.join(', ')}`, ExitCode.NOT_FOUND)
    }
    return result
  }
}
