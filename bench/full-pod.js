#!/usr/bin/env node
/**
 * `podscope serve` as a pod that has run for an hour: every buffer is filled before the collectors
 * start (bench/prefill.js), then it serves and collects exactly as `podscope serve` does. The soak
 * runs it, so it measures the state the memory goal is about from its first minute.
 */
import { runServe } from '../dist/main.js';
import { fillBuffers } from './prefill.js';

process.exitCode = await runServe(process.env, {
  beforeCollectors: (state, config) => fillBuffers(state, config, { gpus: Number(process.env.RUNPOD_GPU_COUNT ?? 8) }),
});
setTimeout(() => process.exit(process.exitCode), 500).unref();
