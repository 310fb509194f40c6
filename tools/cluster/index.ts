/**
 * A PostgreSQL primary and streaming replica, PgBouncer, poolgraph instances and HAProxy as real
 * processes on 127.0.0.1, each started and stopped by its PID: what `npm run cluster` runs and
 * what the multi-instance tests drive. See {@link startCluster} for all of it at once.
 */
export { type Cluster, type ClusterProcess, type StartClusterOptions, startCluster } from './cluster.js';
export { type Backend, CHECK_INTERVAL_MS, HAPROXY_BINARY, Haproxy, type StartHaproxyOptions, startHaproxy } from './haproxy.js';
export type { ServerState } from './haproxy-stats.js';
export type { ProcessExit } from './managed-process.js';
export { PGBOUNCER_BINARY, PgBouncer, type StartPgBouncerOptions, startPgBouncer } from './pgbouncer.js';
export { PoolgraphInstance, type StartPoolgraphOptions, startPoolgraph } from './poolgraph.js';
export { APP_ROLE, PostgresServer, REPLICATION_ROLE, SUPERUSER } from './postgres-server.js';
export {
  DEBIAN_POSTGRES_ROOT,
  installedPostgres,
  newestPostgresBinDir,
  type PostgresInstall,
  postgresVersion,
} from './postgres-install.js';
export { type StartPostgresOptions, startPostgres } from './postgres.js';
export { PostgresReplica, type StartReplicaOptions, startReplica } from './replica.js';
export { type DatabaseEndpoint, endpointUrl, queryOnce } from './sql.js';
export { freePort, freePorts } from './free-port.js';
