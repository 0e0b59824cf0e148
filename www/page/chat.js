// chat.js: the page's chat mode (index.html's #chat-panel): run.c's `-m chat` turn by turn
// through the engine's `chat` request. The first turn carries the system prompt and the
// sampling settings; each later turn continues the same conversation (the KV cache holds
// it), as long as the last reply ended normally (`eos`) and nothing else used the engine in
// between. A meter shows how much of the model's context the conversation uses, and says so
// before it fills; a conversation that fills it ends with a message saying so, and the next
// message closes it visibly (greyed, with a line saying why) and begins a new one with the same
// system prompt. A model that was not trained to chat gets a note that says so.
// Model text goes in with textContent only.

import { keepFocus } from '../ui/focus.js';
import { endInWords, readable } from '../ui/wording.js';

const $ = (id) => document.getElementById(id);

/**
 * What the chat needs from the page (main.js).
 * @typedef {{
 *   engine(): import('../worker/client.js').EngineClient,
 *   ensureModel(origin: 'chat'): Promise<boolean>,
 *   options(): { temperature?: number, topp?: number, steps?: number, seed: string },
 *   limits(): { context: number, seqLen: number },
 *   model(): { name: string, chat: boolean } | null,
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
    modelNote: $('chat-model-note'), context: $('chat-context'), meter: $('context-meter'),
    contextText: $('context-text'), announce: $('chat-announce'),
  };
  /** Why the conversation on screen ended (the next message closes it with this), or null. */
  #ended = null;
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

  /** `focused`: what had the focus before (it stays with the person: Send to Stop, and Stop
   * back to the message box). */
  setControls({ busy, origin, dead }, focused = null) {
    this.ui.send.disabled = dead || busy !== null;
    this.ui.stop.disabled = !(origin === 'chat' && (busy === 'chat' || busy === 'load'));
    this.ui.newChat.disabled = dead;
    keepFocus(focused, [this.ui.send], this.ui.stop, this.ui.message);
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

  /** The model's note: a model not trained to chat says so (shown in chat mode). */
  showModel() {
    const model = this.session.model();
    const note = this.ui.modelNote;
    note.hidden = !model || model.chat;
    if (!note.hidden) {
      note.textContent = `${model.name} was trained on stories, not conversations: its replies go on with the text rather than answer it. A chat model (Llama 2 Chat, TinyLlama Chat) answers.`;
    }
  }

  /**
   * The context meter: `used` of the model's positions (null: no conversation). Past 85% it
   * says what comes: the chat ends when the context fills.
   */
  #showContext(used) {
    const { context } = this.session.limits();
    const { ui } = this;
    ui.context.hidden = used === null || !context;
    if (ui.context.hidden) return;
    const share = Math.min(used / context, 1);
    ui.meter.value = share;
    const left = Math.max(context - used, 0);
    let state = 'ok';
    let text = `${used} of ${context} positions used`;
    if (left === 0) {
      state = 'full';
      text = `full: all ${context} positions used`;
    } else if (share >= 0.85) {
      state = 'nearly';
      text += `: nearly full, ${left} left. The chat ends when it fills; New chat starts over with the same system prompt.`;
    }
    ui.context.dataset.state = state;
    ui.contextText.textContent = text;
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
      this.#closeShown();
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
    ui.announce.textContent = 'The model is replying…';
    reply.scrollIntoView?.({ block: 'nearest' });
    try {
      const done = await run.done;
      cancelAnimationFrame(this.#frame);
      render();
      reply.dataset.state = 'done';
      reply.dataset.done = done.reason;
      this.#open = done.reason === 'eos';
      this.#epoch = session.epoch();
      this.#ended = this.#open ? null : done.reason;
      this.#note(endInWords(done, { ...session.limits(), steps: options.steps ?? session.options().steps, chat: true }));
      this.#showContext(done.ids.length);
      ui.announce.textContent = `Reply done.${ui.note.hidden ? '' : ` ${ui.note.textContent}`}`;
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

  /** The conversation on screen is over (it filled the context, was stopped, or the engine
   * ran something else since): greyed, with a line that says why, before the new one. */
  #closeShown() {
    const items = [...this.ui.conversation.children].filter((li) => !li.dataset.closed);
    if (!items.length) return;
    for (const li of items) li.dataset.closed = 'true';
    const why = {
      context: "it filled the model's context",
      steps: 'it reached the step limit',
      stopped: 'it was stopped',
    }[this.#ended] ?? 'the engine ran something else since';
    const system = this.ui.system.value.trim() ? ', with the same system prompt' : '';
    this.#item('divider', `The chat above is closed: ${why}. A new chat begins${system}.`);
    this.#ended = null;
    this.#showContext(null);
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
    this.#ended = null;
    this.ui.conversation.replaceChildren();
    this.#note('');
    this.#showContext(null);
    this.session.clearErrors();
    this.ui.message.focus();
  }
}
