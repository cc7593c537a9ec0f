/**
 * The NVML sampler process: loads libnvidia-ml through koffi and reads every GPU, off podscope's
 * event loop. podscope starts it (sources/nvml.ts), listens to what it sends over IPC, and kills
 * it (SIGKILL, with its whole process group) when a sample is late: a call stuck in the driver
 * blocks only this process, and nothing of it is left behind.
 *
 * Every function is looked up once and may be missing (an older driver): its readings are then
 * null with that reason, never 0. Memory is read every `fastMs` and each period's sample carries
 * the period's maximum beside the latest value; utilization comes from the driver's own sample
 * buffer (nvmlDeviceGetSamples) so no interval is skipped; the energy counter gives exact joules.
 * Xid events are polled (timeout 0) at every fast tick, so the loop never waits in the driver.
 */
import koffi from 'koffi';
import type { GpuRow, ComputeApp } from '../shared/gpu-readings.js';
import type { NvmlMessage, NvmlStart } from './nvml-protocol.js';

const NVML_SUCCESS = 0;
const NVML_ERROR_NOT_SUPPORTED = 3;
const NVML_ERROR_INSUFFICIENT_SIZE = 7;
const NVML_ERROR_TIMEOUT = 10;
const NVML_ERROR_GPU_IS_LOST = 15;
const XID_CRITICAL_ERROR = 8n;
const MIB = 1024 * 1024;
/** All ones: a value NVML cannot tell (NVML_VALUE_NOT_AVAILABLE), e.g. a process's memory in some containers. */
const NOT_AVAILABLE = 0xffffffffffffffffn;

const send = (m: NvmlMessage) => process.send?.(m);

type Fn = (...args: unknown[]) => number;

