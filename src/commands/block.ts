import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {firewallLine} from '../ui/format.js'
import {block, type ChangeResult} from '../core/run/admin.js'

export default class Block extends BaseCommand<typeof Block> {
  static override summary = 'Block addresses or networks by hand, now (never-blocked addresses are refused).'
  static override description =
    'The block lasts --minutes (0: until deleted); by default as long as the next automatic block of that address would (escalation included). Without --instance it applies to every instance. With firewall.ipv6Prefix below 128, an IPv6 address is blocked as its network. A network in CIDR notation (IPv4 /8 or narrower, IPv6 /16 or narrower) is blocked as one entry, normalized to its network address (198.51.100.7/24 is 198.51.100.0/24). An address or network that is, holds or lies in one never blocked (loopback, the whitelists, trustedProxies, this host\'s own addresses) is refused with exit status 2, and nothing is blocked.'
  static override enableJsonFlag = true
  static override strict = false
  static override args = {address: Args.string({description: 'IPv4 or IPv6 address, or network in CIDR notation (several allowed)', required: true})}
  static override flags = {
    minutes: Flags.integer({summary: 'How long the block lasts, in minutes (at most 5256000, ten years); 0 means until deleted.', min: 0, max: 5_256_000}),
    instance: Flags.string({summary: 'Block on this instance only.'}),
    comment: Flags.string({summary: 'A note stored with the entry (who, why).'}),
  }
  static override examples = [
    '<%= config.bin %> block 203.0.113.7',
    '<%= config.bin %> block 203.0.113.7 2001:db8::25 --minutes 1440 --comment "ticket 42"',
    '<%= config.bin %> block 198.51.100.0/24 2001:db8:7::/48 --minutes 0 --comment "hosting range"',
  ]

  async run(): Promise<ChangeResult> {
    const {argv} = await this.parse(Block)
    const ctx = await this.loadContext()
    const result = await block(ctx, argv as string[], {minutes: this.flags.minutes, instance: this.flags.instance, comment: this.flags.comment})
    for (const line of result.done) this.log(line)
    for (const w of result.warnings) this.warning(w)
    this.log(firewallLine(result.firewallChanged, result.warnings))
    return result
  }
}
