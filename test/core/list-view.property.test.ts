/**
 * listView's shortcut (only the rows that can be among the first `limit` are
 * sorted and made) gives exactly the first `limit` rows of the whole sorted
 * list, with the same counts, over databases with many equal last-seen times
 * (the limit's rank shared by rows inside and outside the limit), IPv4 and
 * IPv6 addresses whose text order differs from their order, whitelisted
 * entries and every filter.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {listView, type ListSelection} from '../../src/core/admin/list.js'
import {newEntry} from '../../src/core/decisions/decide.js'
import {ipSortKey, NetworkList, parseCidr} from '../../src/core/net/ip.js'
import {emptyData, type Entry} from '../../src/core/store/schema.js'
import {assertListOrder} from '../helpers/list-order.js'

const NOW = Date.UTC(2026, 10, 25, 13, 0, 0)
const ADDRESSES = [
  ...Array.from({length: 40}, (_, i) => `10.0.${i % 3}.${(i * 37) % 256}`),
  ...Array.from({length: 20}, (_, i) => `2001:db8::${(i * 13).toString(16)}`),
  '192.0.2.9',
  '127.0.0.1',
]

const entryArb = fc.record({
  ip: fc.constantFrom(...ADDRESSES),
  instance: fc.constantFrom('master', 'second'),
  // Few distinct times: many rows share the limit's rank.
  seenAgo: fc.constantFrom(0, 1000, 2000, 60_000),
  blocked: fc.constantFrom('no', 'active', 'ended', 'forever'),
  failures: fc.nat({max: 3}),
})

const databaseArb = fc.record({
  entries: fc.uniqueArray(entryArb, {selector: (e) => e.ip, maxLength: 62}),
  whitelist: fc.subarray(['192.0.2.0/24', '10.0.1.0/24', '2001:db8::/120', '198.51.100.0/24']),
  limit: fc.nat({max: 70}),
  state: fc.option(fc.subarray(['blocked', 'watching', 'whitelisted'] as const, {minLength: 1}), {nil: undefined}),
  instance: fc.option(fc.constantFrom('master', 'second'), {nil: undefined}),
  ip: fc.option(fc.constantFrom('10.0.0.0/23', '2001:db8::/64', '192.0.2.9', '10.0.2.0/24'), {nil: undefined}),
})

test('listView: the first `limit` rows are those of the whole sorted list, counts alike, in the documented order', () => {
  fc.assert(
    fc.property(databaseArb, (db) => {
      const data = emptyData()
      for (const e of db.entries) {
        const seen = NOW - e.seenAgo
        const entry: Entry = {...newEntry(e.ip, e.instance, seen - 5000, 'u@example.org'), lastSeen: seen, failures: Array.from({length: e.failures}, () => seen)}
        if (e.blocked !== 'no') {
          entry.blockedAt = seen
          entry.blockedUntil = e.blocked === 'forever' ? null : e.blocked === 'active' ? NOW + 60_000 : NOW - 1
          entry.blocks = 1
        }
        data.entries.push(entry)
      }
      data.whitelist = db.whitelist.map((cidr) => ({cidr, comment: null, added: NOW}))
      const never = new NetworkList(['127.0.0.0/8', ...db.whitelist])
      const overlapping = db.ip === undefined ? undefined : (parseCidr(db.ip) ?? undefined)
      const selection: ListSelection = {state: db.state, instance: db.instance, overlapping, limit: 0}
      const all = listView(data, never, NOW, selection)
      const some = listView(data, never, NOW, {...selection, limit: db.limit})
      const allRows = [...all.rows]
      assert.equal(allRows.length, all.total)
      assert.deepEqual(some.counts, all.counts)
      assert.equal(some.total, all.total)
      const expected = db.limit === 0 ? allRows : allRows.slice(0, db.limit)
      assert.deepEqual([...some.rows], expected)
      assert.equal(some.rows.length, expected.length)
      // A second iteration makes the same rows.
      assert.deepEqual([...some.rows], expected)
      // The documented order, then the address order among equal ranks.
      assertListOrder(allRows)
      for (let i = 1; i < allRows.length; i++) {
        const a = allRows[i - 1]
        const b = allRows[i]
        if (a === undefined || b === undefined || a.state !== b.state || a.lastSeen !== b.lastSeen || a.state === 'whitelisted') continue
        assert.ok(ipSortKey(a.ip) < ipSortKey(b.ip), `${a.ip} before ${b.ip}`)
      }
      // Nothing whitelisted or loopback is listed as an entry; every entry that passes the filters is.
      const listed = new Set(allRows.filter((r) => r.state !== 'whitelisted').map((r) => r.ip))
      for (const e of data.entries) {
        if (never.match(e.ip) !== undefined) assert.ok(!listed.has(e.ip), `${e.ip} is never blocked: not listed`)
      }
    }),
    {numRuns: 400},
  )
})
