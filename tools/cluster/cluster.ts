import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { migrateToLatest } from '../../src/db/setup/migrate.js';
import { withOneConnection } from '../../src/db/setup/one-connection.js';
import { DEFAULT_SEED_SIZE, type SeedSize, seed } from '../../src/db/setup/seed.js';
import { CleanupStack } from './cleanup-stack.js';
import { freePorts } from './free-port.js';
import { type Haproxy, startHaproxy } from './haproxy.js';
import { type PgBouncer, startPgBouncer } from './pgbouncer.js';
import { type PoolgraphInstance, startPoolgraph } from './poolgraph.js';
import type { PostgresServer } from './postgres-server.js';
import { startPostgres } from './postgres.js';
import { type PostgresReplica, startReplica } from './replica.js';
import { createPrivateDir, serviceUser } from './service-user.js';

/** Options of {@link startCluster}; every one has a default that suits a laptop. */
export interface StartClusterOptions {
  /** poolgraph instances behind HAProxy. @default 3 */
  instances?: number;
  /**
   * More settings for every instance, over the cluster's own (`DATABASE_URL` → PgBouncer,
   * `DATABASE_POOLER=transaction`, `DATABASE_REPLICA_URL` → replica, `POOL_SIZE=2`,
   * `POOL_MAX_OVERFLOW=3`, `LOG_FORMAT=json`).
   */
  instanceEnv?: Record<string, string>;
  /** `max_connections` of the primary and the replica. @default 50 */
  maxConnections?: number;
  /** PgBouncer's `default_pool_size`: backends it opens on the primary. @default 10 */
  pgbouncerPoolSize?: number;
  /** PgBouncer's `max_client_conn`. @default 100 */
  pgbouncerMaxClientConn?: number;
  /** The data set written to the primary once. @default 100 categories of 100 items */
  seed?: SeedSize;
  /** Receives every line any process prints, with its name (`primary`, `instance-2`…). */
  onLine?: (source: string, line: string) => void;
}

/** One process of the cluster. */
export interface ClusterProcess {
  name: string;
  pid: number;
}

/** Everything {@link startCluster} started, all on 127.0.0.1. */
export interface Cluster {
  /** The folder holding every server's data and config; deleted by {@link Cluster.stop}. */
  dir: string;
  primary: PostgresServer;
  replica: PostgresReplica;
  /** In front of the primary, transaction mode. */
  pgbouncer: PgBouncer;
  /** `instance-1`…, each serving on its own port too. */
  instances: PoolgraphInstance[];
  /** In front of the instances. */
  haproxy: Haproxy;
  /** `http://127.0.0.1:<haproxy port>/graphql`: where clients (and GraphiQL) go. */
  graphqlUrl: string;
  /** The processes that run now (the PIDs we would stop). */
  processes(): ClusterProcess[];
  /**
   * Stops everything it started, in reverse order (HAProxy, the instances with SIGTERM, PgBouncer,
   * the replica, the primary), each by its PID, then deletes {@link Cluster.dir}. Calling it again
   * does nothing.
   */
  stop(): Promise<void>;
}

const DEFAULT_INSTANCE_ENV = { POOL_SIZE: '2', POOL_MAX_OVERFLOW: '3' };

/**
 * Starts the topology of a multi-instance deployment on this machine: a PostgreSQL primary and a
 * streaming hot standby, migrations and the seed applied once on the primary (and replayed on the
 * standby), PgBouncer in transaction mode in front of the primary, `instances` poolgraph servers
 * using PgBouncer (with the replica's URL) and HAProxy balancing them, health-checked on `/ready`.
 * Resolves once HAProxy sees every instance up: about 8 s with 3 instances on 2 cores (most of it
 * the instances compiling with tsx), and {@link Cluster.stop} about 0.3 s. If any step fails, everything
 * already started is stopped and the folder deleted before the error is thrown.
 */