function open(path: string) {
  const lib = koffi.load(path);
  const missing: string[] = [];
  /** A function by its C declaration, or null when this library does not export it. */
  const fn = (decl: string): Fn | null => {
    try {
      return lib.func(decl) as Fn;
    } catch {
      missing.push(/(\w+)\(/.exec(decl)?.[1] ?? decl);
      return null;
    }
  };
  const f = {
    init: fn('int nvmlInit_v2()') ?? fn('int nvmlInit()'),
    shutdown: fn('int nvmlShutdown()'),
    errorString: lib.func('const char *nvmlErrorString(int)') as (r: number) => string,
    driver: fn('int nvmlSystemGetDriverVersion(_Out_ uint8_t *buf, uint32_t len)'),
    count: fn('int nvmlDeviceGetCount_v2(_Out_ uint32_t *count)'),
    handle: fn('int nvmlDeviceGetHandleByIndex_v2(uint32_t index, _Out_ void **dev)'),
    name: fn('int nvmlDeviceGetName(void *dev, _Out_ uint8_t *buf, uint32_t len)'),
    uuid: fn('int nvmlDeviceGetUUID(void *dev, _Out_ uint8_t *buf, uint32_t len)'),
    pci: fn('int nvmlDeviceGetPciInfo_v3(void *dev, _Out_ uint8_t *info)'),
    memory2: fn('int nvmlDeviceGetMemoryInfo_v2(void *dev, _Inout_ uint8_t *mem)'),
    memory: fn('int nvmlDeviceGetMemoryInfo(void *dev, _Out_ uint8_t *mem)'),
    utilization: fn('int nvmlDeviceGetUtilizationRates(void *dev, _Out_ uint8_t *rates)'),
    samples: fn('int nvmlDeviceGetSamples(void *dev, int type, uint64_t lastSeen, _Out_ int *valType, _Inout_ uint32_t *count, _Out_ uint8_t *samples)'),
    power: fn('int nvmlDeviceGetPowerUsage(void *dev, _Out_ uint32_t *mw)'),
    powerLimit: fn('int nvmlDeviceGetEnforcedPowerLimit(void *dev, _Out_ uint32_t *mw)'),
    energy: fn('int nvmlDeviceGetTotalEnergyConsumption(void *dev, _Out_ uint64_t *mj)'),
    temperature: fn('int nvmlDeviceGetTemperature(void *dev, int sensor, _Out_ uint32_t *c)'),
    clock: fn('int nvmlDeviceGetClockInfo(void *dev, int type, _Out_ uint32_t *mhz)'),
    maxClock: fn('int nvmlDeviceGetMaxClockInfo(void *dev, int type, _Out_ uint32_t *mhz)'),
    throttle: fn('int nvmlDeviceGetCurrentClocksThrottleReasons(void *dev, _Out_ uint64_t *reasons)'),
    pstate: fn('int nvmlDeviceGetPerformanceState(void *dev, _Out_ int *p)'),
    fan: fn('int nvmlDeviceGetFanSpeed(void *dev, _Out_ uint32_t *pct)'),
    processes3: fn('int nvmlDeviceGetComputeRunningProcesses_v3(void *dev, _Inout_ uint32_t *count, _Out_ uint8_t *infos)'),
    processes1: fn('int nvmlDeviceGetComputeRunningProcesses(void *dev, _Inout_ uint32_t *count, _Out_ uint8_t *infos)'),
    pcieGen: fn('int nvmlDeviceGetCurrPcieLinkGeneration(void *dev, _Out_ uint32_t *gen)'),
    pcieWidth: fn('int nvmlDeviceGetCurrPcieLinkWidth(void *dev, _Out_ uint32_t *width)'),
    pcieThroughput: fn('int nvmlDeviceGetPcieThroughput(void *dev, int counter, _Out_ uint32_t *kbps)'),
    violation: fn('int nvmlDeviceGetViolationStatus(void *dev, int policy, _Out_ uint8_t *time)'),
    processUtil: fn('int nvmlDeviceGetProcessUtilization(void *dev, _Out_ uint8_t *samples, _Inout_ uint32_t *count, uint64_t lastSeen)'),
    eventSetCreate: fn('int nvmlEventSetCreate(_Out_ void **set)'),
    supportedEvents: fn('int nvmlDeviceGetSupportedEventTypes(void *dev, _Out_ uint64_t *types)'),
    registerEvents: fn('int nvmlDeviceRegisterEvents(void *dev, uint64_t types, void *set)'),
    eventWait: fn('int nvmlEventSetWait_v2(void *set, _Out_ uint8_t *data, uint32_t timeoutMs)'),
  };
  return { f, missing };
}

type Api = ReturnType<typeof open>['f'];

const text = (buf: Buffer) => {
  const end = buf.indexOf(0);
  return buf.subarray(0, end < 0 ? buf.length : end).toString('utf8');
};

interface Device {
  index: number;
  handle: unknown;
  /** The handle's address, to tell which GPU an event is about. */
  address: bigint | null;
  uuid: string;
  name: string;
  bus: string | null;
  /** Memory read at the fast period since the last sample: the latest, and the maximum. */
  usedMaxMb: number | null;
  lastSeenUs: bigint;
}

class Sampler {
  private readonly devices: Device[] = [];
  private driver: string | null = null;
  private eventSet: unknown = null;
  private readonly lost = new Map<number, string>();

  constructor(private readonly f: Api) {}

  private err(r: number): string {
    try {
      return this.f.errorString(r);
    } catch {
      return `NVML error ${r}`;
    }
  }

  /** Initializes NVML and finds every GPU; a reason when it cannot. */
  start(): string | null {
    if (!this.f.init) return 'libnvidia-ml has no nvmlInit';
    const r = this.f.init();
    if (r !== NVML_SUCCESS) return `nvmlInit failed: ${this.err(r)}`;
    if (this.f.driver) {
      const buf = Buffer.alloc(96);
      if (this.f.driver(buf, buf.length) === NVML_SUCCESS) this.driver = text(buf);
    }
    if (!this.f.count || !this.f.handle) return 'libnvidia-ml has no nvmlDeviceGetCount_v2 or nvmlDeviceGetHandleByIndex_v2';
    const count = [0];
    const rc = this.f.count(count);
    if (rc !== NVML_SUCCESS) return `nvmlDeviceGetCount failed: ${this.err(rc)}`;
    for (let index = 0; index < count[0]!; index++) {
      const out: unknown[] = [null];
      const rh = this.f.handle(index, out);
      if (rh !== NVML_SUCCESS) {
        this.lost.set(index, this.err(rh));
        continue;
      }
      const handle = out[0];
      const str = (call: Fn | null) => {
        if (!call) return '';
        const buf = Buffer.alloc(96);
        return call(handle, buf, buf.length) === NVML_SUCCESS ? text(buf) : '';
      };
      let bus: string | null = null;
      if (this.f.pci) {
        const info = Buffer.alloc(68);
        if (this.f.pci(handle, info) === NVML_SUCCESS) bus = text(info.subarray(36, 68)) || null;
      }
      this.devices.push({ index, handle, address: typeof handle === 'bigint' ? handle : addressOf(handle), uuid: str(this.f.uuid), name: str(this.f.name), bus, usedMaxMb: null, lastSeenUs: 0n });
    }
    return null;
  }

  /** Registers every GPU for Xid events; the reason when that cannot be done (old driver, no permission). */
  registerXid(): { ok: true } | { ok: false; reason: string } {
    const { f } = this;
    if (!f.eventSetCreate || !f.registerEvents || !f.eventWait) return { ok: false, reason: 'this driver offers no NVML event calls' };
    const set: unknown[] = [null];
    const r = f.eventSetCreate(set);
    if (r !== NVML_SUCCESS) return { ok: false, reason: `nvmlEventSetCreate: ${this.err(r)}` };
    this.eventSet = set[0];
    const refused: string[] = [];
    for (const d of this.devices) {
      const types: Array<number | bigint> = [0];
      if (f.supportedEvents && f.supportedEvents(d.handle, types) === NVML_SUCCESS && (BigInt(types[0] as bigint | number) & XID_CRITICAL_ERROR) === 0n) {
        refused.push(`GPU ${d.index}: Xid events not supported`);
        continue;
      }
      const rr = f.registerEvents(d.handle, XID_CRITICAL_ERROR, this.eventSet);
      if (rr !== NVML_SUCCESS) refused.push(`GPU ${d.index}: ${this.err(rr)}`);
    }
    return refused.length === 0 ? { ok: true } : { ok: false, reason: `registering for Xid events failed (${refused.join('; ')})` };
  }

  /** Every Xid waiting, without waiting for one. */
  pollXid(): void {
    if (!this.eventSet || !this.f.eventWait) return;
    for (let n = 0; n < 64; n++) {
      const data = Buffer.alloc(32);
      const r = this.f.eventWait(this.eventSet, data, 0);
      if (r === NVML_ERROR_TIMEOUT || r !== NVML_SUCCESS) return;
      const address = data.readBigUInt64LE(0);
      const type = data.readBigUInt64LE(8);
      if ((type & XID_CRITICAL_ERROR) === 0n) continue;
      const d = this.devices.find((x) => x.address === address) ?? null;
      send({ type: 'xid', at: Date.now(), index: d?.index ?? null, uuid: d?.uuid ?? null, xid: Number(data.readBigUInt64LE(16)) });
    }
  }

  /** The fast tick: memory of every GPU, keeping the period's maximum. */
  fast(): void {
    for (const d of this.devices) {
      const m = this.memory(d);
      if (m && m.used !== null && (d.usedMaxMb === null || m.used > d.usedMaxMb)) d.usedMaxMb = m.used;
    }
    this.pollXid();
  }

  private memory(d: Device): { total: number | null; used: number | null; free: number | null; reserved: number | null; reason?: string; lost?: string } | null {
    const { f } = this;
    if (f.memory2) {
      const buf = Buffer.alloc(40);
      buf.writeUInt32LE(40 | (2 << 24), 0);
      const r = f.memory2(d.handle, buf);
      if (r === NVML_SUCCESS) return { total: mb(buf.readBigUInt64LE(8)), reserved: mb(buf.readBigUInt64LE(16)), free: mb(buf.readBigUInt64LE(24)), used: mb(buf.readBigUInt64LE(32)) };
      if (r === NVML_ERROR_GPU_IS_LOST) return { total: null, used: null, free: null, reserved: null, lost: this.err(r) };
    }
    if (f.memory) {
      const buf = Buffer.alloc(24);
      const r = f.memory(d.handle, buf);
      if (r === NVML_SUCCESS) return { total: mb(buf.readBigUInt64LE(0)), free: mb(buf.readBigUInt64LE(8)), used: mb(buf.readBigUInt64LE(16)), reserved: null, reason: 'nvmlDeviceGetMemoryInfo_v2 not offered by this driver' };
      if (r === NVML_ERROR_GPU_IS_LOST) return { total: null, used: null, free: null, reserved: null, lost: this.err(r) };
      return { total: null, used: null, free: null, reserved: null, reason: this.err(r) };
    }
    return null;
  }

  /** One period's sample of every GPU. */
  sample(): { rows: GpuRow[]; lost: Array<{ pci_bus_id: string; reason: string; index: number }> } {
    const rows: GpuRow[] = [];
    const lost: Array<{ pci_bus_id: string; reason: string; index: number }> = [];
    for (const [index, reason] of this.lost) lost.push({ pci_bus_id: `index ${index}`, reason, index });
    for (const d of this.devices) {
      const nulls: Record<string, string> = {};
      const m = this.memory(d);
      if (m?.lost) {
        lost.push({ pci_bus_id: d.bus ?? `index ${d.index}`, reason: m.lost, index: d.index });
        continue;
      }
      const read = (key: keyof GpuRow, call: Fn | null, name: string, ...args: unknown[]): number | null => {
        if (!call) {
          nulls[key] = `${name} not offered by this driver`;
          return null;
        }
        const out = [0];
        const r = call(d.handle, ...args, out);
        if (r === NVML_SUCCESS) return Number(out[0]);
        nulls[key] = r === NVML_ERROR_NOT_SUPPORTED ? 'Not Supported' : this.err(r);
        return null;
      };
      const powerMw = read('power_w', this.f.power, 'nvmlDeviceGetPowerUsage');
      const limitMw = read('power_limit_w', this.f.powerLimit, 'nvmlDeviceGetEnforcedPowerLimit');
      const energyMj = read('energy_mj', this.f.energy, 'nvmlDeviceGetTotalEnergyConsumption');
      const throttle = read('clock_event_reasons', this.f.throttle, 'nvmlDeviceGetCurrentClocksThrottleReasons');
      const pstate = read('pstate', this.f.pstate, 'nvmlDeviceGetPerformanceState');
      const util = this.utilization(d, nulls);
      const violation = (key: keyof GpuRow, policy: number): number | null => {
        if (!this.f.violation) {
          nulls[key] = 'nvmlDeviceGetViolationStatus not offered by this driver';
          return null;
        }
        const buf = Buffer.alloc(16);
        const r = this.f.violation(d.handle, policy, buf);
        if (r === NVML_SUCCESS) return Number(buf.readBigUInt64LE(8));
        nulls[key] = r === NVML_ERROR_NOT_SUPPORTED ? 'Not Supported' : this.err(r);
        return null;
      };
      if (m?.reason) nulls.memory_reserved_mb = m.reason;
      const used = m?.used ?? null;
      rows.push({
        index: d.index,
        uuid: d.uuid,
        name: d.name,
        pci_bus_id: d.bus,
        driver_version: this.driver,
        pstate: pstate === null ? null : `P${pstate}`,
        persistence_mode: null,
        mig_mode: null,
        utilization_percent: util.gpu,
        memory_utilization_percent: util.memory,
        memory_total_mb: m?.total ?? null,
        memory_used_mb: used,
        memory_used_max_mb: d.usedMaxMb === null ? used : Math.max(d.usedMaxMb, used ?? 0),
        memory_free_mb: m?.free ?? null,
        memory_reserved_mb: m?.reserved ?? null,
        temperature_c: read('temperature_c', this.f.temperature, 'nvmlDeviceGetTemperature', 0),
        memory_temperature_c: null,
        power_w: powerMw === null ? null : powerMw / 1000,
        power_instant_w: null,
        power_limit_w: limitMw === null ? null : limitMw / 1000,
        energy_mj: energyMj,
        sm_clock_mhz: read('sm_clock_mhz', this.f.clock, 'nvmlDeviceGetClockInfo', 1),
        sm_clock_max_mhz: read('sm_clock_max_mhz', this.f.maxClock, 'nvmlDeviceGetMaxClockInfo', 1),
        fan_percent: read('fan_percent', this.f.fan, 'nvmlDeviceGetFanSpeed'),
        pcie_link_gen: read('pcie_link_gen', this.f.pcieGen, 'nvmlDeviceGetCurrPcieLinkGeneration'),
        pcie_link_width: read('pcie_link_width', this.f.pcieWidth, 'nvmlDeviceGetCurrPcieLinkWidth'),
        pcie_tx_kbps: read('pcie_tx_kbps', this.f.pcieThroughput, 'nvmlDeviceGetPcieThroughput', 0),
        pcie_rx_kbps: read('pcie_rx_kbps', this.f.pcieThroughput, 'nvmlDeviceGetPcieThroughput', 1),
        power_violation_ns: violation('power_violation_ns', 0),
        thermal_violation_ns: violation('thermal_violation_ns', 1),
        clock_event_reasons: throttle,
        ecc_uncorrected_volatile: null,
        null_reasons: { ...nulls, persistence_mode: 'not read through NVML', mig_mode: 'not read through NVML', memory_temperature_c: 'not read through NVML', power_instant_w: 'not read through NVML', ecc_uncorrected_volatile: 'read by the health query' },
      });
      d.usedMaxMb = null;
    }
    return { rows, lost };
  }

  /** The driver's utilization samples since the last look (their mean and maximum), else the current rate. */
  private utilization(d: Device, nulls: Record<string, string>): { gpu: number | null; memory: number | null } {
    const { f } = this;
    let memory: number | null = null;
    let gpu: number | null = null;
    if (f.utilization) {
      const buf = Buffer.alloc(8);
      const r = f.utilization(d.handle, buf);
      if (r === NVML_SUCCESS) {
        gpu = buf.readUInt32LE(0);
        memory = buf.readUInt32LE(4);
      } else {
        nulls.utilization_percent = r === NVML_ERROR_NOT_SUPPORTED ? 'Not Supported' : this.err(r);
        nulls.memory_utilization_percent = nulls.utilization_percent;
      }
    }
    if (f.samples) {
      const valType = [0];
      const count = [0];
      if (f.samples(d.handle, 1, d.lastSeenUs, valType, count, null) === NVML_SUCCESS && count[0]! > 0) {
        const n = Math.min(count[0]!, 512);
        const buf = Buffer.alloc(16 * n);
        const got = [n];
        if (f.samples(d.handle, 1, d.lastSeenUs, valType, got, buf) === NVML_SUCCESS && got[0]! > 0) {
          let sum = 0;
          for (let i = 0; i < got[0]!; i++) {
            const ts = buf.readBigUInt64LE(16 * i);
            if (ts > d.lastSeenUs) d.lastSeenUs = ts;
            sum += buf.readUInt32LE(16 * i + 8);
          }
          gpu = Math.round(sum / got[0]!);
        }
      }
    }
    return { gpu, memory };
  }

  /** The processes on every GPU, with their memory (null where the driver cannot tell). */
  processes(): ComputeApp[] {
    const apps: ComputeApp[] = [];
    for (const d of this.devices) {
      const call = this.f.processes3 ?? this.f.processes1;
      const size = this.f.processes3 ? 24 : 16;
      if (!call) break;
      let cap = 16;
      for (let attempt = 0; attempt < 3; attempt++) {
        const count = [cap];
        const buf = Buffer.alloc(size * cap);
        const r = call(d.handle, count, buf);
        if (r === NVML_ERROR_INSUFFICIENT_SIZE) {
          cap = Math.min(4096, Math.max(cap * 2, count[0]! + 4));
          continue;
        }
        if (r !== NVML_SUCCESS) break;
        const util = this.processUtilization(d);
        for (let i = 0; i < count[0]!; i++) {
          const used = buf.readBigUInt64LE(size * i + 8);
          const pid = buf.readUInt32LE(size * i);
          const u = util.get(pid);
          apps.push({ gpu_uuid: d.uuid, pid, used_memory_mb: used === NOT_AVAILABLE ? null : mb(used), process_name: '', sm_util_percent: u?.sm ?? null, mem_util_percent: u?.mem ?? null });
        }
        break;
      }
    }
    return apps;
  }

  /** Each process's latest SM and memory utilization sample on a GPU (nvmlDeviceGetProcessUtilization). */
  private processUtilization(d: Device): Map<number, { sm: number; mem: number; ts: bigint }> {
    const out = new Map<number, { sm: number; mem: number; ts: bigint }>();
    if (!this.f.processUtil) return out;
    const count = [0];
    this.f.processUtil(d.handle, null, count, 0n);
    const n = Math.min(count[0]!, 1024);
    if (n === 0) return out;
    const buf = Buffer.alloc(32 * n);
    const got = [n];
    if (this.f.processUtil(d.handle, buf, got, 0n) !== NVML_SUCCESS) return out;
    for (let i = 0; i < Math.min(got[0]!, n); i++) {
      const pid = buf.readUInt32LE(32 * i);
      const ts = buf.readBigUInt64LE(32 * i + 8);
      const prev = out.get(pid);
      if (!prev || ts > prev.ts) out.set(pid, { sm: buf.readUInt32LE(32 * i + 16), mem: buf.readUInt32LE(32 * i + 20), ts });
    }
    return out;
  }

  get gpus() {
    return this.devices.map((d) => ({ index: d.index, uuid: d.uuid, name: d.name, pci_bus_id: d.bus }));
  }

  get driverVersion(): string | null {
    return this.driver;
  }
}

function mb(bytes: bigint): number {
  return Math.round(Number(bytes) / MIB);
}

/** A koffi pointer's address (koffi gives pointers as opaque objects or as numbers). */
function addressOf(handle: unknown): bigint | null {
  try {
    return BigInt(koffi.address(handle as never) as number | bigint);
  } catch {
    return null;
  }
}

function run(start: NvmlStart): void {
  let opened: ReturnType<typeof open>;
  try {
    opened = open(start.library);
  } catch (err) {
    send({ type: 'failed', reason: `${start.library} cannot be loaded: ${(err as Error).message}` });
    process.exit(0);
  }
  const sampler = new Sampler(opened.f);
  const failed = sampler.start();
  if (failed) {
    send({ type: 'failed', reason: failed });
    process.exit(0);
  }
  const xid = sampler.registerXid();
  send({ type: 'ready', driver: sampler.driverVersion, gpus: sampler.gpus, missing: opened.missing, xid });
  let lastPeriod = Date.now();
  let lastApps = 0;
  const tick = () => {
    sampler.fast();
    const now = Date.now();
    if (now - lastPeriod >= start.periodMs - start.fastMs / 2) {
      lastPeriod = now;
      const { rows, lost } = sampler.sample();
      send({ type: 'sample', at: now, rows, lost });
      if (now - lastApps >= start.appsMs) {
        lastApps = now;
        send({ type: 'apps', at: now, apps: sampler.processes() });
      }
    }
  };
  tick();
  setInterval(tick, start.fastMs);
}

process.once('message', (m: NvmlStart) => run(m));
// The parent went away: so does the sampler.
process.on('disconnect', () => process.exit(0));
