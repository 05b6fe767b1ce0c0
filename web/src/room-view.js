import { h, clear } from './dom.js';
import { t } from './i18n.js';

export const PAGE_SIZE = 30;

// RoomView draws one room's conversation and keeps its messages: the
// newest page, older pages loaded on demand, live additions, deletions and
// read marks. viewer is 'member', 'admin' or 'customer'.
export class RoomView {
  constructor({ viewer, fileUrl, onDelete, onLoadOlder }) {
    this.viewer = viewer;
    this.fileUrl = fileUrl;
    this.onDelete = onDelete;
    this.onLoadOlder = onLoadOlder;
    this.mySpeakerId = 0;
    // readOnly: the room has ended; nothing more may change.
    this.readOnly = false;
    this.messages = new Map();
    this.hasMore = false;
    this.loadingOlder = false;
    this.olderButton = h('button', { class: 'older', type: 'button', hidden: true, onclick: () => this.loadOlder() }, t('loadOlder'));
    this.list = h('ol', { class: 'messages', 'aria-live': 'polite' });
    this.empty = h('p', { class: 'empty-note' }, t('loading'));
    this.el = h('div', { class: 'conversation' }, this.olderButton, this.empty, this.list);
    // pinned: the reader is at the newest message, so the view follows
    // what arrives (and images that finish loading) down.
    this.pinned = true;
    this.el.addEventListener('scroll', () => { this.pinned = this.nearBottom(); });
  }

  follow() {
    if (this.pinned) this.el.scrollTop = this.el.scrollHeight;
  }

  loadOlder() {
    const first = this.firstId();
    if (!first || this.loadingOlder) return;
    this.loadingOlder = true;
    this.olderButton.disabled = true;
    this.olderButton.textContent = t('loading');
    this.onLoadOlder(first);
  }

  firstId() {
    let min = 0;
    for (const id of this.messages.keys()) if (!min || id < min) min = id;
    return min;
  }

  lastId() {
    let max = 0;
    for (const id of this.messages.keys()) if (id > max) max = id;
    return max;
  }

  // lastOtherId is the newest message someone else wrote: what reading
  // the room marks as read.
  lastOtherId() {
    let max = 0;
    for (const m of this.messages.values()) if (m.speakerId !== this.mySpeakerId && m.id > max) max = m.id;
    return max;
  }

  // setPage takes a MESSAGE_LIST: the newest page (older = false) replaces
  // what is shown, an older page is put in front.
  setPage(list, older) {
    if (!older) this.messages.clear();
    for (const m of list) this.messages.set(m.id, m);
    if (!older || this.loadingOlder) this.hasMore = list.length >= PAGE_SIZE;
    this.loadingOlder = false;
    this.render(older ? 'keep' : 'bottom');
  }

  add(m) {
    this.messages.set(m.id, m);
    this.render('keep');
  }

  markDeleted(id) {
    const m = this.messages.get(id);
    if (!m) return;
    m.isDeleted = 1;
    this.render('keep');
  }

  // applyRead: reader has read up to endId; messages of others it had not
  // read lose one from noReadCount.
  applyRead({ endId, speakerId }) {
    let changed = false;
    for (const m of this.messages.values()) {
      m.readers = m.readers || new Set();
      if (m.id <= Number(endId) && m.speakerId !== Number(speakerId) && !m.readers.has(speakerId) && m.noReadCount > 0) {
        m.readers.add(speakerId);
        m.noReadCount -= 1;
        changed = true;
      }
    }
    if (changed) this.render('keep');
  }

  nearBottom() {
    const s = this.el;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }

  relabel() {
    this.olderButton.textContent = t('loadOlder');
    this.render('keep');
  }

