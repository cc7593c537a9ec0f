/*
 * A fake libnvidia-ml.so for podscope's tests: the NVML calls podscope makes, with NVIDIA's
 * signatures and struct layouts (nvml.h, API 11, as nvml-wrapper-sys 0.7.0's bindgen output has
 * them), answering from a text file the tests write from recorded real nvidia-smi captures.
 *
 * The file (FAKE_NVML_CONFIG) is read again whenever it changes:
 *   driver 590.44.01
 *   gpu <i> <key> <value>      name, uuid, bus, mem_total_mb, mem_used_mb, mem_reserved_mb,
 *                              util, util_mem, power_mw, power_limit_mw, temp_c, sm_mhz,
 *                              sm_max_mhz, pstate, throttle, fan, procs (pid:mb,pid:mb)
 *   gpu <i> spike <mb> <on_ms> <every_ms>   memory used is <mb> for on_ms of every every_ms
 *   lost <i>                   the GPU answers NVML_ERROR_GPU_IS_LOST
 *   hang <function>            that function never returns
 *   events refused             registering for events is refused (NVML_ERROR_NO_PERMISSION)
 *   xid <seq> <i> <code>       an Xid event, delivered once (in seq order)
 *
 * Built with -DFAKE_NVML_OLD it lacks the symbols an older driver lacks (the v2 memory call,
 * the energy counter, the sample buffer, the v3 process list), as podscope must cope with.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef int nvmlReturn_t;
typedef struct fake_device *nvmlDevice_t;
typedef struct fake_set *nvmlEventSet_t;

enum { OK = 0, UNINITIALIZED = 1, INVALID_ARGUMENT = 2, NOT_SUPPORTED = 3, NO_PERMISSION = 4, NOT_FOUND = 6, INSUFFICIENT_SIZE = 7, TIMEOUT = 10, GPU_IS_LOST = 15 };

typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { unsigned int version; unsigned long long total, reserved, free, used; } nvmlMemory_v2_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct { char busIdLegacy[16]; unsigned int domain, bus, device, pciDeviceId, pciSubSystemId; char busId[32]; } nvmlPciInfo_t;
typedef union { double dVal; unsigned int uiVal; unsigned long ulVal; unsigned long long ullVal; long long sllVal; } nvmlValue_t;
typedef struct { unsigned long long timeStamp; nvmlValue_t sampleValue; } nvmlSample_t;
typedef struct { unsigned int pid; unsigned long long usedGpuMemory; unsigned int gpuInstanceId, computeInstanceId; } nvmlProcessInfo_t;
typedef struct { unsigned int pid; unsigned long long usedGpuMemory; } nvmlProcessInfo_v1_t;
typedef struct { nvmlDevice_t device; unsigned long long eventType, eventData; unsigned int gpuInstanceId, computeInstanceId; } nvmlEventData_t;

#define MAX_GPUS 16
#define MAX_XIDS 256

struct fake_device {
  int index;
  char name[96], uuid[96], bus[32], procs[512];
  unsigned long long mem_total_mb, mem_used_mb, mem_reserved_mb;
  unsigned int util, util_mem, power_mw, power_limit_mw, temp_c, sm_mhz, sm_max_mhz, pstate, fan;
  unsigned long long throttle;
  unsigned long long spike_mb, spike_on_ms, spike_every_ms;
  unsigned int pcie_gen, pcie_width, pcie_tx_kbps, pcie_rx_kbps, proc_sm;
  unsigned long long viol_power_ns, viol_thermal_ns;
  int lost;
};
struct fake_set { int registered; };

static struct fake_device devices[MAX_GPUS];
static int device_count = 0;
static char driver[64] = "590.44.01";
static char hang_fn[128] = "";
static int events_refused = 0;
static struct { long seq; int gpu; unsigned long long code; } xids[MAX_XIDS];
static int xid_count = 0;
static long delivered_seq = 0;
static time_t loaded_mtime = 0;
static long loaded_mtime_ns = -1;
static int initialized = 0;
static struct timespec started;

__attribute__((unused)) static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return t.tv_sec * 1000.0 + t.tv_nsec / 1e6;
}

static double since_start_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - started.tv_sec) * 1000.0 + (t.tv_nsec - started.tv_nsec) / 1e6;
}

static void load(void) {
  const char *path = getenv("FAKE_NVML_CONFIG");
  struct stat st;
  if (!path || stat(path, &st) != 0) return;
  if (st.st_mtim.tv_sec == loaded_mtime && st.st_mtim.tv_nsec == loaded_mtime_ns) return;
  FILE *f = fopen(path, "r");
  if (!f) return;
  loaded_mtime = st.st_mtim.tv_sec;
  loaded_mtime_ns = st.st_mtim.tv_nsec;
  memset(devices, 0, sizeof devices);
  device_count = 0;
  hang_fn[0] = 0;
  events_refused = 0;
  xid_count = 0;
  char line[1024];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    int i;
    char key[64], value[900];
    if (sscanf(line, "driver %63s", driver) == 1) continue;
    if (sscanf(line, "hang %127s", hang_fn) == 1) continue;
    if (strcmp(line, "events refused") == 0) { events_refused = 1; continue; }
    long seq; int gpu; unsigned long long code;
    if (sscanf(line, "xid %ld %d %llu", &seq, &gpu, &code) == 3 && xid_count < MAX_XIDS) {
      xids[xid_count].seq = seq; xids[xid_count].gpu = gpu; xids[xid_count].code = code; xid_count++;
      continue;
    }
    if (sscanf(line, "lost %d", &i) == 1 && i >= 0 && i < MAX_GPUS) { devices[i].lost = 1; continue; }
    unsigned long long mb, on, every;
    if (sscanf(line, "gpu %d spike %llu %llu %llu", &i, &mb, &on, &every) == 4 && i >= 0 && i < MAX_GPUS) {
      devices[i].spike_mb = mb; devices[i].spike_on_ms = on; devices[i].spike_every_ms = every;
      continue;
    }
    if (sscanf(line, "gpu %d %63s %899[^\n]", &i, key, value) != 3 || i < 0 || i >= MAX_GPUS) continue;
    struct fake_device *d = &devices[i];
    d->index = i;
    if (i + 1 > device_count) device_count = i + 1;
    if (!strcmp(key, "name")) snprintf(d->name, sizeof d->name, "%s", value);
    else if (!strcmp(key, "uuid")) snprintf(d->uuid, sizeof d->uuid, "%s", value);
    else if (!strcmp(key, "bus")) snprintf(d->bus, sizeof d->bus, "%s", value);
    else if (!strcmp(key, "procs")) snprintf(d->procs, sizeof d->procs, "%s", value);
    else if (!strcmp(key, "mem_total_mb")) d->mem_total_mb = strtoull(value, 0, 10);
    else if (!strcmp(key, "mem_used_mb")) d->mem_used_mb = strtoull(value, 0, 10);
    else if (!strcmp(key, "mem_reserved_mb")) d->mem_reserved_mb = strtoull(value, 0, 10);
    else if (!strcmp(key, "util")) d->util = atoi(value);
    else if (!strcmp(key, "util_mem")) d->util_mem = atoi(value);
    else if (!strcmp(key, "power_mw")) d->power_mw = atoi(value);
    else if (!strcmp(key, "power_limit_mw")) d->power_limit_mw = atoi(value);
    else if (!strcmp(key, "temp_c")) d->temp_c = atoi(value);
    else if (!strcmp(key, "sm_mhz")) d->sm_mhz = atoi(value);
    else if (!strcmp(key, "sm_max_mhz")) d->sm_max_mhz = atoi(value);
    else if (!strcmp(key, "pstate")) d->pstate = atoi(value);
    else if (!strcmp(key, "fan")) d->fan = atoi(value);
    else if (!strcmp(key, "throttle")) d->throttle = strtoull(value, 0, 0);
    else if (!strcmp(key, "pcie_gen")) d->pcie_gen = atoi(value);
    else if (!strcmp(key, "pcie_width")) d->pcie_width = atoi(value);
    else if (!strcmp(key, "pcie_tx_kbps")) d->pcie_tx_kbps = atoi(value);
    else if (!strcmp(key, "pcie_rx_kbps")) d->pcie_rx_kbps = atoi(value);
    else if (!strcmp(key, "viol_power_ns")) d->viol_power_ns = strtoull(value, 0, 10);
    else if (!strcmp(key, "viol_thermal_ns")) d->viol_thermal_ns = strtoull(value, 0, 10);
    else if (!strcmp(key, "proc_sm")) d->proc_sm = atoi(value);
  }
  fclose(f);
}

/* A call the test made hang: it never returns (podscope must give up on it and kill the sampler). */
static void maybe_hang(const char *fn) {
  load();
  if (hang_fn[0] && strcmp(hang_fn, fn) == 0) for (;;) pause();
}

