// image/etcd-bundle.ts: which versions an image bundles, and the layout it makes from a local bin dir.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { parseReleases, selectVersions, untar } from '../../image/etcd-bundle.ts';
import { makeTarballs, serveDir, tsvRow } from '../helpers/releases.ts';
import { REPO } from '../helpers/env.ts';
import { tmpDir } from '../helpers/tmp.ts';

describe('versions/releases.tsv', () => {
  it('parses into versions with https urls of that version and sha256 sums, each once', async () => {
    const rows = parseReleases(await fs.readFile(path.join(REPO, 'versions/releases.tsv'), 'utf8'));
    expect(rows.length).toBeGreaterThan(10);
    for (const r of rows) {
      const v = r.version.replaceAll('.', '\\.');
      expect(r.url).toMatch(new RegExp(`^https://.*/v${v}/etcd-v${v}-linux-amd64\\.tar\\.gz$`));
    }
    expect(new Set(rows.map((r) => r.version)).size).toBe(rows.length);
  });

  it('the Dockerfile default release set "3.4 3.5 3.6 3.7" is the newest patch of each minor listed', async () => {
    const rows = parseReleases(await fs.readFile(path.join(REPO, 'versions/releases.tsv'), 'utf8'));
    const dockerfile = await fs.readFile(path.join(REPO, 'image/Dockerfile'), 'utf8');
    const wanted = /^ARG ETCD_VERSIONS="([^"]*)"$/m.exec(dockerfile)?.[1]?.split(' ');
    expect(wanted).toEqual(['3.4', '3.5', '3.6', '3.7']);
    const picked = selectVersions(
      rows.map((r) => r.version),
      wanted!,
    );
    expect(picked).toHaveLength(4);
    for (const v of picked) {
      const minor = v.split('.').slice(0, 2).join('.');
      const patches = rows.filter((r) => r.version.startsWith(`${minor}.`)).map((r) => Number(r.version.split('.')[2]));
      expect(Number(v.split('.')[2])).toBe(Math.max(...patches));
    }
    // etcd 3.6 needs 3.5.26 or newer first: the set must allow that step.
    expect(Number(picked[1]!.split('.')[2])).toBeGreaterThanOrEqual(26);
  });

  it('refuses a malformed row', () => {
    expect(() => parseReleases('3.5.1\thttp://x\tabc\n')).toThrow(/line 1/);
  });
});

describe('selectVersions', () => {
  const have = ['3.3.25', '3.4.23', '3.5.16', '3.5.30', '3.5.9'];
  it.each([
    [['3.5'], ['3.5.30']],
    [
      ['3.5.16', '3.4'],
      ['3.4.23', '3.5.16'],
    ],
    [['3.3', '3.3.25'], ['3.3.25']],
  ])('%j -> %j (oldest first, no duplicates)', (wanted, want) => {
    expect(selectVersions(have, wanted)).toEqual(want);
  });
  it.each([[['3.6']], [['3.5.1']], [['latest']], [[]]])('refuses %j', (wanted) => {
    expect(() => selectVersions(have, wanted)).toThrow();
  });
});

describe('etcd-bundle.ts local', () => {
  it('links the chosen versions from a bin dir and points plain etcd/etcdctl/etcdutl at the newest', async () => {
    const src = await tmpDir();
    for (const n of [
      'etcd-3.4.23',
      'etcdctl-3.4.23',
      'etcd-3.5.16',
      'etcdctl-3.5.16',
      'etcdutl-3.5.16',
      'etcd-3.5.30',
      'etcdctl-3.5.30',
      'etcdutl-3.5.30',
    ]) {
      await fs.writeFile(path.join(src, n), n, { mode: 0o755 });
    }
    const out = path.join(await tmpDir(), 'out');
    await execa(path.join(REPO, 'node_modules/.bin/node'), [
      path.join(REPO, 'image/etcd-bundle.ts'),
      'local',
      src,
      out,
      '3.4',
      '3.5.16',
    ]);
    expect((await fs.readdir(out)).sort()).toEqual([
      'etcd',
      'etcd-3.4.23',
      'etcd-3.5.16',
      'etcdctl',
      'etcdctl-3.4.23',
      'etcdctl-3.5.16',
      'etcdutl',
      'etcdutl-3.5.16',
    ]);
    expect(await fs.readlink(path.join(out, 'etcd'))).toBe('etcd-3.5.16');
    expect(await fs.readFile(path.join(out, 'etcdutl'), 'utf8')).toBe('etcdutl-3.5.16');
    const r = await execa(
      path.join(REPO, 'node_modules/.bin/node'),
      [path.join(REPO, 'image/etcd-bundle.ts'), 'local', src, out, '3.6'],
      { reject: false },
    );
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('no etcd 3.6.x is available');
  });
});

