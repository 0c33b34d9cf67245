// Keys with a TTL share leases by expiry: all keys due in the same whole second from the moment the
// leases are granted share one lease, so a million keys written over an hour need at most 3,600.
// Pure arithmetic, in milliseconds since the epoch.

/**
 * The lease TTL (whole seconds, at least 1) for a key due at `expiresMs`, granted at `grantMs`:
 * rounded down, so the lease ends up to 1 s before the key's v2 expiry. That offsets what a restart
 * adds: etcd gives every lease its full TTL again when it starts, so the time between this grant and
 * the start of the target etcd lengthens every lease (etcd-facts).
 */
export const leaseTtl = (expiresMs: number, grantMs: number): number =>
  Math.max(1, Math.floor((expiresMs - grantMs) / 1000));

/** The TTL to ask for when a lease planned at `plannedMs` is granted at `nowMs`: less the whole seconds gone since. */
export const ttlAtGrant = (ttl: number, plannedMs: number, nowMs: number): number =>
  Math.max(1, ttl - Math.round((nowMs - plannedMs) / 1000));

/** A key whose expiry has passed must not survive the conversion. */
export const expired = (expiresMs: number, nowMs: number): boolean => expiresMs <= nowMs;

/**
 * A line of the TTL spill file and of the pending TTL file: expiry (ms), key (base64), (key, value)
 * digest, and the value (base64; a pending file of an earlier build has none).
 */
export type TtlLine = [expiresMs: number, keyB64: string, kv: bigint, valueB64?: string];

/** Its fields as both files hold them (the digest in hex): the pending file copies the spill's bytes. */
export const ttlLineFields = ([exp, key, kv, value]: TtlLine): Array<number | string> =>
  value === undefined ? [exp, key, kv.toString(16)] : [exp, key, kv.toString(16), value];