#define DEVICE_CALL(fn)                                                          \
  maybe_hang(fn);                                                                \
  if (!initialized) return UNINITIALIZED;                                        \
  if (!dev || dev < devices || dev >= devices + device_count) return INVALID_ARGUMENT; \
  if (dev->lost) return GPU_IS_LOST;

nvmlReturn_t nvmlInit_v2(void) {
  maybe_hang("nvmlInit_v2");
  load();
  clock_gettime(CLOCK_MONOTONIC, &started);
  initialized = 1;
  return OK;
}
nvmlReturn_t nvmlInit(void) { return nvmlInit_v2(); }
nvmlReturn_t nvmlShutdown(void) { initialized = 0; return OK; }

const char *nvmlErrorString(nvmlReturn_t r) {
  switch (r) {
    case OK: return "Success";
    case UNINITIALIZED: return "Uninitialized";
    case INVALID_ARGUMENT: return "Invalid Argument";
    case NOT_SUPPORTED: return "Not Supported";
    case NO_PERMISSION: return "Insufficient Permissions";
    case NOT_FOUND: return "Not Found";
    case INSUFFICIENT_SIZE: return "Insufficient Size";
    case TIMEOUT: return "Timeout";
    case GPU_IS_LOST: return "GPU is lost";
    default: return "Unknown Error";
  }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
  maybe_hang("nvmlSystemGetDriverVersion");
  snprintf(version, length, "%s", driver);
  return OK;
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
  maybe_hang("nvmlDeviceGetCount_v2");
  if (!initialized) return UNINITIALIZED;
  *count = device_count;
  return OK;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *dev) {
  maybe_hang("nvmlDeviceGetHandleByIndex_v2");
  if (!initialized) return UNINITIALIZED;
  if (index >= (unsigned)device_count) return INVALID_ARGUMENT;
  if (devices[index].lost) return GPU_IS_LOST;
  *dev = &devices[index];
  return OK;
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t dev, unsigned int *index) { DEVICE_CALL("nvmlDeviceGetIndex"); *index = dev->index; return OK; }
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t dev, char *name, unsigned int length) { DEVICE_CALL("nvmlDeviceGetName"); snprintf(name, length, "%s", dev->name); return OK; }
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t dev, char *uuid, unsigned int length) { DEVICE_CALL("nvmlDeviceGetUUID"); snprintf(uuid, length, "%s", dev->uuid); return OK; }

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t dev, nvmlPciInfo_t *pci) {
  DEVICE_CALL("nvmlDeviceGetPciInfo_v3");
  memset(pci, 0, sizeof *pci);
  snprintf(pci->busId, sizeof pci->busId, "%s", dev->bus);
  return OK;
}

