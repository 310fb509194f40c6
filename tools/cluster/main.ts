import { parseArgs } from 'node:util';
import { type Cluster, startCluster } from './cluster.js';
import { CHECK_INTERVAL_MS } from './haproxy.js';
import { endpointUrl } from './sql.js';

/**
 * `npm run cluster [-- --instances N] [--env KEY=VALUE]... [--verbose]`: starts the whole topology on 127.0.0.1
 * (see `startCluster`), prints where everything is, and on Ctrl-C or SIGTERM stops everything it
 * started, by PID, and exits.
 */
async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      instances: { type: 'string', default: '3' },
      env: { type: 'string', multiple: true, default: [] },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: npm run cluster -- [--instances N] [--env KEY=VALUE (a setting for every instance, repeatable)] ' +
        "[--verbose (print every process's log lines)]\n",
    );
    return 0;
  }
  const instances = Number(values.instances);
  if (!Number.isInteger(instances) || instances < 1 || instances > 20) {
    process.stderr.write(`--instances must be a whole number from 1 to 20, not ${values.instances}\n`);
    return 2;
  }
  const instanceEnv: Record<string, string> = {};
  for (const setting of values.env) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(setting);
    if (!match?.[1]) {
      process.stderr.write(`--env wants KEY=VALUE (e.g. POOL_SIZE=4), not ${setting}\n`);
      return 2;
    }
    instanceEnv[match[1]] = match[2] ?? '';
  }

  // Listen from the start: a Ctrl-C while things start must still stop what has started
  // (startCluster cannot be interrupted, but it is bounded; we stop everything right after).
  let stopRequested: (signal: NodeJS.Signals) => void = () => undefined;
  const signalled = new Promise<NodeJS.Signals>((resolve) => (stopRequested = resolve));
  let stopping = false;
  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    // A terminal's Ctrl-C reaches npm and us, and npm forwards it: the same keypress twice.
    if (stopping && Date.now() - firstSignalAt > 1_000) process.stderr.write('still stopping (each process gets a bounded time)…\n');
    if (!stopping) firstSignalAt = Date.now();
    stopping = true;
    stopRequested(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  process.stdout.write(`starting a primary, a replica, PgBouncer, ${instances} poolgraph instances and HAProxy…\n`);
  const startedAt = Date.now();
  const cluster = await startCluster({
    instances,
    instanceEnv,
    ...(values.verbose ? { onLine: (source: string, line: string) => process.stdout.write(`[${source}] ${line}\n`) } : {}),
  });
  try {
    if (!stopping) {
      process.stdout.write(describe(cluster, Date.now() - startedAt));
      await signalled;
    }
    process.stdout.write('stopping everything…\n');
  } finally {
    const stoppedAt = Date.now();
    await cluster.stop();
    process.stdout.write(`stopped in ${((Date.now() - stoppedAt) / 1000).toFixed(1)} s; removed ${cluster.dir}\n`);
  }
  return 0;
}

/** What a person needs to use the cluster: URLs, PIDs, and psql commands. */
function describe(cluster: Cluster, startMs: number): string {
  const { primary, replica, pgbouncer, haproxy, instances } = cluster;
  const psql = (url: string) => `psql "${url}"`;
  const pid = (value: number | undefined) => `pid ${value ?? '?'}`;
  return [
    '',
    `poolgraph cluster up in ${(startMs / 1000).toFixed(1)} s, on 127.0.0.1 only:`,
    '',
    `  GraphiQL (HAProxy)  ${cluster.graphqlUrl}   ${pid(haproxy.pid)}, health checks GET /ready every ${CHECK_INTERVAL_MS} ms`,
    ...instances.map(
      (instance) => `  ${instance.name.padEnd(18)}  ${instance.graphqlUrl}   ${pid(instance.pid)}, /ready /health /metrics`,
    ),
    `  PgBouncer           ${psql(pgbouncer.url)}   ${pid(pgbouncer.pid)}, transaction mode, pool ${pgbouncer.poolSize}`,
    `    admin console     ${psql(pgbouncer.adminUrl)} -c 'SHOW POOLS'`,
    `  primary             ${psql(primary.url)}   ${pid(primary.pid)}, max_connections ${primary.maxConnections}`,
    `    superuser         ${psql(endpointUrl(primary.superuser))}`,
    `  replica             ${psql(replica.url)}   ${pid(replica.pid)}, hot standby, streaming`,
    `    superuser         ${psql(endpointUrl(replica.superuser))}`,
    '',
    `  data and configs:   ${cluster.dir} (deleted on stop)`,
    '  instances use:      DATABASE_URL=PgBouncer, DATABASE_POOLER=transaction, DATABASE_REPLICA_URL=replica',
    '',
    'Ctrl-C (or SIGTERM) stops everything, by PID.',
    '',
  ].join('\n');
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`npm run cluster: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