  render(scroll) {
    const s = this.el;
    const fromBottom = s.scrollHeight - s.scrollTop;
    const sorted = [...this.messages.values()].sort((a, b) => a.id - b.id);
    clear(this.list);
    let day = '';
    let prev = null;
    for (const m of sorted) {
      const d = (m.createDate || '').slice(0, 10);
      if (d && d !== day) {
        day = d;
        prev = null;
        this.list.append(h('li', { class: 'day' }, h('span', {}, d)));
      }
      // A run of messages by one speaker names the speaker once.
      const continued = prev && !prev.isSystemMessage && prev.speakerId === m.speakerId &&
        prev.messageAdminType === m.messageAdminType;
      this.list.append(this.renderMessage(m, continued));
      prev = m;
    }
    this.empty.textContent = t('noMessageYet');
    this.empty.hidden = sorted.length > 0;
    this.olderButton.hidden = !this.hasMore;
    this.olderButton.disabled = this.loadingOlder;
    if (!this.loadingOlder) this.olderButton.textContent = t('loadOlder');
    if (scroll === 'bottom') {
      s.scrollTop = s.scrollHeight;
      this.pinned = true;
    } else if (this.pinned) {
      s.scrollTop = s.scrollHeight;
    } else {
      s.scrollTop = s.scrollHeight - fromBottom;
    }
  }

  isMine(m) {
    if (this.viewer === 'customer') return m.isCustomer === 1;
    return m.isEmployee === 1;
  }

  canDelete(m) {
    if (this.readOnly || m.isDeleted || m.isSystemMessage) return false;
    if (this.viewer === 'admin') return true;
    return m.speakerId === this.mySpeakerId && this.mySpeakerId !== 0;
  }

  renderMessage(m, continued) {
    if (m.isSystemMessage) {
      return h('li', { class: 'msg system', dataset: { id: m.id } }, h('span', {}, m.message));
    }
    const mine = this.isMine(m);
    const note = m.messageAdminType === 1;
    const classes = ['msg', mine ? 'mine' : 'theirs'];
    if (note) classes.push('note');
    if (m.isDeleted) classes.push('deleted');
    let body;
    if (m.isDeleted) body = h('span', { class: 'deleted-text' }, t('deleted'));
    else if (m.messageType === 1) body = this.renderImage(m);
    else body = h('span', { class: 'text' }, m.message);
    const side = h('div', { class: 'side' });
    if (mine && !m.isDeleted && !note) {
      side.append(h('span', { class: m.noReadCount > 0 ? 'read-state unread' : 'read-state', dataset: { unread: m.noReadCount } },
        m.noReadCount > 0 ? t('unread') : t('read')));
    }
    const time = h('time', { title: m.createDate }, (m.createDate || '').slice(11, 16));
    const del = this.canDelete(m)
      ? h('button', { class: 'link delete', type: 'button', onclick: () => this.onDelete(m) }, t('deleteMsg'))
      : null;
    side.append(h('div', { class: 'time-row' }, mine ? [del, time] : [time, del]));
    const who = continued || (mine && this.viewer === 'customer') ? null : m.speakerName;
    if (continued) classes.push('continued');
    return h('li', { class: classes.join(' '), dataset: { id: m.id } },
      (who || note) ? h('div', { class: 'who' }, note ? h('span', { class: 'note-tag' }, t('internalNote')) : null, who) : null,
      h('div', { class: 'row' }, h('div', { class: 'bubble' }, body), side));
  }

  renderImage(m) {
    const full = safePath(m.messageDetail);
    const thumb = safePath(m.thumbnail) || full;
    if (!full) return h('span', { class: 'text' }, t('image'));
    return h('a', { href: this.fileUrl(full), target: '_blank', rel: 'noopener noreferrer', class: 'image-link' },
      h('img', { src: this.fileUrl(thumb), alt: t('image'), onload: () => this.follow() }));
  }
}

// safePath accepts only paths of uploaded files: nothing a message carries
// may point the page elsewhere.
function safePath(p) {
  return typeof p === 'string' && /^\/files\/\d+\/\d+\/[0-9a-f]{32}(\.thumb)?\.(png|jpg|gif|webp)$/.test(p) ? p : '';
}
