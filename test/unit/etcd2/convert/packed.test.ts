import { describe, expect, it } from 'vitest';
import { PackedLines } from '../../../../src/etcd2/convert/packed.ts';
import type { TtlLine } from '../../../../src/etcd2/convert/ttl.ts';

describe('PackedLines', () => {
  it('gives back each line as pushed (value, empty or none), buffers grown past a first guess, up to capacity', () => {
    const lines: TtlLine[] = Array.from({ length: 50 }, (_, i): TtlLine => {
      const [exp, key, kv]: TtlLine = [
        1_800_000_000_123 + i,
        Buffer.alloc(i * 7, i).toString('base64'),
        (1n << 63n) + BigInt(i),
      ];
      return i % 3 === 0
        ? [exp, key, kv]
        : [exp, key, kv, Buffer.alloc(i % 3 === 1 ? i * 11 : 0, i + 1).toString('base64')];
    });
    const p = new PackedLines(50);
    for (const l of lines) {
      expect(p.full).toBe(false);
      p.push(l);
    }
    expect(p.full).toBe(true);
    expect(p.length).toBe(50);
    expect(Array.from({ length: 50 }, (_, i) => p.line(i))).toEqual(lines);
    expect(() => p.push(lines[0]!)).toThrow(/full/);
  });
});
