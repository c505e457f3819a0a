import type {Config} from '../config/config.js'
import {NoFirewall, type FirewallBackend} from './backend.js'
import {IptablesBackend} from './iptables.js'
import type {Runner} from './runner.js'

export type {ApplyResult, DesiredState, FirewallBackend, InstanceRules} from './backend.js'
export {ExecaRunner, type Runner} from './runner.js'

export function createBackend(config: Config, runner: Runner): FirewallBackend {
  switch (config.firewall.backend) {
    case 'iptables':
      return new IptablesBackend({prefix: config.firewall.prefix, runner})
    case 'none':
      return new NoFirewall()
  }
}
