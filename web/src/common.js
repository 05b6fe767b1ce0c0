import { h } from './dom.js';
import { t } from './i18n.js';

// Banner shows an error (or notice) at the top of a page until closed or
// replaced.
export class Banner {
  constructor(el) {
    this.el = el;
  }

  show(text, kind = 'error') {
    this.el.className = `banner ${kind}`;
    this.el.replaceChildren(h('span', {}, kind === 'error' ? `${t('errorPrefix')}: ${text}` : text),
      h('button', { class: 'ghost close', type: 'button', 'aria-label': 'close', onclick: () => this.hide() }, '×'));
    this.el.hidden = false;
  }

  hide() { this.el.hidden = true; }
}

// clientMessageId makes a retried send idempotent on the server. It avoids
// crypto.randomUUID, which plain-http pages (web views on a LAN) lack.
export function clientMessageId() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export function statusText(status) {
  return t({ WAITING: 'waiting', IN_PROGRESS: 'inProgress', ENDED: 'ended' }[status] || 'all');
}

// preview is a one-line summary of a room's last message.
export function preview(m) {
  if (!m) return '';
  if (m.isDeleted) return t('deleted');
  if (m.messageType === 1) return `[${t('image')}]`;
  return m.message;
}

// Composer is the message box under a conversation: text, the internal
// note switch (members only), image attachment and send. onInput(text,
// note) follows what is written (for TYPING); onKey(event) sees each key
// first and returns true when it used it (a suggestion list).
export class Composer {
  constructor({ notes, onSend, onImage, onInput, onKey }) {
    this.text = h('textarea', { rows: 2, class: 'compose-text', 'aria-label': t('typeMessage') });
    this.note = notes ? h('input', { type: 'checkbox', class: 'note-toggle' }) : null;
    this.noteLabel = h('span', {}, t('noteToggle'));
    this.file = h('input', { type: 'file', accept: 'image/png,image/jpeg,image/gif,image/webp', hidden: true, class: 'compose-file' });
    this.attach = h('button', { type: 'button', class: 'ghost attach', title: t('attachImage'), 'aria-label': t('attachImage') }, '+');
    this.sendButton = h('button', { type: 'submit', class: 'primary send' }, t('send'));
    this.status = h('span', { class: 'compose-status', role: 'status' });
    this.el = h('form', { class: 'composer' },
      notes ? h('label', { class: 'note-switch' }, this.note, this.noteLabel) : null,
      this.status,
      h('div', { class: 'compose-row' }, this.attach, this.file, this.text, this.sendButton));
    this.attach.addEventListener('click', () => this.file.click());
    this.file.addEventListener('change', () => {
      const f = this.file.files[0];
      this.file.value = '';
      if (f) onImage(f);
    });
    const changed = () => { if (onInput) onInput(this.text.value, this.note ? this.note.checked : false); };
    if (this.note) this.note.addEventListener('change', () => { this.relabel(); changed(); });
    this.text.addEventListener('input', changed);
    this.text.addEventListener('keydown', (e) => {
      if (onKey && onKey(e)) return;
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.el.requestSubmit();
      }
    });
    this.el.addEventListener('submit', (e) => {
      e.preventDefault();
      const v = this.text.value;
      if (!v.trim()) return;
      if (onSend(v, this.note ? this.note.checked : false) !== false) {
        this.text.value = '';
        changed();
      }
    });
    this.relabel();
  }

  relabel() {
    const note = this.note && this.note.checked;
    this.text.placeholder = note ? t('typeNote') : t('typeMessage');
    this.el.classList.toggle('as-note', Boolean(note));
    this.noteLabel.textContent = t('noteToggle');
    this.sendButton.textContent = t('send');
    this.attach.title = t('attachImage');
  }

  setBusy(text) {
    this.status.textContent = text || '';
  }

  disable(disabled) {
    for (const el of [this.text, this.sendButton, this.attach, this.note]) if (el) el.disabled = disabled;
  }
}
