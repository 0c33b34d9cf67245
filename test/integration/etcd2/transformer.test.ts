// The transformer program (src/etcd2/transformer.ts) as etcdctl migrate runs it: v2 nodes, one JSON object
// after the other, on stdin; records on stdout; the TTL keys and a summary in files. The end of its
// output is a pipe's worth of a record sent again, so that migrate has read every real record before
// the transformer exits (migrate drops what the pipe still holds then; see the module's comment).
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REPO } from '../../helpers/env.ts';
import { pipeCapacity } from '../../../src/etcd2/transformer.ts';
import { tmpDir } from '../../helpers/tmp.ts';

async function transform(input: string, sortBudget?: number) {
  const dir = await tmpDir();
  const files = {
    ttlFile: path.join(dir, 'ttl.tsv'),
    summaryFile: path.join(dir, 'summary.json'),
    sortDir: dir,
    sortBudget,
  };
  const module = pathToFileURL(path.join(REPO, 'src/etcd2/transformer.ts')).href;
  const r = await execa(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { runTransformer } = await import(${JSON.stringify(module)}); ` +
        `await runTransformer(${JSON.stringify(files)});`,
    ],
    {
      input,
      encoding: 'buffer',
      reject: false,
    },
  );
  const records: Buffer[] = [];
  const out = Buffer.from(r.stdout);
  for (let pos = 0; pos < out.length;) {
    const len = Number(out.readBigUInt64LE(pos));
    records.push(out.subarray(pos, pos + 8 + len));
    pos += 8 + len;
  }
  const summary = await fs.readFile(files.summaryFile, 'utf8').then(JSON.parse, () => undefined);
  const ttl = await fs.readFile(files.ttlFile, 'utf8').catch(() => '');
  return { r, records, summary, ttl, bytes: out.length, left: await fs.readdir(dir) };
}

describe('the transformer program', () => {
  it('sends a record per key in order, then more than a pipe holds of one already sent; spills TTL keys', async () => {
    const nodes = [{ key: '/', dir: true, modifiedIndex: 1, createdIndex: 1 }];
    for (let i = 0; i < 3000; i++) {
      nodes.push({
        key: `/registry/events/e${i}`,
        value: `{"i":${i},"s":"}{\\"x"}`,
        ...(i % 3 === 0 ? { expiration: '2099-01-01T00:00:00.5Z', ttl: 100 } : {}),
        modifiedIndex: 10 + i,
        createdIndex: 10 + i,
      } as never);
    }
    // As migrate writes them: no separator.
    const { r, records, summary, ttl, bytes } = await transform(nodes.map((n) => JSON.stringify(n)).join(''));
    expect(r.exitCode, Buffer.from(r.stderr).toString()).toBe(0);
    expect(summary.converted.keys).toBe(3000);
    expect(summary.converted.ttlKeys).toBe(1000);
    expect(ttl.trim().split('\n')).toHaveLength(1000);
    const real = records.slice(0, 3000);
    expect(real.map((rec) => rec.toString('latin1')).join('')).toContain('/registry/events/e2999');
    const padding = records.slice(3000);
    const sent = new Set(real.map((rec) => rec.toString('hex')));
    expect(padding.every((p) => sent.has(p.toString('hex')))).toBe(true);
    const padBytes = padding.reduce((n, p) => n + p.length, 0);
    // A pipe holds 16 pages (Linux's default; migrate does not resize it).
    const page = Number((await execa('getconf', ['PAGESIZE'])).stdout);
    expect(pipeCapacity()).toBe(16 * page);
    expect(padBytes).toBeGreaterThan(16 * page);
    expect(bytes).toBe(real.reduce((n, p) => n + p.length, 0) + padBytes);
  });

  it('sends the records in mod revision order, through spill files when they exceed its budget', async () => {
    // migrate walks the v2 store in key order; revisions are all over (here: reversed, with gaps).
    const nodes = Array.from({ length: 2000 }, (_, i) => ({
      key: `/registry/pods/p${String(i).padStart(4, '0')}`,
      value: `{"n":${i}}`,
      modifiedIndex: 50_000 - 7 * i,
      createdIndex: 40 + i,
    }));
    const modRevision = (rec: Buffer) => {
      // kv.proto: key (field 1), create_revision (2), mod_revision (3): the varint after tag 0x18.
      let pos = 8 + 2 + rec[9]!;
      for (; rec[pos] !== 0x18; pos++);
      let v = 0;
      for (let shift = 0, b = 0x80; b & 0x80; shift += 7) v += ((b = rec[++pos]!) & 0x7f) * 2 ** shift;
      return v;
    };
    for (const budget of [undefined, 8192]) {
      const { r, records, summary, left } = await transform(nodes.map((n) => JSON.stringify(n)).join(''), budget);
      expect(r.exitCode, Buffer.from(r.stderr).toString()).toBe(0);
      expect(summary.converted.keys).toBe(2000);
      const revs = records.slice(0, 2000).map(modRevision);
      expect(revs).toEqual(nodes.map((n) => n.modifiedIndex).sort((a, b) => a - b));
      expect(records[0]!.toString('latin1')).toContain('/registry/pods/p1999');
      expect(left.filter((f) => f.startsWith('records'))).toEqual([]);
    }
  });

  it('sends nothing for a store without keys', async () => {
    const { r, records, summary } = await transform(
      JSON.stringify({ key: '/', dir: true, modifiedIndex: 1, createdIndex: 1 }),
    );
    expect(r.exitCode).toBe(0);
    expect(records).toHaveLength(0);
    expect(summary).toMatchObject({ converted: { keys: 0 }, dirs: 0, expired: 0 });
  });

  it('fails in one line, without a summary, on input cut in the middle of a node', async () => {
    const { r, summary } = await transform(
      '{"key":"/a","value":"x","modifiedIndex":2,"createdIndex":2}{"key":"/b","val',
    );
    expect(r.exitCode).toBe(1);
    expect(Buffer.from(r.stderr).toString().trim()).toBe(
      'etcd-migrate transformer: the v2 nodes from etcdctl migrate ended in the middle of a node',
    );
    expect(summary).toBeUndefined();
  });
});
