// A container engine (podman or docker) that holds the etcd-migrate image: found, asked, run.
// Nothing is ever pulled: every run passes --pull=never.
import { execa } from 'execa';
import { UsageError } from '../../errors.ts';

export type EngineName = 'podman' | 'docker';
export const ENGINE_CHOICES = ['auto', 'podman', 'docker', 'none'] as const;
export type EngineChoice = (typeof ENGINE_CHOICES)[number];

export interface Engine {
  name: EngineName;
  image: string;
  /** The image's ID, as the engine reports it. */
  imageId: string;
}

/** The ID of `image` in `engine`, or undefined when the engine is missing, not running, or lacks it. */
export async function imageId(engine: EngineName, image: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const r = await execa(engine, ['image', 'inspect', '--format', '{{.Id}}', image], {
    reject: false,
    env,
    extendEnv: false,
    timeout: 30_000,
    stdin: 'ignore',
  }).catch(() => undefined);
  if (!r || r.exitCode !== 0) return undefined;
  return String(r.stdout).trim() || undefined;
}

/**
 * The engine to rehearse in. auto: podman, then docker, whichever holds the image; none of them
 * means undefined (the local binaries). A named engine that lacks the image is an error.
 */
export async function chooseEngine(
  choice: EngineChoice,
  image: string,
  env: NodeJS.ProcessEnv,
): Promise<Engine | undefined> {
  if (choice === 'none') return undefined;
  const candidates: EngineName[] = choice === 'auto' ? ['podman', 'docker'] : [choice];
  for (const name of candidates) {
    const id = await imageId(name, image, env);
    if (id) return { name, image, imageId: id };
  }
  if (choice === 'auto') return undefined;
  throw new UsageError(
    `${choice} has no image ${image} (or ${choice} is not installed or not running); ` +
      'build it with "make image", pass --image, or --engine none for the local binaries',
  );
}

/** `<engine> run` arguments: host network (the temporary etcds listen on 127.0.0.1), one bind mount, never a pull. */
export function runArgs(
  image: string,
  mounts: ReadonlyArray<[host: string, container: string]>,
  args: readonly string[],
): string[] {
  return [
    'run',
    '--rm',
    '--pull=never',
    '--network=host',
    ...mounts.flatMap(([h, c]) => ['--volume', `${h}:${c}`]),
    image,
    ...args,
  ];
}
