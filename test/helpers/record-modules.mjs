// `node --import ./record-modules.mjs …`: writes the URL of every module the process imports to
// the file named by RECORD_MODULES_FILE, one per line (to tell what a process loaded).
import { register } from 'node:module';

register('./record-modules-hooks.mjs', import.meta.url, { data: { file: process.env.RECORD_MODULES_FILE } });
