/**
 * The machine around rcguard: the firewall backend's tools, how rcguard is
 * scheduled (cron, the systemd timer, or watch), and the database and its
 * lock (read as every run reads them: JsonStore.read validates, through
 * store/diagnose.ts, and names the repair), the kernel's support for what the
 * backend makes (kernelFindings: checked by the tools' own test modes, nothing
 * committed), and the live rules: in place, and not passed by rules of others
 * (rulesFindings; read, never changed).
 */
import {existsSync, readFileSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import type {Config} from '../../config/config.js'
import {BusyError, errorMessage, RcguardError} from '../../errors.js'
import {createBackend, ExecaRunner, resolveBackendName} from '../../firewall/index.js'
import {ownershipOf} from '../../firewall/ownership.js'
import {desiredState} from '../../run/desired.js'
import {firstErrorLine, searchPath, toolHint} from '../../firewall/runner.js'
import {JsonStore} from '../../store/json-store.js'
import {acquireLock} from '../../store/lock.js'
import type {Finding} from '../types.js'

const TOOLS: Record<string, {tools: string[]; apt: string}> = {
  nftables: {tools: ['nft', 'perl'], apt: 'nftables perl'},
  ipset: {tools: ['ipset', 'iptables-restore', 'ip6tables-restore'], apt: 'ipset iptables'},
  iptables: {tools: ['iptables-restore', 'ip6tables-restore'], apt: 'iptables'},
}

/** The firewall backend's tools are on PATH (cron's PATH lacks /usr/sbin: the README says to set it). */
export function backendFindings(config: Config, path = process.env.PATH): Finding[] {
  const name = resolveBackendName(config)
  if (name === 'none') return [{id: 'backend-none', severity: 'warning', message: 'firewall.backend is none: rcguard records offenders but blocks nobody', fix: 'set firewall.backend: auto (or nftables, ipset, iptables)'}]
  const need = TOOLS[name]
  if (need === undefined) return []
  const dirs = searchPath(path).split(':')
  const missing = need.tools.filter((t) => !dirs.some((d) => existsSync(join(d, t))))
  if (missing.length === 0) return []
  return [{id: 'backend-tools', severity: 'error', message: `the ${name} backend needs ${missing.join(', ')}, not found on PATH (${searchPath(path)}): every run fails at the firewall`, fix: `apt-get install ${need.apt}`}]
}

/** Non-comment lines of a crontab that run rcguard. */
function cronLines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((l) => !/^\s*(#|$)/.test(l) && /\brcguard\b/.test(l) && !/^\s*[A-Za-z_]+=/.test(l))
  } catch {
    return []
  }
}

function wanted(root: string, unit: string): boolean {
  const dir = join(root, 'etc/systemd/system')
  try {
    return readdirSync(dir).some((d) => d.endsWith('.wants') && existsSync(join(dir, d, unit)))
  } catch {
    return false
  }
}

/** How rcguard runs: at least one of cron, rcguard.timer and rcguard-watch; cron and the timer not both. `root` is `/` but in tests. */
export function scheduleFindings(root = '/'): Finding[] {
  const cron = [join(root, 'etc/cron.d/rcguard'), join(root, 'etc/crontab'), join(root, 'var/spool/cron/crontabs/root')].filter((f) => cronLines(f).length > 0)
  const timer = wanted(root, 'rcguard.timer')
  const watch = wanted(root, 'rcguard-watch.service')
  const out: Finding[] = []
  if (cron.length === 0 && !timer && !watch) {
    out.push({id: 'not-scheduled', severity: 'warning', message: 'nothing runs rcguard: no rcguard line in /etc/cron.d/rcguard, /etc/crontab or root\'s crontab, and neither rcguard.timer nor rcguard-watch.service is enabled', fix: 'write /etc/cron.d/rcguard with "* * * * * root rcguard hacks" (see rcguard(8)), or systemctl enable --now rcguard-watch'})
  }
  if (cron.length + (timer ? 1 : 0) > 1) {
    out.push({id: 'scheduled-twice', severity: 'warning', message: `rcguard hacks is scheduled more than once (${[...cron, ...(timer ? ['rcguard.timer'] : [])].join(', ')}): the runs only wait for each other's lock (exit 75)`, fix: 'keep one of them'})
  }
  return out
}

/** The database reads and validates as a run would read it; its lock is not held by anything but a run. */
export async function storeFindings(config: Config): Promise<Finding[]> {
  const out: Finding[] = []
  try {
    await new JsonStore(config.database).read()
  } catch (err) {
    if (!(err instanceof RcguardError)) throw err
    // The store's message ends with its repair ("it was left untouched: <what to do>"): that is the fix.
    const repair = /; it was left untouched: (.*)$/.exec(err.message)
    out.push({id: 'database', severity: 'error', message: repair === null ? err.message : err.message.slice(0, repair.index), fix: repair?.[1] ?? 'see rcguard(8), RECOVERY'})
    return out
  }
  const lock = `${config.database}.lock`
  if (!existsSync(lock)) return out
  try {
    const held = await acquireLock(lock, {waitMs: 0})
    await held.release()
  } catch (err) {
    if (err instanceof BusyError) out.push({id: 'lock-busy', severity: 'info', message: `the lock ${lock} is held: a run (or watch) is at work now`, fix: 'nothing to change, unless it stays held: then see what holds it (fuser -v ' + lock + ')'})
    else out.push({id: 'lock', severity: 'error', message: errorMessage(err), fix: 'see rcguard(8), RECOVERY'})
  }
  return out
}

/**
 * What each backend asks of the kernel, checked without changing anything: nft's --check of a table like
 * rcguard's (interval sets of both families, a filter chain on the input hook matching them), the iptables
 * tools' listing of the filter table and --test of a marked multiport rule in a chain of their own, and ipset's listing
 * of the sets.
 */
const PROBES: Record<string, {command: string; args: string[]; input?: string}[]> = {
  nftables: [
    {
      command: 'nft',
      args: ['--check', '-f', '-'],
      input: [
        'table inet rcguard_probe {',
        '  set p4 { type ipv4_addr; flags interval; }',
        '  set p6 { type ipv6_addr; flags interval; }',
        '  chain input {',
        '    type filter hook input priority -10; policy accept;',
        '    ip saddr @p4 tcp dport { 80, 443 } drop',
        '    ip6 saddr @p6 tcp dport { 80, 443 } reject with tcp reset',
        '  }',
        '}',
        '',
      ].join('\n'),
    },
  ],
  iptables: [
    // Reading the filter table, as every run does, fails when the kernel has none (ip_tables, or nf_tables under iptables-nft).
    {command: 'iptables-save', args: ['-t', 'filter']},
    {command: 'ip6tables-save', args: ['-t', 'filter']},
    // The match extensions rcguard's rules use load (--test commits nothing).
    ...['iptables-restore', 'ip6tables-restore'].map((command) => ({
      command,
      args: ['--test', '--noflush'],
      input: '*filter\n:rcguard-probe - [0:0]\n-A rcguard-probe -p tcp -m multiport --dports 80,443 -m comment --comment "rcguard probe" -j DROP\nCOMMIT\n',
    })),
  ],
}
PROBES.ipset = [{command: 'ipset', args: ['-n', 'list']}, ...(PROBES.iptables ?? [])]

/**
 * The kernel supports what the backend makes: one finding per tool the kernel refuses (a missing
 * nf_tables, ip_tables or ip_set module, a container without them). Only as root with the tools there.
 */
export async function kernelFindings(config: Config): Promise<Finding[]> {
  const name = resolveBackendName(config)
  if (process.geteuid?.() !== 0 || name === 'none' || backendFindings(config).length > 0) return []
  const runner = new ExecaRunner(() => undefined, config.firewall.timeoutSeconds * 1000)
  const out: Finding[] = []
  for (const probe of PROBES[name] ?? []) {
    let r
    try {
      r = await runner.run(probe.command, probe.args, {input: probe.input})
    } catch (err) {
      r = {exitCode: 1, stdout: '', stderr: errorMessage(err)}
    }
    if (r.exitCode === 0) continue
    const hint = toolHint(r.stderr)
    out.push({
      id: 'kernel-support',
      severity: 'error',
      message: `the kernel refuses what the ${name} backend makes: ${probe.command} ${probe.args.join(' ')} says "${firstErrorLine(r.stderr)}"${hint}: every run fails at the firewall`,
      fix: /not permitted|permission denied/i.test(r.stderr)
        ? "rcguard needs CAP_NET_ADMIN over the network it guards: in a container, give it NET_ADMIN and the host's network (docker run --cap-add NET_ADMIN --network host), or run rcguard on the host"
        : name === 'nftables' ? 'modprobe nf_tables (in a container: load it on the host, or give the container NET_ADMIN), or choose firewall.backend: iptables' : `modprobe ${name === 'ipset' ? 'ip_set ' : ''}ip_tables ip6_tables (in a container: on the host), or choose firewall.backend: nftables`,
    })
  }
  return out
}

/**
 * The rules rcguard wants are in place and reached: the live firewall read
 * (never changed) against the database's desired state, and the rules of
 * others that let packets past rcguard's (as every hacks run warns). Only
 * as root, and only when the backend's tools are there (backendFindings says
 * when they are not).
 */
export async function rulesFindings(config: Config): Promise<Finding[]> {
  if (process.geteuid?.() !== 0 || resolveBackendName(config) === 'none' || backendFindings(config).length > 0) return []
  let data
  try {
    data = await new JsonStore(config.database).read()
  } catch {
    return [] // storeFindings tells
  }
  const backend = createBackend(config, new ExecaRunner(() => undefined, config.firewall.timeoutSeconds * 1000))
  if (backend.inspect === undefined) return []
  let seen
  try {
    seen = await backend.inspect(config.enabled ? desiredState(config, data, Date.now()) : {instances: []}, ownershipOf(data.firewall, backend.name, config.firewall.prefix))
  } catch (err) {
    return [{id: 'rules-unreadable', severity: 'error', message: `the ${backend.name} rules cannot be read: ${errorMessage(err)}`, fix: 'see Errors under FIREWALL in rcguard(8); rcguard hacks --verbose shows the commands'}]
  }
  const out: Finding[] = []
  if (seen.drift.length > 0) {
    const first = data.firewall === undefined ? 'rcguard has not set its rules up yet' : `rcguard's ${backend.name} rules are not as the database wants them`
    out.push({id: 'rules-missing', severity: 'warning', message: `${first}: ${seen.drift.slice(0, 3).join('; ')}${seen.drift.length > 3 ? ` and ${seen.drift.length - 3} more` : ''}`, fix: 'rcguard hacks (it puts them in place; if they go missing again, something removes them: a firewall reload, another tool)'})
  }
  for (const w of seen.warnings) out.push({id: 'rules-shadowed', severity: 'error', message: w, fix: "rcguard hacks --verbose says which rule of others comes first and the command that puts rcguard's rule first again"})
  return out
}

/** A cluster node: its Redis answers, and keeps rcguard's keys (a maxmemory-policy that can evict them is a warning). */
export async function clusterFindings(config: Config): Promise<Finding[]> {
  if (config.cluster === undefined) return []
  const {ClusterClient, ClusterUnreachable, evictionProblem} = await import('../../cluster/client.js')
  let client
  try {
    client = await ClusterClient.connect(config.cluster)
    await client.call((r) => r.ping())
  } catch (err) {
    if (!(err instanceof ClusterUnreachable)) throw err
    return [{id: 'cluster-unreachable', severity: 'error', message: `cluster: ${err.message}: every run counts and blocks on this node alone until it answers`, fix: 'check cluster.redis (address, password, database) and that Redis runs and this node may reach it'}]
  }
  try {
    const problem = evictionProblem(await client.memoryPolicy(), client.shown)
    return problem === null ? [] : [{id: 'cluster-eviction', severity: 'warning', message: problem, fix: 'redis-cli CONFIG SET maxmemory-policy noeviction (and in redis.conf), or a Redis for rcguard alone'}]
  } finally {
    await client.close()
  }
}
