import type { Measurement } from './measure.js';
import type { BenchTarget } from './protocol.js';
import { type WorkloadName } from './workloads.js';

/** The bar colour of each target. */
const COLOURS: Record<BenchTarget, string> = {
  poolgraph: '#2563eb',
  raw: '#9ca3af',
  unpooled: '#f59e0b',
  mercurius: '#dc2626',
  apollo: '#7c3aed',
  yoga: '#db2777',
  postgraphile: '#059669',
};
const TARGETS = Object.keys(COLOURS) as BenchTarget[];
const WORKLOADS: readonly WorkloadName[] = ['W1', 'W1-token', 'W2', 'W3', 'W4', 'W5'];

/**
 * Draws requests per second as grouped bars, one group per workload, one bar per target that ran
 * it, each labelled with its value: a plain SVG document (no browser or library needed).
 */
export function renderChart(measurements: readonly Measurement[], subtitle: string): string {
  const value = (target: BenchTarget, workload: WorkloadName) =>
    measurements.find((m) => m.target === target && m.workload === workload && m.status === 'ok')?.load
      ?.requestsPerSecond;
  const workloads = WORKLOADS.filter((w) => TARGETS.some((t) => value(t, w) !== undefined));
  const targets = TARGETS.filter((t) => workloads.some((w) => value(t, w) !== undefined));
  const max = Math.max(1, ...workloads.flatMap((w) => targets.map((t) => value(t, w) ?? 0)));
  const step = niceStep(max / 5);
  const top = Math.ceil(max / step) * step;

  const width = 760;
  const height = 380;
  const plot = { left: 70, right: width - 20, top: 70, bottom: height - 50 };
  const y = (v: number) => plot.bottom - (v / top) * (plot.bottom - plot.top);
  const groupWidth = (plot.right - plot.left) / Math.max(1, workloads.length);
  const barWidth = Math.min(56, (groupWidth * 0.8) / Math.max(1, targets.length));

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${plot.left}" y="24" font-size="16" font-weight="bold">Requests per second (higher is better)</text>`,
    `<text x="${plot.left}" y="44" fill="#4b5563">${escape(subtitle)}</text>`,
  );
  for (let tick = 0; tick <= top + step / 2; tick += step) {
    parts.push(
      `<line x1="${plot.left}" x2="${plot.right}" y1="${y(tick)}" y2="${y(tick)}" stroke="#e5e7eb"/>`,
      `<text x="${plot.left - 8}" y="${y(tick) + 4}" text-anchor="end" fill="#4b5563">${tick.toLocaleString('en-US')}</text>`,
    );
  }
  workloads.forEach((workload, g) => {
    const present = targets.filter((t) => value(t, workload) !== undefined);
    const groupLeft = plot.left + g * groupWidth + (groupWidth - present.length * barWidth) / 2;
    present.forEach((target, b) => {
      const v = value(target, workload) ?? 0;
      const x = groupLeft + b * barWidth;
      parts.push(
        `<rect x="${x + 2}" y="${y(v)}" width="${barWidth - 4}" height="${plot.bottom - y(v)}" fill="${COLOURS[target]}"/>`,
        `<text x="${x + barWidth / 2}" y="${y(v) - 4}" text-anchor="middle" font-size="11">${Math.round(v).toLocaleString('en-US')}</text>`,
      );
    });
    parts.push(
      `<text x="${plot.left + (g + 0.5) * groupWidth}" y="${plot.bottom + 20}" text-anchor="middle" font-weight="bold">${workload}</text>`,
    );
  });
  parts.push(`<line x1="${plot.left}" x2="${plot.right}" y1="${plot.bottom}" y2="${plot.bottom}" stroke="#374151"/>`);
  targets.forEach((target, i) => {
    const x = plot.right - (targets.length - i) * 110;
    parts.push(
      `<rect x="${x}" y="54" width="12" height="12" fill="${COLOURS[target]}"/>`,
      `<text x="${x + 18}" y="64">${target}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** 1, 2 or 5 times a power of ten, at least `raw`. */
function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(Math.max(raw, 1)));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
