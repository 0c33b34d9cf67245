// The planner over a table of (current, target, bundled): no I/O, every case a row.
import { describe, expect, it } from 'vitest';
import { PlanError, describe as describeStep, plan, planNotes, type Step } from '../../src/plan.ts';
import { fmt, fmtData, parseVersion, parseVersionFile, type DataVersion } from '../../src/version.ts';
import { joinedRegex } from '../helpers/regex.ts';

const d = (s: string): DataVersion => parseVersionFile(s);
const bundle = (...vs: string[]) => vs.map((v) => parseVersion(v));
const HERE = bundle('3.3.25', '3.4.23', '3.5.16', '3.5.30');
const K8S_2017 = bundle('2.2.1', '2.3.7', '3.0.17', '3.1.12', '3.2.24');
const K8S_2025 = bundle('3.4.18', '3.5.21', '3.5.26', '3.6.4');
/** What make etcd-bin installs: Debian's builds and the Go module builds of 3.5.36, 3.6.17 and 3.7.3. */
const NOW = bundle('3.3.25', '3.4.23', '3.5.16', '3.5.30', '3.5.36', '3.6.17', '3.7.3');

/** A step as a short string: kind from -> to (+ the tool version where it differs). */
const show = (s: Step): string => {
  const extra =
    s.kind === 'v3-to-v2'
      ? ` read ${fmt(s.read)}`
      : s.kind === 'downgrade'
        ? ` snapshot ${fmt(s.snapshotWith)}`
        : s.kind === 'etcd-downgrade'
          ? ` enable ${fmt(s.enableWith)}`
          : s.kind === 'attach-ttls' && s.before !== 'target'
            ? ` then ${s.before}`
            : '';
  const seal = (s.kind === 'upgrade' || s.kind === 'attach-ttls') && s.sealWith ? ` seal ${fmt(s.sealWith)}` : '';
  return `${s.kind} ${fmtData(s.from)} -> ${fmtData(s.to)}${extra}${seal}`;
};

