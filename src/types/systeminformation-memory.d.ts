/**
 * systeminformation's memory module on its own. Its index loads every module it has (graphics,
 * docker, bluetooth…), about a megabyte of heap that podscope would carry for one function.
 */
declare module 'systeminformation/lib/memory.js' {
  import type { Systeminformation } from 'systeminformation';
  export function mem(): Promise<Systeminformation.MemData>;
}
