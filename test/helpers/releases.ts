// Stand-ins for etcd's official release tarballs, served on loopback, for the image's release path.
import { execa } from 'execa';
import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { freePort, onCleanup } from './tmp.ts';

export interface FakeRelease {
  version: string;
  /** Tools in the tarball; each file's content is "<tool> <version>". */
  tools: string[];
}

/** Writes etcd-v<V>-linux-amd64.tar.gz for each release (with GNU tar, as etcd's are made) into dir. */
export async function makeTarballs(
  dir: string,
  releases: FakeRelease[],
): Promise<Array<{ version: string; file: string; sha256: string }>> {
  const out = [];
  for (const r of releases) {
    const top = `etcd-v${r.version}-linux-amd64`;
    await fs.mkdir(path.join(dir, 'src', top, 'Documentation'), { recursive: true });
    for (const t of r.tools) await fs.writeFile(path.join(dir, 'src', top, t), `${t} ${r.version}`, { mode: 0o755 });
    await fs.writeFile(path.join(dir, 'src', top, 'README.md'), 'readme');
    await fs.writeFile(path.join(dir, 'src', top, 'Documentation', 'etcd'), 'not a tool: two levels deep');
    const file = `${top}.tar.gz`;
    await execa('tar', ['-czf', path.join(dir, file), '-C', path.join(dir, 'src'), top]);
    const sha256 = crypto
      .createHash('sha256')
      .update(await fs.readFile(path.join(dir, file)))
      .digest('hex');
    out.push({ version: r.version, file, sha256 });
  }
  return out;
}

/** Serves the files of dir on 127.0.0.1 until the test ends; returns the base URL. */
export async function serveDir(dir: string): Promise<string> {
  const port = await freePort();
  const srv = http.createServer((req, res) => {
    fs.readFile(path.join(dir, path.basename(req.url ?? ''))).then(
      (b) => res.end(b),
      () => {
        res.statusCode = 404;
        res.end();
      },
    );
  });
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  onCleanup(() => new Promise((r) => srv.close(() => r())));
  return `http://127.0.0.1:${port}`;
}

export const tsvRow = (base: string, t: { version: string; file: string; sha256: string }): string =>
  `${t.version}\t${base}/${t.file}\t${t.sha256}\ttest`;
