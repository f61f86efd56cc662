/**
 * Every code a WharfError can carry, with what it means and what to do about it. `WharfError.code`
 * is typed by this registry, so a new code is added here or the build fails; docs/errors.md is
 * written from it (`node dist/scripts/error-docs.js > docs/errors.md`) and a test keeps the two equal.
 * Programs branch on `code` and `retriable`, never on message text.
 */
export const ERROR_CODES = {
  // ---- commands and configuration
  ERR_USAGE: [
    'command line',
    'A flag, value or argument the command cannot run with (exit 2). The message names it; `--help` lists the flags.',
  ],
  ERR_CONFIG: [
    'configuration',
    'The config file, environment or a library option is invalid. The message says what is wrong and where; fix it and start again.',
  ],
  ERR_PREREQUISITE: [
    'installation',
    'Something wharf needs is missing (Java 17+, Maven, a patched kafkajs, a free port). The message names it and the ways out.',
  ],
  ERR_INSTALL: ['installation', 'wharf cannot find its own files (package.json): reinstall it.'],
  ERR_ABORTED: ['start', 'A start was interrupted by a signal; everything it had started was released. Nothing to do.'],
  ERR_TIMEOUT: [
    'any',
    'Something did not happen within its time limit (retriable). The message says what and the limit; retry, or raise the limit.',
  ],
  // ---- brokers
  ERR_BROKER_UNAVAILABLE: [
    'Kafka',
    'No broker answered (retriable). Check KAFKA_BROKERS, or that the local broker runs (`npm run kafka -- status`).',
  ],
  ERR_BROKER_START: [
    'Kafka',
    "The local broker did not start; the message ends with its log's last lines. `npm run kafka -- logs` shows more.",
  ],
  ERR_KAFKA: [
    'Kafka',
    'Kafka refused or failed an operation (a send, a topic). Retriable unless Kafka refused it for good (too large, not authorised).',
  ],
  // ---- messages
  ERR_DECODE: [
    'messages',
    "A message's bytes could not be decoded; it was parked in `<topic>.dlq` with this reason. Fix the producer, then replay it.",
  ],
  ERR_SCHEMA: [
    'messages',
    "A message did not match the service's schema; parked in `<topic>.dlq` with the issues. Fix the producer or the schema, then replay.",
  ],
  ERR_MESSAGE_TOO_LARGE: [
    'messages',
    "A message was over the service's maxMessageBytes; parked in `<topic>.dlq`. Raise the limit or send smaller messages.",
  ],
  ERR_ENCODE: [
    'messages',
    'A value could not be encoded for sending (not JSON-serialisable, or the codec refused it). Send a value the codec accepts.',
  ],
  ERR_NO_REPLY_TO: [
    'messages',
    'ctx.reply on a message without a reply-to header: it was not sent with ctx.request. Use ctx.send to answer it.',
  ],
  ERR_REQUESTER_CLOSED: ['messages', 'ctx.request while the worker drains: no reply could arrive. Expected during shutdown.'],
  ERR_DLQ_NOT_FOUND: ['dead letters', 'No dead letter with that id; `npm run admin -- dlq list` shows the ids.'],
  ERR_DLQ_REPLAY: [
    'dead letters',
    'A replay stopped part-way (retriable); the message says how many were replayed. Run it again: replays are at-least-once.',
  ],
  // ---- supervisor and workers
  ERR_UNKNOWN_SERVICE: ['supervisor', 'No service of that name runs; the message lists the running ones.'],
  ERR_UNKNOWN_WORKER: ['supervisor', 'No worker of that id; `npm run admin -- workers` lists them.'],
  ERR_BAD_SCALE: ['supervisor', 'A worker count outside the limits, or a role the service does not have.'],
  ERR_SERVICE_FAILED: [
    'supervisor',
    'A scale could not finish: the service crash-looped and was given up on. Fix the service, then restart the supervisor.',
  ],
  ERR_STOPPING: ['supervisor', 'The supervisor is shutting down; the operation was not finished.'],
  ERR_ILLEGAL_TRANSITION: [
    'supervisor',
    "A worker's lifecycle was asked to move where its table does not allow: a bug in wharf; please report it.",
  ],
  ERR_NOT_A_WORKER: ['workers', 'A worker entry was run directly; it runs only as a thread the supervisor starts (`npm start`).'],
  ERR_TRACING_MODULE: [
    'workers',
    "The config's `tracing.module` failed to load or to set up in a worker thread (the message has its error); the worker exits and is restarted. See docs/observability.md, Traces.",
  ],
  ERR_POOL_START: ['pool', 'Not every pool thread was ready in time (retriable); the worker is restarted.'],
  ERR_POOL_THREAD_START: ['pool', 'A pool thread could not load the service module; the message has its error.'],
  ERR_POOL_THREAD_EXITED: ['pool', 'The pool thread running a handler ended; the message is retried on another thread.'],
  ERR_POOL_UNSUPPORTED: [
    'pool',
    'Something a pool thread cannot do (a codec object crossing threads); the message says what to use instead.',
  ],
  // ---- shared state
  ERR_STATE_NAME: ['state', 'A state object name that is not a string of 1 to 256 characters.'],
  ERR_STATE_KIND: ['state', 'The name is taken by an object of another kind; use that kind, or another name.'],
  ERR_STATE_ARGUMENT: ['state', 'An argument an operation cannot take (not a safe integer, not JSON).'],
  ERR_STATE_VALUE: ['state', 'A value an object cannot hold (e.g. a counter set to a string).'],
  ERR_STATE_CAPACITY: ['state', 'More items than a queue or list holds.'],
  ERR_STATE_CONFIG: [
    'state',
    'An object exists with other settings (capacity, permits) than asked for; use the same everywhere, or another name.',
  ],
  ERR_STATE_CONTENTION: [
    'state',
    'An update lost its compare-and-set race too often (retriable). Retry later, raise maxAttempts, or use a lock.',
  ],
  ERR_STATE_DELETED: ['state', 'The object was deleted or replaced while a call waited on it; the wait is cancelled.'],
  ERR_STATE_RELEASED: ['state', "The caller's holder was released (its worker or connection ended); its waits are cancelled."],
  ERR_STATE_UNSUPPORTED: ['state', 'An operation this kind of object does not offer.'],
  ERR_STATE_PROTOCOL: [
    'state',
    'A state call the store does not know (a message posted to the worker port by hand, or a version mismatch).',
  ],
  ERR_STATE_CLOSED: ['state', 'The state store is closed (the supervisor is stopping).'],
  ERR_STATE_INTERNAL: ['state', 'The store failed on a call: a bug in wharf; please report it with the message.'],
  ERR_STATE_PERSIST: [
    'state',
    'A write to the state changelog failed; persisted objects refuse calls from then on. Check the broker, then restart the supervisor.',
  ],
  ERR_STATE_TOO_LARGE: [
    'state',
    "A call on a persisted object carried more than one changelog record can hold (1 MB, the broker's default max.message.bytes); nothing was changed. Persist smaller values: a map of many entries, not one huge value.",
  ],
  ERR_STATE_CHANGELOG: [
    'state',
    'The state changelog topic cannot be used (wrong partition count, not reachable); the message says how to fix it.',
  ],
  ERR_STATE_NOT_OWNER: [
    'state',
    "This supervisor does not serve that partition of the deployment's shared state right now (another member owns it, or it is being restored); the caller asks its owner instead (docs/cluster.md).",
  ],
  ERR_STATE_UNAVAILABLE: [
    'state',
    'No member of the deployment served the shared state within the routing deadline: check that a supervisor of it is running and reaches Kafka (npm run admin -- cluster).',
  ],
  ERR_STATE_RESTORE: [
    'state',
    'A changelog record could not be restored; the message names it. Fix or delete it (or the topic, losing its state), then start again.',
  ],
  // ---- admin socket (sent on the wire)
  ERR_AUTH: ['admin', 'The admin key was wrong. Use the key file the connection file names, or the same WHARF_AUTHKEY as the supervisor.'],
  ERR_AUTH_TIMEOUT: ['admin', 'The client did not finish the handshake in time.'],
  ERR_BAD_FRAME: ['admin', 'A frame that is not a JSON object of the protocol; the connection is closed.'],
  ERR_FRAME_TOO_LARGE: ['admin', 'A request frame over the size limit; the connection is closed.'],
  ERR_VERSION: ['admin', 'A protocol version the supervisor does not speak.'],
  ERR_UNKNOWN_METHOD: ['admin', 'A method the supervisor does not offer; the welcome frame lists them.'],
  ERR_BAD_PARAMS: ['admin', "A method's parameters are wrong; the message gives the path of the problem."],
  ERR_UNKNOWN_NAME: ['admin', 'No state object of that name.'],
  ERR_TOO_MANY_CONNECTIONS: ['admin', 'The supervisor has as many admin connections as it allows; close one.'],
  ERR_TOO_MANY_WATCHES: ['admin', 'The connection watches as many objects as it may.'],
  ERR_IDLE_TIMEOUT: ['admin', 'The connection was idle too long and was closed; connect again.'],
  ERR_BUSY: ['admin', 'Too many requests awaiting an answer on this connection (retriable): wait for some, then retry.'],
  ERR_RESULT_TOO_LARGE: ['admin', 'The answer is over the frame limit; ask for less (one key, a snapshot per object).'],
  ERR_RESULT_SHAPE: [
    'admin',
    'The answer holds a "__proto__" key or nests deeper than 64 levels, which the admin protocol does not carry; read it in parts (one key, one object).',
  ],
  ERR_SHUTTING_DOWN: ['admin', 'The supervisor is stopping.'],
  ERR_INTERNAL: ['admin', 'The supervisor failed on a request: a bug in wharf; please report it with the message.'],
  ERR_NO_SUPERVISOR: [
    'admin (client)',
    'No running supervisor found from this folder (no connection file, or its process is gone). Start one, or pass its address.',
  ],
  ERR_NO_AUTHKEY: ['admin (client)', 'No admin key: the key file is missing, or the supervisor uses WHARF_AUTHKEY and it is not set here.'],
  ERR_ADMIN_CLOSED: ['admin (client)', 'The admin connection closed before the answer came.'],
  ERR_ADMIN_PROTOCOL: ['admin (client)', 'The server sent something that is not the wharf admin protocol.'],
  ERR_HTTP_LISTEN: [
    'HTTP',
    "The HTTP listener (`/metrics`) cannot listen on the address asked for (taken, or not an address of this machine). Pick another with `--http HOST:PORT` or the config's `http` (port 0: any free one), or turn it off with `--http off`.",
  ],
  ERR_NO_DASHBOARD: [
    'admin',
    'The supervisor has no HTTP listener (started with `--http off` or config `"http": "off"`), so no dashboard to log in to; start it with one.',
  ],
  ERR_ADMIN_IN_USE: [
    'admin',
    'Another supervisor already serves this folder (its admin socket answers). Stop it, or use another WHARF_HOME.',
  ],
  // ---- load, bench and chaos tools (scripts/)
  ERR_LOAD_TARGET: ['tools', 'The service under load failed to start; run it with `npm start -- --config FILE` to see its logs.'],
  ERR_BENCH_RESPONDER: ['tools', "The benchmark's bare kafkajs responder did not start; see its log."],
  ERR_BENCH_STATE: ['tools', 'The shared-state benchmark failed; run it alone as the message says.'],
  ERR_BENCH_PYTHON: ['tools', 'The Python client benchmark failed or did not measure what it should; the message says why.'],
} as const satisfies Record<`ERR_${string}`, readonly [area: string, meaning: string]>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/** docs/errors.md, from the registry. */
export function errorCodesMarkdown(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, [area, meaning]]) => `| \`${code}\` | ${area} | ${meaning} |`);
  return [
    '# Error codes',
    '',
    'Every `WharfError` carries one of these codes, `retriable` (whether trying again can succeed),',
    'and a `context` object (topic, worker, field, …). Branch on the code, never on the message. The',
    'admin protocol sends the same codes on the wire ([protocol.md](protocol.md)); the Python client',
    'raises them as exceptions with `.code`.',
    '',
    'This page is written from `src/error-codes.ts` (`node dist/scripts/error-docs.js > docs/errors.md`);',
    'a test fails when the two differ.',
    '',
    '| code | where | what it means, what to do |',
    '| --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}
