import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time of processes, read from Linux's `/proc/<pid>/stat` (user + system time of every
 * thread of the process). Returns undefined where `/proc` cannot tell (another OS, a process that
 * is gone): the benchmark then reports no CPU figure rather than a wrong one.
 */

/** Clock ticks per second, the unit of `/proc/<pid>/stat` times. */
const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    // getconf is missing: 100 is the value on every Linux platform Node runs on.
    return 100;
  }
})();

interface ProcStat {
  command: string;
  ppid: number;
  /** utime + stime: this process's own CPU time. */
  ownTicks: number;
  /** cutime + cstime: CPU time of its children that exited and were waited for. */
  reapedChildrenTicks: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: split after its closing one.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const field = (n: number) => Number(fields[n - 3]);
  return {
    command: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')),
    ppid: field(4),
    ownTicks: field(14) + field(15),
    reapedChildrenTicks: field(16) + field(17),
  };
}

/** CPU seconds one process has used so far. */
export function processCpuSeconds(pid: number): number | undefined {
  const stat = readStat(pid);
  return stat && stat.ownTicks / TICKS_PER_SECOND;
}

/** The parent of `pid`, or undefined when `/proc` does not know it. */
export function parentPid(pid: number): number | undefined {
  return readStat(pid)?.ppid;
}

/**
 * CPU seconds a PostgreSQL server has used so far: its postmaster, every live child (backends,
 * checkpointer, WAL writer, autovacuum...), and every child that already exited. The last term
 * matters when backends come and go (the unpooled run): the kernel adds an exited child's time
 * to its parent's `cutime`/`cstime` once the postmaster reaps it, so a difference of two readings
 * counts a backend that lived only between them.
 */
export function postgresCpuSeconds(postmasterPid: number): number | undefined {
  const postmaster = readStat(postmasterPid);
  if (!postmaster) return undefined;
  let ticks = postmaster.ownTicks + postmaster.reapedChildrenTicks;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat?.ppid === postmasterPid) ticks += stat.ownTicks;
  }
  return ticks / TICKS_PER_SECOND;
}

/**
 * CPU seconds the whole machine has been busy (every CPU's user, nice, system, irq, softirq and
 * steal time, from `/proc/stat`): compared with the processes measured, it shows how much other
 * work (another program, the bench's own orchestration) shared the machine during a run.
 */
export function machineBusySeconds(): number | undefined {
  let line: string | undefined;
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  } catch {
    return undefined;
  }
  const [label, user, nice, system, , , irq, softirq, steal] = (line ?? '').split(/\s+/);
  if (label !== 'cpu') return undefined;
  return [user, nice, system, irq, softirq, steal].reduce((sum, value) => sum + Number(value ?? 0), 0) / TICKS_PER_SECOND;
}

/** A process in a {@link processSnapshot}. */
export interface ProcessEntry {
  command: string;
  ppid: number;
  ticks: number;
}

/** CPU ticks of every process now, by pid, with its command name and parent. */
export function processSnapshot(): Map<number, ProcessEntry> {
  const snapshot = new Map<number, ProcessEntry>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat) snapshot.set(Number(entry), { command: stat.command, ppid: stat.ppid, ticks: stat.ownTicks });
  }
  return snapshot;
}

/** The processes (other than `exclude`) that used the most CPU between two snapshots, as text. */
export function busiestOthers(
  before: Map<number, ProcessEntry>,
  after: Map<number, ProcessEntry>,
  exclude: (pid: number, entry: ProcessEntry) => boolean,
  count: number,
): string {
  return [...after]
    .filter(([pid, entry]) => !exclude(pid, entry))
    .map(([pid, { command, ticks }]) => ({ pid, command, seconds: (ticks - (before.get(pid)?.ticks ?? 0)) / TICKS_PER_SECOND }))
    .filter((entry) => entry.seconds > 0)
    .sort((a, b) => b.seconds - a.seconds)
    .slice(0, count)
    .map((entry) => `${entry.command} (pid ${entry.pid}) ${entry.seconds.toFixed(1)} s`)
    .join(', ');
}
