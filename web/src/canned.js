import { h, clear } from './dom.js';
import { t } from './i18n.js';

// CannedPicker offers the company's reply templates in a composer: typing
// "/" and the first letters of a shortcut (or of a title) lists the
// matching ones; arrows move, Enter or Tab (or a click) puts the text in
// the box, Escape closes. list() returns the templates loaded so far.
export class CannedPicker {
  constructor(textarea, list) {
    this.text = textarea;
    this.list = list;
    this.matches = [];
    this.index = 0;
    this.el = h('ul', { class: 'canned-picker', role: 'listbox', hidden: true });
    textarea.addEventListener('input', () => this.update());
    textarea.addEventListener('blur', () => setTimeout(() => this.close(), 150));
  }

  get open() { return !this.el.hidden; }

  // query is what follows "/" when the whole box is "/word".
  query() {
    const m = /^\/(\S*)$/.exec(this.text.value);
    return m ? m[1].toLowerCase() : null;
  }

  update() {
    const q = this.query();
    if (q === null) return this.close();
    this.matches = this.list().filter((c) => c.shortcut.startsWith(q) || c.title.toLowerCase().includes(q)).slice(0, 8);
    this.index = 0;
    this.render();
  }

  render() {
    clear(this.el);
    if (!this.matches.length) {
      this.el.append(h('li', { class: 'canned-none' }, t('cannedNone')));
    }
    this.matches.forEach((c, i) => {
      this.el.append(h('li', {
        class: `canned-item${i === this.index ? ' active' : ''}`, role: 'option', dataset: { shortcut: c.shortcut },
        'aria-selected': i === this.index ? 'true' : 'false',
        onmousedown: (e) => { e.preventDefault(); this.pick(i); },
      }, h('span', { class: 'canned-shortcut' }, `/${c.shortcut}`), h('span', { class: 'canned-title' }, c.title),
      h('span', { class: 'canned-text' }, c.text)));
    });
    this.el.hidden = false;
  }

  close() {
    this.el.hidden = true;
    this.matches = [];
  }

  pick(i) {
    const c = this.matches[i];
    if (!c) return;
    this.text.value = c.text;
    this.close();
    this.text.focus();
    this.text.dispatchEvent(new Event('input'));
  }

  // key handles a keydown while the list is open; true when it used it.
  key(e) {
    if (!this.open) return false;
    switch (e.key) {
      case 'ArrowDown': this.index = (this.index + 1) % Math.max(1, this.matches.length); break;
      case 'ArrowUp': this.index = (this.index - 1 + this.matches.length) % Math.max(1, this.matches.length); break;
      case 'Enter':
      case 'Tab':
        if (!this.matches.length || e.isComposing) return false;
        this.pick(this.index);
        e.preventDefault();
        return true;
      case 'Escape': this.close(); e.preventDefault(); return true;
      default: return false;
    }
    e.preventDefault();
    this.render();
    return true;
  }
}
