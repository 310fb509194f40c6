import { createServer } from 'node:net';

/**
 * A TCP port of 127.0.0.1 with nothing listening on it a moment ago (the kernel picks it when we
 * bind port 0). Another process could take it before ours does; on a test machine that is rare,
 * and the process that then fails to listen says so.
 */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', resolve);
  });
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (typeof address !== 'object' || !address) throw new Error('the kernel gave no free port');
  return address.port;
}

/** `count` distinct free ports (each found while the previous probes are closed). */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  // The kernel rarely hands out the same port twice in a row; the bound keeps a fluke finite.
  for (let attempt = 0; ports.size < count && attempt < count * 10; attempt++) ports.add(await freePort());
  if (ports.size < count) throw new Error(`found only ${ports.size} of ${count} free ports`);
  return [...ports];
}
