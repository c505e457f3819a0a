/**
 * What a cluster node's read collects for Redis (run/pipeline.ts scanInto,
 * then run/cluster-sync.ts): the failures it counted against an entry, each
 * with its identity, and the successful logins that relax the windows.
 */
import {statSync} from 'node:fs'
import type {Decision, SourcedEvent} from '../decisions/decide.js'
import {nameTag} from '../decisions/windows.js'
import {accountKey} from '../decisions/accounts.js'
import type {ClusterRecord} from '../store/schema.js'
import {escapeText} from '../text/escape.js'

export class ClusterFeed {
  readonly failures: ClusterRecord['outbox'] = []
  readonly successes: ClusterRecord['successes'] = []
  private readonly files = new Map<string, string>()

  /** With `accounts` (accountAlert), each failure also names the account it tried. */
  constructor(
    private readonly node: string,
    private readonly accounts = false,
  ) {}

  /** Takes the failure a decision counted against an entry (not one inside a blocked network, nor a twin line). */
  add(event: SourcedEvent, decision: Decision, offset: number | undefined, text = ''): void {
    const key = decision.key
    if (key === undefined || decision.inside === true) return
    if (event.outcome === 'failure' && (decision.action === 'counted' || decision.action === 'blocked')) {
      const id = this.identity(event, offset, text)
      this.failures.push({instance: event.instance, key, time: event.time, tag: nameTag(event.user), id, ...(this.accounts ? {account: accountKey(event.user)} : {})})
    }
  }

  /** A successful login (it relaxes the windows but the first, on every node). */
  success(event: SourcedEvent, key: string): void {
    this.successes.push({instance: event.instance, key, time: event.time})
  }

  /**
   * node : file (device and inode: the same after a rename) : the line's byte offset (its number when not
   * known) and a hash of its text. The same line read again has the same identity; a log truncated in place
   * (logrotate's copytruncate) that reaches the same offset again with other lines does not.
   */
  private identity(event: SourcedEvent, offset: number | undefined, text: string): string {
    let file = this.files.get(event.file)
    if (file === undefined) {
      try {
        const st = statSync(event.file, {bigint: true})
        file = `${st.dev.toString(36)}.${st.ino.toString(36)}`
      } catch {
        file = escapeText(event.file, {max: 120})
      }
      this.files.set(event.file, file)
    }
    return `${this.node}:${file}:${offset !== undefined && offset >= 0 ? `o${offset}` : `l${event.lineNo}`}:${textHash(text)}`
  }
}

/** FNV-1a over (the first 1 KiB of) a line, as 8 hex digits. */
function textHash(text: string): string {
  let h = 0x811c9dc5
  const n = Math.min(text.length, 1024)
  for (let i = 0; i < n; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return (h >>> 0).toString(16).padStart(8, '0')
}
