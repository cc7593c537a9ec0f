import { defineConfig } from 'vitest/config';

/** `npm run test:comfyui`: the conformance suite against a real ComfyUI (see test/comfyui/). */
export default defineConfig({
  test: {
    include: ['test/comfyui/**/*.test.ts'],
    globalSetup: ['test/helpers/scratch.ts', 'test/comfyui/global-setup.ts'],
    testTimeout: 90_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // One real ComfyUI at a time: the timing goals are about podscope, not about two ComfyUIs sharing two cores.
    fileParallelism: false,
    // Every answer from podscope is checked against its OpenAPI document.
    setupFiles: ['test/helpers/openapi-setup.ts'],
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/comfyui.json' },
  },
});
