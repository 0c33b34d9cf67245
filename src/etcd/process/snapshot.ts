// etcd snapshots: save one from a running member, check the file, read its status, restore it.
import crypto from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { IntegrityError } from '../../errors.ts';
import type { Version } from '../../version.ts';
import type { MemberConfig } from './server.ts';
import { ctlEnv, offlineTool, runTool } from './tool.ts';

const BOLT_MAGIC = 0xed0cdaed;
/** etcd appends the sha256 of the db to a snapshot it sends; restore checks it. */
const TRAILER = 32;

export interface SnapshotStatus {
  /** crc32 of the bbolt contents, as `snapshot status` prints it. */
  hash: number;
  revision: number;
  /** Every bbolt entry: each revision of each key, plus etcd's own records; not the live key count. */
  totalKey: number;
  /** The db's size (the file is 32 bytes longer). */
  totalSize: number;
}

export interface TlsFlags {
  cacert?: string;
  cert?: string;
  key?: string;
}

/** `etcdctl snapshot save`, made owner-only (3.3's etcdctl writes 0644). */
export async function saveSnapshot(o: {
  binDir: string;
  version: Version;
  endpoint: string;
  file: string;
  env: Record<string, string>;
  tls?: TlsFlags;
}): Promise<void> {
  const tls = o.tls ?? {};
  const args = [
    '--endpoints',
    o.endpoint,
    ...(tls.cacert ? ['--cacert', tls.cacert] : []),
    ...(tls.cert ? ['--cert', tls.cert] : []),
    ...(tls.key ? ['--key', tls.key] : []),
    'snapshot',
    'save',
    o.file,
  ];
  await runTool(o.binDir, 'etcdctl', o.version, args, o.env, `etcdctl snapshot save from ${o.endpoint}`);
  await fs.chmod(o.file, 0o600);
}

/**
 * The file is a bbolt db followed by the sha256 etcd appended, and they match: nothing was cut or
 * changed since etcd sent it. (`snapshot status` alone does not notice a changed byte.)
 * Returns the sha256 of the whole file and its size.
 */
export async function checkSnapshotFile(file: string): Promise<{ sha256: string; size: number }> {
  const { size } = await fs.stat(file);
  if (size < 4096 + TRAILER)
    throw new IntegrityError('truncated', `${file} is too short to be an etcd snapshot (${size} bytes)`);
  const fh = await fs.open(file, 'r');
  const head = Buffer.alloc(20);
  const trailer = Buffer.alloc(TRAILER);
  try {
    await fh.read(head, 0, 20, 0);
    await fh.read(trailer, 0, TRAILER, size - TRAILER);
  } finally {
    await fh.close();
  }
  if (head.readUInt32LE(16) !== BOLT_MAGIC)
    throw new IntegrityError('format', `${file} is not an etcd snapshot (no bbolt header)`);
  const body = crypto.createHash('sha256');
  const whole = crypto.createHash('sha256');
  for await (const piece of createReadStream(file, {
    end: size - TRAILER - 1,
    highWaterMark: 1 << 20,
  }) as AsyncIterable<Buffer>) {
    body.update(piece);
    whole.update(piece);
  }
  whole.update(trailer);
  if (!body.digest().equals(trailer)) {
    throw new IntegrityError(
      'damaged',
      `${file} is damaged or truncated: its content does not match the sha256 etcd appended to it ` +
        '(a raw copy of member/snap/db has no such hash; restore one with --skip-hash-check)',
    );
  }
  return { sha256: whole.digest('hex'), size };
}

/** `snapshot status -w json` with `v`'s offline tool. */
export async function snapshotStatus(
  binDir: string,
  v: Version,
  file: string,
  env: NodeJS.ProcessEnv,
): Promise<SnapshotStatus> {
  const tool = offlineTool(v);
  const out = await runTool(
    binDir,
    tool,
    v,
    ['snapshot', 'status', file, '-w', 'json'],
    ctlEnv(env),
    `${tool} snapshot status`,
    600_000,
  );
  const j = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Partial<SnapshotStatus>;
  if (typeof j.revision !== 'number' || typeof j.hash !== 'number')
    throw new IntegrityError('format', `${tool} snapshot status printed no revision for ${file}`);
  return { hash: j.hash, revision: j.revision, totalKey: j.totalKey ?? 0, totalSize: j.totalSize ?? 0 };
}

/** `snapshot restore` with `v`'s offline tool into `dataDir`, which must not exist. */
export async function restoreSnapshot(o: {
  binDir: string;
  version: Version;
  file: string;
  dataDir: string;
  member: MemberConfig;
  token: string;
  env: NodeJS.ProcessEnv;
  skipHashCheck?: boolean;
}): Promise<void> {
  const tool = offlineTool(o.version);
  const args = [
    'snapshot',
    'restore',
    o.file,
    '--data-dir',
    o.dataDir,
    '--name',
    o.member.name,
    '--initial-cluster',
    o.member.initialCluster,
    '--initial-advertise-peer-urls',
    o.member.initialAdvertisePeerUrls,
    '--initial-cluster-token',
    o.token,
    ...(o.skipHashCheck ? ['--skip-hash-check'] : []),
  ];
  await runTool(o.binDir, tool, o.version, args, ctlEnv(o.env), `${tool} snapshot restore`);
}
