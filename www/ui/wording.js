// wording.js: how the page and <llama-story> say things to a reader: model text made readable,
// why a story ended, sizes, and what a failed download may mean. Only what is shown changes:
// the JS API's text and the CLI's output stay byte for byte run.c's.

/**
 * Model text as a reader should see it. The tokenizer's BOS and EOS pieces (`\n<s>\n`,
 * `\n</s>\n`: run.c prints them when a model samples them mid-text, e.g. at the end of a chat
 * reply) become one paragraph break, with the line breaks around them.
 * @param {string} text the engine's text
 */
export function readable(text) {
  return text.replace(/\n*<\/?s>\n*/g, '\n\n');
}

/** 0.9 MB, 60.8 MB; tokenizers and partial downloads in KB. */
export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return 'unknown size';
  return bytes < 1e5 ? `${Math.ceil(bytes / 1e3)} KB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

/**
 * Why a generation ended, in words (done.reason: 'bos', 'eos', 'steps', 'context', 'stopped').
 * @param {{ reason: string }} done the run's `done`
 * @param {{ context: number, seqLen: number, steps?: number, chat?: boolean }} limits the
 *   loaded model's KV cache positions and seq_len, and the steps asked for (0 or none: the context)
 * @returns {string} empty when nothing needs saying (a chat reply that ended normally)
 */
export function endInWords({ reason }, { context, seqLen, steps, chat = false }) {
  const memory = context < seqLen ? ` (${context} of its ${seqLen} positions: the full KV cache does not fit in memory)` : '';
  if (chat) {
    if (reason === 'eos') return '';
    if (reason === 'stopped') return 'Stopped. Your next message starts a new chat.';
    if (reason === 'steps') return `The conversation reached the step limit (${steps} positions, in Settings): the chat has ended. Start a new chat to go on.`;
    if (reason === 'context') return `The conversation filled the model's context${memory || ` (${context} positions)`}: the chat has ended. Start a new chat to go on.`;
    return `The model ended the conversation (${reason}).`;
  }
  switch (reason) {
    case 'bos':
      return 'The model ended the story.';
    case 'eos':
      return 'The model ended the text.';
    case 'stopped':
      return 'Stopped.';
    case 'steps':
      return `Length limit: ${steps} tokens, the Steps setting.`;
    case 'context':
      // Steps left at the model's context (0, the page's default): nothing was cut short.
      if (!(steps > context)) return `The story reached the model's length: ${context} tokens${memory}.`;
      return `Length limit: ${context} tokens, the model's context${memory}. Steps ${steps} was more than that, so the story stopped at ${context}.`;
    default:
      return `Ended (${reason}).`;
  }
}

/** 11 ms, 7.3 s. */
export function duration(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * A story's figures as a reader can check them (the page's and <llama-story>'s stats line):
 * its tokens; its rate (from 2 tokens and 10 ms on: a rate over less says nothing); the time from
 * the click to the first text, loading included when the click loaded the model; the seed,
 * only when sampling used one (not at temperature 0).
 * @param {{ tokens: number, ms: number, firstMs?: number | null, loading?: boolean, seed?: string | null }} story
 */
export function statsInWords({ tokens, ms, firstMs = null, loading = false, seed = null }) {
  const parts = [tokens === 1 ? '1 token' : `${tokens} tokens`];
  if (tokens >= 2 && ms >= 10) parts.push(`${(tokens / (ms / 1000)).toFixed(1)} tok/s`);
  if (firstMs !== null) parts.push(`first text after ${duration(firstMs)}${loading ? ', loading included' : ''}`);
  if (seed !== null && seed !== undefined) parts.push(`seed ${seed}`);
  return parts.join(' · ');
}

/**
 * A hint for a download that failed without an answer from the server ("Failed to fetch"):
 * the browser does not say why, but where the file was and whether it is online narrow it.
 * @param {string | undefined} url what was being downloaded (undefined: unknown)
 */
export function networkHint(url) {
  if (globalThis.navigator?.onLine === false) return 'This device seems to be offline: connect, then Retry.';
  let host = null;
  try {
    const u = new URL(url, location.href);
    if (u.origin !== location.origin) host = u.host;
  } catch {
    // Not a URL: the generic hint.
  }
  if (host) {
    return `Either ${host} cannot be reached, or it does not allow other sites to read its files (CORS: it must send Access-Control-Allow-Origin). Retry, or use another address.`;
  }
  return 'The server did not answer or the connection dropped: is it still running? Retry resumes where the download stopped.';
}

/** A long URL shortened for a message (a data: URL can be megabytes long). */
export function shortUrl(url, max = 80) {
  const text = String(url);
  return text.length <= max ? text : `${text.slice(0, max - 20)}…(${text.length} characters)`;
}
