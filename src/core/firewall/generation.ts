/**
 * The nf_tables ruleset generation: a counter the kernel raises by one with
 * every committed nf_tables transaction in a network namespace — `nft -f`,
 * `nft add element`, iptables-nft, Docker, firewalld, anyone's. While it
 * stands still, not one table, chain, rule, set or element has changed.
 *
 * Listing 100,000 set elements costs nft about half a second of its own CPU
 * (about 4 µs each, measured with callgrind and /usr/bin/time on nft 1.0.6),
 * so the nftables backend keeps a small check cache beside the database: the
 * generation at which it last saw (or made) the table exactly as wanted, and
 * a digest of what it wanted. When both still hold, and the table's chains,
 * rules and sets (listed without their elements, which is cheap) are as
 * wanted, the elements are not listed: a change by anyone would have moved
 * the generation.
 *
 * The generation is asked for over netlink (NFT_MSG_GETGEN), which Node
 * cannot speak; a few lines of Perl do it (perl-base is part of every Debian
 * system). The token adds the boot id and the network namespace's inode, so a
 * reboot never matches an old entry; a recreated namespace, which may reuse
 * an inode, is caught by the structure check, since its rcguard table is
 * missing. Without perl there is no token and every run lists in full.
 */
import {readFile, stat, unlink} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'
import {resolveTrusted} from '../config/trust.js'
import {atomicWrite, readOwnFile} from '../store/safe-files.js'
import type {Runner} from './runner.js'

/**
 * Asks the kernel for its nf_tables generation; prints it and exits 0, or
 * exits 3 on anything unexpected. Host byte order for the netlink header,
 * network order for the NFTA_GEN_ID attribute.
 */
export const GETGEN = String.raw`
socket(my $s, 16, 3, 12) or exit 3;                                # AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER
send($s, pack('LSSLLCCn', 20, (10 << 8) | 16, 1, 1, 0, 0, 0, 0), 0, pack('SSLL', 16, 0, 0, 0)) or exit 3;   # NFT_MSG_GETGEN
defined(recv($s, my $buf, 65536, 0)) or exit 3;
my ($len, $type) = unpack('LS', $buf);
exit 3 unless $type == ((10 << 8) | 15) && $len <= length($buf);   # NFT_MSG_NEWGEN
for (my $off = 20; $off + 4 <= $len;) {
  my ($alen, $atype) = unpack("x$off SS", $buf);
  last if $alen < 4;
  if (($atype & 0x3fff) == 1 && $alen >= 8) {                     # NFTA_GEN_ID
    printf("%u\n", unpack('x' . ($off + 4) . ' N', $buf));
    exit 0;
  }
  $off += ($alen + 3) & ~3;
}
exit 3;
`

export interface Generation {
  /** Boot id, namespace inode and generation: equal tokens mean an unchanged ruleset. */
  token: string
  genid: number
}

/** The namespace's current generation, or null when it cannot be known here (no perl, an old kernel, no permission). */
export async function readGeneration(runner: Runner): Promise<Generation | null> {
  let where: string
  try {
    const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim()
    where = `${bootId}/${(await stat('/proc/self/ns/net')).ino}`
  } catch {
    return null
  }
  let out: string
  try {
    const r = await runner.run('perl', ['-'], {input: GETGEN})
    if (r.exitCode !== 0) return null
    out = r.stdout
  } catch {
    return null
  }
  const m = /^(\d+)\n?$/.exec(out)
  if (m === null) return null
  const genid = Number(m[1])
  return {token: `${where}/${genid}`, genid}
}

/** Whether `after` is exactly one transaction later than `before`, in the same namespace and boot. */
export function oneLater(before: Generation, after: Generation): boolean {
  const stem = (g: Generation) => g.token.slice(0, g.token.lastIndexOf('/'))
  return stem(before) === stem(after) && after.genid === ((before.genid + 1) >>> 0 || 1)
}

export interface CheckCacheEntry {
  token: string
  /** Of the whole table as wanted. */
  digest: string
  /** Of each set's elements, to name what changed when the table is replaced without listing it. */
  sets?: Record<string, string>
}

/**
 * The check cache: one small JSON file beside the database. It is only ever a
 * shortcut; a missing, unreadable or odd file means "list in full", never an
 * error, and losing it costs one full check. It is used only in a directory
 * rcguard trusts (as the database's, see ../config/trust.ts; otherwise the
 * store has refused the run already) and only when it is a regular file of
 * root's: never read through a link, and replaced whole (a link of its name
 * is replaced, never written through).
 */
export class CheckCache {
  constructor(readonly path: string) {}

  /** The real path of the file in its trusted directory, or null: then the cache is not used. */
  private async where(): Promise<string | null> {
    try {
      const dir = await resolveTrusted(dirname(this.path), {leaf: 'directory'})
      return dir.kind === 'ok' ? join(dir.real, basename(this.path)) : null
    } catch {
      return null
    }
  }

  async read(): Promise<CheckCacheEntry | null> {
    try {
      const path = await this.where()
      const bytes = path === null ? null : await readOwnFile(path)
      if (bytes === null) return null
      const o = JSON.parse(bytes.toString('utf8')) as Partial<CheckCacheEntry>
      if (typeof o.token !== 'string' || typeof o.digest !== 'string') return null
      const sets = o.sets !== null && typeof o.sets === 'object' && Object.values(o.sets).every((v) => typeof v === 'string') ? o.sets : undefined
      return {token: o.token, digest: o.digest, ...(sets === undefined ? {} : {sets})}
    } catch {
      return null
    }
  }

  async write(entry: CheckCacheEntry): Promise<void> {
    const path = await this.where()
    if (path === null) return
    await atomicWrite(path, `${JSON.stringify(entry)}\n`).catch(() => this.clear())
  }

  async clear(): Promise<void> {
    const path = await this.where()
    // unlink removes a link itself, never what it points to.
    if (path !== null) await unlink(path).catch(() => undefined)
  }
}
