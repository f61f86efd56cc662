import { compiled } from '../paths.js';
import type { ConfigInput } from './schema.js';

/** `npm start` with no config: the article's conversation — Tony asks, Jarvis answers. */
export function demoConfig(): ConfigInput {
  return {
    services: [
      { module: compiled('workers/demo/jarvis.js'), workers: { consumer: 2 } },
      { module: compiled('workers/demo/tony.js'), workers: { producer: 1 }, rate: 2 },
    ],
    // The conversation survives a restart, even a kill -9 (docs/state.md, Persistence).
    state: { persist: ['conversation', 'tony.asked', 'sent', 'replied', 'duplicates'] },
  };
}