const ok: Array<[string, string | undefined, string, ReturnType<typeof bundle>, string[]]> = [
  // name, current (undefined = empty data dir), target, bundled, steps
  ['empty data dir', undefined, '3.5.30/etcd3', HERE, []],
  ['same version', '3.5.30/etcd3', '3.5.30/etcd3', HERE, []],
  ['patch up only', '3.5.16/etcd3', '3.5.30/etcd3', HERE, []],
  ['patch down only', '3.5.30/etcd3', '3.5.16/etcd3', HERE, []],
  ['patch change, current patch not bundled', '3.4.1/etcd3', '3.4.23/etcd3', HERE, []],
  ['one minor up', '3.4.23/etcd3', '3.5.30/etcd3', HERE, ['upgrade 3.4.23/etcd3 -> 3.5.30/etcd3']],
  [
    'one minor up to an older patch of it',
    '3.4.23/etcd3',
    '3.5.16/etcd3',
    HERE,
    ['upgrade 3.4.23/etcd3 -> 3.5.16/etcd3'],
  ],
  [
    'two minors up: newest patch in between, target last',
    '3.3.25/etcd3',
    '3.5.30/etcd3',
    HERE,
    ['upgrade 3.3.25/etcd3 -> 3.4.23/etcd3', 'upgrade 3.4.23/etcd3 -> 3.5.30/etcd3'],
  ],
  [
    'current patch not bundled is fine for an upgrade',
    '3.3.1/etcd3',
    '3.4.23/etcd3',
    HERE,
    ['upgrade 3.3.1/etcd3 -> 3.4.23/etcd3'],
  ],
  [
    'three minors up across majors in etcd2',
    '2.2.1/etcd2',
    '3.0.17/etcd2',
    K8S_2017,
    ['upgrade 2.2.1/etcd2 -> 2.3.7/etcd2', 'upgrade 2.3.7/etcd2 -> 3.0.17/etcd2'],
  ],
  // A conversion's TTLs become leases last, with the target's etcd (attach-ttls), whose start also
  // upgrades the data to it: no upgrade step to the target before it.
  [
    'etcd2 -> etcd3 at 3.3 (this machine)',
    '3.3.25/etcd2',
    '3.5.30/etcd3',
    HERE,
    [
      'v2-to-v3 3.3.25/etcd2 -> 3.3.25/etcd3',
      'upgrade 3.3.25/etcd3 -> 3.4.23/etcd3',
      'attach-ttls 3.4.23/etcd3 -> 3.5.30/etcd3',
    ],
  ],
  [
    'etcd2 -> etcd3 same version',
    '3.3.25/etcd2',
    '3.3.25/etcd3',
    HERE,
    ['v2-to-v3 3.3.25/etcd2 -> 3.3.25/etcd3', 'attach-ttls 3.3.25/etcd3 -> 3.3.25/etcd3'],
  ],
  [
    'etcd2 -> etcd3 converts with the newest patch of the minor',
    '3.3.20/etcd2',
    '3.4.23/etcd3',
    HERE,
    ['v2-to-v3 3.3.20/etcd2 -> 3.3.25/etcd3', 'attach-ttls 3.3.25/etcd3 -> 3.4.23/etcd3'],
  ],
  [
    'etcd2 2.2.1 -> etcd3 converts at 3.0, as the 2017 image did',
    '2.2.1/etcd2',
    '3.2.24/etcd3',
    K8S_2017,
    [
      'upgrade 2.2.1/etcd2 -> 2.3.7/etcd2',
      'upgrade 2.3.7/etcd2 -> 3.0.17/etcd2',
      'v2-to-v3 3.0.17/etcd2 -> 3.0.17/etcd3',
      'upgrade 3.0.17/etcd3 -> 3.1.12/etcd3',
      'attach-ttls 3.1.12/etcd3 -> 3.2.24/etcd3',
    ],
  ],
  [
    'etcd2 at 3.4 converts with 3.4 etcdctl',
    '3.4.23/etcd2',
    '3.5.30/etcd3',
    HERE,
    ['v2-to-v3 3.4.23/etcd2 -> 3.4.23/etcd3', 'attach-ttls 3.4.23/etcd3 -> 3.5.30/etcd3'],
  ],
  [
    'etcd2 -> etcd3 at 3.3 to an older 3.5 patch: attached with the target',
    '3.3.25/etcd2',
    '3.5.16/etcd3',
    HERE,
    [
      'v2-to-v3 3.3.25/etcd2 -> 3.3.25/etcd3',
      'upgrade 3.3.25/etcd3 -> 3.4.23/etcd3',
      'attach-ttls 3.4.23/etcd3 -> 3.5.16/etcd3',
    ],
  ],
  [
    'etcd2 at 3.4 -> 3.6: attached after the last upgrade',
    '3.4.18/etcd2',
    '3.6.4/etcd3',
    K8S_2025,
    [
      'v2-to-v3 3.4.18/etcd2 -> 3.4.18/etcd3',
      'upgrade 3.4.18/etcd3 -> 3.5.26/etcd3',
      'attach-ttls 3.5.26/etcd3 -> 3.6.4/etcd3 seal 3.5.26',
    ],
  ],
  [
    'rollback etcd3 -> etcd2',
    '3.4.23/etcd3',
    '3.3.25/etcd2',
    HERE,
    ['v3-to-v2 3.4.23/etcd3 -> 3.3.25/etcd2 read 3.4.23'],
  ],
  [
    'rollback from 3.5 reads with the newest 3.5',
    '3.5.16/etcd3',
    '3.3.25/etcd2',
    HERE,
    ['v3-to-v2 3.5.16/etcd3 -> 3.3.25/etcd2 read 3.5.30'],
  ],
  [
    'rollback same version',
    '3.3.25/etcd3',
    '3.3.25/etcd2',
    HERE,
    ['v3-to-v2 3.3.25/etcd3 -> 3.3.25/etcd2 read 3.3.25'],
  ],
  [
    'rollback to 2.2.1 as the seed did',
    '3.0.17/etcd3',
    '2.2.1/etcd2',
    K8S_2017,
    ['v3-to-v2 3.0.17/etcd3 -> 2.2.1/etcd2 read 3.0.17'],
  ],
  ['one minor down', '3.5.30/etcd3', '3.4.23/etcd3', HERE, ['downgrade 3.5.30/etcd3 -> 3.4.23/etcd3 snapshot 3.5.30']],
  [
    'two minors down',
    '3.5.30/etcd3',
    '3.3.25/etcd3',
    HERE,
    [
      'downgrade 3.5.30/etcd3 -> 3.4.23/etcd3 snapshot 3.5.30',
      'downgrade 3.4.23/etcd3 -> 3.3.25/etcd3 snapshot 3.4.23',
    ],
  ],
  [
    'down from an unbundled patch snapshots with the newest bundled',
    '3.5.21/etcd3',
    '3.4.23/etcd3',
    HERE,
    ['downgrade 3.5.21/etcd3 -> 3.4.23/etcd3 snapshot 3.5.30'],
  ],
  [
    '3.6 needs 3.5.26+ first: patch step inserted',
    '3.5.21/etcd3',
    '3.6.4/etcd3',
    K8S_2025,
    ['patch 3.5.21/etcd3 -> 3.5.26/etcd3', 'upgrade 3.5.26/etcd3 -> 3.6.4/etcd3 seal 3.5.26'],
  ],
  [
    '3.6 after the newest bundled 3.5, even from a 3.5.26+',
    '3.5.30/etcd3',
    '3.6.17/etcd3',
    NOW,
    ['patch 3.5.30/etcd3 -> 3.5.36/etcd3', 'upgrade 3.5.36/etcd3 -> 3.6.17/etcd3 seal 3.5.36'],
  ],
  [
    '3.5 -> 3.7: newest 3.5, then 3.6, then 3.7',
    '3.5.16/etcd3',
    '3.7.3/etcd3',
    NOW,
    [
      'patch 3.5.16/etcd3 -> 3.5.36/etcd3',
      'upgrade 3.5.36/etcd3 -> 3.6.17/etcd3 seal 3.5.36',
      'upgrade 3.6.17/etcd3 -> 3.7.3/etcd3 seal 3.6.17',
    ],
  ],
  [
    '3.3 -> 3.7, one minor at a time',
    '3.3.25/etcd3',
    '3.7.3/etcd3',
    NOW,
    [
      'upgrade 3.3.25/etcd3 -> 3.4.23/etcd3',
      'upgrade 3.4.23/etcd3 -> 3.5.36/etcd3',
      'upgrade 3.5.36/etcd3 -> 3.6.17/etcd3 seal 3.5.36',
      'upgrade 3.6.17/etcd3 -> 3.7.3/etcd3 seal 3.6.17',
    ],
  ],
  [
    'etcd2 -> 3.7: converted at 3.3, TTLs attached by 3.7',
    '3.3.25/etcd2',
    '3.7.3/etcd3',
    NOW,
    [
      'v2-to-v3 3.3.25/etcd2 -> 3.3.25/etcd3',
      'upgrade 3.3.25/etcd3 -> 3.4.23/etcd3',
      'upgrade 3.4.23/etcd3 -> 3.5.36/etcd3',
      'upgrade 3.5.36/etcd3 -> 3.6.17/etcd3 seal 3.5.36',
      'attach-ttls 3.6.17/etcd3 -> 3.7.3/etcd3 seal 3.6.17',
    ],
  ],
  [
    "3.7 -> 3.5 with etcd's own downgrade",
    '3.7.3/etcd3',
    '3.5.30/etcd3',
    NOW,
    [
      'etcd-downgrade 3.7.3/etcd3 -> 3.6.17/etcd3 enable 3.7.3',
      'etcd-downgrade 3.6.17/etcd3 -> 3.5.30/etcd3 enable 3.6.17',
    ],
  ],
  [
    "3.7 -> 3.3: etcd's downgrade to 3.5, then snapshots",
    '3.7.3/etcd3',
    '3.3.25/etcd3',
    NOW,
    [
      'etcd-downgrade 3.7.3/etcd3 -> 3.6.17/etcd3 enable 3.7.3',
      'etcd-downgrade 3.6.17/etcd3 -> 3.5.36/etcd3 enable 3.6.17',
      'downgrade 3.5.36/etcd3 -> 3.4.23/etcd3 snapshot 3.5.36',
      'downgrade 3.4.23/etcd3 -> 3.3.25/etcd3 snapshot 3.4.23',
    ],
  ],
  [
    'rollback from 3.7 reads with 3.7',
    '3.7.3/etcd3',
    '3.3.25/etcd2',
    NOW,
    ['v3-to-v2 3.7.3/etcd3 -> 3.3.25/etcd2 read 3.7.3'],
  ],
  [
    '3.4 -> 3.6 goes through the newest 3.5, no extra patch step',
    '3.4.18/etcd3',
    '3.6.4/etcd3',
    K8S_2025,
    ['upgrade 3.4.18/etcd3 -> 3.5.26/etcd3', 'upgrade 3.5.26/etcd3 -> 3.6.4/etcd3 seal 3.5.26'],
  ],
];

