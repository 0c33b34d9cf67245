// cluster.ts: which cluster version a step waits for, and which plans a cluster member refuses.
import { describe, expect, it } from 'vitest';
import { checkClusterPlan, clusterNote, clusterVersionNeeded, isCluster, memberNames } from '../../src/cluster.ts';
import { etcdArgs } from '../../src/etcd/process/server.ts';
import { check as checkDowngrade } from '../../src/steps/downgrade.ts';
import { UsageError } from '../../src/errors.ts';
import { plan, type Step } from '../../src/plan.ts';
import { fmtMinor, parseVersion, parseVersionFile } from '../../src/version.ts';
import { joinedRegex } from '../helpers/regex.ts';

const v = parseVersion;
const d = (s: string) => parseVersionFile(s);
const BUNDLE = ['3.3.25', '3.4.23', '3.5.16', '3.5.30'].map((x) => v(x));
const THREE = 'a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,c=http://10.0.0.3:2380';
const ONE = 'a=http://10.0.0.1:2380';

describe('members', () => {
  it('counts names, not peer URLs', () => {
    expect(memberNames(THREE)).toEqual(['a', 'b', 'c']);
    expect(memberNames('a=http://1.1.1.1:2380,a=http://[::1]:2380')).toEqual(['a']);
    expect(isCluster(ONE)).toBe(false);
    expect(isCluster('a=http://1.1.1.1:2380,a=http://2.2.2.2:2380')).toBe(false);
    expect(isCluster(THREE)).toBe(true);
  });
});

describe('one definition of a cluster everywhere: a member with two peer URLs is one member', () => {
  const TWO_URLS = 'a=http://127.0.0.1:2380,a=http://127.0.0.2:2380';
  const args = (initialCluster: string) =>
    etcdArgs({
      bin: 'etcd',
      version: v('3.5.30'),
      dataDir: '/d',
      storage: 'etcd3',
      env: {},
      timeoutMs: 1,
      member: {
        name: 'a',
        initialCluster,
        listenPeerUrls: 'http://127.0.0.1:2380',
        initialAdvertisePeerUrls: 'http://127.0.0.1:2380',
        port: 1,
        extraArgs: [],
      },
    });
  const downgrade = plan(d('3.5.30/etcd3'), d('3.4.23/etcd3'), BUNDLE)[0] as Parameters<typeof checkDowngrade>[0];

  it('the temporary etcd of a lone member elects itself quickly, with one URL or two', () => {
    expect(args(ONE.replace('10.0.0.1', '127.0.0.1'))).toContain('--election-timeout');
    expect(args(TWO_URLS)).toContain('--election-timeout');
    expect(args(THREE)).not.toContain('--election-timeout');
  });

  it('a downgrade refuses a cluster, naming how many members it has, and not a lone member with two URLs', () => {
    expect(() => checkDowngrade(downgrade, { initialCluster: TWO_URLS })).not.toThrow();
    expect(() => checkDowngrade(downgrade, { initialCluster: `${THREE},c=http://10.0.0.4:2380` })).toThrow(
      /INITIAL_CLUSTER names 3\)/,
    );
  });
});

