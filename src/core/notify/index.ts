/**
 * Sends a run's digest through every configured channel. A notification
 * that fails is a warning (one line naming the channel and the cause),
 * never a failed run: notify() does not throw, and every channel has a
 * deadline so a hung MTA or command cannot hold the cron job.
 */
import {hostname} from 'node:os'
import type {Transporter} from 'nodemailer'
import {searchPath} from '../firewall/runner.js'
import type {CommandConfig, EmailConfig, NotifyConfig} from './config.js'
import {escapeText} from '../text/escape.js'
import {digestText, type Digest} from './digest.js'
import {programToRun} from './programs.js'

export {notifySchema, type NotifyConfig} from './config.js'
export {buildDigest, digestText, type BlockLike, type Digest, type DigestBlock} from './digest.js'

export const ATTACHMENT_NAME = 'rcguard-digest.json'

/**
 * nodemailer's sendmail transport has no timeout of its own; past this the
 * run goes on with a warning.
 */
const SENDMAIL_DEADLINE_MS = 60_000

type Log = (line: string) => void

class DeadlineError extends Error {}

/** Resolves or rejects like `work`, or rejects with DeadlineError after `ms`. */
async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what} did not finish within ${ms / 1000} s`)), ms)
    timer.unref()
  })
  try {
    return await Promise.race([work, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** An error's text on one printable line. */
function oneLine(text: string, max = 300): string {
  return escapeText(text.replace(/\s*\r?\n\s*/g, ' ').trim(), {max})
}

function causeOf(err: unknown): string {
  if (!(err instanceof Error)) return oneLine(String(err))
  const e = err as Error & {code?: string; path?: string}
  return oneLine(e.message === '' ? (e.code ?? e.name) : e.message)
}

function channelName(email: EmailConfig): string {
  const {sendmail, smtp} = email.transport
  if (smtp !== undefined) return `smtp ${smtp.host}:${smtp.port}`
  return `sendmail ${sendmail?.path ?? '/usr/sbin/sendmail'}`
}

/** A hint for the causes an administrator can fix in the configuration or on the host. */
function emailHint(err: unknown): string {
  const e = err as {code?: string; message?: string} | undefined
  if (e?.code === 'ENOENT' || /command not found/i.test(e?.message ?? '')) {
    return ' (install an MTA such as postfix, or set notify.email.transport.smtp)'
  }
  if (e?.code === 'EACCES') return ' (the sendmail path is not executable)'
  if (e?.code === 'EAUTH') return ' (check notify.email.transport.smtp.user and password)'
  if (e?.code === 'ETIMEDOUT') return ' (no answer within notify.email.transport.smtp.timeoutSeconds)'
  return ''
}

/** nodemailer is loaded only by a run that sends mail: most runs send none, and loading it costs about 70 ms. */
async function createTransporter(email: EmailConfig): Promise<{transporter: Transporter; deadlineMs: number}> {
  const {default: nodemailer} = await import('nodemailer')
  const {sendmail, smtp} = email.transport
  if (smtp !== undefined) {
    const ms = smtp.timeoutSeconds * 1000
    const transporter = nodemailer.createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: smtp.secure,
      requireTLS: smtp.requireTls,
      // Without requireTls plain text is acceptable, so an opportunistic
      // STARTTLS with an unverified certificate (a local MTA's self-signed
      // one) is better than refusing to send; with secure or requireTls the
      // certificate must be valid.
      tls: {rejectUnauthorized: smtp.secure || smtp.requireTls},
      auth: smtp.user === undefined ? undefined : {user: smtp.user, pass: smtp.password ?? ''},
      connectionTimeout: ms,
      greetingTimeout: ms,
      // Idle time a little longer than each phase's: a silent server is then
      // named by its phase ("Greeting never received"), not by whichever of
      // two equal timers a loaded machine happened to fire first.
      socketTimeout: ms + 500,
      dnsTimeout: ms,
      logger: false,
    })
    // The phase timeouts above normally fire first, with nodemailer's precise
    // message; the deadline bounds what they do not cover.
    return {transporter, deadlineMs: ms + 1500}
  }
  const transporter = nodemailer.createTransport({
    sendmail: true,
    newline: 'unix',
    path: sendmail?.path ?? '/usr/sbin/sendmail',
    logger: false,
  })
  return {transporter, deadlineMs: SENDMAIL_DEADLINE_MS}
}

async function sendEmail(email: EmailConfig, digest: Digest, log: Log): Promise<string | null> {
  const channel = channelName(email)
  let transporter: Transporter | undefined
  if (email.transport.smtp === undefined) {
    const sendmail = await programToRun(email.transport.sendmail?.path ?? '/usr/sbin/sendmail')
    if ('refused' in sendmail) return `notification by e-mail via ${oneLine(channel, 200)} refused, not run: ${sendmail.refused}`
  }
  try {
    const {subject, text} = digestText(digest, email.subjectPrefix)
    const created = await createTransporter(email)
    transporter = created.transporter
    const info = (await withDeadline(
      transporter.sendMail({
        from: email.from ?? `rcguard@${hostname() || 'localhost'}`,
        to: email.to,
        subject,
        text,
        headers: {'Auto-Submitted': 'auto-generated'},
        attachments: [
          {
            filename: ATTACHMENT_NAME,
            contentType: 'application/json',
            content: `${JSON.stringify(digest, null, 2)}\n`,
          },
        ],
      }),
      created.deadlineMs,
      'sending',
    )) as {messageId?: string}
    log(`notified ${email.to.join(', ')} by e-mail via ${channel} (${info.messageId ?? 'no message id'})`)
    return null
  } catch (err) {
    return `notification by e-mail via ${channel} failed: ${causeOf(err)}${emailHint(err)}`
  } finally {
    transporter?.close()
  }
}

async function runCommand(command: CommandConfig, digest: Digest, log: Log): Promise<string | null> {
  const [program = '', ...args] = command.argv
  const name = `notification by command ${oneLine(program, 200)}`
  const checked = await programToRun(program)
  if ('refused' in checked) return `${name} refused, not run: ${checked.refused}`
  try {
    // Loaded only by a run that notifies by command, as nodemailer only by one that mails.
    const {execa} = await import('execa')
    const result = await execa(checked.path, args, {
      input: `${JSON.stringify(digest)}\n`,
      reject: false,
      timeout: command.timeoutSeconds * 1000,
      forceKillAfterDelay: 2000,
      stdout: 'ignore',
      stripFinalNewline: false,
      env: {PATH: searchPath(process.env.PATH)},
      extendEnv: true,
    })
    const errno = (result.cause as NodeJS.ErrnoException | undefined)?.code
    const stderr = typeof result.stderr === 'string' ? result.stderr : ''
    const firstLine = stderr
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l !== '')
    const said = firstLine === undefined ? '' : `: ${oneLine(firstLine)}`
    if (errno === 'ENOENT') return `${name} failed: not found (check notify.command.argv)`
    if (errno === 'EACCES') return `${name} failed: not executable (check its permissions)`
    if (result.timedOut) return `${name} failed: did not finish within ${command.timeoutSeconds} s${said}`
    if (result.exitCode !== undefined && result.exitCode !== 0) return `${name} failed: exit code ${result.exitCode}${said}`
    if (result.signal !== undefined) return `${name} failed: killed by ${result.signal}${said}`
    if (result.failed) return `${name} failed: ${oneLine(result.shortMessage ?? 'could not be run')}`
    log(`ran ${oneLine(program, 200)} with the digest on stdin`)
    return null
  } catch (err) {
    return `${name} failed: ${causeOf(err)}`
  }
}

/**
 * Sends `digest` through every channel of `config`, at once, and returns the
 * warnings (one line per failed channel). Never throws. Without onExpiry,
 * released blocks are left out, and a digest of releases only sends nothing.
 */
export async function notify(config: NotifyConfig, digest: Digest, options: {log?: (line: string) => void} = {}): Promise<string[]> {
  const log: Log = options.log ?? (() => undefined)
  try {
    const sent: Digest = config.onExpiry ? digest : {...digest, released: []}
    if (sent.blocked.length === 0 && sent.released.length === 0 && (sent.accounts ?? []).length === 0) return []
    const tasks: Promise<string | null>[] = []
    if (config.email !== undefined) tasks.push(sendEmail(config.email, sent, log))
    if (config.command !== undefined) tasks.push(runCommand(config.command, sent, log))
    const results = await Promise.all(tasks)
    return results.filter((w): w is string => w !== null)
  } catch (err) {
    return [`notification failed: ${causeOf(err)}`]
  }
}
