import { describe, expect, it } from 'vitest';
import { startCluster } from '../support/cluster.js';
import { W1 } from '../support/workloads.js';

/**
 * Through HAProxy in front of 3 instances (PgBouncer, primary and replica behind them), one
 * instance is SIGKILLed under a bounded write load: the other two keep answering, and every write
 * a client saw acknowledged is on the primary and, once the replica has replayed, on the replica.
 *
 * What the topology promises about failures: a connection the dead instance refuses is retried
 * on another one (`retries 2`, `option redispatch`: nothing was sent), so the only requests that
 * may fail are those the victim had accepted when it died. Each loop has one request in flight at
 * a time, so at most {@link LOOPS} fail, over the whole run; every loop keeps being answered after
 * the kill.
 */

const LOAD_MS = 5_000;
const KILL_AFTER_MS = 2_000;
const LOOPS = 4;
/** A cap on each loop's requests, so a loop ends even if the clock misbehaves. */
const MAX_REQUESTS_PER_LOOP = 2_000;

interface Body {
  data?: { createItem?: { id: string } } | null;
  errors?: unknown[];
}

describe('HAProxy in front of 3 instances, one killed with SIGKILL under write load', () => {
  it(
    'keeps answering through the other instances, and every acknowledged write is on the primary and the replica',
    async () => {
      const cluster = await startCluster();
      try {
        const acknowledged: string[] = [];
        const failed: string[] = [];
        const answeredAfterKill = new Map<number, number>();
        let killedAt: number | undefined;
        const deadline = Date.now() + LOAD_MS;
        const victim = cluster.instances[1]!;
        const killer = (async () => {
          await new Promise((resolve) => setTimeout(resolve, KILL_AFTER_MS));
          await victim.kill();
          killedAt = Date.now();
        })();
        const loops = Array.from({ length: LOOPS }, async (_, loop) => {
          for (let n = 0; n < MAX_REQUESTS_PER_LOOP && Date.now() < deadline; n++) {
            const label = `failover-${loop}-${n}`;
            try {
              const response = await fetch(cluster.graphqlUrl, {
                method: 'POST',
                headers: { 'content-type': 'application/json', accept: 'application/json' },
                body: JSON.stringify({
                  query: 'mutation ($label: String!) { createItem(input: { number: 9, label: $label, categoryId: "2" }) { id } }',
                  variables: { label },
                }),
              });
              const body = (await response.json().catch(() => ({}))) as Body;
              if (response.status === 200 && !body.errors && body.data?.createItem?.id) {
                acknowledged.push(label);
                if (killedAt !== undefined) answeredAfterKill.set(loop, (answeredAfterKill.get(loop) ?? 0) + 1);
              } else failed.push(label);
            } catch {
              failed.push(label);
            }
          }
        });
        await Promise.all([killer, ...loops]);

        // The survivors answer directly too.
        for (const instance of [cluster.instances[0]!, cluster.instances[2]!]) {
          const response = await fetch(instance.graphqlUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ query: W1 }),
          });
          expect(response.status).toBe(200);
        }
        expect(victim.running).toBe(false);

        const labels = async (rows: Promise<{ label: string }[]>) => new Set((await rows).map((row) => row.label));
        const onPrimary = await labels(cluster.primary.query("select label from items where label like 'failover-%'"));
        await cluster.replica.waitForReplay();
        const onReplica = await labels(cluster.replica.query("select label from items where label like 'failover-%'"));
        console.log(
          `[haproxy-failover] ${acknowledged.length} acknowledged (${[...answeredAfterKill.values()].join('+')} after the kill), ${failed.length} failed; ` +
            `present: ${onPrimary.size} on the primary, ${onReplica.size} on the replica`,
        );
        expect(acknowledged.filter((label) => !onPrimary.has(label))).toEqual([]);
        expect(acknowledged.filter((label) => !onReplica.has(label))).toEqual([]);
        // At most one request per loop was in flight on the victim; refused ones were redispatched.
        expect(failed.length, `failed: ${failed.join(', ')}`).toBeLessThanOrEqual(LOOPS);
        // Every loop was answered after the kill, by the survivors.
        expect([...answeredAfterKill.keys()].sort()).toEqual(Array.from({ length: LOOPS }, (_, loop) => loop));
        // A failed request may or may not have committed; only acknowledged ones are promised.
        expect(onPrimary.size).toBeLessThanOrEqual(acknowledged.length + failed.length);
      } finally {
        await cluster.stop();
      }
    },
    120_000,
  );
});
