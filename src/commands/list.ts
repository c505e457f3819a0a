import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {list, type ListRow} from '../core/guard.js'
import {listTable} from '../ui/format.js'

export default class List extends BaseCommand<typeof List> {
  static override summary = 'List blocked, watched and whitelisted addresses.'
  static override description = 'Blocked first, then watched, then whitelisted; each group by last seen, newest first. Times are relative in the table and ISO 8601 in --json.'
  static override enableJsonFlag = true
  static override flags = {
    state: Flags.string({summary: 'Only entries in this state (repeat for several).', options: ['blocked', 'watching', 'whitelisted'], multiple: true}),
    instance: Flags.string({summary: 'Only entries of this instance.'}),
    ip: Flags.string({summary: 'Only entries whose address or network overlaps this address or CIDR network.'}),
  }
  static override examples = [
    '<%= config.bin %> list',
    '<%= config.bin %> list --state blocked --instance master',
    '<%= config.bin %> list --ip 203.0.113.0/24 --json',
  ]

  async run(): Promise<ListRow[]> {
    const ctx = await this.loadContext()
    const rows = await list(ctx, {state: this.flags.state as ListRow['state'][] | undefined, instance: this.flags.instance, ip: this.flags.ip})
    if (rows.length === 0) {
      this.log('no entries: nothing blocked, watched or whitelisted matches')
    } else {
      this.logColoured(listTable(rows, ctx.now()))
      const count = (s: ListRow['state']) => rows.filter((r) => r.state === s).length
      this.log(`${count('blocked')} blocked, ${count('watching')} watching, ${count('whitelisted')} whitelisted`)
    }
    return rows
  }
}
