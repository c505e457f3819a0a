import {existsSync} from 'node:fs'
import {join} from 'node:path'
import type {Config} from '../config/config.js'
import {NoFirewall, type BackendName, type FirewallBackend} from './backend.js'
import {CheckCache} from './generation.js'
import {IpsetBackend} from './ipset.js'
import {IptablesBackend} from './iptables.js'
import {NftablesBackend} from './nftables.js'
import {searchPath, type Runner} from './runner.js'

export type {ApplyResult, BackendName, DesiredState, FirewallBackend, InstanceRules} from './backend.js'
export {ExecaRunner, type Runner} from './runner.js'

function onPath(command: string): boolean {
  return searchPath(process.env.PATH)
    .split(':')
    .some((dir) => existsSync(join(dir, command)))
}

/**
 * The backend `auto` stands for on this machine: nftables when nft is
 * installed (one table, native sets, one transaction); else ipset with
 * iptables; else plain iptables.
 */
export function detectBackend(): Exclude<BackendName, 'none'> {
  if (onPath('nft')) return 'nftables'
  if (onPath('ipset') && onPath('iptables-restore')) return 'ipset'
  return 'iptables'
}

/** The backends whose tools are installed here (for flush, which cleans up after all of them). */
export function installedBackends(): Exclude<BackendName, 'none'>[] {
  const out: Exclude<BackendName, 'none'>[] = []
  if (onPath('nft')) out.push('nftables')
  if (onPath('ipset') && onPath('iptables-restore')) out.push('ipset')
  if (onPath('iptables-restore')) out.push('iptables')
  return out
}

export function resolveBackendName(config: Config): BackendName {
  return config.firewall.backend === 'auto' ? detectBackend() : config.firewall.backend
}

export function createBackend(config: Config, runner: Runner, name: BackendName = resolveBackendName(config), prefix = config.firewall.prefix): FirewallBackend {
  // The check cache lives beside the database (it is only a shortcut: deleting it costs one full check).
  const checkCache = new CheckCache(`${config.database}.fwcheck`)
  const options = {prefix, runner, action: config.firewall.action, chains: config.firewall.chains, checkCache}
  switch (name) {
    case 'iptables':
      return new IptablesBackend(options)
    case 'ipset':
      return new IpsetBackend(options)
    case 'nftables':
      return new NftablesBackend(options)
    case 'none':
      return new NoFirewall()
  }
}
