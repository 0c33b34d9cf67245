// Where backups may go: not onto a container's own file system while the data dir is on a volume.
// With kubeadm's layout the data dir is the volume's mount point, so the default
// `<data-dir>.backups` would land in the container's writable layer and vanish with the container.
import { existsSync, readFileSync } from 'node:fs';

export interface Devices {
  /** st_dev of `/`, of the data dir, and of the backup dir (or its nearest existing parent). */
  root: number;
  data: number;
  backup: number;
}

/** Backups that would vanish with the container: on its root file system, the data dir elsewhere. */
export const backupVanishes = (containerized: boolean, d: Devices): boolean =>
  containerized && d.backup === d.root && d.data !== d.root;

/**
 * Whether this process runs in a container: the markers docker (/.dockerenv) and podman or CRI-O
 * (/run/.containerenv, $container) leave, or a root file system that is an overlay (containerd).
 */
export function inContainer(env: NodeJS.ProcessEnv): boolean {
  if (env.container) return true;
  if (existsSync('/.dockerenv') || existsSync('/run/.containerenv')) return true;
  return /^\S+ \S+ \S+ \S+ \/ .* - (overlay|fuse-overlayfs|aufs) /m.test(readOr('/proc/self/mountinfo'));
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
