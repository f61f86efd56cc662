import { compiled } from '../paths.js';
import type { ConfigInput } from './schema.js';

/** `npm start` with no config: the article's conversation — Tony asks, Jarvis answers. */
export function demoConfig(): ConfigInput {
  return {
    services: [
      { module: compiled('workers/demo/jarvis.js'), workers: { consumer: 2 } },
      { module: compiled('workers/demo/tony.js'), workers: { consumer: 1, producer: 1 }, rate: 2 },
    ],
  };
}
