// readiness.ts: what a temporary etcd still lacks before its probe write.
import { describe, expect, it } from 'vitest';
import { missing, type Expectation } from '../../../../src/etcd/process/readiness.ts';
import { parseVersion } from '../../../../src/version.ts';

const v = parseVersion;
const lone: Expectation = { version: v('3.5.30'), clusterAtLeast: v('3.5.30') };
const member: Expectation = {
  version: v('3.5.16'),
  clusterAtLeast: v('3.4.0'),
  cluster: { members: 3, name: 'm1', clientUrl: 'http://127.0.0.1:1' },
};

describe('missing', () => {
  it('a lone member: the cluster version must be its minor (as before), nothing else', () => {
    expect(missing(lone, {})).toBe('no answer yet');
    expect(missing(lone, { server: '3.5.30' })).toBe('cluster version not decided');
    expect(missing(lone, { server: '3.5.30', cluster: v('3.4.0') })).toBe('cluster version 3.4');
    expect(missing(lone, { server: '3.5.30', cluster: v('3.5.0') })).toBeUndefined();
    // the server version is not checked for a lone member
    expect(missing(lone, { server: 'other', cluster: v('3.5.0') })).toBeUndefined();
  });

  it('a cluster member: its own version, the cluster version at least the one needed, joined', () => {
    expect(missing(member, {})).toMatch(/^no answer yet \(a member of 3 serves only once 2 members run/);
    expect(missing(member, { server: '3.5.30', cluster: v('3.4.0'), joined: true })).toBe(
      'the hidden client port answers as etcd 3.5.30, not 3.5.16',
    );
    expect(missing(member, { server: '3.5.16', cluster: v('3.3.0'), joined: true })).toBe(
      'cluster version 3.3, waiting for 3.4, which etcd sets only once every member runs etcd 3.4 or newer ' +
        "(start the other members' entrypoints; a rolling upgrade moves one minor at a time)",
    );
    expect(missing(member, { server: '3.5.16', joined: true })).toMatch(
      /^cluster version not decided, waiting for 3\.4/,
    );
    expect(missing(member, { server: '3.5.16', cluster: v('3.4.0'), joined: false })).toBe(
      'member m1 is not yet listed with its client URL http://127.0.0.1:1',
    );
    // a rolling upgrade: the others still serve 3.4, and that is enough
    expect(missing(member, { server: '3.5.16', cluster: v('3.4.0'), joined: true })).toBeUndefined();
    expect(missing(member, { server: '3.5.16', cluster: v('3.5.0'), joined: true })).toBeUndefined();
  });

  it('etcd 2.x has no cluster version to wait for', () => {
    expect(missing({ version: v('2.3.7'), clusterAtLeast: v('2.3.7') }, { server: '2.3.7' })).toBeUndefined();
  });
});
