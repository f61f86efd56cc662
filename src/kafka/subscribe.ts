import type { Consumer } from 'kafkajs';
import type { Logger } from '../log.js';
import { sleep } from './retry.js';

/**
 * Subscribes, riding out the metadata lag right after a topic is created ("does not host this
 * topic-partition"): retriable errors are retried with a growing pause, anything else is thrown.
 */
export async function subscribeWithRetry(consumer: Consumer, topics: readonly string[], fromBeginning: boolean, logger: Logger, attempts = 10): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await consumer.subscribe({ topics: [...topics], fromBeginning });
      return;
    } catch (error) {
      if (!(error as { retriable?: boolean }).retriable || attempt >= attempts) throw error;
      logger.debug({ err: error, attempt }, 'subscribe failed; retrying');
      await sleep(100 * attempt);
    }
  }
}
