/**
 * Wall-clock times without an offset (syslog's traditional format, PHP zone
 * names) become instants through the IANA time-zone data that Node carries
 * (Intl). `undefined` as zone means the host's own zone.
 */

const formatters = new Map<string, Intl.DateTimeFormat>()

function formatter(zone: string | undefined): Intl.DateTimeFormat {
  const key = zone ?? ''
  let f = formatters.get(key)
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    })
    formatters.set(key, f)
  }
  return f
}

/** Whether `zone` is an IANA zone name Node knows. */
export function isKnownZone(zone: string): boolean {
  try {
    formatter(zone)
    return true
  } catch {
    return false
  }
}

/** Offset of `zone` from UTC at instant t, in milliseconds (east positive). */
export function zoneOffset(t: number, zone: string | undefined): number {
  const parts = formatter(zone).formatToParts(new Date(t))
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0)
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'))
  return asUtc - (t - (t % 1000 + 1000) % 1000)
}

/** The instant at which the wall clock of `zone` shows the given fields. */
export function wallTimeToUtc(
  year: number, month: number, day: number, hour: number, minute: number, second: number, ms: number,
  zone: string | undefined,
): number {
  const naive = Date.UTC(year, month, day, hour, minute, second, ms)
  let t = naive - zoneOffset(naive, zone)
  // Around a DST change the offset at the first guess may be the other one.
  const again = naive - zoneOffset(t, zone)
  if (again !== t) t = again
  return t
}

export const UTC_NAMES = new Set(['UTC', 'GMT', 'Z', 'UT', 'Etc/UTC', 'Etc/GMT', 'Universal', 'Zulu'])