// TTLs pending from an interrupted run (the data dir holds .etcd-migrate.pending-ttls).
const pending: typeof ok = [
  ['at the target: attach alone', '3.5.30/etcd3', '3.5.30/etcd3', HERE, ['attach-ttls 3.5.30/etcd3 -> 3.5.30/etcd3']],
  [
    'patch change only: attach with the target, which records it',
    '3.5.16/etcd3',
    '3.5.30/etcd3',
    HERE,
    ['attach-ttls 3.5.16/etcd3 -> 3.5.30/etcd3'],
  ],
  [
    'patch down only: attach with the target',
    '3.5.30/etcd3',
    '3.5.16/etcd3',
    HERE,
    ['attach-ttls 3.5.30/etcd3 -> 3.5.16/etcd3'],
  ],
  [
    'killed between the conversion and the upgrades: upgrades, then attach with the last',
    '3.3.25/etcd3',
    '3.5.30/etcd3',
    HERE,
    ['upgrade 3.3.25/etcd3 -> 3.4.23/etcd3', 'attach-ttls 3.4.23/etcd3 -> 3.5.30/etcd3'],
  ],
  [
    '3.6 needs 3.5.26+ first: the patch step stays, the upgrade to 3.6 attaches',
    '3.5.21/etcd3',
    '3.6.4/etcd3',
    K8S_2025,
    ['patch 3.5.21/etcd3 -> 3.5.26/etcd3', 'attach-ttls 3.5.26/etcd3 -> 3.6.4/etcd3 seal 3.5.26'],
  ],
  [
    'rollback reads leases: attach first, with the etcd that reads',
    '3.4.23/etcd3',
    '3.3.25/etcd2',
    HERE,
    ['attach-ttls 3.4.23/etcd3 -> 3.4.23/etcd3 then rollback', 'v3-to-v2 3.4.23/etcd3 -> 3.3.25/etcd2 read 3.4.23'],
  ],
  [
    'rollback from an unbundled patch: attach with the newest patch of that minor',
    '3.5.21/etcd3',
    '3.3.25/etcd2',
    HERE,
    ['attach-ttls 3.5.21/etcd3 -> 3.5.30/etcd3 then rollback', 'v3-to-v2 3.5.30/etcd3 -> 3.3.25/etcd2 read 3.5.30'],
  ],
  [
    'downgrade keeps every key and the pending file: attach last, with the target',
    '3.5.30/etcd3',
    '3.3.25/etcd3',
    HERE,
    [
      'downgrade 3.5.30/etcd3 -> 3.4.23/etcd3 snapshot 3.5.30',
      'downgrade 3.4.23/etcd3 -> 3.3.25/etcd3 snapshot 3.4.23',
      'attach-ttls 3.3.25/etcd3 -> 3.3.25/etcd3',
    ],
  ],
];

