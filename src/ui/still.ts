/** The line for what still holds after `unblock` or `whitelist --remove` (core/admin/lift.ts). */
import type {StillInForce} from '../core/admin/lift.js'
import {until} from './format.js'

/** `2001:db8:0:1::5 is still blocked by the network 2001:db8::/48 on master until 2026-11-25 14:00:00Z: "rcguard unblock 2001:db8::/48" lifts it` */
export function stillBlockedLine(s: StillInForce): string {
  return `${s.arg} is still blocked by the network ${s.by} on ${s.instance ?? '?'} ${until({blockedUntil: s.until ?? null})}: ${s.fix}`
}

/** `192.0.2.5/32 is still never blocked: 192.0.2.0/24 in the database's whitelist holds it; "rcguard whitelist --remove 192.0.2.0/24" removes it` */
export function stillNeverLine(s: StillInForce): string {
  return `${s.arg} is still never blocked: ${s.by} in ${s.source ?? 'a whitelist'} holds it; ${s.fix}`
}
