import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {list, listAccounts, type EntryState} from '../core/run/admin.js'
import {DEFAULT_LIMIT, summaryLines, writeAccountsJson, writeAccountTable, writeJsonArray, writeTable} from '../ui/list-output.js'

export default class List extends BaseCommand<typeof List> {
  static override summary = 'List blocked, watched and whitelisted addresses.'
  static override description =
    'Blocked first, then watched, then whitelisted; each group by last seen, newest first. A summary (counts by state and instance) comes first, then the first --limit rows (50 unless given; --json: all). Times are relative in the table and ISO 8601 in --json.'
  static override enableJsonFlag = true
  static override flags = {
    state: Flags.string({summary: 'Only entries in this state (repeat for several).', options: ['blocked', 'watching', 'whitelisted'], multiple: true}),
    instance: Flags.string({summary: 'Only entries of this instance.'}),
    ip: Flags.string({summary: 'Only entries whose address or network overlaps this address or CIDR network.'}),
    accounts: Flags.boolean({summary: 'List the accounts reported under attack (accountAlert) instead of addresses.', default: false, exclusive: ['state', 'ip']}),
    limit: Flags.integer({summary: `At most this many rows (default ${DEFAULT_LIMIT} in the table, all with --json); 0: all.`, min: 0}),
  }
  static override examples = [
    '<%= config.bin %> list',
    '<%= config.bin %> list --state blocked --instance master',
    '<%= config.bin %> list --limit 0 > all-entries.txt',
    '<%= config.bin %> list --ip 203.0.113.0/24 --json',
    '<%= config.bin %> list --accounts',
  ]

  async run(): Promise<undefined> {
    const ctx = await this.loadContext()
    const limit = this.flags.limit ?? (this.jsonEnabled() ? 0 : DEFAULT_LIMIT)
    if (this.flags.accounts) {
      const all = await listAccounts(ctx, {instance: this.flags.instance})
      const shown = limit === 0 ? all : all.slice(0, limit)
      if (this.jsonEnabled()) {
        await writeAccountsJson(process.stdout, shown)
        return undefined
      }
      if (all.length === 0) {
        this.log(ctx.config.accountAlert === undefined ? 'no accounts: accountAlert is not configured' : 'no account reported under attack')
        return undefined
      }
      await writeAccountTable(process.stdout, shown)
      if (shown.length < all.length) this.log(`first ${shown.length} of ${all.length} accounts shown: --limit 0 shows all`)
      return undefined
    }
    const view = await list(ctx, {state: this.flags.state as EntryState[] | undefined, instance: this.flags.instance, ip: this.flags.ip}, limit)
    for (const w of view.warnings ?? []) this.warning(w)
    // Both forms are written as streams (ui/list-output.ts); oclif prints nothing more for an undefined result.
    if (this.jsonEnabled()) {
      await writeJsonArray(process.stdout, view.rows)
      return undefined
    }
    if (view.total === 0) {
      this.log('no entries: nothing blocked, watched or whitelisted matches')
      return undefined
    }
    for (const line of summaryLines(view.counts)) this.log(line)
    await writeTable(process.stdout, view.rows, ctx.now())
    if (view.rows.length < view.total) this.log(`first ${view.rows.length} of ${view.total} rows shown: --limit 0 shows all, --state, --instance or --ip narrow them`)
    return undefined
  }
}