describe('etcd-bundle.ts release', () => {
  const node = path.join(REPO, 'node_modules/.bin/node');
  const script = path.join(REPO, 'image/etcd-bundle.ts');

  it('untar reads the top-level files of a GNU tar archive, long and pax names included', async () => {
    const dir = await tmpDir();
    const long = 'x'.repeat(120);
    await fs.mkdir(path.join(dir, 'top', 'sub'), { recursive: true });
    await fs.writeFile(path.join(dir, 'top', 'etcd'), 'E'.repeat(1000));
    await fs.writeFile(path.join(dir, 'top', long), 'long');
    await fs.writeFile(path.join(dir, 'top', 'sub', 'etcd'), 'deep');
    for (const format of ['gnu', 'pax']) {
      await execa('tar', [`--format=${format}`, '-cf', path.join(dir, `${format}.tar`), '-C', dir, 'top']);
      const files = untar(await fs.readFile(path.join(dir, `${format}.tar`)));
      expect([...files.keys()].sort(), format).toEqual(['etcd', long]);
      expect(files.get('etcd')!.toString()).toBe('E'.repeat(1000));
      expect(files.get(long)!.toString()).toBe('long');
    }
  });

  it('downloads each chosen release, checks its sha256 and lays out its tools', async () => {
    const dir = await tmpDir();
    const tars = await makeTarballs(dir, [
      { version: '9.1.0', tools: ['etcd', 'etcdctl'] },
      { version: '9.1.1', tools: ['etcd', 'etcdctl'] },
      { version: '9.2.0', tools: ['etcd', 'etcdctl', 'etcdutl'] },
    ]);
    const base = await serveDir(dir);
    await fs.writeFile(path.join(dir, 'releases.tsv'), `# test\n${tars.map((t) => tsvRow(base, t)).join('\n')}\n`);
    const out = path.join(dir, 'out');
    const r = await execa(node, [script, 'release', path.join(dir, 'releases.tsv'), out], {
      env: { ETCD_VERSIONS: '9.1 9.2' },
    });
    expect(r.stdout).toContain(`etcd 9.1.1: sha256 ${tars[1]!.sha256} verified`);
    expect((await fs.readdir(out)).sort()).toEqual([
      'etcd',
      'etcd-9.1.1',
      'etcd-9.2.0',
      'etcdctl',
      'etcdctl-9.1.1',
      'etcdctl-9.2.0',
      'etcdutl',
      'etcdutl-9.2.0',
    ]);
    expect(await fs.readFile(path.join(out, 'etcdutl'), 'utf8')).toBe('etcdutl 9.2.0');
    expect((await fs.stat(path.join(out, 'etcd-9.1.1'))).mode & 0o777).toBe(0o755);
  });

  it('refuses a tarball whose sha256 is not the listed one, and bundles nothing', async () => {
    const dir = await tmpDir();
    const [t] = await makeTarballs(dir, [{ version: '9.1.0', tools: ['etcd', 'etcdctl'] }]);
    const base = await serveDir(dir);
    const wrong = { ...t!, sha256: '0'.repeat(64) };
    await fs.writeFile(path.join(dir, 'releases.tsv'), `${tsvRow(base, wrong)}\n`);
    const r = await execa(node, [script, 'release', path.join(dir, 'releases.tsv'), path.join(dir, 'out'), '9.1.0'], {
      reject: false,
    });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`sha256 of ${base}/${t!.file} is ${t!.sha256}, expected ${'0'.repeat(64)}`);
    expect(await fs.readdir(path.join(dir, 'out'))).toEqual([]);
  });
});
