/**
 * The names rcguard hands to the firewall tools, and what each tool takes.
 * Checked when the configuration is loaded (see config.ts), so that a name a
 * tool cannot parse is a configuration error, never a firewall failure on
 * every run.
 *
 * What the tools take, measured with nft 1.0.6, ipset 7.17 and iptables
 * 1.8.9 (nf_tables and legacy) on Debian 12 (test/netns/foreign.test.ts
 * checks it again against the tools installed):
 * - nft: a table or set name is a bare word `[A-Za-z_.][A-Za-z0-9/_.-]*` that
 *   is not a word of the nft language ("log", "counter", "tables" ...). nft
 *   1.0.6 takes no quoted table names, so a keyword cannot be escaped.
 * - iptables: a chain name of at most 28 characters.
 * - ipset: a set name of at most 31 characters.
 */

/**
 * The words nft refuses as a table name in `table inet NAME`, `delete table
 * inet NAME` or `nft list table inet NAME`: every word nft 1.0.6 refuses there
 * (tried one by one), and the words that nftables' scanner makes keywords in
 * later releases (destroy, geneve, gre, gretap, last, rules, tunnel, tunnels,
 * vni, vxlan), so that an upgrade of nft cannot break a configuration. Only
 * words a firewall.prefix could be (a letter, then letters, digits or "_").
 */
export const NFT_KEYWORDS: ReadonlySet<string> = new Set(
  (
    'accept add ah all and arp bridge cgroup chain chains comment comp constant continue counter counters cpu create ct ' +
    'day dccp define delete describe destroy device devices dnat drop dst dup dynamic ecn element elements eq esp ether ' +
    'exists expires export exthdr fib flags flow flowtable flowtables flush frag fwd ge geneve get goto gre gretap gt ' +
    'handle hbh hook hooks hour ibriport ibrname icmp icmpv6 igmp iif iifgroup iifname iiftype import include index inet ' +
    'insert interval ip ip6 ipsec jhash jump last le limit limits list log lshift lt map maps mark masquerade meta meter ' +
    'meters mh missing monitor ne netdev nftrace not notrack numgen obriport obrname offload oif oifgroup oifname oiftype ' +
    'or osf pkttype policy position priority queue quota quotas random redefine redirect reject rename replace reset ' +
    'return rshift rt rt0 rt2 rtclassid rule rules ruleset sctp secmark secmarks set sets size skgid skuid snat socket ' +
    'srh symhash synproxy synproxys table tables tcp th time timeout tproxy tunnel tunnels type typeof udp udplite ' +
    'undefine update vlan vmap vni vxlan xor xt'
  ).split(' '),
)

/** iptables: "chain name ... too long (must be under 29 chars)". */
export const IPTABLES_CHAIN_MAX = 28
/** ipset: IPSET_MAXNAMELEN is 32 with the closing NUL. */
export const IPSET_NAME_MAX = 31
/** Appended to a set's name for the set it is refilled in before the swap (the first that is free, see ipset.ts). */
export const IPSET_TEMP_SUFFIXES = ['t', 'u', 'v', 'w'] as const

const NFT_WORD = /^[A-Za-z_.][A-Za-z0-9/_.-]*$/

/** Why nft cannot take `name` as a table or set name, or null when it can. */
export function nftNameProblem(name: string): string | null {
  if (!NFT_WORD.test(name)) return 'nft takes names that start with a letter or "_" and hold only letters, digits, "_", ".", "/" or "-"'
  if (NFT_KEYWORDS.has(name)) return `"${name}" is a word of the nft language, which nft cannot read as a table name`
  return null
}

/**
 * The stem of an instance's nft set names (`<stem>_v4`, `<stem>_v6`). nft
 * identifiers take no "-" at their start and no digit there: "-" becomes "_",
 * and a name starting with a digit gets a "_" in front ("2nd" → "_2nd"). The
 * configuration refuses two instances whose stems are equal.
 */
export function nftSetStem(instance: string): string {
  const stem = instance.replace(/-/g, '_')
  return /^[0-9]/.test(stem) ? `_${stem}` : stem
}

export function iptablesChainName(prefix: string, instance: string): string {
  return `${prefix}-${instance}`
}

export function ipsetSetName(prefix: string, instance: string, fam: 4 | 6): string {
  return `${prefix}-${instance}-${fam}`
}

export interface NameProblem {
  /** The configuration key, e.g. `firewall.prefix` or `instances.1.name`. */
  path: (string | number)[]
  message: string
}

/**
 * Every name the configured backend (and flush, which looks for rcguard's
 * objects in every tool) hands to a tool, checked against that tool. The
 * prefix must be an nft name only when nftables may be used (backend
 * nftables or auto): with iptables or ipset, nft never sees it.
 */
export function firewallNameProblems(config: {
  firewall: {backend: string; prefix: string}
  instances: {name: string}[]
}): NameProblem[] {
  const out: NameProblem[] = []
  const {prefix, backend} = config.firewall
  const nft = backend === 'nftables' || backend === 'auto'
  if (nft) {
    const why = nftNameProblem(prefix)
    if (why !== null) out.push({path: ['firewall', 'prefix'], message: `${why} (firewall.backend is ${backend}): choose another prefix, e.g. rcguard`})
  }
  const stems = new Map<string, string>()
  config.instances.forEach((inst, i) => {
    const path = ['instances', i, 'name']
    const chain = iptablesChainName(prefix, inst.name)
    if (chain.length > IPTABLES_CHAIN_MAX) {
      out.push({path, message: `the iptables chain name ${chain} is longer than the ${IPTABLES_CHAIN_MAX} characters iptables takes: use a shorter name or prefix`})
    }
    const set = `${ipsetSetName(prefix, inst.name, 6)}${IPSET_TEMP_SUFFIXES[0]}`
    if (set.length > IPSET_NAME_MAX) {
      out.push({path, message: `the ipset set name ${set} is longer than the ${IPSET_NAME_MAX} characters ipset takes: use a shorter name or prefix`})
    }
    const stem = nftSetStem(inst.name)
    const why = nftNameProblem(`${stem}_v4`)
    if (why !== null) out.push({path, message: `the nftables set name ${stem}_v4 cannot be used: ${why}`})
    const other = stems.get(stem)
    if (other !== undefined) {
      out.push({path, message: `instances ${other} and ${inst.name} would share the nftables set name ${stem}_v4 (nft names take "_" for "-" and a "_" before a digit): rename one`})
    }
    stems.set(stem, inst.name)
  })
  return out
}
