// The flags etcd 3.5, 3.6 and 3.7 refuse, each with what replaces it (src/etcd/process/flags.ts), and the
// refusals before a migration.
import { describe, expect, it } from 'vitest';
import { checkEnvFlags, checkFlags, flagProblem } from '../../../../src/etcd/process/flags.ts';
import { parseVersion } from '../../../../src/version.ts';
import { joinedRegex } from '../../../helpers/regex.ts';

const v = parseVersion;

describe('flagProblem', () => {
  it.each([
    ['3.6.17', '--enable-v2=true', /no v2 API .*drop --enable-v2/],
    ['3.6.17', '--experimental-enable-v2v3=/v2', /no v2 API/],
    ['3.6.17', '--proxy=off', /no proxy mode/],
    ['3.6.17', '--v2-deprecation=not-yet', /takes write-only or later/],
    ['3.7.3', '--experimental-initial-corrupt-check=true', /use --feature-gates=InitialCorruptCheck=true/],
    ['3.7.3', '--experimental-watch-progress-notify-interval=5s', /use --watch-progress-notify-interval=5s/],
    ['3.7.3', '--experimental-enable-distributed-tracing', /use --enable-distributed-tracing/],
    ['3.7.3', '--experimental-unknown-thing', /drop it/],
    ['3.7.3', '--discovery=http://x', /--discovery-endpoints and --discovery-token/],
    ['3.5.36', '--feature-gates=InitialCorruptCheck=true', /does not know --feature-gates \(new in 3\.6\)/],
    [
      '3.5.36',
      '--watch-progress-notify-interval=5s',
      /etcd 3\.5 calls it --experimental-watch-progress-notify-interval/,
    ],
  ])('etcd %s refuses %s', (ver, arg, fix) => {
    expect(flagProblem(v(ver), arg)?.fix).toMatch(fix);
  });

  it.each([
    ['3.5.36', '--enable-v2=true'],
    ['3.5.36', '--experimental-initial-corrupt-check=true'],
    ['3.6.17', '--experimental-initial-corrupt-check=true'],
    ['3.6.17', '--feature-gates=InitialCorruptCheck=true'],
    ['3.7.3', '--v2-deprecation=write-only'],
    ['3.7.3', '--cert-file=/c'],
    ['3.7.3', 'a-value'],
  ])('etcd %s takes %s', (ver, arg) => {
    expect(flagProblem(v(ver), arg)).toBeUndefined();
  });
});

describe('checkFlags', () => {
  it("refuses an ETCD_CREDS entry any step's etcd refuses, naming that etcd", () => {
    expect(() => checkFlags([v('3.5.36'), v('3.6.17')], ['--enable-v2=true'], undefined, v('3.6.17'))).toThrow(
      /ETCD_CREDS has --enable-v2, which etcd 3\.6\.17 \(a step of this migration\) refuses/,
    );
  });

  it('refuses an etcd flag after -- that the target refuses, and only the target counts for them', () => {
    expect(() => checkFlags([v('3.5.36')], [], ['--enable-v2'], v('3.6.17'))).toThrow(
      /the etcd flag --enable-v2 \(after --\)/,
    );
    expect(() => checkFlags([v('3.6.17')], [], ['--feature-gates=X=true'], v('3.6.17'))).not.toThrow();
  });
});

describe('checkEnvFlags', () => {
  it('refuses a pod variable the target etcd would ignore, naming what replaces it', () => {
    expect(() => checkEnvFlags({ ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK: 'true' }, v('3.7.3'))).toThrow(
      joinedRegex(
        /the pod's variable ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK is etcd's --experimental-initial-corrupt-check, /,
        /which etcd 3\.7\.3 \(the target\) ignores: .*use --feature-gates=InitialCorruptCheck=true/,
      ),
    );
    expect(() => checkEnvFlags({ ETCD_ENABLE_V2: 'true' }, v('3.6.17'))).toThrow(
      /ETCD_ENABLE_V2 is etcd's --enable-v2/,
    );
  });

  it("takes what the target reads, this tool's own variables and empty ones", () => {
    const env = {
      ETCD_NAME: 'm1',
      ETCD_DATA_PREFIX: '/registry',
      ETCD_CREDS: '--enable-v2',
      ETCD_HOSTNAME: 'h',
      ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK: '',
      PATH: '/bin',
    };
    expect(() => checkEnvFlags(env, v('3.7.3'))).not.toThrow();
    expect(() => checkEnvFlags({ ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK: 'true' }, v('3.6.17'))).not.toThrow();
  });
});
