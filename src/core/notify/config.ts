/**
 * The `notify` block of the configuration: how the administrator is told
 * that a run blocked (or released) addresses. Channels: e-mail through the
 * local sendmail binary or an SMTP server, and/or a command that reads the
 * digest as JSON on stdin. The block is optional in the configuration; when
 * present, it names at least one channel.
 */
import * as z from 'zod'

/**
 * A plain address (local@domain, the HTML5 form rules: `root@localhost` is
 * fine). No display names. A leading "-" is refused: sendmail would read the
 * address as an option.
 */
const emailAddress = z
  .email({pattern: z.regexes.html5Email, error: 'not an e-mail address (name@domain, without a display name)'})
  .refine((a) => !a.startsWith('-'), {message: 'an e-mail address must not start with "-"'})

const timeoutSeconds = z.number().positive().max(3600)

const sendmailSchema = z
  .object({
    /** The sendmail binary (postfix, exim and others install one). */
    path: z.string().min(1).default('/usr/sbin/sendmail'),
  })
  .strict()

const smtpSchema = z
  .object({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(25),
    /** TLS from the first byte (port 465). Otherwise STARTTLS is used when the server offers it. */
    secure: z.boolean().default(false),
    user: z.string().min(1).optional(),
    password: z.string().optional(),
    /** Refuse to send unless the connection is encrypted (and its certificate valid). */
    requireTls: z.boolean().default(false),
    timeoutSeconds: timeoutSeconds.default(30),
  })
  .strict()
  .refine((s) => (s.user === undefined) === (s.password === undefined), {
    message: 'set both user and password, or neither',
  })

const transportSchema = z
  .object({
    // `sendmail:` with nothing after it is null in YAML: the defaults.
    sendmail: z.preprocess((v) => (v === null ? {} : v), sendmailSchema).optional(),
    smtp: smtpSchema.optional(),
  })
  .strict()
  .refine((t) => (t.sendmail === undefined) !== (t.smtp === undefined), {
    message: 'choose exactly one transport: sendmail or smtp',
  })

const emailSchema = z
  .object({
    to: z.array(emailAddress).min(1, {message: 'name at least one recipient'}),
    /** Default: rcguard@<host name>, computed when the mail is sent. */
    from: emailAddress.optional(),
    subjectPrefix: z.string().max(64).default('[rcguard]'),
    transport: transportSchema.prefault({sendmail: {}}),
  })
  .strict()

const commandSchema = z
  .object({
    /** The program and its arguments: run directly, never through a shell. */
    argv: z
      .array(z.string())
      .min(1, {message: 'give the program and its arguments, e.g. ["/usr/local/bin/notify-admin"]'})
      .refine((a) => a[0] !== '', {message: 'the program (the first element) must not be empty'}),
    timeoutSeconds: timeoutSeconds.default(30),
  })
  .strict()

export const notifySchema = z
  .object({
    email: emailSchema.optional(),
    command: commandSchema.optional(),
    /** Also notify when blocks end (expire); otherwise only new blocks are reported. */
    onExpiry: z.boolean().default(false),
  })
  .strict()
  .refine((n) => n.email !== undefined || n.command !== undefined, {
    message: 'configure at least one channel: email, command or both',
  })

export type NotifyConfig = z.infer<typeof notifySchema>
export type EmailConfig = NonNullable<NotifyConfig['email']>
export type CommandConfig = NonNullable<NotifyConfig['command']>
