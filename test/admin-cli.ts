import { Writable } from 'node:stream';
import { main } from '../src/cli.js';
import { createLogger } from '../src/log.js';

/**
 * `wharf admin …args` (what `npm run admin -- …args` runs) in this process, with `env` as its
 * environment (WHARF_HOME says which supervisor), its output captured; stderr without its final
 * newline. The one runner of the admin CLI for unit and integration tests alike.
 */
export async function runAdmin(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (text: string) => void) =>
    new Writable({
      write(chunk, _encoding, done) {
        append(String(chunk));
        done();
      },
    });
  const code = await main(['admin', ...args], {
    env,
    stdout: sink((text) => (stdout += text)),
    stderr: sink((text) => (stderr += text)),
    logger: createLogger({ level: 'silent' }),
  });
  return { code, stdout, stderr: stderr.trim() };
}
