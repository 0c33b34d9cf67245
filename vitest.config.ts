import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    // The JSON report feeds the plain closing line that `make test` prints (N passed, N failed).
    reporters: ['default', ['json', { outputFile: '.cache/vitest-report.json' }]],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 30_000,
  },
});
