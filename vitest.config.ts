import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The conformance suite against a real ComfyUI runs on its own: `npm run test:comfyui`.
    exclude: ['test/comfyui/**', '**/node_modules/**'],
    // Temporary files under one directory, removed at the end of the run.
    globalSetup: ['test/helpers/scratch.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
    // Every answer from podscope is checked against its OpenAPI document.
    setupFiles: ['test/helpers/openapi-setup.ts'],
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/vitest.json' },
  },
});
