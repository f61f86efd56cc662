import type { Kafka } from 'kafkajs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createTopics } from '../../src/kafka/topics.js';
import { kafkaForTest, uniqueName } from '../helpers.js';

/**
 * kafkajs keeps one metadata cache per client, for the topics the client works on (its "target
 * topics"). Two defects of kafkajs 2.2.4 took a target topic out of it while a call still needed
 * it, and `admin.fetchTopicOffsets` then failed with "Cannot destructure property 'partitions' of
 * 'high.pop(...)'" (tulios/kafkajs issue 461, open): a CI run of ours failed on it, three topics
 * created at once through one admin. wharf's patch (patches/kafkajs+2.2.4.patch) fixes both in
 * kafkajs's cluster; these tests prove them on the run's broker.
 */

interface CachedMetadata {
  topicMetadata: { topic: string }[];
}
interface KafkajsCluster {
  brokerPool: {
    metadata: CachedMetadata | null;
    metadataExpireAt: number | null;
    refreshMetadata(topics: string[]): Promise<void>;
  };
}

/** The cluster (kafkajs's connection and metadata layer) of the next client `kafka` makes: kafkajs does not expose it. */
function nextCluster(kafka: Kafka): () => KafkajsCluster {
  const holder = kafka as unknown as Record<symbol, unknown>;
  const key = Object.getOwnPropertySymbols(holder).find((s) => typeof holder[s] === 'function');
  if (!key) throw new Error('kafkajs no longer keeps its cluster factory on the client: update this test');
  const create = holder[key] as (options: unknown) => KafkajsCluster;
  let made: KafkajsCluster | undefined;
  holder[key] = (options: unknown) => {
    holder[key] = create;
    return (made = create(options));
  };
  return () => made ?? expect.fail('no client was made');
}

const cachedTopics = (cluster: KafkajsCluster) => cluster.brokerPool.metadata?.topicMetadata.map((t) => t.topic) ?? [];

describe("kafkajs's metadata cache (patched)", () => {
  it('keeps the target topics when the admin is asked about another topic', async () => {
    const k = kafkaForTest();
    const [a, b] = [uniqueName('cache-a'), uniqueName('cache-b')];
    await createTopics(
      await k.admin(),
      [a, b].map((topic) => ({ topic })),
    );
    const cluster = nextCluster(k.kafka);
    const admin = await k.admin();
    await admin.fetchTopicOffsets(a);
    expect(cachedTopics(cluster())).toContain(a);
    // Unpatched, this replaced the cache with b's metadata alone: a call for `a` in flight found no partitions.
    await admin.fetchTopicMetadata({ topics: [b] });
    expect(cachedTopics(cluster())).toContain(a);
  });

  it('refreshes again for a topic added while an older refresh was in flight', async () => {
    const k = kafkaForTest();
    const [a, c] = [uniqueName('cache-a'), uniqueName('cache-c')];
    await createTopics(
      await k.admin(),
      [a, c].map((topic) => ({ topic })),
    );
    const cluster = nextCluster(k.kafka);
    const admin = await k.admin();
    await admin.fetchTopicOffsets(a);
    // A refresh that does not ask for `c` answers late, as a busy broker may.
    const pool = cluster().brokerPool;
    const refresh = pool.refreshMetadata.bind(pool);
    pool.refreshMetadata = async (topics) => {
      if (!topics.includes(c)) await sleep(500);
      return refresh(topics);
    };
    pool.metadataExpireAt = 0;
    const first = admin.fetchTopicOffsets(a); // starts a refresh for [a], shared by every caller until it ends
    await sleep(50);
    // Adds c and refreshes for it, then joins the refresh for [a]: unpatched, that one's answer,
    // without c, replaced the cache, and this call failed with a TypeError.
    const second = admin.fetchTopicOffsets(c);
    expect(await second).toEqual([expect.objectContaining({ partition: 0, high: '0' })]);
    expect(await first).toEqual([expect.objectContaining({ partition: 0, high: '0' })]);
    expect(cachedTopics(cluster())).toEqual(expect.arrayContaining([a, c]));
  });
});
