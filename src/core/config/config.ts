/**
 * The configuration file: YAML (JSON is valid YAML), validated with zod.
 * Unknown keys and bad values are refused with the key path in the message.
 */
import {dirname, resolve} from 'node:path'
import * as z from 'zod'
import {ConfigError} from '../errors.js'
import {parseCidr} from '../net/ip.js'
import {compilePhpDateFormat} from '../parser/dates.js'
import {ENVELOPE_IDS} from '../parser/envelopes.js'
import {isKnownZone} from '../parser/timezone.js'
import {notifySchema} from '../notify/config.js'
import {readConfigText} from './read.js'
import {clusterSchema} from '../cluster/config.js'
import {parseConfigDocument} from './document.js'
import {firewallNameProblems} from '../firewall/names.js'
import {DEFAULT_MAX_ENTRIES, MAX_WINDOW_ADDRESSES} from '../store/bounds.js'
import {DEFAULT_WINDOWS, MAX_WINDOW_USERS, MAX_WINDOWS} from '../decisions/windows.js'

export const DEFAULT_CONFIG_PATH = '/etc/rcguard/rcguard.yml'

const cidrString = z.string().refine((s) => parseCidr(s) !== null, {
  message: 'not an IPv4/IPv6 address or CIDR network',
})

const port = z.number().int().min(1).max(65535)

/**
 * A reverse proxy in front of Roundcube: its address (or network), and
 * optionally the one header it writes. A plain address keeps Roundcube's own
 * rule (X-Forwarded-For, else X-Real-IP) and refuses lines whose two headers
 * disagree.
 */
const trustedProxy = z.union([
  cidrString,
  z
    .object({
      address: cidrString,
      header: z.enum(['x-real-ip', 'x-forwarded-for']),
    })
    .strict(),
])

/** Which journald records are the web server's (journal-json logs): their trusted fields must match. */
const journalTrustSchema = z
  .object({
    comm: z.array(z.string().regex(/^[^\s]{1,64}$/, 'a process name (_COMM), optionally ending in *')).min(1).optional(),
    uid: z.array(z.number().int().nonnegative()).optional(),
    unit: z.array(z.string().regex(/^[^\s]{1,256}$/, 'a systemd unit name, optionally ending in *')).optional(),
    exe: z.array(z.string().regex(/^\/[^\s]{0,4095}$/, 'an absolute executable path, optionally ending in *')).optional(),
  })
  .strict()

const logSchema = z
  .object({
    /** A file, or a glob pattern matching the live logs (not their rotations). */
    path: z.string().min(1),
    format: z.enum(['auto', ...ENVELOPE_IDS]).default('auto'),
    ident: z.string().regex(/^[^\s:[\]]{1,64}$/, 'a syslog identity: no spaces, colons or brackets').default('roundcube'),
    dateFormat: z
      .string()
      .min(1)
      .refine(
        (f) => {
          try {
            compilePhpDateFormat(f)
            return true
          } catch {
            return false
          }
        },
        {message: 'not a PHP date format rcguard can read (supported: d j D l N S w z m n M F Y y a A g G h H i s u v e T O P p c r U)'},
      )
      .optional(),
    timezone: z.string().refine(isKnownZone, {message: 'not an IANA time zone name (e.g. Europe/Berlin)'}).optional(),
    sessionPrefix: z.enum(['auto', 'required', 'optional']).default('auto'),
    journalTrust: journalTrustSchema.optional(),
  })
  .strict()

/** A log is a path, or an object with one; a path alone is the object's short form. */
const logEntry = z.preprocess((v) => (typeof v === 'string' ? {path: v} : v), logSchema)

const instanceSchema = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,16}$/, 'use 1 to 16 letters, digits, "-" or "_" (it becomes part of a chain name)'),
    logs: z.array(logEntry).min(1),
    /** Roundcube's login_lc: 2 (its default) lowercases the errors log's user names, 1 only their domain, 0 neither. */
    loginLc: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(2),
    /** Bytes of a user name the userlogins log keeps (256 since Roundcube 1.2); 0: whole names (1.0, 1.1). */
    userNameCut: z.number().int().min(0).max(65536).default(256),
    ports: z.union([
      z.literal('all'),
      z
        .array(port)
        .min(1)
        .refine((ps) => new Set(ps).size === ps.length, {message: 'ports must not repeat'}),
    ]),
  })
  .strict()

