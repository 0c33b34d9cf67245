// Tests run the shipped artifact: the bundle is rebuilt from src/ before every test run.
// @ts-expect-error: a plain .mjs build script without types
import { bundle } from '../../scripts/build.mjs';

export default async function setup(): Promise<void> {
  await (bundle as () => Promise<void>)();
}
