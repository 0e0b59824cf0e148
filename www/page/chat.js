// chat.js: the page's chat mode (index.html's #chat-panel): run.c's `-m chat` turn by turn
// through the engine's `chat` request. The first turn carries the system prompt and the
// sampling settings; each later turn continues the same conversation (the KV cache holds
// it), as long as the last reply ended normally (`eos`) and nothing else used the engine in
// between. A conversation that fills the context ends with a message saying so.
// Model text goes in with textContent only.

import { endInWords, readable } from '../ui/wording.js';

const $ = (id) => document.getElementById(id);

/**
 * What the chat needs from the page (main.js).
 * @typedef {{
 *   engine(): import('../worker/client.js').EngineClient,
 *   ensureModel(origin: 'chat'): Promise<boolean>,
 *   options(): { temperature?: number, topp?: number, steps?: number, seed: string },
 *   limits(): { context: number, seqLen: number },
 *   epoch(): number,
 *   begin(run: object, kind: 'chat'): void,
 *   end(run: object): boolean,
 *   busy(): { kind: string, origin: string, run: object } | null,
 *   showError(origin: 'chat', err: { kind?: string, message: string }, retry?: () => void): void,
 *   clearErrors(): void,
 *   dead(): boolean,
 * }} Session
 */

export class ChatView {
  ui = {
    system: $('system'), conversation: $('conversation'), note: $('chat-note'), form: $('chat-form'),
    message: $('message'), send: $('send'), stop: $('chat-stop'), newChat: $('new-chat'),
  };
  /** Whether the engine holds this conversation and waits for the user's next turn. */
  #open = false;
  /** The page's epoch when the conversation last ran (a load or a story ends it). */
  #epoch = -1;
  #frame = 0;

  /** @param {Session} session */
  constructor(session) {
    this.session = session;
    const { ui } = this;
    ui.form.onsubmit = (event) => {
      event.preventDefault();
      this.send();
    };
    ui.message.onkeydown = (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    };
    ui.stop.onclick = () => {
      const busy = session.busy();
      if (busy?.origin === 'chat') busy.run.stop();
    };
    ui.newChat.onclick = () => this.newChat();
  }

  /** Whether the next message continues the conversation. */
  get continuing() {
    return this.#open && this.#epoch === this.session.epoch();
  }

  setControls({ busy, origin, dead }) {
    this.ui.send.disabled = dead || busy !== null;
    this.ui.stop.disabled = !(origin === 'chat' && (busy === 'chat' || busy === 'load'));
    this.ui.newChat.disabled = dead;
  }

  #item(role, text = '') {
    const li = document.createElement('li');
    li.className = `turn ${role}`;
    li.dataset.role = role;
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = role === 'user' ? 'You' : role === 'assistant' ? 'Model' : '';
    const body = document.createElement('div');
    body.className = 'text';
    body.textContent = text;
    li.append(who, body);
    this.ui.conversation.append(li);
    return li;
  }

  #note(text) {
    this.ui.note.textContent = text;
    this.ui.note.hidden = !text;
  }

  /** Sends the message box's text as the user's turn. */
  async send() {
    const { session, ui } = this;
    const message = ui.message.value;
    if (!message.trim() || session.busy()) return;
    session.clearErrors();
    if (!(await session.ensureModel('chat'))) return;
    const continuing = this.continuing;
    const engine = session.engine();
    if (!continuing) {
      // A fresh conversation in the engine too, whatever ran there before.
      this.#forget();
      if (ui.conversation.children.length) this.#item('divider', 'A new chat begins');
    }
    this.#note('');
    const user = this.#item('user', message);
    ui.message.value = '';
    const reply = this.#item('assistant');
    reply.dataset.state = 'generating';
    const body = reply.querySelector('.text');
    let raw = '';
    const render = () => {
      this.#frame = 0;
      body.textContent = readable(raw).trimEnd();
    };
    const options = continuing ? { message } : { message, system: ui.system.value, ...session.options() };
    const run = engine.chat(options, {
      onPiece: (text) => {
        raw += text;
        this.#frame ||= requestAnimationFrame(render);
      },
    });
    session.begin(run, 'chat');
    reply.scrollIntoView?.({ block: 'nearest' });
    try {
      const done = await run.done;
      cancelAnimationFrame(this.#frame);
      render();
      reply.dataset.state = 'done';
      reply.dataset.done = done.reason;
      this.#open = done.reason === 'eos';
      this.#epoch = session.epoch();
      this.#note(endInWords(done, { ...session.limits(), steps: options.steps ?? session.options().steps, chat: true }));
    } catch (err) {
      cancelAnimationFrame(this.#frame);
      render();
      reply.dataset.state = 'error';
      if (!raw) reply.remove();
      user.dataset.state = 'not-sent';
      if (err.kind !== 'prompt') this.#open = false; // a message too long leaves the conversation as it was
      ui.message.value ||= message;
      session.showError('chat', err, () => this.send());
    } finally {
      session.end(run);
    }
  }

  /** Tells the engine to start the next chat afresh (queued after what runs). */
  #forget() {
    if (this.session.dead()) return;
    this.session.engine().newChat().done.catch(() => {}); // a dead engine is said elsewhere
  }

  /** Ends the conversation: an empty view, and the engine forgets it. */
  newChat() {
    const busy = this.session.busy();
    if (busy?.origin === 'chat') busy.run.stop();
    this.#forget();
    this.#open = false;
    this.ui.conversation.replaceChildren();
    this.#note('');
    this.session.clearErrors();
    this.ui.message.focus();
  }
}