const firewallSchema = z
  .object({
    backend: z.enum(['auto', 'iptables', 'ipset', 'nftables', 'none']).default('iptables'),
    action: z.enum(['DROP', 'REJECT']).default('DROP'),
    chains: z
      .array(z.enum(['INPUT', 'FORWARD', 'DOCKER-USER']))
      .min(1)
      .refine((cs) => new Set(cs).size === cs.length, {message: 'chains must not repeat'})
      .default(['INPUT']),
    ipv6Prefix: z.number().int().min(16).max(128).default(128),
    /** How long one firewall command may run before it is stopped and the run fails. */
    timeoutSeconds: z.number().positive().max(3600).default(60),
    prefix: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9_]{0,9}$/, 'use 1 to 10 letters, digits or "_", starting with a letter')
      .default('rcguard'),
  })
  .strict()

/** One more window: `maxAttempts` failures, or `maxUsers` distinct user names, within `periodMinutes` (one day at most). */
const windowSchema = z.union([
  z.object({maxAttempts: z.number().int().min(2).max(10000), periodMinutes: z.number().positive().max(1440)}).strict(),
  z.object({maxUsers: z.number().int().min(2).max(MAX_WINDOW_USERS), periodMinutes: z.number().positive().max(1440)}).strict(),
])

export const configSchema = z
  .object({
    enabled: z.boolean().default(true),
    maxAttempts: z.number().int().min(1).max(10000).default(6),
    periodMinutes: z.number().positive().max(525600).default(10),
    blockMinutes: z.number().min(0).max(5256000).default(60),
    database: z.string().min(1).default('/var/lib/rcguard/db.json'),
    whitelist: z.array(cidrString).default(['127.0.0.0/8', '::1']),
    trustedProxies: z.array(trustedProxy).default([]),
    countErrors: z.array(z.number().int()).default([0, 1, 4]),
    resetOnSuccess: z.boolean().default(false),
    /** The database's ceiling: past it, the oldest entries without a block in force are dropped (store/bounds.ts). */
    maxEntries: z.number().int().min(1000).max(10_000_000).default(DEFAULT_MAX_ENTRIES),
    instances: z
      .array(instanceSchema)
      .min(1)
      .prefault([
        {
          name: 'master',
          logs: ['/var/log/roundcube/errors.log', '/var/log/roundcube/userlogins.log'],
          ports: [80, 443],
        },
      ])
      .refine((is) => new Set(is.map((i) => i.name)).size === is.length, {
        message: 'instance names must be unique',
      }),
    firewall: firewallSchema.prefault({}),
    notify: notifySchema.optional(),
    /**
     * More windows beside the first rule (decisions/windows.ts): failures, or distinct user names tried, within
     * a period. Absent: DEFAULT_WINDOWS; [] switches them off.
     */
    windows: z.array(windowSchema).max(MAX_WINDOWS).default(() => DEFAULT_WINDOWS.map((w) => ({...w}))),
    /** Networks swarming (decisions/networks.ts): minAddresses distinct addresses of one /ipv4Prefix or /ipv6Prefix failing within periodMinutes block the network. */
    networkBlock: z
      .object({
        ipv4Prefix: z.number().int().min(8).max(31).default(24),
        ipv6Prefix: z.number().int().min(16).max(127).default(48),
        minAddresses: z.number().int().min(2).max(MAX_WINDOW_ADDRESSES),
        periodMinutes: z.number().positive().max(1440),
      })
      .strict()
      .optional(),
    /** Accounts under attack (decisions/accounts.ts): minAddresses distinct addresses failing on one user name within periodMinutes are reported once. */
    accountAlert: z
      .object({
        minAddresses: z.number().int().min(2).max(MAX_WINDOW_ADDRESSES),
        periodMinutes: z.number().positive().max(1440),
        /** Also block the addresses that failed on the account at least twice within the window. */
        block: z.boolean().default(false),
      })
      .strict()
      .optional(),
    /** Prometheus metrics for node_exporter's textfile collector (core/metrics); absent: none written. */
    metrics: z
      .object({
        textfile: z
          .string()
          .min(1)
          .refine((p) => /[^/]\.prom$/.test(p), {message: 'must name a file ending in .prom (node_exporter\'s textfile collector reads only those)'}),
      })
      .strict()
      .optional(),
    /** Several web nodes, one guard (core/cluster): failures counted and blocks shared through Redis; absent: this host alone. */
    cluster: clusterSchema.optional(),
    escalation: z
      .object({
        /** Each new block of an address blocked before lasts blockMinutes × factor^(earlier blocks). 1: no escalation. */
        factor: z.number().min(1).max(100).default(2),
        /** The longest a block can grow to. */
        maxMinutes: z.number().positive().max(5256000).default(10080),
        /** Block history is forgotten this long after an address's last block ended (or it was last seen). */
        forgetDays: z.number().positive().max(3650).default(30),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  // Every name that reaches iptables, ipset or nft, checked against what that tool takes.
  .superRefine((config, ctx) => {
    for (const p of firewallNameProblems(config)) ctx.addIssue({code: 'custom', path: p.path, message: p.message})
    // IPv6 failures count against their firewall.ipv6Prefix network: a networkBlock network no wider is one such entry, never a swarm.
    const nb = config.networkBlock
    if (nb !== undefined && config.firewall.ipv6Prefix < 128 && nb.ipv6Prefix >= config.firewall.ipv6Prefix) {
      ctx.addIssue({code: 'custom', path: ['networkBlock', 'ipv6Prefix'], message: `must be shorter than firewall.ipv6Prefix (${config.firewall.ipv6Prefix}): IPv6 failures count against those networks, so a network no wider is one address`})
    }
  })

export type Config = z.infer<typeof configSchema>
export type InstanceConfig = Config['instances'][number]
export type LogConfig = InstanceConfig['logs'][number]
export type TrustedProxyConfig = Config['trustedProxies'][number]

/** The address or network of a trustedProxies entry. */
export function proxyAddress(p: TrustedProxyConfig): string {
  return typeof p === 'string' ? p : p.address
}

export interface LoadedConfig {
  config: Config
  /** The file it came from, or null when built-in defaults are used. */
  path: string | null
}

function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const where = issue.path.length > 0 ? issue.path.map(String).join('.') : '(top level)'
      if (issue.code === 'unrecognized_keys') {
        const keys = issue.keys.join(', ')
        return `${where === '(top level)' ? '' : `${where}: `}unknown key${issue.keys.length > 1 ? 's' : ''} ${keys}`
      }
      return `${where}: ${issue.message}`
    })
    .join('; ')
}

/** Validates an already-parsed object. Relative paths are resolved against baseDir. */
export function validateConfig(raw: unknown, source: string, baseDir: string): Config {
  const result = configSchema.safeParse(raw ?? {})
  if (!result.success) {
    throw new ConfigError(`invalid configuration in ${source}: ${formatIssues(result.error)}`)
  }
  const config = result.data
  config.database = resolve(baseDir, config.database)
  if (config.metrics !== undefined) config.metrics.textfile = resolve(baseDir, config.metrics.textfile)
  if (config.cluster?.ca !== undefined) config.cluster.ca = resolve(baseDir, config.cluster.ca)
  for (const instance of config.instances) {
    for (const log of instance.logs) log.path = resolve(baseDir, log.path)
  }
  // A notification program named by a relative path is found next to the configuration.
  const argv = config.notify?.command?.argv
  if (argv !== undefined && argv[0] !== undefined && argv[0].includes('/')) argv[0] = resolve(baseDir, argv[0])
  const sendmail = config.notify?.email?.transport
  if (sendmail !== undefined && 'sendmail' in sendmail && sendmail.sendmail?.path !== undefined) {
    sendmail.sendmail.path = resolve(baseDir, sendmail.sendmail.path)
  }
  return config
}

/**
 * Loads the configuration. When the path was chosen implicitly (the default
 * path) and the file does not exist, the built-in defaults are used; an
 * explicitly named file must exist.
 */
export async function loadConfig(path: string, explicit: boolean): Promise<LoadedConfig> {
  const text = await readConfigText(path)
  if (text === null) {
    if (!explicit) return {config: validateConfig({}, 'built-in defaults', process.cwd()), path: null}
    throw new ConfigError(`configuration file ${path} does not exist`)
  }
  return {config: validateConfig(await parseConfigDocument(text, path), path, dirname(resolve(path))), path}
}
