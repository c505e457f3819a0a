/**
 * Real TCP packets between two network namespaces (test/netns): a listener
 * in one, connection attempts from a chosen local address in the other.
 */
import {execa, type ResultPromise} from 'execa'
import {stripSaveComments} from './env.js'

/** Runs a command in a namespace; a failure is the test's set-up failing. */
export async function sh(ns: string, args: string[]): Promise<void> {
  const r = await execa('ip', ['netns', 'exec', ns, ...args], {reject: false})
  if (r.exitCode !== 0) throw new Error(`${args.join(' ')} in ${ns}: ${String(r.stderr)}`)
}

/** A TCP listener on these ports (IPv4 and IPv6) in namespace ns, for two minutes at most; killed after the test. */
export function listen(t: {after: (fn: () => void) => void}, ns: string, ports: number[]): ResultPromise {
  const script = `
const net = require('node:net');
for (const port of ${JSON.stringify(ports)}) net.createServer((s) => s.end('hi\\n')).listen(port, '::');
setTimeout(() => process.exit(0), 120000);
`
  const listener = execa('ip', ['netns', 'exec', ns, 'node', '-e', script], {reject: false})
  t.after(() => {
    listener.kill()
  })
  return listener
}

const CONNECT = `
const net = require('node:net');
const [host, port, local] = process.argv.slice(1);
const s = net.connect({host, port: Number(port), localAddress: local, timeout: 1500});
s.on('data', () => { console.log('open'); process.exit(0); });
s.on('timeout', () => { console.log('timeout'); process.exit(0); });
s.on('error', (e) => { console.log(e.code); process.exit(0); });
`

/** One connection from `local` in namespace ns: 'open', 'timeout' (dropped) or the error code (rejected). */
export async function connect(ns: string, host: string, port: number, local: string): Promise<string> {
  const r = await execa('ip', ['netns', 'exec', ns, 'node', '-e', CONNECT, host, String(port), local], {reject: false})
  return String(r.stdout).trim()
}

/**
 * Joins namespace `server` to namespace `client` by a veth pair named from
 * `stem` (`<stem>s` in the server, `<stem>c` in the client): the server gets
 * one IPv4 (/24) and one IPv6 (/64) address, the client every address given,
 * and all links come up (loopback in the server too).
 */
export async function linkPair(stem: string, server: {ns: string; v4: string; v6: string}, client: {ns: string; v4: string[]; v6: string[]}): Promise<void> {
  await execa('ip', ['link', 'add', `${stem}s`, 'netns', server.ns, 'type', 'veth', 'peer', 'name', `${stem}c`, 'netns', client.ns])
  await sh(server.ns, ['ip', 'addr', 'add', `${server.v4}/24`, 'dev', `${stem}s`])
  await sh(server.ns, ['ip', '-6', 'addr', 'add', `${server.v6}/64`, 'dev', `${stem}s`, 'nodad'])
  await sh(server.ns, ['ip', 'link', 'set', `${stem}s`, 'up'])
  await sh(server.ns, ['ip', 'link', 'set', 'lo', 'up'])
  for (const a of client.v4) await sh(client.ns, ['ip', 'addr', 'add', `${a}/24`, 'dev', `${stem}c`])
  for (const a of client.v6) await sh(client.ns, ['ip', '-6', 'addr', 'add', `${a}/64`, 'dev', `${stem}c`, 'nodad'])
  await sh(client.ns, ['ip', 'link', 'set', `${stem}c`, 'up'])
}

/** A namespace's command runner, as test/helpers/env.ts netns() gives it. */
type Runner = {run: (cmd: string, args: string[], input?: string) => Promise<{stdout: string}>}

/**
 * What the backend holds, as text: the kernel's own listing (nft's table;
 * iptables-save and ip6tables-save without counters or save comments; the
 * instance's ipset sets).
 */
export async function firewallListing(server: Runner, backend: string, instance = 'master'): Promise<string> {
  if (backend === 'nftables') return (await server.run('nft', ['list', 'table', 'inet', 'rcguard'])).stdout
  const save = async (tool: string): Promise<string> => stripSaveComments((await server.run(tool, ['-t', 'filter'])).stdout).replace(/\[\d+:\d+\]/g, '[]')
  const tables = `${await save('iptables-save')}\n${await save('ip6tables-save')}`
  if (backend === 'iptables') return tables
  return `${tables}\n${(await server.run('ipset', ['save', `rcguard-${instance}-4`])).stdout}\n${(await server.run('ipset', ['save', `rcguard-${instance}-6`])).stdout}`
}

/** Whether a listing holds the network or address (as each tool writes it: alone, or in a list). */
export function listingHolds(text: string, cidr: string): boolean {
  return new RegExp(`(^|[\\s,{])${cidr.replace(/[./]/g, '\\$&')}([\\s,}]|$)`, 'm').test(text)
}
