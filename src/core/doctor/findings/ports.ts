/**
 * Enforcement: the ports rcguard's rules close against where the web server
 * really listens (`ss -ltnpH`: listening TCP sockets with their processes),
 * and Docker-published ports (docker-proxy), whose packets pass FORWARD and
 * DOCKER-USER rather than INPUT.
 */
import type {Config} from '../../config/config.js'
import type {Finding} from '../types.js'

export interface Listener {
  address: string
  port: number
  processes: string[]
}

/** Web servers, PHP front ends, proxies and Docker's port forwarder, by process name (ss's users:(("name",…))). */
const WEB = /^(apache2|httpd|nginx|lighttpd|caddy|haproxy|traefik|envoy|php-fpm[\w.-]*|frankenphp|docker-proxy)$/

/** `ss -ltnpH` lines as listeners; lines that are not understood are left out. */
export function parseListeners(text: string): Listener[] {
  const out: Listener[] = []
  for (const line of text.split('\n')) {
    const cols = line.trim().split(/\s+/)
    if (cols[0] !== 'LISTEN' || cols[3] === undefined) continue
    const local = cols[3]
    const at = local.lastIndexOf(':')
    const port = Number(local.slice(at + 1))
    if (at <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) continue
    const processes = [...line.matchAll(/\(\("([^"]{1,64})"/g), ...line.matchAll(/\),\("([^"]{1,64})"/g)].map((m) => m[1] ?? '')
    out.push({address: local.slice(0, at).replace(/^\[|\]$/g, '').replace(/%.*$/, ''), port, processes: [...new Set(processes)]})
  }
  return out
}

const loopback = (a: string): boolean => a.startsWith('127.') || a === '::1'

export function portFindings(config: Config, listeners: readonly Listener[]): Finding[] {
  const out: Finding[] = []
  const web = listeners.filter((l) => !loopback(l.address) && l.processes.some((p) => WEB.test(p)))
  if (web.length === 0) return out
  const webPorts = [...new Set(web.filter((l) => !l.processes.every((p) => p === 'docker-proxy')).map((l) => l.port))].sort((a, b) => a - b)
  for (const i of config.instances) {
    if (i.ports === 'all') continue
    const guarded = new Set(i.ports)
    const open = webPorts.filter((p) => !guarded.has(p))
    if (open.length > 0) {
      const none = webPorts.every((p) => !guarded.has(p))
      out.push({id: 'ports-unguarded', severity: none ? 'error' : 'warning', message: `the web server listens on port${open.length === 1 ? '' : 's'} ${open.join(', ')}, which instance ${i.name} does not close (ports: ${i.ports.join(', ')}): a blocked address ${none ? 'still reaches Roundcube' : 'can still reach the web server there'}`, fix: `set ports: [${[...new Set([...i.ports, ...open])].sort((a, b) => a - b).join(', ')}] for instance ${i.name}`})
    }
  }
  const docker = [...new Set(web.filter((l) => l.processes.includes('docker-proxy')).map((l) => l.port))].sort((a, b) => a - b)
  if (docker.length > 0 && !config.firewall.chains.includes('DOCKER-USER')) {
    out.push({id: 'docker-published', severity: 'error', message: `Docker publishes port${docker.length === 1 ? '' : 's'} ${docker.join(', ')} (docker-proxy): those packets are forwarded to the container and pass FORWARD and DOCKER-USER, not INPUT, so rcguard's INPUT rules never see them`, fix: `add DOCKER-USER to firewall.chains (chains: [${[...config.firewall.chains, 'DOCKER-USER'].join(', ')}])`})
  }
  return out
}

/** `ss -ltnpH` on this machine, or null when ss cannot be run. */
export async function listeners(): Promise<Listener[] | null> {
  const {execa} = await import('execa')
  const r = await execa('ss', ['-ltnpH'], {reject: false, timeout: 10_000, stdin: 'ignore', maxBuffer: 8 * 1024 * 1024}).catch(() => null)
  if (r === null || r.exitCode !== 0) return null
  return parseListeners(String(r.stdout))
}

/** The non-loopback ports web servers (not Docker's forwarder) listen on, ascending. */
export function webPorts(ls: readonly Listener[]): number[] {
  return [...new Set(ls.filter((l) => !loopback(l.address) && l.processes.some((p) => WEB.test(p) && p !== 'docker-proxy')).map((l) => l.port))].sort((a, b) => a - b)
}
