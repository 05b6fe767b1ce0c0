import { h } from './dom.js';

// What a page says and shows of typing (TYPING events, chat/README.md
// "Typing"): the server relays only changes and refreshes, so pages send
// freely within the rhythm below and hide an indicator that is not
// refreshed.

const REFRESH_MS = 3000; // a writer who keeps typing says so this often
const IDLE_MS = 4000; // no key for this long: the writer stopped
const SHOWN_MS = 6000; // an indicator nobody refreshes goes away

// TypingSender turns a composer's input into TYPING events: send(data)
// gets {typing, messageAdminType}.
export class TypingSender {
  constructor(send) {
    this.send = send;
    this.kind = null; // what was said: 0 conversation, 1 note, null nothing
    this.said = 0;
    this.timer = 0;
  }

  // input is called with the composer's text whenever it changes.
  input(text, note) {
    const kind = note ? 1 : 0;
    if (!text.trim()) return this.stop();
    if (this.kind !== null && this.kind !== kind) this.stop();
    const now = Date.now();
    if (this.kind === null || now - this.said >= REFRESH_MS) {
      this.kind = kind;
      this.said = now;
      this.send({ typing: true, messageAdminType: kind });
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.stop(), IDLE_MS);
  }

  // stop says the writer stopped (it sent, cleared or went quiet).
  stop() {
    clearTimeout(this.timer);
    if (this.kind === null) return;
    const kind = this.kind;
    this.kind = null;
    this.send({ typing: false, messageAdminType: kind });
  }
}

// TypingIndicator shows who is typing in a room: label(data, target)
// names a TYPING event's writer, or returns '' for one not to show.
export class TypingIndicator {
  constructor(label) {
    this.label = label;
    this.el = h('p', { class: 'typing-indicator', 'aria-live': 'polite', hidden: true });
    this.writers = new Map(); // speakerId -> {text, timer}
  }

  // event takes a TYPING envelope.
  event(env) {
    const d = env.data || {};
    const id = Number(d.speakerId);
    if (!d.typing) return this.hide(id);
    const text = this.label(d, env.target);
    if (!text) return;
    const w = this.writers.get(id);
    if (w) clearTimeout(w.timer);
    this.writers.set(id, { text, timer: setTimeout(() => this.hide(id), SHOWN_MS) });
    this.render();
  }

  // hide forgets a writer: it stopped, or its message arrived.
  hide(speakerId) {
    const w = this.writers.get(Number(speakerId));
    if (!w) return;
    clearTimeout(w.timer);
    this.writers.delete(Number(speakerId));
    this.render();
  }

  clear() {
    for (const w of this.writers.values()) clearTimeout(w.timer);
    this.writers.clear();
    this.render();
  }

  render() {
    this.el.textContent = [...this.writers.values()].map((w) => w.text).join(' · ');
    this.el.hidden = this.writers.size === 0;
  }
}
