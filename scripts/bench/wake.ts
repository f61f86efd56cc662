/**
 * What one `postMessage` costs the thread that sends it, when the thread it goes to sleeps in its
 * event loop and when that thread is busy. A worker thread does ~1 ms of hashing between posts
 * (as a pool thread answering a task would) and times each `postMessage` call; the main thread
 * receives them either idle (the `sleeping` mode) or spinning in 5 ms slices (the `busy` mode).
 * On a virtual machine, waking a sleeping thread on another CPU is the expensive part (an
 * inter-processor interrupt the hypervisor handles), and the sender pays it: this is why the
 * thread pool answers once per task of several messages (src/pool/thread-pool.ts,
 * docs/performance.md "The pool's batches"). No broker is needed.
 *
 *   npm run build && node dist/scripts/bench/wake.js [--posts 3000] [--reps 3] [--json]
 */
import { loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import { benchFlags, countFlag, HELP_FLAG, parseFlags } from './flags.js';

const COMMAND = 'node dist/scripts/bench/wake.js';
const USAGE = `Usage: ${COMMAND} [--posts N] [--reps N] [--json]

The sender's cost of a postMessage to a thread that sleeps, and to one that is busy.
  --posts N    posts per measure, ~1 ms of work apart (default 3000)
  --reps N     repetitions, the modes interleaved; medians reported (default 3)
  --json       one JSON object on stdout
  -h, --help   this help
`;
const values = benchFlags(USAGE, (argv) => parseFlags(argv, { json: { type: 'boolean' }, posts: { type: 'string' }, reps: { type: 'string' }, ...HELP_FLAG }, COMMAND).values);
const POSTS = countFlag(COMMAND, values.posts, 'posts', { min: 10, max: 1_000_000, fallback: 3_000 });
const REPS = countFlag(COMMAND, values.reps, 'reps', { min: 1, max: 1_000, fallback: 3 });

// The sender: ~1 ms of hashing, then one timed postMessage; at the end, its timings in µs.
const SENDER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const spent = [];
for (let i = 0; i < workerData.posts; i++) {
  const end = performance.now() + 1;
  while (performance.now() < end) createHash('sha256').update('x').digest();
  const before = performance.now();
  parentPort.postMessage(i);
  spent.push((performance.now() - before) * 1000);
}
parentPort.postMessage({ spent });
`;

type Mode = 'sleeping' | 'busy';

async function measure(mode: Mode): Promise<{ meanUs: number; p50Us: number; p99Us: number }> {
  const worker = new Worker(SENDER, { eval: true, workerData: { posts: POSTS } });
  let spinning = mode === 'busy';
  const spin = () => {
    const end = performance.now() + 5;
    while (performance.now() < end);
    if (spinning) setImmediate(spin);
  };
  if (spinning) spin();
  const spent = await new Promise<number[]>((resolve, reject) => {
    worker.on('message', (message: number | { spent: number[] }) => {
      if (typeof message === 'object') resolve(message.spent);
    });
    worker.on('error', reject);
  });
  spinning = false;
  await worker.terminate();
  const sorted = [...spent].sort((a, b) => a - b);
  const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!);
  return { meanUs: Math.round(spent.reduce((a, b) => a + b, 0) / spent.length), p50Us: at(0.5), p99Us: at(0.99) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const load = () => Math.round(loadavg()[0]! * 100) / 100;
const loadBefore = load();
const modes: Mode[] = ['sleeping', 'busy'];
const runs = new Map<Mode, Awaited<ReturnType<typeof measure>>[]>(modes.map((m) => [m, []]));
for (let rep = 0; rep < REPS; rep++) for (const mode of modes) runs.get(mode)!.push(await measure(mode));
const results = modes.map((mode) => {
  const r = runs.get(mode)!;
  return { receiver: mode, meanUs: median(r.map((x) => x.meanUs)), p50Us: median(r.map((x) => x.p50Us)), p99Us: median(r.map((x) => x.p99Us)) };
});
const report = { posts: POSTS, reps: REPS, node: process.version, loadBefore, loadAfter: load(), results };
if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
else {
  console.log(`${POSTS} posts ~1 ms apart, ${REPS} reps (median), load average ${loadBefore} → ${report.loadAfter}`);
  console.log("receiver    sender's µs per postMessage: mean    p50    p99");
  for (const r of results) console.log(`${r.receiver.padEnd(10)} ${String(r.meanUs).padStart(33)} ${String(r.p50Us).padStart(6)} ${String(r.p99Us).padStart(6)}`);
}