describe('plan', () => {
  it.each(ok)('%s', (_name, current, target, bundled, expected) => {
    const steps = plan(current ? d(current) : undefined, d(target), bundled);
    checkPlan(steps, current, expected);
  });

  it.each(pending)('with pending TTLs: %s', (_name, current, target, bundled, expected) => {
    const steps = plan(current ? d(current) : undefined, d(target), bundled, { pendingTtls: true });
    checkPlan(steps, current, expected);
    // Pending TTLs are attached exactly once.
    expect(steps.filter((s) => s.kind === 'attach-ttls')).toHaveLength(1);
  });

  it('with pending TTLs and an empty data dir: nothing to attach to', () => {
    expect(plan(undefined, d('3.5.30/etcd3'), HERE, { pendingTtls: true })).toEqual([]);
  });

  it('pending TTLs beside etcd2 data (conversion undone by a restored backup) are stale: the plan ignores them', () => {
    for (const [current, target] of [
      ['3.3.25/etcd2', '3.5.30/etcd3'],
      ['3.3.25/etcd2', '3.3.25/etcd2'],
      ['3.3.20/etcd2', '3.3.25/etcd2'],
    ] as const) {
      expect(plan(d(current), d(target), HERE, { pendingTtls: true }).map(show)).toEqual(
        plan(d(current), d(target), HERE).map(show),
      );
    }
  });

  function checkPlan(steps: Step[], current: string | undefined, expected: string[]) {
    expect(steps.map(show)).toEqual(expected);
    // Every step starts where the previous one ended; the last ends at the target's minor.
    steps.forEach((s, i) => {
      if (i > 0) expect(fmtData(s.from)).toBe(fmtData(steps[i - 1]!.to));
    });
    if (current && steps.length) expect(fmtData(steps[0]!.from)).toBe(current);
    for (const s of steps) expect(describeStep(s)).toContain(fmtData(s.to));
    // A plan that converts to etcd3 attaches the TTLs once, last; nothing runs etcd after it but the target.
    if (steps.some((s) => s.kind === 'v2-to-v3')) expect(steps.at(-1)!.kind).toBe('attach-ttls');
  }

  const refused: Array<[string, string | undefined, string, ReturnType<typeof bundle>, RegExp]> = [
    [
      'target not bundled',
      '3.4.23/etcd3',
      '3.5.99/etcd3',
      HERE,
      /target version 3\.5\.99 is not bundled \(bundled: 3\.3\.25, 3\.4\.23, 3\.5\.16, 3\.5\.30\)/,
    ],
    ['target not bundled, empty dir', undefined, '3.6.0/etcd3', HERE, /target version 3\.6\.0 is not bundled/],
    [
      'a gap in the bundled minors',
      '3.3.25/etcd3',
      '3.5.30/etcd3',
      bundle('3.3.25', '3.5.30'),
      /etcd 3\.4 is needed to step from 3\.3 towards 3\.5\.30, one minor at a time, but no 3\.4\.x is bundled/,
    ],
    [
      '3.6 without a 3.5.26+',
      '3.5.16/etcd3',
      '3.6.4/etcd3',
      bundle('3.5.16', '3.6.4'),
      joinedRegex(
        /etcd 3\.6 needs 3\.5 at 3\.5\.26 or newer first, but the newest bundled 3\.5 is 3\.5\.16; /,
        /bundle etcd 3\.5\.26 or newer \(3\.5\.32 or newer advised\)/,
      ),
    ],
    [
      '3.7 without a 3.6.11+',
      '3.6.4/etcd3',
      '3.7.3/etcd3',
      bundle('3.6.4', '3.7.3'),
      /etcd 3\.7 needs 3\.6 at 3\.6\.11 or newer first/,
    ],
    [
      'version.txt newer than every bundled, going down',
      '3.7.1/etcd3',
      '3.5.30/etcd3',
      HERE,
      /etcd 3\.7 is needed to enable the downgrade.*no 3\.7\.x is bundled/,
    ],
    [
      'downgrade with a minor missing',
      '3.5.30/etcd3',
      '3.3.25/etcd3',
      bundle('3.3.25', '3.5.30'),
      /etcd 3\.4 is needed to step down from 3\.5/,
    ],
    [
      'etcd3 storage below 3.0 in version.txt',
      '2.3.7/etcd3',
      '3.0.17/etcd3',
      K8S_2017,
      /version\.txt says 2\.3\.7\/etcd3, but etcd3 storage needs etcd 3\.0 or newer/,
    ],
    ['etcd3 target below 3.0', '2.2.1/etcd2', '2.3.7/etcd3', K8S_2017, /the target says 2\.3\.7\/etcd3/],
    ['etcd2 target on 3.4+', '3.3.25/etcd2', '3.4.23/etcd2', HERE, /etcd 3\.4 does not serve etcd2 storage by default/],
    [
      'etcd2 data at 3.5 has no converter',
      '3.5.16/etcd2',
      '3.5.30/etcd3',
      HERE,
      /no etcdctl newer than 3\.4 can convert etcd2 data/,
    ],
    ['etcd2 downgrade', '3.3.25/etcd2', '3.2.24/etcd2', bundle('3.2.24', '3.3.25'), /etcd2 storage has no downgrade/],
    [
      'etcd2 -> etcd3 below the data',
      '3.3.25/etcd2',
      '3.2.24/etcd3',
      bundle('3.2.24', '3.3.25'),
      /cannot convert 3\.3\.25\/etcd2 to etcd3 and go down/,
    ],
    [
      'etcd2 -> etcd3 without a 3.0 in the bundle',
      '2.3.7/etcd2',
      '3.1.12/etcd3',
      bundle('2.3.7', '3.1.12'),
      /etcd 3\.0 is needed/,
    ],
    ['nothing bundled', '3.4.23/etcd3', '3.5.30/etcd3', [], /bundled: none/],
  ];
  it.each(refused)('refuses: %s', (_name, current, target, bundled, message) => {
    expect(() => plan(current ? d(current) : undefined, d(target), bundled)).toThrow(PlanError);
    expect(() => plan(current ? d(current) : undefined, d(target), bundled)).toThrow(message);
  });

  const refusedPending: typeof refused = [
    [
      'pending TTLs, rollback from a minor not bundled',
      '3.6.1/etcd3',
      '3.3.25/etcd2',
      HERE,
      /etcd 3\.6 is needed to read the etcd3 data of 3\.6\.1\/etcd3/,
    ],
  ];
  it.each(refusedPending)('refuses with pending TTLs: %s', (_name, current, target, bundled, message) => {
    expect(() => plan(current ? d(current) : undefined, d(target), bundled, { pendingTtls: true })).toThrow(PlanError);
    expect(() => plan(current ? d(current) : undefined, d(target), bundled, { pendingTtls: true })).toThrow(message);
  });

  it('notes a 3.5 older than etcd advises before 3.6, and only then', () => {
    expect(planNotes(plan(d('3.5.26/etcd3'), d('3.6.4/etcd3'), K8S_2025))).toEqual([
      "etcd 3.5.26 runs before 3.6; etcd's upgrade guide advises 3.5.32 or newer: bundle it",
    ]);
    expect(planNotes(plan(d('3.5.16/etcd3'), d('3.7.3/etcd3'), NOW))).toEqual([]);
  });

  it('is the same whatever the order of the bundle', () => {
    const shuffled = [...HERE].reverse();
    expect(plan(d('3.3.25/etcd2'), d('3.5.30/etcd3'), shuffled).map(show)).toEqual(
      plan(d('3.3.25/etcd2'), d('3.5.30/etcd3'), HERE).map(show),
    );
  });
});
