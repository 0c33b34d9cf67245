import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.ts';
import {
  fmt,
  formatVersionFile,
  nextMinor,
  parseVersion,
  parseVersionFile,
  previousMinor,
  tryParseVersion,
} from '../../src/version.ts';

describe('version.txt', () => {
  it.each(['3.4.23/etcd3', '3.3.25/etcd2', '2.2.1/etcd2', '3.10.0/etcd3', '0.0.0/etcd2'])(
    'round trips %s byte for byte',
    (text) => {
      expect(formatVersionFile(parseVersionFile(text))).toBe(text);
    },
  );

  it.each([
    ['3.4.23/etcd3\n', '3.4.23/etcd3'],
    ['  3.4.23/etcd3  \n', '3.4.23/etcd3'],
  ])('tolerates surrounding whitespace: %j', (text, out) => {
    expect(formatVersionFile(parseVersionFile(text))).toBe(out);
  });

  it.each([
    ['', /is empty/],
    ['\n', /is empty/],
    ['3.4.23', /not <x\.y\.z>\/<etcd2\|etcd3>/],
    ['3.4.23/etcd3/x', /not <x\.y\.z>\/<etcd2\|etcd3>/],
    ['3.4/etcd3', /version is not x\.y\.z/],
    ['v3.4.23/etcd3', /version is not x\.y\.z/],
    ['3.4.23-rc.1/etcd3', /version is not x\.y\.z/],
    ['03.4.23/etcd3', /version is not x\.y\.z/],
    ['3.4.23/etcd4', /storage is neither etcd2 nor etcd3/],
    ['3.4.23/ETCD3', /storage is neither etcd2 nor etcd3/],
    ['\u0000\u0001garbage', /not <x\.y\.z>/],
  ])('refuses %j with one line naming the fix', (text, message) => {
    expect(() => parseVersionFile(text)).toThrow(UsageError);
    expect(() => parseVersionFile(text)).toThrow(message);
    try {
      parseVersionFile(text);
    } catch (e) {
      expect((e as Error).message).not.toContain('\n');
      expect((e as Error).message).toMatch(/--assume-current-version/);
    }
  });
});

describe('versions', () => {
  it('parses exactly x.y.z', () => {
    expect(tryParseVersion('3.5.16')).toEqual({ major: 3, minor: 5, patch: 16 });
    for (const bad of ['3.5', '3.5.16.1', 'v3.5.16', '3.5.x', ' 3.5.16', ''])
      expect(tryParseVersion(bad)).toBeUndefined();
    expect(() => parseVersion('3.5', 'TARGET_VERSION')).toThrow(
      /TARGET_VERSION "3\.5" is not a version of the form x\.y\.z/,
    );
  });
  it('knows 3.0 follows 2.3', () => {
    expect(fmt(nextMinor(parseVersion('2.3.7')))).toBe('3.0.0');
    expect(fmt(nextMinor(parseVersion('3.4.23')))).toBe('3.5.0');
    expect(fmt(previousMinor(parseVersion('3.0.17'))!)).toBe('2.3.0');
    expect(fmt(previousMinor(parseVersion('3.5.1'))!)).toBe('3.4.0');
    expect(previousMinor(parseVersion('2.0.0'))).toBeUndefined();
  });
});
