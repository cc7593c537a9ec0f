/**
 * What a GPU's memory health asks of on-call: one rule that the collector (problems), the views
 * (`health.verdict`) and the text views share.
 */
import type { GpuHealth } from './gpu-readings.js';

/** What a GPU's memory health asks of on-call, or null when nothing. */
export function healthVerdict(h: GpuHealth): { severity: 'error' | 'warning'; text: string } | null {
  if (h.remapped_rows.failure) return { severity: 'error', text: 'row remapping failed: the GPU needs a reset and may need replacing' };
  if (h.remapped_rows.pending) return { severity: 'error', text: 'a row remap is pending: the GPU needs a reset' };
  if (h.retired_pages.pending) return { severity: 'error', text: 'a page retirement is pending: the GPU needs a reset' };
  const counts = [
    h.ecc.volatile_uncorrected ? `${h.ecc.volatile_uncorrected} uncorrected ECC errors since the driver loaded` : null,
    h.ecc.aggregate_uncorrected ? `${h.ecc.aggregate_uncorrected} uncorrected ECC errors over its life` : null,
    h.retired_pages.double_bit_ecc ? `${h.retired_pages.double_bit_ecc} pages retired for double-bit errors` : null,
    h.retired_pages.single_bit_ecc ? `${h.retired_pages.single_bit_ecc} pages retired for single-bit errors` : null,
    h.remapped_rows.uncorrectable ? `${h.remapped_rows.uncorrectable} rows remapped for uncorrectable errors` : null,
  ].filter((x): x is string => x !== null);
  return counts.length > 0 ? { severity: 'warning', text: `memory errors: ${counts.join(', ')}` } : null;
}

