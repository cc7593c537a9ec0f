/**
 * What an Xid means, for the codes a GPU pod meets, from NVIDIA's Xid catalog for Ampere and newer
 * (docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html: mnemonic, description and the
 * "Resolution Bucket (Immediate Action)" column) and its page on dynamic page retirement. The
 * severity podscope gives an Xid follows that column: an application restart is a warning (the
 * workflow or its process faulted, the GPU is fine); a GPU reset, a reboot or a call to support is
 * an error (the GPU or its driver failed, whatever the workflow did). Only Xid 8's row was read
 * from a stored copy of the catalog; the others follow NVIDIA's published descriptions and should
 * be checked against the catalog's spreadsheet on a real pod (docs/metrics.md says so).
 */

export type XidAction = 'RESTART_APP' | 'RESET_GPU' | 'RESTART_BM' | 'CONTACT_SUPPORT' | 'IGNORE';

export interface XidMeaning {
  /** What happened, in a few words. */
  meaning: string;
  /** NVIDIA's immediate action. */
  action: XidAction;
  /** Whose failure it is: the application's (a fault in the work the GPU ran) or the GPU's or driver's. */
  culprit: 'application' | 'gpu';
}

const CATALOG: Record<number, XidMeaning> = {
  8: { meaning: 'GPU stopped processing', action: 'RESTART_APP', culprit: 'application' },
  13: { meaning: 'graphics engine exception', action: 'RESTART_APP', culprit: 'application' },
  31: { meaning: 'MMU fault (an invalid GPU memory access)', action: 'RESTART_APP', culprit: 'application' },
  43: { meaning: 'GPU stopped processing', action: 'RESTART_APP', culprit: 'application' },
  45: { meaning: 'preemptive cleanup after earlier errors', action: 'IGNORE', culprit: 'application' },
  48: { meaning: 'double-bit ECC error', action: 'RESET_GPU', culprit: 'gpu' },
  63: { meaning: 'memory page retired or row remapped; a reset activates it', action: 'RESET_GPU', culprit: 'gpu' },
  64: { meaning: 'memory page retirement or row remapping failed', action: 'RESET_GPU', culprit: 'gpu' },
  74: { meaning: 'NVLink error', action: 'RESET_GPU', culprit: 'gpu' },
  79: { meaning: 'GPU has fallen off the bus', action: 'RESTART_BM', culprit: 'gpu' },
  92: { meaning: 'high single-bit ECC error rate', action: 'CONTACT_SUPPORT', culprit: 'gpu' },
  94: { meaning: 'contained ECC error (only the application using that memory is affected)', action: 'RESTART_APP', culprit: 'gpu' },
  95: { meaning: 'uncontained ECC error', action: 'RESET_GPU', culprit: 'gpu' },
  119: { meaning: 'GSP firmware did not answer', action: 'RESET_GPU', culprit: 'gpu' },
  120: { meaning: 'GSP firmware error', action: 'RESET_GPU', culprit: 'gpu' },
};

/** The meaning of an Xid; one outside this list is named as such, and treated as the GPU's. */
export function xidMeaning(xid: number): XidMeaning {
  return CATALOG[xid] ?? { meaning: 'an Xid podscope has no description of (see NVIDIA\'s Xid catalog)', action: 'CONTACT_SUPPORT', culprit: 'gpu' };
}

/** An application fault is a warning; anything that needs the GPU reset, the machine restarted or support is an error. */
export function xidSeverity(xid: number): 'error' | 'warning' {
  const a = xidMeaning(xid).action;
  return a === 'RESTART_APP' || a === 'IGNORE' ? 'warning' : 'error';
}

/** One sentence for a job's forensics: which GPU, which Xid, what it means and whose failure it is. */
export function xidSentence(gpu: number | null, xid: number, at: string): string {
  const m = xidMeaning(xid);
  const whose = m.culprit === 'gpu' ? "the failure is the GPU's or its driver's, not the workflow's" : 'an application fault: the work running on the GPU did something the GPU refused';
  return `GPU ${gpu ?? '?'} reported Xid ${xid} (${m.meaning}) at ${at}: ${whose}; NVIDIA's immediate action: ${m.action}`;
}
