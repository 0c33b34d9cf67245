// A 3-member cluster migrated with all members at once: 3.3.25 -> 3.4.23 -> 3.5.30, TLS between the
// peers (ETCD_CREDS) and on the client ports (the entrypoint's own requests use client certificates).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_DIR, requireBinaries } from '../helpers/env.ts';
import { clientTlsFlags, makeCerts, peerTlsFlags } from '../helpers/certs.ts';
import {
  exeOf,
  grant,
  planCluster,
  put,
  range,
  readVersionTxt,
  sleep,
  startEntrypoint,
  startMember,
  waitServing,
  type Node,
  type Proc,
} from '../helpers/cluster.ts';
import { tmpDir } from '../helpers/tmp.ts';

beforeAll(requireBinaries);

describe('a 3-member cluster, all members at once', () => {
  it('3.3.25 -> 3.5.30 with peer and client TLS, members starting 1.5 s apart, each then execs 3.5.30', async () => {
    const root = await tmpDir();
    const certs = await makeCerts(path.join(root, 'certs'), ['m1', 'm2', 'm3', 'client']);
    const c = await planCluster(root, 3, certs);
    const tls = (m: Node) => [...peerTlsFlags(certs, m.name), ...clientTlsFlags(certs, m.name)];

    // A 3.3.25 cluster writes data through v3: plain keys and keys on a lease.
    const old = c.nodes.map((m) => startMember('3.3.25', c, m, tls(m)));
    await Promise.all(c.nodes.map((m, i) => waitServing(m.clientUrl, c.tls, '3.3.25', 30_000, old[i])));
    const url = c.nodes[0]!.clientUrl;
    for (let i = 0; i < 30; i++)
      expect(await put(url, '3.3.25', c.tls, `/registry/pods/default/p${i}`, `{"pod":${i}}`)).toBe(true);
    const lease = await grant(url, '3.3.25', c.tls, 600);
    for (let i = 0; i < 5; i++)
      expect(await put(url, '3.3.25', c.tls, `/registry/events/e${i}`, `event ${i}`, lease)).toBe(true);
    const before = await range(url, '3.3.25', c.tls, '/registry/');
    expect(before).toHaveLength(35);
    for (const p of old) await p.stop();
    for (const m of c.nodes) await fs.writeFile(path.join(m.dataDir, 'version.txt'), '3.3.25/etcd3');

    // Each member's entrypoint, 1.5 s apart: ETCD_CREDS carries the TLS flags to every temporary etcd.
    const t0 = Date.now();
    const entries: Proc[] = [];
    for (const [i, m] of c.nodes.entries()) {
      if (i > 0) await sleep(1500);
      entries.push(
        startEntrypoint(c, m, {
          target: '3.5.30',
          env: { ETCD_CREDS: tls(m).join(' ') },
          args: [
            '--client-ca-file',
            certs.ca,
            '--client-cert-file',
            certs.crt('client'),
            '--client-key-file',
            certs.key('client'),
          ],
          etcdExtra: tls(m),
        }),
      );
    }
    await Promise.all(c.nodes.map((m, i) => waitServing(m.clientUrl, c.tls, '3.5.30', 150_000, entries[i])));
    const took = Date.now() - t0;

    for (const [i, m] of c.nodes.entries()) {
      const out = entries[i]!.output();
      expect(out, out).toMatch(/step 1\/2 upgrade 3\.3\.25\/etcd3 -> 3\.4\.23\/etcd3: [\d.]+ s$/m);
      expect(out, out).toMatch(/step 2\/2 upgrade 3\.4\.23\/etcd3 -> 3\.5\.30\/etcd3: [\d.]+ s$/m);
      expect(out).toContain('exec etcd 3.5.30');
      expect(await exeOf(entries[i]!)).toBe(path.join(BIN_DIR, 'etcd-3.5.30'));
      expect(await readVersionTxt(m)).toBe('3.5.30/etcd3');
      expect(await range(m.clientUrl, '3.5.30', c.tls, '/registry/')).toEqual(before);
    }
    // The cluster version follows once every member runs 3.5 (etcd checks every few seconds).
    let cv = '';
    for (let i = 0; i < 100 && cv !== '3.5.0'; i++) {
      cv = (await waitServing(url, c.tls, '3.5.30', 5000)).cluster;
      if (cv !== '3.5.0') await sleep(200);
    }
    expect(cv).toBe('3.5.0');
    console.log(
      `all members 3.3.25 -> 3.5.30 with TLS: ${(took / 1000).toFixed(1)} s ` +
        `from the first entrypoint to all three serving 3.5.30\n${summary(entries)}`,
    );
  }, 240_000);

  it('3.4.23 -> 3.7.3, all members at once: together via 3.5.36 and 3.6.17, then each execs etcd 3.7.3', async () => {
    const root = await tmpDir();
    const c = await planCluster(root, 3);
    const old = c.nodes.map((m) => startMember('3.4.23', c, m));
    await Promise.all(c.nodes.map((m, i) => waitServing(m.clientUrl, undefined, '3.4.23', 30_000, old[i])));
    const url = c.nodes[0]!.clientUrl;
    for (let i = 0; i < 20; i++)
      expect(await put(url, '3.4.23', undefined, `/registry/pods/p${i}`, `{"pod":${i}}`)).toBe(true);
    const lease = await grant(url, '3.4.23', undefined, 600);
    for (let i = 0; i < 3; i++)
      expect(await put(url, '3.4.23', undefined, `/registry/events/e${i}`, `event ${i}`, lease)).toBe(true);
    const before = await range(url, '3.4.23', undefined, '/registry/');
    for (const p of old) await p.stop();
    for (const m of c.nodes) await fs.writeFile(path.join(m.dataDir, 'version.txt'), '3.4.23/etcd3');

    const t0 = Date.now();
    const entries: Proc[] = [];
    for (const [i, m] of c.nodes.entries()) {
      if (i > 0) await sleep(1500);
      entries.push(startEntrypoint(c, m, { target: '3.7.3' }));
    }
    await Promise.all(c.nodes.map((m, i) => waitServing(m.clientUrl, undefined, '3.7.3', 200_000, entries[i])));
    const took = Date.now() - t0;
    for (const [i, m] of c.nodes.entries()) {
      const out = entries[i]!.output();
      expect(out, out).toMatch(/step 3\/3 upgrade 3\.6\.17\/etcd3 -> 3\.7\.3\/etcd3: [\d.]+ s$/m);
      expect(await exeOf(entries[i]!)).toBe(path.join(BIN_DIR, 'etcd-3.7.3'));
      expect(await readVersionTxt(m)).toBe('3.7.3/etcd3');
      expect(await range(m.clientUrl, '3.7.3', undefined, '/registry/')).toEqual(before);
    }
    let cv = '';
    for (let i = 0; i < 100 && cv !== '3.7.0'; i++) {
      cv = (await waitServing(url, undefined, '3.7.3', 5000)).cluster;
      if (cv !== '3.7.0') await sleep(200);
    }
    expect(cv).toBe('3.7.0');
    console.log(
      `all members 3.4.23 -> 3.7.3: ${(took / 1000).toFixed(1)} s ` +
        `from the first entrypoint to all three serving 3.7.3\n${summary(entries)}`,
    );
  }, 300_000);

  it('a member 15+ s late: the others wait at 3.4 until it runs 3.4 (no minor skipped), then all finish', async () => {
    const root = await tmpDir();
    const c = await planCluster(root, 3);
    const old = c.nodes.map((m) => startMember('3.3.25', c, m));
    await Promise.all(c.nodes.map((m, i) => waitServing(m.clientUrl, undefined, '3.3.25', 30_000, old[i])));
    for (let i = 0; i < 10; i++)
      expect(await put(c.nodes[0]!.clientUrl, '3.3.25', undefined, `/registry/k${i}`, `v${i}`)).toBe(true);
    const before = await range(c.nodes[0]!.clientUrl, '3.3.25', undefined, '/registry/');
    for (const p of old) await p.stop();
    for (const m of c.nodes) await fs.writeFile(path.join(m.dataDir, 'version.txt'), '3.3.25/etcd3');

    const entries = [
      startEntrypoint(c, c.nodes[0]!, { target: '3.5.30' }),
      startEntrypoint(c, c.nodes[1]!, { target: '3.5.30' }),
    ];
    // m1 and m2 have a quorum, and their writes commit, but the cluster version stays 3.3 without
    // m3: both still wait at 3.4.23 after its first 15 s (they log it).
    const waiting = /etcd 3\.4\.23 waiting 1\d s: cluster version 3\.3, waiting for 3\.4/;
    for (const t0 = Date.now(); !entries.every((e) => waiting.test(e.output())) && Date.now() - t0 < 60_000;)
      await sleep(200);
    for (const e of entries) {
      expect(e.output()).toMatch(waiting);
      expect(e.output()).not.toMatch(/step 1\/2 upgrade/);
    }
    const late = Date.now();
    entries.push(startEntrypoint(c, c.nodes[2]!, { target: '3.5.30' }));
    await Promise.all(c.nodes.map((m, i) => waitServing(m.clientUrl, undefined, '3.5.30', 120_000, entries[i])));
    for (const [i, m] of c.nodes.entries()) {
      expect(entries[i]!.output()).toMatch(/step 2\/2 upgrade 3\.4\.23\/etcd3 -> 3\.5\.30\/etcd3: [\d.]+ s$/m);
      expect(await readVersionTxt(m)).toBe('3.5.30/etcd3');
      expect(await range(m.clientUrl, '3.5.30', undefined, '/registry/')).toEqual(before);
    }
    console.log(
      `a member late by 15 s and more: all three serving 3.5.30 ` +
        `${((Date.now() - late) / 1000).toFixed(1)} s after it started\n${summary(entries)}`,
    );
  }, 180_000);
});

function summary(entries: Proc[]): string {
  return entries
    .map(
      (e, i) =>
        `m${i + 1}: ${e
          .output()
          .split('\n')
          .filter((l) => /step \d|migrated|exec etcd|waiting|killed/.test(l))
          .join(' | ')}`,
    )
    .join('\n');
}
