import { freePort } from '../../src/db/setup/embedded.js';

export { freePort };

/** `count` distinct free ports (each found while the previous probes are closed). */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  // The kernel rarely hands out the same port twice in a row; the bound keeps a fluke finite.
  for (let attempt = 0; ports.size < count && attempt < count * 10; attempt++) ports.add(await freePort());
  if (ports.size < count) throw new Error(`found only ${ports.size} of ${count} free ports`);
  return [...ports];
}
