/**
 * Runs the simulated ComfyUI as a process of its own (for fault tests that stop, freeze or kill
 * it): `node dist/sim/run-comfyui.js [stepMs]` prints `SIM_URL=http://127.0.0.1:PORT`.
 */
import { SimComfyUI } from './comfyui.js';

// SIM_LOG_STDOUT=1 prints the log to stdout, as ComfyUI does (the fake base images redirect it to a file).
const onLog = process.env.SIM_LOG_STDOUT === '1' ? (m: string) => void process.stdout.write(m) : undefined;
const sim = new SimComfyUI({ stepMs: Number(process.argv[2] ?? 50), port: Number(process.env.SIM_PORT ?? 0), onLog });
await sim.start();
process.stdout.write(`SIM_URL=${sim.url}\n`);
const stop = () => void sim.stop().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