static unsigned long long used_now(struct fake_device *dev) {
  if (dev->spike_every_ms > 0 && (unsigned long long)since_start_ms() % dev->spike_every_ms < dev->spike_on_ms) return dev->spike_mb;
  return dev->mem_used_mb;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t dev, nvmlMemory_t *m) {
  DEVICE_CALL("nvmlDeviceGetMemoryInfo");
  unsigned long long MB = 1024ULL * 1024ULL, used = used_now(dev);
  m->total = dev->mem_total_mb * MB;
  m->used = used * MB;
  m->free = (dev->mem_total_mb - used) * MB;
  return OK;
}

/*
 * The GPU's processes (`procs pid:mb,…`) into an array of either layout: v1 (16 bytes: pid, memory)
 * or v2/v3 (24 bytes: pid, memory, GPU- and compute-instance ids), as the calling symbol expects.
 */
#define MAX_PROCS 32

/* The GPU's `procs pid:mb,…`: how many, each pid and its memory in MB. */
static unsigned int procs_of(nvmlDevice_t dev, unsigned int *pids, unsigned long long *mbs) {
  unsigned int n = 0;
  char copy[512];
  snprintf(copy, sizeof copy, "%s", dev->procs);
  for (char *save = 0, *tok = strtok_r(copy, ",", &save); tok && n < MAX_PROCS; tok = strtok_r(0, ",", &save))
    if (sscanf(tok, "%u:%llu", &pids[n], &mbs[n]) == 2) n++;
  return n;
}

