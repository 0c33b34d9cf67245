// When leases end, measured on a running etcd (3.4+: the /v3 gateway). No test framework here:
// bench/ uses it too.

/**
 * When each lease (hex id) ends, in ms since the epoch, to within a few ms. etcd reports whole
 * seconds rounded down, so the moment the figure drops from n+1 to n, n+1 seconds are left: poll
 * every lease until its figure drops.
 */
export async function leaseExpiries(endpoint: string, ids: Iterable<string>): Promise<Map<string, number>> {
  const ask = async (id: string) => {
    const r = await fetch(`${endpoint}/v3/lease/timetolive`, {
      method: 'POST',
      body: JSON.stringify({ ID: BigInt(`0x${id}`).toString() }),
    });
    return Number(((await r.json()) as { TTL?: string }).TTL ?? 0); // 0 is left out of the JSON
  };
  const out = new Map<string, number>();
  await Promise.all(
    [...ids].map(async (id) => {
      let prev = await ask(id);
      let prevAt = Date.now();
      for (;;) {
        await new Promise((res) => setTimeout(res, 10));
        const t0 = Date.now();
        const n = await ask(id);
        if (n !== prev) {
          out.set(id, (prevAt + t0) / 2 + (n + 1) * 1000);
          return;
        }
        prevAt = Date.now();
        prev = n;
      }
    }),
  );
  return out;
}
