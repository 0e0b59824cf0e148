// link-view.js: the page's address and the links it opens. The address bar says what is loaded
// and the last story's settings (permalink.js writes and reads them); a link's files from
// another site are shown (host, size) and load only after a click.

import { foreignFiles, LINK_FIELDS, readLink, remoteSize, toLink } from './permalink.js';
import { formatBytes } from '../ui/wording.js';

export class LinkView {
  #ui;
  #panel;
  #host;

  /**
   * @param {{ linkCheck: HTMLElement, permalink: HTMLAnchorElement, prompt: HTMLTextAreaElement,
   *   fields: Record<string, HTMLInputElement> }} ui the settings' fields by LINK_FIELDS name
   * @param {import('./model-panel.js').ModelPanel} panel
   * @param {{ generate: () => void, showError: (err: object, hint: string) => void,
   *   settingsChanged: () => void }} host
   */
  constructor(ui, panel, host) {
    this.#ui = ui;
    this.#panel = panel;
    this.#host = host;
  }

  /**
   * The address bar says what is loaded and the last story (`story`: its settings and seed):
   * nothing for local files or no model.
   * @param {{ selection: { kind: string, model: string, tokenizer: string } } | null} loaded
   * @param {object | null} story
   */
  sync(loaded, story) {
    const base = location.pathname;
    if (!loaded || loaded.selection.kind !== 'urls') {
      history.replaceState(null, '', base);
      this.#ui.permalink.hidden = true;
      return;
    }
    const settings = { model: loaded.selection.model, tokenizer: loaded.selection.tokenizer };
    if (story) {
      Object.assign(settings, { prompt: story.prompt, seed: story.seed });
      for (const key of ['temperature', 'topp', 'steps']) settings[key] = story[key];
    }
    const link = toLink(settings, location.href);
    history.replaceState(null, '', `${base}${link}`);
    this.#ui.permalink.href = link;
    this.#ui.permalink.hidden = story === null;
  }

  /** Takes the question about another site's files away. */
  hideCheck() {
    this.#ui.linkCheck.hidden = true;
    this.#ui.linkCheck.replaceChildren();
  }

  /** The page's link: fills the page with its model and settings, then generates (or first
   * asks, for files on other sites). */
  open() {
    const { settings, problem } = readLink(location.href);
    if (problem) {
      history.replaceState(null, '', location.pathname); // the address no longer claims the link's model
      this.#host.showError({ kind: 'options', message: problem },
        `The page stays on ${this.#panel.defaultPreset?.name ?? 'its default model'}; nothing was loaded from the link.`);
      return;
    }
    if (!settings) return;
    this.#panel.showUrls(settings.model, settings.tokenizer);
    if (settings.prompt !== undefined) this.#ui.prompt.value = settings.prompt;
    for (const key of LINK_FIELDS) if (settings[key] !== undefined) this.#ui.fields[key].value = settings[key];
    this.#host.settingsChanged();
    const foreign = foreignFiles(settings, location.href, this.#panel.knownUrls());
    if (foreign.length) this.#askBeforeLoading(foreign);
    else this.#host.generate();
  }

  /** A link to files on other sites: says what it would load (host, size when the server
   * says) and waits for a click. */
  #askBeforeLoading(foreign) {
    const title = document.createElement('p');
    title.textContent = 'This link loads files from another site. Nothing is downloaded until you agree:';
    const list = document.createElement('ul');
    const controller = new AbortController();
    for (const file of foreign) {
      const li = document.createElement('li');
      li.dataset.what = file.what;
      li.dataset.host = file.host;
      const name = new URL(file.url).pathname.split('/').pop();
      const say = (size) => (li.textContent = `${file.what}: ${name} from ${file.host} (${size})`);
      say('size: asking the server…');
      remoteSize(file.url, controller.signal).then((size) => {
        li.dataset.size = size === null ? 'unknown' : String(size);
        say(size === null ? 'size unknown' : formatBytes(size));
      });
      list.append(li);
    }
    const button = (id, text, onclick, primary = false) => {
      const b = document.createElement('button');
      Object.assign(b, { type: 'button', id, textContent: text, onclick });
      if (primary) b.className = 'primary';
      return b;
    };
    const go = button('link-load', 'Load and generate', () => {
      controller.abort();
      this.#host.generate();
    }, true);
    const no = button('link-cancel', 'Not now', () => {
      controller.abort();
      this.hideCheck();
      const panel = this.#panel;
      panel.showUrls(panel.defaultPreset.model, panel.defaultPreset.tokenizer);
      panel.showChosen(panel.selection());
      history.replaceState(null, '', location.pathname);
    });
    const row = document.createElement('div');
    row.className = 'actions';
    row.append(go, no);
    this.#ui.linkCheck.replaceChildren(title, list, row);
    this.#ui.linkCheck.hidden = false;
    this.#panel.showChosen(this.#panel.selection(), 'from the link, waiting for your click');
    go.focus();
  }
}