static nvmlReturn_t fill_processes(nvmlDevice_t dev, unsigned int *count, void *infos, size_t size) {
  unsigned int pids[MAX_PROCS], cap = *count;
  unsigned long long mbs[MAX_PROCS];
  unsigned int n = procs_of(dev, pids, mbs);
  for (unsigned int i = 0; infos && i < n && i < cap; i++) {
    nvmlProcessInfo_t p = { pids[i], mbs[i] * 1024ULL * 1024ULL, 0xFFFFFFFF, 0xFFFFFFFF };
    memcpy((char *)infos + i * size, &p, size); /* the v1 layout is the v2 layout's first 16 bytes */
  }
  *count = n;
  return n > cap ? INSUFFICIENT_SIZE : OK;
}

#ifndef FAKE_NVML_OLD
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t dev, nvmlMemory_v2_t *m) {
  DEVICE_CALL("nvmlDeviceGetMemoryInfo_v2");
  if (m->version != (unsigned)(sizeof(nvmlMemory_v2_t) | 2 << 24)) return INVALID_ARGUMENT;
  unsigned long long MB = 1024ULL * 1024ULL, used = used_now(dev);
  m->total = dev->mem_total_mb * MB;
  m->reserved = dev->mem_reserved_mb * MB;
  m->used = used * MB;
  m->free = (dev->mem_total_mb - dev->mem_reserved_mb - used) * MB;
  return OK;
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t dev, unsigned long long *energy) {
  DEVICE_CALL("nvmlDeviceGetTotalEnergyConsumption");
  /* millijoules since the driver loaded: the power draw held since then */
  *energy = (unsigned long long)(1000000ULL + dev->power_mw * since_start_ms() / 1000.0);
  return OK;
}

/* The driver's utilization samples, one every 1/6 s since start, those after lastSeen (µs). */
nvmlReturn_t nvmlDeviceGetSamples(nvmlDevice_t dev, int type, unsigned long long lastSeen, int *valType, unsigned int *count, nvmlSample_t *samples) {
  DEVICE_CALL("nvmlDeviceGetSamples");
  if (type != 1) return NOT_SUPPORTED;
  if (!samples) { *count = 120; return OK; }
  double end_ms = now_ms(), step_ms = 1000.0 / 6;
  double first_ms = end_ms - since_start_ms();
  unsigned int n = 0;
  for (double t = first_ms; t <= end_ms && n < *count; t += step_ms) {
    unsigned long long us = (unsigned long long)(t * 1000);
    if (us <= lastSeen) continue;
    samples[n].timeStamp = us;
    samples[n].sampleValue.uiVal = dev->util;
    n++;
  }
  *valType = 1;
  *count = n;
  return n == 0 ? NOT_FOUND : OK;
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t dev, unsigned int *count, nvmlProcessInfo_t *infos) {
  DEVICE_CALL("nvmlDeviceGetComputeRunningProcesses_v3");
  return fill_processes(dev, count, infos, sizeof *infos);
}
#endif

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t dev, unsigned int *count, nvmlProcessInfo_v1_t *infos) {
  DEVICE_CALL("nvmlDeviceGetComputeRunningProcesses");
  return fill_processes(dev, count, infos, sizeof *infos);
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t dev, nvmlUtilization_t *u) { DEVICE_CALL("nvmlDeviceGetUtilizationRates"); u->gpu = dev->util; u->memory = dev->util_mem; return OK; }
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t dev, unsigned int *mw) { DEVICE_CALL("nvmlDeviceGetPowerUsage"); *mw = dev->power_mw; return OK; }
nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t dev, unsigned int *mw) { DEVICE_CALL("nvmlDeviceGetEnforcedPowerLimit"); if (!dev->power_limit_mw) return NOT_SUPPORTED; *mw = dev->power_limit_mw; return OK; }
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t dev, int sensor, unsigned int *c) { DEVICE_CALL("nvmlDeviceGetTemperature"); if (sensor != 0) return NOT_SUPPORTED; *c = dev->temp_c; return OK; }
nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t dev, int type, unsigned int *mhz) { DEVICE_CALL("nvmlDeviceGetClockInfo"); if (type != 1) return NOT_SUPPORTED; *mhz = dev->sm_mhz; return OK; }
nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t dev, int type, unsigned int *mhz) { DEVICE_CALL("nvmlDeviceGetMaxClockInfo"); if (type != 1) return NOT_SUPPORTED; *mhz = dev->sm_max_mhz; return OK; }
nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t dev, unsigned long long *r) { DEVICE_CALL("nvmlDeviceGetCurrentClocksThrottleReasons"); *r = dev->throttle; return OK; }
nvmlReturn_t nvmlDeviceGetPerformanceState(nvmlDevice_t dev, int *p) { DEVICE_CALL("nvmlDeviceGetPerformanceState"); *p = dev->pstate; return OK; }
nvmlReturn_t nvmlDeviceGetFanSpeed(nvmlDevice_t dev, unsigned int *pct) { DEVICE_CALL("nvmlDeviceGetFanSpeed"); if (!dev->fan) return NOT_SUPPORTED; *pct = dev->fan; return OK; }

