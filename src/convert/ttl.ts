// Keys with a TTL share leases by expiry: one lease per second of expiry, so a million keys written
// over an hour need at most 3,600 leases. Pure arithmetic, in milliseconds since the epoch.

/** The second (since the epoch) a key's lease ends at: its expiry rounded to the nearest second. */
export const expirySecond = (expiresMs: number): number => Math.round(expiresMs / 1000);

/**
 * The TTL to grant at `nowMs` for the lease of expiry second `second`: the whole seconds left, at
 * least 1 (etcd's unit). Off by at most 0.5 s (the rounding here) plus 0.5 s (the bucket).
 */
export const leaseTtlFor = (second: number, nowMs: number): number => Math.max(1, Math.round((second * 1000 - nowMs) / 1000));

/** A key whose expiry has passed must not survive the conversion. */
export const expired = (expiresMs: number, nowMs: number): boolean => expiresMs <= nowMs;
