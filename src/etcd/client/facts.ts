// What a running member holds, to compare two members: live key count, revision, and etcd's
// HashKV (a crc32 over every key revision and value; equal across 3.3-3.5 for the same data).
import { binPath } from '../../bundled-versions.ts';
import { count, counted, figure } from '../../log.ts';
import { fmt, type Version } from '../../version.ts';
import { gatewayPrefix, request } from './probe.ts';
import { etcdctlTlsArgs, type ClientTls } from '../tls/config.ts';
import { ctlEnv, runTool } from '../process/tool.ts';

export interface MemberFacts {
  keys: number;
  revision: number;
  hashKv: number;
}

/** `tls`: for a temporary etcd that serves https (ETCD_CREDS with a server certificate). */
export async function memberFacts(
  endpoint: string,
  v: Version,
  binDir: string,
  env: NodeJS.ProcessEnv,
  tls?: ClientTls,
): Promise<MemberFacts> {
  // The whole key space ("\0" to "\0"), counted only: no value crosses the wire.
  const r = await request(
    endpoint,
    'POST',
    `${gatewayPrefix(v)}/kv/range`,
    JSON.stringify({ key: 'AA==', range_end: 'AA==', count_only: true }),
    60_000,
    tls,
  );
  if (r.status !== 200) throw new Error(`counting the keys of etcd ${fmt(v)} failed: HTTP ${r.status}`);
  const range = JSON.parse(r.body) as { count?: string; header?: { revision?: string } };
  const out = await runTool(
    binDir,
    'etcdctl',
    v,
    ['--endpoints', endpoint, ...etcdctlTlsArgs(tls), 'endpoint', 'hashkv', '-w', 'json'],
    ctlEnv(env),
    `${binPath(binDir, 'etcdctl', v)} endpoint hashkv`,
    600_000,
  );
  const hash = /"hash":(\d+)/.exec(out)?.[1];
  const rev = /"revision":(\d+)/.exec(out)?.[1];
  if (hash === undefined || rev === undefined) throw new Error(`etcdctl ${fmt(v)} endpoint hashkv printed no hash`);
  if (Number(rev) !== Number(range.header?.revision ?? 0))
    throw new Error(
      `etcd ${fmt(v)} changed revision while it was being read (${range.header?.revision} -> ${rev}); ` +
        'nothing else may write to the temporary etcd',
    );
  return { keys: Number(range.count ?? 0), revision: Number(rev), hashKv: Number(hash) };
}

export const sameFacts = (a: MemberFacts, b: MemberFacts): boolean =>
  a.keys === b.keys && a.revision === b.revision && a.hashKv === b.hashKv;

/** The figures of a step's line: "6,061 keys at revision 6,100". */
export const factsFigures = (f: MemberFacts): string => `${counted(f.keys, 'key')} at revision ${figure(f.revision)}`;

export const factsFields = (f: MemberFacts) => ({ keys: f.keys, revision: f.revision });

export const describeFacts = (f: MemberFacts): string =>
  `${count(f.keys, 'key')} at revision ${f.revision} (hashkv ${f.hashKv.toString(16).padStart(8, '0')})`;
