/** What report.ts and report-peers.ts both need to print measurements. */
import type { Measurement } from './measure.js';
import type { WorkloadName } from './workloads.js';

/** `value` with `digits` decimals, or a dash when it was not measured. */
export const fixed = (value: number | undefined, digits: number): string => (value === undefined ? '–' : value.toFixed(digits));

/** `value` rounded, with thousands separators, or a dash when it was not measured. */
export const whole = (value: number | undefined): string => (value === undefined ? '–' : Math.round(value).toLocaleString('en-US'));

/** The measurement of a (target, workload) that was measured (status `ok`), if any. */
export function okMeasurement(measurements: readonly Measurement[], target: string, workload: WorkloadName): Measurement | undefined {
  return measurements.find((m) => m.target === target && m.workload === workload && m.status === 'ok');
}
