import type { Writable } from 'node:stream';

/**
 * How a command process ends: once its output has reached the reader. A pipe takes only what
 * fits in its buffer (64 KiB on Linux) and Node queues the rest, which `process.exit` would
 * drop: `admin state big --json | jq` got a third of the JSON. And a reader that stops early
 * (`| head`) makes the next write fail with EPIPE, which, unhandled, is a stack trace.
 */
export function exitWhenDone(command: Promise<number>, streams: { stdout: Writable; stderr: Writable } = process): void {
  // The reader has all it wanted: end now, quietly and with 0 (a writer killed by SIGPIPE is
  // not reported by shells either; a non-zero exit here would make `npm run` print a failure).
  streams.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  // Nowhere left to report anything: go on without stderr.
  streams.stderr.on('error', () => undefined);
  void command.then(async (code) => {
    await Promise.all([flushed(streams.stdout), flushed(streams.stderr)]);
    // Exit explicitly: a command is over when it returns, whatever handles a library left open.
    process.exit(code);
  });
}

/** Resolves once everything written to `stream` so far has been handed to the system (or failed). */
function flushed(stream: Writable): Promise<void> {
  if (stream.destroyed || stream.writableLength === 0) return Promise.resolve();
  // Writes complete in order: the callback of an empty write runs after every earlier one.
  return new Promise((done) => stream.write('', () => done()));
}