typedef struct { unsigned long long referenceTime, violationTime; } nvmlViolationTime_t;
typedef struct { unsigned int pid; unsigned long long timeStamp; unsigned int smUtil, memUtil, encUtil, decUtil; } nvmlProcessUtilizationSample_t;

nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t dev, unsigned int *gen) { DEVICE_CALL("nvmlDeviceGetCurrPcieLinkGeneration"); if (!dev->pcie_gen) return NOT_SUPPORTED; *gen = dev->pcie_gen; return OK; }
nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t dev, unsigned int *width) { DEVICE_CALL("nvmlDeviceGetCurrPcieLinkWidth"); if (!dev->pcie_width) return NOT_SUPPORTED; *width = dev->pcie_width; return OK; }
nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t dev, int counter, unsigned int *kbps) { DEVICE_CALL("nvmlDeviceGetPcieThroughput"); *kbps = counter == 0 ? dev->pcie_tx_kbps : dev->pcie_rx_kbps; return OK; }
nvmlReturn_t nvmlDeviceGetViolationStatus(nvmlDevice_t dev, int policy, nvmlViolationTime_t *t) {
  DEVICE_CALL("nvmlDeviceGetViolationStatus");
  if (policy > 1) return NOT_SUPPORTED;
  t->referenceTime = 0;
  t->violationTime = policy == 0 ? dev->viol_power_ns : dev->viol_thermal_ns;
  return OK;
}
/* Each process of `procs` with the GPU's `proc_sm` as its SM utilization. */
nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t dev, nvmlProcessUtilizationSample_t *samples, unsigned int *count, unsigned long long lastSeen) {
  DEVICE_CALL("nvmlDeviceGetProcessUtilization");
  (void)lastSeen;
  unsigned int pids[MAX_PROCS], cap = *count;
  unsigned long long mbs[MAX_PROCS];
  unsigned int n = procs_of(dev, pids, mbs);
  for (unsigned int i = 0; samples && i < n && i < cap; i++) {
    memset(&samples[i], 0, sizeof samples[i]);
    samples[i].pid = pids[i];
    samples[i].timeStamp = 1;
    samples[i].smUtil = dev->proc_sm;
    samples[i].memUtil = dev->proc_sm / 2;
  }
  *count = n;
  return !samples ? INSUFFICIENT_SIZE : OK;
}

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set) {
  maybe_hang("nvmlEventSetCreate");
  if (!initialized) return UNINITIALIZED;
  *set = calloc(1, sizeof(struct fake_set));
  return OK;
}
nvmlReturn_t nvmlDeviceGetSupportedEventTypes(nvmlDevice_t dev, unsigned long long *types) { DEVICE_CALL("nvmlDeviceGetSupportedEventTypes"); *types = 8 | 4 | 16; return OK; }
nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t dev, unsigned long long types, nvmlEventSet_t set) {
  DEVICE_CALL("nvmlDeviceRegisterEvents");
  if (events_refused) return NO_PERMISSION;
  (void)types;
  set->registered = 1;
  return OK;
}

/* The next undelivered Xid, or NVML_ERROR_TIMEOUT after timeoutms. */
nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms) {
  maybe_hang("nvmlEventSetWait_v2");
  double until = since_start_ms() + timeoutms;
  for (;;) {
    load();
    int best = -1;
    for (int k = 0; k < xid_count; k++)
      if (xids[k].seq > delivered_seq && (best < 0 || xids[k].seq < xids[best].seq)) best = k;
    if (best >= 0 && set->registered && xids[best].gpu >= 0 && xids[best].gpu < device_count) {
      delivered_seq = xids[best].seq;
      memset(data, 0, sizeof *data);
      data->device = &devices[xids[best].gpu];
      data->eventType = 8;
      data->eventData = xids[best].code;
      data->gpuInstanceId = 0xFFFFFFFF;
      data->computeInstanceId = 0xFFFFFFFF;
      return OK;
    }
    if (since_start_ms() >= until) return TIMEOUT;
    usleep(5000);
  }
}
nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) { free(set); return OK; }