export async function startCluster(options: StartClusterOptions = {}): Promise<Cluster> {
  const instanceCount = options.instances ?? 3;
  if (!Number.isInteger(instanceCount) || instanceCount < 1) throw new Error(`instances must be a whole number ≥ 1, not ${instanceCount}`);
  const onLine = (source: string) => (options.onLine ? { onLine: (line: string) => options.onLine?.(source, line) } : {});
  const stack = new CleanupStack();
  const dir = await createPrivateDir(undefined, 'poolgraph-cluster-', serviceUser());
  stack.defer(`the folder ${dir}`, () => rm(dir, { recursive: true, force: true }));
  try {
    const ports = await freePorts(4 + instanceCount);
    const [primaryPort, replicaPort, pgbouncerPort, haproxyPort] = [take(ports), take(ports), take(ports), take(ports)];
    const instancePorts = ports.splice(0);
    const primary = await startPostgres({
      port: primaryPort,
      dir: join(dir, 'primary'),
      maxConnections: options.maxConnections ?? 50,
      ...onLine('primary'),
    });
    stack.defer('the primary', () => primary.destroy());
    const replica = await startReplica({ primary, port: replicaPort, dir: join(dir, 'replica'), ...onLine('replica') });
    stack.defer('the replica', () => replica.destroy());

    // Once, directly on the primary, before any instance starts: each then finds nothing to
    // migrate, and the replica has the data before the first read is sent to it.
    await migrateToLatest(primary.url);
    await withOneConnection(primary.url, (db) => seed(db, options.seed ?? DEFAULT_SEED_SIZE));
    await replica.waitForReplay();

    const pgbouncer = await startPgBouncer({
      target: primary.app,
      port: pgbouncerPort,
      poolSize: options.pgbouncerPoolSize ?? 10,
      maxClientConn: options.pgbouncerMaxClientConn ?? 100,
      dir: join(dir, 'pgbouncer'),
      ...onLine('pgbouncer'),
    });
    stack.defer('PgBouncer', () => pgbouncer.destroy());

    const instances = await startInstances(instancePorts, stack, (name, port) =>
      startPoolgraph({
        name,
        port,
        env: {
          ...DEFAULT_INSTANCE_ENV,
          DATABASE_URL: pgbouncer.url,
          DATABASE_POOLER: 'transaction',
          DATABASE_LISTEN_URL: primary.url,
          DATABASE_REPLICA_URL: replica.url,
          ...options.instanceEnv,
        },
        ...onLine(name),
      }),
    );

    const haproxy = await startHaproxy({
      port: haproxyPort,
      backends: instances.map((instance) => ({ host: '127.0.0.1', port: instance.port })),
      dir: join(dir, 'haproxy'),
      ...onLine('haproxy'),
    });
    stack.defer('HAProxy', () => haproxy.destroy());
    await haproxy.waitForUp();

    return {
      dir,
      primary,
      replica,
      pgbouncer,
      instances,
      haproxy,
      graphqlUrl: `${haproxy.origin}/graphql`,
      processes: () =>
        [primary, replica, pgbouncer, ...instances, haproxy].flatMap((started) =>
          started.running && started.pid !== undefined ? [{ name: started.name, pid: started.pid }] : [],
        ),
      stop: () => stack.unwind(),
    };
  } catch (error) {
    await stack.unwind().catch((cleanupError: unknown) => {
      throw new AggregateError([error, cleanupError], `${String(error)}\n(and then stopping failed: ${String(cleanupError)})`);
    });
    throw error;
  }
}

/**
 * Starts the instances side by side (each one mostly waits for tsx and its pool) and registers
 * one cleanup that stops those that started, side by side too; rethrows the first failure once
 * all have settled.
 */
async function startInstances(
  ports: number[],
  stack: CleanupStack,
  start: (name: string, port: number) => Promise<PoolgraphInstance>,
): Promise<PoolgraphInstance[]> {
  const outcomes = await Promise.allSettled(ports.map((port, index) => start(`instance-${index + 1}`, port)));
  const instances = outcomes.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
  stack.defer('the poolgraph instances', async () => {
    const stopped = await Promise.allSettled(instances.map((instance) => instance.stop()));
    const failed = stopped.find((outcome) => outcome.status === 'rejected');
    if (failed) throw failed.reason;
  });
  const failed = outcomes.find((outcome) => outcome.status === 'rejected');
  if (failed) throw failed.reason;
  return instances;
}

/** The first port of `ports`, removed from it. */
function take(ports: number[]): number {
  const port = ports.shift();
  if (port === undefined) throw new Error('not enough free ports');
  return port;
}
