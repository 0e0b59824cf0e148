// A W3C WebDriver client, just big enough for our WebKit tests: WebKitGTK's MiniBrowser driven
// by WebKitWebDriver under its own Xvfb display (WebKit has no headless mode of its own here).
// Each session starts its display and driver on free ports and ends both, so nothing outlives
// a test run; every call is bounded in time.
//
//   const browser = await launchWebKit();
//   await browser.goto(url);
//   const title = await browser.evaluate(async (arg) => document.title, arg);
//   await browser.close();

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';

/** Debian's webkit2gtk-driver and MiniBrowser (WEBKIT_DRIVER, WEBKIT_BROWSER to override). */
const DRIVER = process.env.WEBKIT_DRIVER ?? '/usr/bin/WebKitWebDriver';
const MINIBROWSER = process.env.WEBKIT_BROWSER ?? '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
/** How long the display and the driver may take to start, and one command to answer. */
const START_MS = 30_000;
const COMMAND_MS = 300_000;

/** The displays and drivers running, ended when this process exits however it ends (a test
 * that fails before `close()`, the runner's timeout), so that none outlives the run. */
const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill();
});
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(128 + (signal === 'SIGINT' ? 2 : 15)));

/** Spawns a helper process that is ended with this one. */
function spawnHelper(command, args, options) {
  const child = spawn(command, args, options);
  running.add(child);
  child.on('exit', () => running.delete(child));
  return child;
}

/** A TCP port that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Rejects after `ms` with `what` in the message. */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Starts Xvfb on a display it picks itself (-displayfd); resolves with { display, process }. */
function startXvfb() {
  const xvfb = spawnHelper('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  xvfb.stderr.on('data', (chunk) => (stderr += chunk));
  const started = new Promise((resolve, reject) => {
    xvfb.on('error', (err) => reject(new Error(`cannot start Xvfb (apt-get install xvfb): ${err.message}`)));
    xvfb.on('exit', (code) => reject(new Error(`Xvfb exited with ${code}: ${stderr}`)));
    xvfb.stdio[3].on('data', (chunk) => resolve({ display: `:${String(chunk).trim()}`, process: xvfb }));
  });
  return within(started, START_MS, 'Xvfb').catch((err) => {
    xvfb.kill();
    throw err;
  });
}

/** Starts WebKitWebDriver on a free port under `display`; resolves with { url, process }. */
async function startDriver(display, env) {
  const port = await freePort();
  const driver = spawnHelper(DRIVER, [`--port=${port}`, '--host=127.0.0.1'], {
    env: { ...process.env, ...env, DISPLAY: display },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  driver.stdout.on('data', (chunk) => (output += chunk));
  driver.stderr.on('data', (chunk) => (output += chunk));
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise((_, reject) => {
    driver.on('error', (err) => reject(new Error(`cannot start ${DRIVER} (apt-get install webkit2gtk-driver): ${err.message}`)));
    driver.on('exit', (code) => reject(new Error(`${DRIVER} exited with ${code}: ${output}`)));
  });
  const ready = (async () => {
    for (;;) {
      try {
        const status = await (await fetch(`${url}/status`)).json();
        if (status.value?.ready) return { url, process: driver };
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  try {
    return await within(Promise.race([ready, exited]), START_MS, DRIVER);
  } catch (err) {
    driver.kill();
    throw err;
  }
}

/** One WebDriver session: a MiniBrowser window with its own display and driver. */
export class WebDriverSession {
  #url;
  #processes;

  constructor(url, processes) {
    this.#url = url;
    this.#processes = processes;
  }

  /** Sends a command; resolves with its `value`, throws the driver's error. */
  async command(method, path, body) {
    const response = await within(fetch(`${this.#url}${path}`, {
      method,
      headers: { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    }), COMMAND_MS, `WebDriver ${method} ${path}`);
    const { value } = await response.json();
    if (!response.ok || value?.error) {
      throw new Error(`WebDriver ${method} ${path}: ${value?.error}: ${value?.message}`);
    }
    return value;
  }

  async goto(url) {
    await this.command('POST', `${this.session}/url`, { url });
  }

  /**
   * Runs `fn(arg)` in the page (it may be async; `arg` and the result cross as JSON) and
   * resolves with its result; an exception in the page rejects with its message.
   */
  async evaluate(fn, arg) {
    const script = `const done = arguments[arguments.length - 1];
      Promise.resolve().then(() => (${fn})(arguments[0]))
        .then((value) => done({ value }), (err) => done({ thrown: String(err) }));`;
    const result = await this.command('POST', `${this.session}/execute/async`, { script, args: [arg ?? null] });
    if (result?.thrown !== undefined) throw new Error(result.thrown);
    return result?.value;
  }

  /** The element `css` matches (the first); throws when there is none. */
  async element(css) {
    const found = await this.command('POST', `${this.session}/element`, { using: 'css selector', value: css });
    return Object.values(found)[0];
  }

  async click(css) {
    await this.command('POST', `${this.session}/element/${await this.element(css)}/click`, {});
  }

  /** Types `text` into the element (a file input takes paths, one per line). */
  async type(css, text) {
    await this.command('POST', `${this.session}/element/${await this.element(css)}/value`, { text });
  }

  async close() {
    try {
      if (this.session) await this.command('DELETE', this.session);
    } finally {
      for (const child of this.#processes) child.kill();
    }
  }
}

/**
 * A new MiniBrowser session under a new Xvfb display (both ended by `close()`).
 * `sharedArrayBuffer`: Safari gives cross-origin-isolated pages SharedArrayBuffer; WebKitGTK
 * 2.50 as Debian packages it reports `crossOriginIsolated` but keeps SharedArrayBuffer off
 * unless JavaScriptCore's option `useSharedArrayBuffer` is on (its environment variable,
 * inherited by the web process). With it, the shared-memory transport runs on JSC's Atomics.
 * (Pages that are not isolated still get no shared memory: llama2.js checks
 * `crossOriginIsolated` itself.)
 */
export async function launchWebKit({ sharedArrayBuffer = false } = {}) {
  const xvfb = await startXvfb();
  let driver;
  try {
    driver = await startDriver(xvfb.display, sharedArrayBuffer ? { JSC_useSharedArrayBuffer: 'true' } : {});
    const session = new WebDriverSession(driver.url, [driver.process, xvfb.process]);
    const created = await session.command('POST', '/session', {
      capabilities: {
        alwaysMatch: {
          'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] },
          timeouts: { script: COMMAND_MS, pageLoad: START_MS * 2 },
        },
      },
    });
    session.session = `/session/${created.sessionId}`;
    session.capabilities = created.capabilities;
    return session;
  } catch (err) {
    driver?.process.kill();
    xvfb.process.kill();
    throw err;
  }
}
