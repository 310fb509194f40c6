/**
 * `npm run bench:profile -- FILE.cpuprofile [--top 25]`: what a V8 CPU profile (`node --cpu-prof`,
 * as `npm run bench -- --profile DIR` writes for each server) spent its time on, as text:
 * - self time by package (`graphql`, `graphql-yoga`'s `@whatwg-node/*`, `pg`, `kysely`, poolgraph's
 *   own `src/`, Node's internals, V8 builtins, garbage collection, idle);
 * - the functions with the most self time;
 * - the functions with the most inclusive time (time with the function anywhere on the stack,
 *   each sample counted once per function however deep the recursion).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Where a frame's code comes from: a package name, `src/`, Node, V8, or a pseudo-frame. */
function packageOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName.startsWith('(')) return functionName; // (garbage collector), (idle), (program), (root)
    return 'V8 builtins';
  }
  if (url.startsWith('node:')) return 'node internals';
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const [scope, name] = url.slice(modules + '/node_modules/'.length).split('/');
    return scope?.startsWith('@') ? `${scope}/${name}` : (scope ?? url);
  }
  if (url.includes('/src/')) return 'poolgraph src/';
  if (url.includes('/tools/')) return 'tools/';
  return url;
}

function frameName(frame: CallFrame): string {
  const file = frame.url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*?\/(src|tools)\//, '$1/');
  return `${frame.functionName || '(anonymous)'}${file ? ` ${file}:${frame.lineNumber + 1}` : ''}`;
}

/** A summary of one profile, as lines of text. */
function summarise(profile: CpuProfile, top: number): string[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  const selfByFunction = new Map<string, number>();
  const selfByPackage = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, value: number) => map.set(key, (map.get(key) ?? 0) + value);
  const mean = (profile.endTime - profile.startTime) / Math.max(1, profile.samples.length);

  let total = 0;
  profile.samples.forEach((id, i) => {
    // A sample stands for the time until the next one.
    const duration = profile.timeDeltas[i + 1] ?? mean;
    const node = byId.get(id);
    if (!node) return;
    total += duration;
    add(selfByFunction, frameName(node.callFrame), duration);
    add(selfByPackage, packageOf(node.callFrame), duration);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)?.callFrame;
      if (!frame || frame.functionName === '(root)') continue;
      const name = frameName(frame);
      if (!seen.has(name)) {
        seen.add(name);
        add(inclusive, name, duration);
      }
    }
  });

  const busy = total - (selfByPackage.get('(idle)') ?? 0);
  const table = (title: string, map: Map<string, number>, limit: number) => [
    title,
    ...[...map]
      .sort(([, a], [, b]) => b - a)
      .slice(0, limit)
      .map(([name, us]) => `  ${((us / busy) * 100).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(7)} ms  ${name}`),
    '',
  ];
  return [
    `profiled ${(total / 1e6).toFixed(1)} s, of which busy (not idle) ${(busy / 1e6).toFixed(1)} s; percentages are of busy time`,
    '',
    ...table('self time by package:', selfByPackage, top),
    ...table('self time by function:', selfByFunction, top),
    ...table('inclusive time by function:', inclusive, top),
  ];
}

const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '25' } }, allowPositionals: true });
if (positionals.length === 0) {
  process.stderr.write('usage: npm run bench:profile -- FILE.cpuprofile [FILE...] [--top 25]\n');
  process.exit(2);
}
for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(`# ${file}\n${summarise(profile, Number(values.top)).join('\n')}\n`);
}
