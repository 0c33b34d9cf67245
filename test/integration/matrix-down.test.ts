// Issue 15: every downgrade between two bundled versions, single member, v3 data with a lease.
import { beforeAll, describe, it } from 'vitest';
import { requireBinaries } from '../helpers/env.ts';
import { checkV3Pair, older, pairs } from '../helpers/matrix.ts';

beforeAll(requireBinaries);

describe('every downgrade of v3 data between bundled versions', () => {
  it.each(pairs((a, b) => older(b, a)))('%s -> %s keeps every key, value, lease and revision', checkV3Pair, 120_000);
});
