/**
 * `scan --json` output written as it is produced: `{"events":[` first, one
 * event at a time, then the summary's other members and `}`. The document is
 * the same as if it were built whole, but a log of any size needs memory for
 * one event, not all of them.
 */
import type {SourcedEvent} from '../core/decisions/decide.js'
import {escapeJson} from '../core/text/escape.js'

export interface EventJson {
  line: number
  time: string
  ip: string | null
  user: string
  grammar: string
  counted: boolean
  reason: string
  file: string
  instance: string
}

export function eventJson(e: SourcedEvent): EventJson {
  return {
    line: e.lineNo,
    time: new Date(e.time).toISOString(),
    ip: e.ip,
    user: e.user,
    grammar: e.grammar,
    counted: e.counted,
    reason: e.reason,
    file: e.file,
    instance: e.instance,
  }
}

export class JsonEventStream {
  private opened = false
  private count = 0

  constructor(private readonly out: {write(chunk: string): unknown}) {}

  /** Starts the document (once the command knows it will not fail on its arguments). */
  open(): void {
    if (this.opened) return
    this.opened = true
    this.out.write('{"events":[')
  }

  /** One failed login (successful ones are not listed). */
  event(e: SourcedEvent): void {
    if (e.outcome !== 'failure') return
    this.open()
    this.out.write(`${this.count === 0 ? '\n' : ',\n'}${escapeJson(JSON.stringify(eventJson(e)))}`)
    this.count++
  }

  /** Ends the document with the other members of the summary. */
  close(rest: Record<string, unknown>): void {
    this.open()
    const members = escapeJson(JSON.stringify(rest, null, 2)).slice(1, -1).trim()
    this.out.write(`${this.count === 0 ? '' : '\n'}]${members === '' ? '' : `,\n${members}`}\n}\n`)
  }
}

export interface BlockJson {
  ip: string
  instance: string
  attempts: number
  lastUser: string
  /** ISO 8601. */
  blockedAt: string
  /** ISO 8601; null: until deleted. */
  blockedUntil: string | null
}

export function blockJson(b: {ip: string; instance: string; attempts: number; lastUser: string; blockedAt: number; blockedUntil: number | null}): BlockJson {
  return {
    ip: b.ip,
    instance: b.instance,
    attempts: b.attempts,
    lastUser: b.lastUser,
    blockedAt: new Date(b.blockedAt).toISOString(),
    blockedUntil: b.blockedUntil === null ? null : new Date(b.blockedUntil).toISOString(),
  }
}
