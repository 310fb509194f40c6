import { execFileSync } from 'node:child_process';

/** A Node executable the bench's servers run on. */
export interface NodeBinary {
  /** The executable's path. */
  path: string;
  /** What it reports, `v24.11.0`. */
  version: string;
}

/**
 * The Node the servers run on: this process's own without `spec`, otherwise the newest release
 * matching `spec` (`24`, `22.15`, `24.11.0`) of the npm package `node`, which npx installs once
 * into its cache (the first time about 10 s and a download of the binary from the npm registry;
 * later a registry lookup). Returns the real binary's path (`process.execPath` as that Node sees
 * it), so servers start without npx in between. Throws with npx's output when it fails.
 */
export function resolveNodeBinary(spec: string | undefined): NodeBinary {
  if (spec === undefined) return { path: process.execPath, version: process.version };
  if (!/^\d+(\.\d+){0,2}$/.test(spec)) throw new Error(`--node takes a Node version such as 24 or 22.15, got "${spec}"`);
  let output: string;
  try {
    output = execFileSync('npx', ['-y', '-p', `node@${spec}`, 'node', '-p', 'process.execPath + " " + process.version'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 300_000,
    });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`could not get Node ${spec} with npx -p node@${spec}: ${stderr.trim() || (error as Error).message}`);
  }
  const [path, version] = output.trim().split('\n').at(-1)?.split(' ') ?? [];
  if (!path || !version) throw new Error(`npx -p node@${spec} printed no Node path: ${output}`);
  return { path, version };
}
