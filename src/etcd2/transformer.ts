// The transformer program that `etcdctl migrate --transformer` runs (see etcd2/convert/transform.ts): v2
// nodes in on stdin, v3 records out on stdout, the TTL keys into a spill file and, at the end, a
// summary file for the v2-to-v3 step. migrate runs a transformer without arguments, so the step
// writes a small script that imports this module and calls runTransformer with the two files
// (etcd2/steps/v2tov3.ts). A failure is one line on stderr (migrate passes it on) and exit code 1.
//
// migrate loses the end of the output if the transformer exits too soon: it closes the pipe it
// reads as soon as the transformer has exited, whatever the pipe still holds, and takes the error
// for the end (etcd 3.3's startTransformer waits on the process at once; readKeys' error is
// dropped; BENCHMARKS.md: keys were lost). So the output ends with more than the pipe can
// hold of the largest record already sent, again (the same key at the same revision: bbolt writes it
// over with the same bytes). Once that write is in the pipe, migrate has read every real record.
// (A record with an unknown field would be one big record, but etcd 3.3 keeps unknown fields.)
//
// The records go back in mod revision order, once migrate has sent every node (etcd2/convert/revorder.ts:
// migrate writes them into bbolt about twice as fast so).
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { RevisionOrder } from './convert/revorder.ts';
import { readSpill, SpillWriter } from './convert/spill.ts';
import { V2ToV3Transform } from './convert/transform.ts';
import { ttlLineFields } from './convert/ttl.ts';
import { ChildNodeScanner, CONCATENATED, type V2Node } from './v2nodes.ts';
import { parseJson } from '../etcd/client/json.ts';

export interface TransformerFiles {
  ttlFile: string;
  summaryFile: string;
  /** Where records wait when they are more than `sortBudget` bytes (default: etcd2/convert/revorder.ts). */
  sortDir: string;
  sortBudget?: number;
  /**
   * The nodes migrate never sends (hidden: etcd2/convert/v2store.ts), one JSON a line, read from the v2
   * store itself: converted after migrate's, so their directories' TTLs are known by then.
   */
  hiddenFile?: string;
  /** The moment that decides which keys are due, the same as for the read of the v2 store (default: now). */
  nowMs?: number;
}

export async function runTransformer(files: TransformerFiles): Promise<void> {
  // A write error (EPIPE: migrate is gone) reaches the write's callback; no stack trace besides.
  process.stdout.on('error', () => {});
  const spill = new SpillWriter(files.ttlFile);
  try {
    const t = new V2ToV3Transform();
    const scanner = new ChildNodeScanner(CONCATENATED);
    const records = new RevisionOrder(files.sortDir, files.sortBudget);
    let largest: Buffer | undefined;
    const convert = async (n: V2Node, now: number) => {
      const { record, ttl } = t.node(n, now);
      if (ttl) await spill.write(ttlLineFields(ttl));
      if (!record) return;
      records.add(n.modifiedIndex, record);
      if (!largest || record.length > largest.length) largest = record;
    };
    process.stdin.setEncoding('utf8');
    for await (const chunk of process.stdin as AsyncIterable<string>) {
      const now = files.nowMs ?? Date.now();
      for (const text of scanner.push(chunk)) await convert(parseNode(text), now);
    }
    if (!scanner.complete) throw new Error('the v2 nodes from etcdctl migrate ended in the middle of a node');
    if (files.hiddenFile) {
      const now = files.nowMs ?? Date.now();
      for await (const [text] of readSpill(files.hiddenFile)) await convert(parseNode(text!), now);
    }
    for (const chunk of records.sorted()) await write(chunk);
    const last: Buffer | undefined = largest;
    if (last) {
      await write(Buffer.concat(Array.from({ length: Math.ceil((pipeCapacity() + 1) / last.length) }, () => last)));
    }
    await spill.close();
    writeFileSync(`${files.summaryFile}.tmp`, JSON.stringify(t.summary()), { mode: 0o600 });
    renameSync(`${files.summaryFile}.tmp`, files.summaryFile);
  } catch (e) {
    process.stderr.write(`etcd-migrate transformer: ${(e as Error)?.message ?? String(e)}\n`);
    process.exitCode = 1;
    await spill.close().catch(() => {});
  }
}

const parseNode = (text: string): V2Node => parseJson<V2Node>(text, 'a v2 node from etcdctl migrate');

/** Resolves once the bytes are in the pipe (the kernel's), not only in Node's queue. */
const write = (b: Buffer): Promise<void> =>
  new Promise((resolve, reject) => {
    process.stdout.write(b, (e) => (e ? reject(e) : resolve()));
  });

/**
 * The most the pipe from here to migrate can hold: Linux makes a pipe 16 pages big (64 KiB with 4 KiB
 * pages; less when a user holds too many pipe pages) and migrate does not resize it. The page size
 * is in the auxiliary vector (AT_PAGESZ); unreadable, the largest there is (64 KiB) counts.
 */
export function pipeCapacity(): number {
  return 16 * (pageSize() ?? 65_536);
}

function pageSize(): number | undefined {
  const AT_NULL = 0n;
  const AT_PAGESZ = 6n;
  try {
    const auxv = readFileSync('/proc/self/auxv');
    for (let i = 0; i + 16 <= auxv.length; i += 16) {
      const type = auxv.readBigUInt64LE(i);
      if (type === AT_NULL) break;
      if (type === AT_PAGESZ) return Number(auxv.readBigUInt64LE(i + 8));
    }
  } catch {
    // No /proc: the largest page size.
  }
  return undefined;
}
