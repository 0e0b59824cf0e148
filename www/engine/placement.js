// placement.js: when splitting a model over workers pays, measured by the benchmark on 2
// cores. `workers: 'auto'` (llama2.js) follows it; the page warns about a split by hand that
// does not. (A module of its own: the page reads it without loading the engine.)

/** With shared memory, `auto` gives each worker at least this much of the file: below it, the
 * meetings of a pass cost more than a worker saves (BENCHMARKS.md: on 2 cores the 15M shape,
 * 61 MB, runs no faster over 2 workers; 42M and 110M do). */
export const BYTES_PER_WORKER = 64e6;
/** The same over messages, where each meeting costs more: the 42M shape (167 MB) is only as
 * fast over 2 workers as over 1, the 15M shape 0.65x (BENCHMARKS.md). `auto` never splits over
 * messages unless memory needs it. */
const BYTES_PER_WORKER_MESSAGES = 96e6;

/**
 * Whether a checkpoint of `size` bytes runs slower split over `workers` meeting by
 * `transport` than on one worker (the bench's threshold above): the page says so when a
 * reader picks such a split by hand (`auto` never does).
 */
export function splitIsSlow(size, workers, transport) {
  if (!(workers > 1)) return false;
  return size / workers < (transport === 'shared' ? BYTES_PER_WORKER : BYTES_PER_WORKER_MESSAGES);
}
