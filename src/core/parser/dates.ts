/**
 * Timestamps of the file driver's envelope. Roundcube formats them with PHP's
 * date() and `log_date_format`, default `d-M-Y H:i:s O`
 * (`25-Nov-2026 13:00:00 +0000`). The common ISO-like alternative
 * `Y-m-d H:i:s[.u] O` is accepted too.
 */

const MONTHS: Record<string, number> = {
  Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11,
}

const DMY = /^(\d{1,2})-([A-Z][a-z]{2})-(\d{4}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))? ([+-])(\d{2}):?(\d{2})$/
const YMD = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?: ?(?:([+-])(\d{2}):?(\d{2})|(Z)))?$/

function build(
  year: number, month: number, day: number, h: number, m: number, s: number,
  frac: string | undefined, sign: string | undefined, oh: string | undefined, om: string | undefined,
): number | null {
  if (month < 0 || month > 11 || day < 1 || day > 31 || h > 23 || m > 59 || s > 60) return null
  const ms = frac === undefined ? 0 : Math.floor(Number(`0.${frac}`) * 1000)
  let t = Date.UTC(year, month, day, h, m, s, ms)
  if (sign !== undefined && oh !== undefined && om !== undefined) {
    const offset = (Number(oh) * 60 + Number(om)) * 60_000
    t -= sign === '-' ? -offset : offset
  }
  return Number.isFinite(t) ? t : null
}

/** Epoch milliseconds, or null when the text is not a date this parser knows. */
export function parseEnvelopeDate(text: string): number | null {
  let m = DMY.exec(text)
  if (m !== null) {
    const month = MONTHS[m[2] ?? '']
    if (month === undefined) return null
    return build(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]), m[7], m[8], m[9], m[10])
  }
  m = YMD.exec(text)
  if (m !== null) {
    const z = m[11] === 'Z'
    return build(
      Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), m[7],
      z ? '+' : m[8], z ? '00' : m[9], z ? '00' : m[10],
    )
  }
  return null
}