describe('clusterVersionNeeded', () => {
  const needs = (from: string, to: string, cluster: boolean) =>
    plan(d(from), d(to), BUNDLE).map(
      (s: Step) =>
        `${s.to.version.major}.${s.to.version.minor}.${s.to.version.patch}:` +
        fmtMinor(clusterVersionNeeded(s, d(to).version, cluster)),
    );

  it.each([
    // lone member: every step waits for its own minor (the rule it always had)
    ['3.3.25/etcd3', '3.5.30/etcd3', false, ['3.4.23:3.4', '3.5.30:3.5']],
    ['3.4.23/etcd3', '3.5.16/etcd3', false, ['3.5.16:3.5']],
    // cluster: a step before the last minor waits for its minor (the members meet; no minor skipped),
    // the last one only for the minor it came from (a rolling upgrade cannot move the cluster version)
    ['3.3.25/etcd3', '3.5.30/etcd3', true, ['3.4.23:3.4', '3.5.30:3.4']],
    ['3.4.23/etcd3', '3.5.16/etcd3', true, ['3.5.16:3.4']],
    ['3.3.25/etcd3', '3.4.23/etcd3', true, ['3.4.23:3.3']],
    // a patch within the last minor: the minor it is already at
    ['3.5.16/etcd3', '3.5.30/etcd3', true, []],
  ] as const)('%s -> %s (cluster %s)', (from, to, cluster, expected) => {
    expect(needs(from, to, cluster)).toEqual(expected);
  });

  it('a patch step before a higher minor waits for its own minor', () => {
    const s: Step = { kind: 'patch', from: d('3.5.16/etcd3'), to: d('3.5.30/etcd3') };
    expect(fmtMinor(clusterVersionNeeded(s, v('3.6.0'), true))).toBe('3.5');
    expect(fmtMinor(clusterVersionNeeded(s, v('3.5.30'), true))).toBe('3.5');
  });
});

describe('checkClusterPlan', () => {
  const steps = (from: string, to: string) => plan(d(from), d(to), BUNDLE);
  const refused = (from: string, to: string, ic: string) => {
    try {
      checkClusterPlan(steps(from, to), ic, d(to));
      return undefined;
    } catch (e) {
      expect(e).toBeInstanceOf(UsageError);
      return (e as Error).message;
    }
  };

  it('lets a cluster member upgrade, and a lone member do anything', () => {
    expect(refused('3.3.25/etcd3', '3.5.30/etcd3', THREE)).toBeUndefined();
    expect(refused('3.3.25/etcd2', '3.5.30/etcd3', ONE)).toBeUndefined();
    expect(refused('3.5.30/etcd3', '3.4.23/etcd3', ONE)).toBeUndefined();
  });

  it("refuses conversions on a cluster, naming the procedure (downgrades: their runner's check)", () => {
    expect(refused('3.3.25/etcd2', '3.5.30/etcd3', THREE)).toMatch(
      joinedRegex(
        /^the plan to 3\.5\.30\/etcd3 holds a storage conversion \(convert 3\.3\.25\/etcd2 -> 3\.3\.25\/etcd3\), /,
        /which a member of a 3-member cluster \(INITIAL_CLUSTER\) cannot run on its own; /,
        /stop the cluster, .*--force-new-cluster.*docs\/clusters\.md\)$/,
      ),
    );
    expect(refused('3.5.30/etcd3', '3.3.25/etcd3', THREE)).toBeUndefined();
    expect(refused('3.3.25/etcd3', '3.3.25/etcd2', THREE)).toMatch(/holds a storage conversion \(roll back/);
  });
});

describe('clusterNote', () => {
  it('says nothing for a lone member or an empty plan', () => {
    expect(clusterNote(plan(d('3.3.25/etcd3'), d('3.5.30/etcd3'), BUNDLE), v('3.5.30'), ONE)).toBeUndefined();
    expect(clusterNote([], v('3.5.30'), THREE)).toBeUndefined();
  });

  it('tells a cluster member what its steps wait for', () => {
    const n = clusterNote(plan(d('3.3.25/etcd3'), d('3.5.30/etcd3'), BUNDLE), v('3.5.30'), THREE)!;
    expect(n).toContain('member of a 3-member cluster (a, b, c)');
    expect(n).toContain('etcd 3.4.23 also wait(s) until the cluster version is its minor');
    expect(n).toContain('etcd 3.5.30 is done when a write commits at cluster version 3.4 or newer');
    expect(clusterNote(plan(d('3.4.23/etcd3'), d('3.5.16/etcd3'), BUNDLE), v('3.5.16'), THREE)).not.toContain(
      'also wait',
    );
  });
});
