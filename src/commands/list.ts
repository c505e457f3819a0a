import {BaseCommand} from '../base-command.js'
import {list, type ListRow} from '../core/guard.js'
import {listTable} from '../ui/format.js'

export default class List extends BaseCommand<typeof List> {
  static override summary = 'List blocked, watched and whitelisted addresses.'
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> list', '<%= config.bin %> list --json']

  async run(): Promise<ListRow[]> {
    const ctx = await this.loadContext()
    const rows = await list(ctx)
    if (rows.length === 0) {
      this.log('no entries: nothing blocked, watched or whitelisted')
    } else {
      this.log(listTable(rows))
      const count = (s: ListRow['state']) => rows.filter((r) => r.state === s).length
      this.log(`${count('blocked')} blocked, ${count('watching')} watching, ${count('whitelisted')} whitelisted`)
    }
    return rows
  }
}
