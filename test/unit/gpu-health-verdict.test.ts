/** What a GPU's memory health asks of on-call: the rule behind GPU_NEEDS_RESET and GPU_MEMORY_ERRORS. */
import { describe, expect, it } from 'vitest';
import { healthVerdict } from '../../src/shared/gpu-health.js';
import type { GpuHealth } from '../../src/shared/gpu-readings.js';

function health(over: { ecc?: Partial<GpuHealth['ecc']>; retired?: Partial<GpuHealth['retired_pages']>; remapped?: Partial<GpuHealth['remapped_rows']> } = {}): GpuHealth {
  return {
    ecc_mode: 'Enabled',
    ecc: { volatile_corrected: 0, volatile_uncorrected: 0, aggregate_corrected: 0, aggregate_uncorrected: 0, ...over.ecc },
    retired_pages: { single_bit_ecc: null, double_bit_ecc: null, pending: null, ...over.retired },
    remapped_rows: { correctable: 0, uncorrectable: 0, pending: false, failure: false, ...over.remapped },
    null_reasons: {},
  };
}

describe('the memory-health verdict', () => {
  it('is nothing for a healthy GPU', () => {
    expect(healthVerdict(health())).toBeNull();
  });

  it('is nothing for a GPU that reports none of it (no ECC)', () => {
    expect(healthVerdict(health({ ecc: { volatile_corrected: null, volatile_uncorrected: null, aggregate_corrected: null, aggregate_uncorrected: null }, remapped: { correctable: null, uncorrectable: null, pending: null, failure: null } }))).toBeNull();
  });

  it('corrected errors alone ask nothing', () => {
    expect(healthVerdict(health({ ecc: { volatile_corrected: 12, aggregate_corrected: 340 }, remapped: { correctable: 3 } }))).toBeNull();
  });

  it('a remap failure is an error, before anything else', () => {
    expect(healthVerdict(health({ remapped: { failure: true, pending: true } }))).toEqual({ severity: 'error', text: 'row remapping failed: the GPU needs a reset and may need replacing' });
  });

  it('a pending remap is an error: the GPU needs a reset', () => {
    expect(healthVerdict(health({ remapped: { pending: true } }))?.text).toBe('a row remap is pending: the GPU needs a reset');
  });

  it('a pending page retirement (before Ampere) is an error too', () => {
    expect(healthVerdict(health({ retired: { pending: true, double_bit_ecc: 2 } }))).toEqual({ severity: 'error', text: 'a page retirement is pending: the GPU needs a reset' });
  });

  it('lasting errors are a warning naming each count', () => {
    expect(healthVerdict(health({ ecc: { aggregate_uncorrected: 7 }, retired: { double_bit_ecc: 2, single_bit_ecc: 1 }, remapped: { uncorrectable: 3 } }))).toEqual({
      severity: 'warning',
      text: 'memory errors: 7 uncorrected ECC errors over its life, 2 pages retired for double-bit errors, 1 pages retired for single-bit errors, 3 rows remapped for uncorrectable errors',
    });
  });
});
