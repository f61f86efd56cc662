import type { Writable } from 'node:stream';
import type { LoadProgress } from './run.js';

/**
 * What a person watches during a run: a bar redrawn in place on a terminal, or a plain line every
 * few seconds when the output is a file or a pipe (CI logs), where carriage returns are noise.
 */
export interface ProgressView {
  tick(progress: LoadProgress): void;
  /** A one-line event (a fault injected) printed above the bar. */
  note(text: string): void;
  /** Ends the bar's line. */
  done(): void;
}

const n = (value: number) => Math.round(value).toLocaleString('en-US');

function fraction({ total, durationS, answered, elapsedS }: LoadProgress): number {
  // Answered, not sent: a run is done when its replies are in.
  if (total !== null && total > 0) return Math.min(1, answered / total);
  if (durationS !== null && durationS > 0) return Math.min(1, elapsedS / durationS);
  return 0;
}

export function describeProgress(progress: LoadProgress): string {
  const { point, elapsedS, sent, answered, total, intervalS } = progress;
  const rate = point.answered / intervalS;
  return [
    total !== null ? `${n(answered)}/${n(total)} answered` : `${n(answered)} answered`,
    `sent ${n(sent)}`,
    `${n(rate)}/s`,
    `in flight ${n(point.inFlight)}`,
    `lag ${point.lag === null ? '?' : n(point.lag)}`,
    `p99 ${point.p99 === null ? '–' : `${point.p99.toFixed(1)} ms`}`,
    `${elapsedS.toFixed(0)} s`,
  ].join('  ');
}

export function createProgressView({ stream, tty, everyS = 5 }: { stream: Writable; tty: boolean; everyS?: number }): ProgressView {
  let lastLine = -Infinity;
  let drawn = false;
  return {
    tick(progress) {
      if (tty) {
        const width = 24;
        const filled = Math.round(fraction(progress) * width);
        stream.write(`\r\x1b[K[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${describeProgress(progress)}`);
        drawn = true;
        return;
      }
      if (!progress.final && progress.elapsedS - lastLine < everyS) return;
      lastLine = progress.elapsedS;
      stream.write(`load: ${describeProgress(progress)}\n`);
    },
    note(text) {
      stream.write(`${drawn ? '\r\x1b[K' : ''}${text}\n`);
      drawn = false;
    },
    done() {
      if (drawn) stream.write('\n');
      drawn = false;
    },
  };
}
