import { readdirSync, readFileSync } from 'node:fs';

/**
 * The cluster library (tools/cluster) for tests, plus what a test needs to prove that stopping it
 * left nothing behind: the processes below the ones it started, and which of them still live.
 */
export * from '../../tools/cluster/index.js';

/** A process's parent PID and state letter, from `/proc/<pid>/stat`; undefined once it is gone. */
function statOf(pid: number): { ppid: number; state: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces; the rest follows it.
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(ppid), state: state ?? '' };
  } catch {
    return undefined;
  }
}

/** `pids` and every process below them (PostgreSQL's backends, HAProxy's workers), read from /proc. */
export function withDescendants(pids: readonly number[]): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = statOf(Number(entry));
    if (stat) parents.set(Number(entry), stat.ppid);
  }
  const tree = [...pids];
  for (let index = 0; index < tree.length; index++) {
    for (const [pid, ppid] of parents) if (ppid === tree[index] && !tree.includes(pid)) tree.push(pid);
  }
  return tree;
}

/** Those of `pids` that still run (a zombie, exited but not yet reaped, counts as gone). */
export function aliveAmong(pids: readonly number[]): number[] {
  return pids.filter((pid) => {
    const stat = statOf(pid);
    return stat !== undefined && stat.state !== 'Z';
  });
}
