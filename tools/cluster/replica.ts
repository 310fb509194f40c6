import { join } from 'node:path';
import { runToCompletion } from './run-command.js';
import { requirePostgresBinaries } from './postgres-install.js';
import { PostgresServer, type PostgresServerSettings, postgresEnv } from './postgres-server.js';
import { createPrivateDir, serviceUser } from './service-user.js';
import { waitUntil } from './wait.js';

/** Options of {@link startReplica}. */
export interface StartReplicaOptions {
  /** The running primary to copy and stream from (see `startPostgres`). */
  primary: PostgresServer;
  /** TCP port on 127.0.0.1. */
  port: number;
  /** The replica's folder, which must not exist yet. @default a new folder under the system temp folder */
  dir?: string;
  /**
   * `max_connections`; a hot standby refuses to start with fewer than its primary has.
   * @default the primary's
   */
  maxConnections?: number;
  /** Receives every log line of the replica. */
  onLine?: (line: string) => void;
}

const BASEBACKUP_TIMEOUT_MS = 60_000;
const STREAMING_TIMEOUT_MS = 30_000;
const REPLAY_TIMEOUT_MS = 30_000;

/**
 * A hot standby streaming from its primary through a physical replication slot, so the primary
 * keeps the WAL it needs while the replica is stopped (tests stop and restart it).
 */
export class PostgresReplica extends PostgresServer {
  /** The server it streams from. */
  readonly primary: PostgresServer;
  /** Its replication slot on the primary. */
  readonly slotName: string;

  /** Use {@link startReplica}. */
  constructor(settings: PostgresServerSettings, primary: PostgresServer, slotName: string) {
    super(settings);
    this.primary = primary;
    this.slotName = slotName;
  }

  /**
   * Starts the standby on its data directory and waits until it streams from the primary again
   * (so the primary must be running). Rejects with the replica's last log lines after 30 s.
   */
  override async start(): Promise<void> {
    await super.start();
    await this.waitForStreaming();
  }

  /** Resolves once the primary's `pg_stat_replication` shows this replica's slot streaming. */
  async waitForStreaming(timeoutMs = STREAMING_TIMEOUT_MS): Promise<void> {
    await waitUntil(
      async () => {
        const rows = await this.primary.query<{ state: string }>(
          `select r.state from pg_replication_slots s join pg_stat_replication r on r.pid = s.active_pid
           where s.slot_name = $1`,
          [this.slotName],
        );
        return rows[0]?.state === 'streaming' ? true : undefined;
      },
      { what: `the ${this.name} to stream from the ${this.primary.name}`, timeoutMs, watch: this },
    );
  }

  /**
   * Resolves once the replica has replayed everything the primary had written when this was
   * called (`pg_last_wal_replay_lsn() >= pg_current_wal_lsn()` read on the primary), so a read on
   * the replica sees every write acknowledged before.
   */
  async waitForReplay(timeoutMs = REPLAY_TIMEOUT_MS): Promise<void> {
    const [current] = await this.primary.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn');
    if (!current) throw new Error(`${this.primary.name}: pg_current_wal_lsn() returned no row`);
    await waitUntil(
      async () => {
        const [row] = await this.query<{ caught_up: boolean | null }>(
          'select pg_last_wal_replay_lsn() >= $1::pg_lsn as caught_up',
          [current.lsn],
        );
        return row?.caught_up ? true : undefined;
      },
      { what: `the ${this.name} to replay the ${this.primary.name}'s WAL up to ${current.lsn}`, timeoutMs, watch: this },
    );
  }

  /** Stops the replica, deletes its folder, and drops its slot if the primary still runs. */
  override async destroy(): Promise<void> {
    await super.destroy();
    if (this.primary.running) await dropSlot(this.primary, this.slotName);
  }
}

/**
 * Starts a streaming hot standby of `primary`: `pg_basebackup -R` (which writes
 * `standby.signal` and `primary_conninfo`) through a new replication slot, then `postgres` with
 * the same settings as the primary (pg_stat_statements preloaded). Resolves once the primary
 * sees it streaming; takes about 2 s. If a step fails, what it made (folder, slot, process) is
 * removed before the error is thrown.
 */
export async function startReplica(options: StartReplicaOptions): Promise<PostgresReplica> {
  const { primary } = options;
  // pg_basebackup and the standby must be of the primary's major version.
  const binDir = primary.binDir;
  requirePostgresBinaries(binDir);
  const runAs = serviceUser();
  const dir = await createPrivateDir(options.dir, 'poolgraph-replica-', runAs);
  const slotName = `poolgraph_replica_${options.port}`;
  const replica = new PostgresReplica(
    {
      name: 'replica',
      port: options.port,
      dir,
      maxConnections: options.maxConnections ?? primary.maxConnections,
      passwords: {
        superuser: primary.superuser.password,
        app: primary.app.password,
        replication: primary.replication.password,
      },
      runAs,
      binDir,
      ...(options.onLine ? { onLine: options.onLine } : {}),
    },
    primary,
    slotName,
  );
  try {
    const { host, port, user, password } = primary.replication;
    await runToCompletion({
      name: 'pg_basebackup',
      command: join(binDir, 'pg_basebackup'),
      args: [
        '-D', replica.dataDir,
        '-d', `host=${host} port=${port} user=${user} password=${password}`,
        '--write-recovery-conf', '--wal-method=stream', '--checkpoint=fast',
        '--create-slot', `--slot=${slotName}`, '--no-sync',
      ],
      env: postgresEnv(),
      runAs,
      timeoutMs: BASEBACKUP_TIMEOUT_MS,
    });
    await replica.start();
    return replica;
  } catch (error) {
    await replica.destroy();
    throw error;
  }
}

/**
 * Drops the slot once no walsender uses it: a replica that has just stopped may still show as
 * active on the primary for a moment.
 */
async function dropSlot(primary: PostgresServer, slotName: string): Promise<void> {
  await waitUntil(
    async () => {
      const [slot] = await primary.query<{ active: boolean }>('select active from pg_replication_slots where slot_name = $1', [slotName]);
      if (!slot) return true;
      if (slot.active) return undefined;
      await primary.query('select pg_drop_replication_slot($1)', [slotName]);
      return true;
    },
    { what: `the slot ${slotName} to become inactive so it can be dropped`, timeoutMs: 10_000, watch: primary },
  );
}
