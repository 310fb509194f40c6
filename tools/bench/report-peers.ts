import type { Measurement } from './measure.js';
import { PEER_SUMMARIES, PEER_WORKLOAD_NAMES, type PeerName, peerVersions } from './peers.js';
import { fixed, okMeasurement, whole } from './report-format.js';
import type { WorkloadName } from './workloads.js';

/** poolgraph's req/s over one peer's on one workload: the median of the per-round ratios. */
export interface PeerRatio {
  peer: PeerName;
  workload: WorkloadName;
  ratio: number;
  /** The rounds' lowest and highest ratio. */
  range: [number, number];
  rounds: number;
}

/** Issue 21's targets: at least this × the peer named, on these workloads. */
const AHEAD_OF_MERCURIUS: readonly WorkloadName[] = ['W1', 'W3', 'W4'];
const W2_OVER_BEST_PEER = 1.5;
const W2_MAX_STATEMENTS = 3;

/**
 * The report's section on the peers (`npm run bench -- --peers`): req/s and statements of each
 * beside poolgraph's, the per-round ratios, and issue 21's targets.
 */
export function peersSection(measurements: readonly Measurement[], ratios: readonly PeerRatio[]): string[] {
  const peers = [...new Set(ratios.map((r) => r.peer))];
  if (peers.length === 0) return [];
  const versions = peerVersions();
  const lines: string[] = [
    '## poolgraph beside its peers (issue 21)',
    '',
    'Each peer runs in a process of its own on the same database, tables, row-level security, role and pool size (10), ' +
      'with the same load; each answer is checked byte for byte before and during the load, as poolgraph\'s. Within each round ' +
      'every workload runs on every target one after the other; the ratio is the median of the per-round ratios ' +
      '(poolgraph req/s ÷ the peer\'s), the range in brackets. poolgraph runs as `npm start` does; the peers log and measure nothing.',
    '',
    ...peers.map((peer) => `- **${peer}**: ${PEER_SUMMARIES[peer]}.`),
    `- Versions: ${Object.entries(versions).map(([name, version]) => `${name} ${version}`).join(', ') || 'not installed'}.`,
    '',
    `| workload | poolgraph req/s (statements) | ${peers.map((peer) => `${peer} req/s (statements) | poolgraph ÷ ${peer}`).join(' | ')} |`,
    `| --- | ---: | ${peers.map(() => '---: | ---:').join(' | ')} |`,
  ];
  for (const workload of PEER_WORKLOAD_NAMES) {
    const own = okMeasurement(measurements, 'poolgraph', workload);
    if (!own) continue;
    const cells = peers.map((peer) => {
      const theirs = okMeasurement(measurements, peer, workload);
      const r = ratios.find((candidate) => candidate.peer === peer && candidate.workload === workload);
      const ratio = r ? `${fixed(r.ratio, 2)} ×${r.rounds > 1 ? ` (${fixed(r.range[0], 2)}–${fixed(r.range[1], 2)})` : ''}` : '–';
      return `${whole(theirs?.load?.requestsPerSecond)} (${fixed(theirs?.statementsPerRequest, 2)}) | ${ratio}`;
    });
    lines.push(`| ${workload} | ${whole(own.load?.requestsPerSecond)} (${fixed(own.statementsPerRequest, 2)}) | ${cells.join(' | ')} |`);
  }
  lines.push('', '### Against the targets of issue 21', '', '| what | value | target | met |', '| --- | ---: | --- | --- |');
  for (const workload of AHEAD_OF_MERCURIUS) {
    const r = ratios.find((candidate) => candidate.peer === 'mercurius' && candidate.workload === workload);
    if (r) lines.push(`| ${workload} poolgraph ÷ Mercurius + graphql-jit | ${fixed(r.ratio, 2)} × | ≥ 1.00 × | ${r.ratio >= 1 ? 'yes' : '**no**'} |`);
  }
  const w2 = ratios.filter((r) => r.workload === 'W2');
  if (w2.length > 0) {
    const best = w2.reduce((lowest, r) => (r.ratio < lowest.ratio ? r : lowest));
    const statements = okMeasurement(measurements, 'poolgraph', 'W2')?.statementsPerRequest;
    const met = best.ratio >= W2_OVER_BEST_PEER && statements !== undefined && statements <= W2_MAX_STATEMENTS + 0.005;
    lines.push(
      `| W2 poolgraph ÷ the best peer (${best.peer}), at ≤ ${W2_MAX_STATEMENTS} statements | ${fixed(best.ratio, 2)} × at ${fixed(statements, 2)} | ` +
        `≥ ${W2_OVER_BEST_PEER.toFixed(2)} × | ${met ? 'yes' : '**no**'} |`,
    );
  }
  lines.push('');
  return lines;
}
