import { h, $, clear } from './dom.js';
import { t, tf, initLang, bindToggle, onLangChange } from './i18n.js';
import { request, bearer, uploadImage, download, ApiError } from './api.js';
import { Connection, PRIVATE, lobby, room as roomDest, renderState } from './stomp.js';
import { RoomView } from './room-view.js';
import { Banner, Composer, clientMessageId, statusText, preview } from './common.js';
import { showLoginForm, bindLogin } from './login.js';
import { VideoCall, lastCallStep, callRecorded, videoRecord } from './video-call.js';
import { TypingSender, TypingIndicator } from './typing.js';
import { CannedPicker } from './canned.js';

const SESSION_KEY = 'cstalk.session';

const banner = new Banner($('#banner'));
const state = {
  session: null, // {token, member}
  conn: null,
  lobbyStatus: 'WAITING',
  lists: { WAITING: null, IN_PROGRESS: null },
  lobbyError: '',
  open: new Map(), // roomId -> open room
  active: 0,
  mySpeakerId: 0,
  refreshTimer: 0,
  members: [], // the company's members as routing sees them (/api/members)
  membersTimer: 0,
  canned: [], // the company's reply templates
  knownMine: new Set(), // rooms seen assigned to this member
  listed: false, // the lobby lists were loaded once
};

function loadSession() {
  try { return JSON.parse(sessionStorage.getItem(SESSION_KEY)); } catch { return null; }
}

function saveSession(s) {
  if (s) sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
  else sessionStorage.removeItem(SESSION_KEY);
}

// ---- login -----------------------------------------------------------

function showLogin(message) {
  $('#admin-link').hidden = true;
  showLoginForm($('#console-view'), message);
}

function signedIn(res) {
  state.session = { token: res.token, member: res.member };
  saveSession(state.session);
  startConsole();
}

function logout(message) {
  if (state.conn) state.conn.stop();
  state.conn = null;
  for (const r of state.open.values()) r.pane.remove();
  state.open.clear();
  state.active = 0;
  clear($('#open-tabs'));
  state.session = null;
  state.knownMine.clear();
  state.listed = false;
  $('#status-box').hidden = true;
  saveSession(null);
  showLogin(message);
}

// ---- console ---------------------------------------------------------

function startConsole() {
  const { member, token } = state.session;
  $('#login-view').hidden = true;
  $('#console-view').hidden = false;
  $('#logout').hidden = false;
  $('#admin-link').hidden = member.isAdmin !== 1;
  $('#who').textContent = `${member.name} (${member.loginName})`;
  // The cookie lets <img> load this company's files.
  request('POST', '/api/files/access', { headers: bearer(token) }).catch(() => {});
  $('#status-box').hidden = false;
  request('GET', '/api/me', { headers: bearer(token) }).then((me) => { $('#my-status').value = me.status; }).catch(() => {});
  loadCanned();
  renderLobby();
  const conn = new Connection({
    headers: { Authorization: `Bearer ${token}`, 'accept-language': document.documentElement.lang },
    onState: (s) => { const el = $('#conn'); el.hidden = false; renderState(el, s); },
    onRefused: () => logout(t('sessionExpired')),
    onConnect: () => {
      conn.subscribe(PRIVATE, onEvent);
      conn.subscribe(lobby(member.companyId), onEvent);
      for (const r of state.open.values()) subscribeRoom(r);
      refreshLobby();
      loadMembers();
    },
  });
  state.conn = conn;
  conn.start();
}

function refreshLobbySoon() {
  // RELOAD and RELOAD_READY arrive together: one refresh serves both.
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refreshLobby, 150);
}

async function refreshLobby() {
  const headers = bearer(state.session.token);
  try {
    const [waiting, progress] = await Promise.all([
      request('GET', '/api/rooms?status=WAITING', { headers }),
      request('GET', '/api/rooms?status=IN_PROGRESS', { headers }),
    ]);
    state.lists.WAITING = waiting.rooms;
    state.lists.IN_PROGRESS = progress.rooms;
    state.lobbyError = '';
    // Only the first listing says which rooms were already ours: a room
    // assigned since is adopted by its RELOAD_READY, which may arrive after
    // a listing that already shows it.
    if (!state.listed) for (const r of progress.rooms) if (isMine(r)) state.knownMine.add(r.id);
    state.listed = true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return logout(t('sessionExpired'));
    state.lobbyError = err.message;
  }
  renderLobby();
}

function renderLobby() {
  const { WAITING: waiting, IN_PROGRESS: progress } = state.lists;
  $('#count-waiting').textContent = waiting ? waiting.length : '–';
  $('#count-progress').textContent = progress ? progress.length : '–';
  for (const tab of document.querySelectorAll('.lobby .tab')) {
    tab.classList.toggle('active', tab.dataset.status === state.lobbyStatus);
    tab.setAttribute('aria-selected', tab.dataset.status === state.lobbyStatus);
  }
  const rooms = state.lists[state.lobbyStatus];
  const list = $('#room-list');
  const info = $('#lobby-state');
  clear(list);
  if (state.lobbyError) {
    info.textContent = state.lobbyError;
    info.className = 'list-state error';
  } else if (!rooms) {
    info.textContent = t('loading');
    info.className = 'list-state';
  } else {
    info.textContent = rooms.length ? '' : t('noRooms');
    info.className = 'list-state';
  }
  for (const r of rooms || []) list.append(roomItem(r));
}

function isMine(room) {
  return Boolean(room && room.member && room.member.id === state.session.member.id);
}

// ---- routing, colleagues, templates -------------------------------------

async function setMyStatus(status) {
  try {
    const me = await request('PUT', '/api/me/status', { headers: bearer(state.session.token), json: { status } });
    $('#my-status').value = me.status;
  } catch (err) {
    banner.show(err.message);
  }
}

async function loadMembers() {
  try {
    const res = await request('GET', '/api/members', { headers: bearer(state.session.token) });
    state.members = res.members;
    for (const r of state.open.values()) renderTransfer(r);
  } catch { /* the transfer list waits for the next try */ }
}

function loadMembersSoon() {
  clearTimeout(state.membersTimer);
  state.membersTimer = setTimeout(loadMembers, 300);
}

async function loadCanned() {
  try {
    const res = await request('GET', '/api/canned-responses', { headers: bearer(state.session.token) });
    state.canned = res.cannedResponses;
  } catch { /* the picker offers nothing until the next try */ }
}

// adopt opens a room that became this member's without its asking (auto-
// assignment, a transfer), and says so.
function adopt(room, notice) {
  state.knownMine.add(room.id);
  const wasIdle = !state.active;
  ensureRoom(room);
  // A counselor busy in another room is not pulled away from it.
  if (wasIdle) activate(room.id);
  banner.show(notice, 'notice');
}

function roomItem(r) {
  const open = state.open.get(r.id);
  const unread = open ? (state.active === r.id ? 0 : open.unread) : r.noReadCount;
  const mine = r.member && r.member.id === state.session.member.id;
  const last = r.lastMessage;
  return h('li', {},
    h('button', { type: 'button', class: `room-item${state.active === r.id ? ' current' : ''}`, dataset: { roomId: r.id }, onclick: () => openRoom(r) },
      h('div', { class: 'room-line' },
        h('span', { class: 'room-name' }, r.customer.name || r.roomName || `#${r.id}`),
        h('time', {}, (r.updateDate || '').slice(11, 16))),
      h('div', { class: 'room-line sub' },
        h('span', { class: 'room-preview' }, preview(last) || t('noMessageYet')),
        unread > 0 ? h('span', { class: 'badge', dataset: { unread } }, String(unread)) : null),
      r.member ? h('div', { class: `room-line assignee${mine ? ' mine' : ''}` }, `${t('assignee')}: ${r.member.name}`) : null));
}

// ---- rooms -----------------------------------------------------------

function openRoom(detail) {
  activate(ensureRoom(detail).id);
}

// ensureRoom opens a tab for the room unless it has one.
function ensureRoom(detail) {
  let r = state.open.get(detail.id);
  if (!r) {
    r = createRoom(detail);
    state.open.set(r.id, r);
    $('#room-panes').append(r.pane);
    $('#open-tabs').append(r.tab);
    subscribeRoom(r);
  }
  return r;
}

function subscribeRoom(r) {
  if (!state.conn || !state.conn.connected) return;
  r.pendingOlder = false;
  r.readUpTo = 0;
  r.sub = state.conn.subscribe(roomDest(r.id), onEvent);
}

function closeRoom(id) {
  const r = state.open.get(id);
  if (!r) return;
  r.typingOut.stop();
  try { r.sub && r.sub.unsubscribe(); } catch { /* connection gone */ }
  r.pane.remove();
  r.tab.remove();
  state.open.delete(id);
  if (state.active === id) {
    const next = [...state.open.keys()].pop() || 0;
    if (next) activate(next);
    else { state.active = 0; $('#no-room').hidden = false; renderLobby(); }
  }
}

function activate(id) {
  state.active = id;
  $('#no-room').hidden = true;
  for (const r of state.open.values()) {
    const on = r.id === id;
    r.pane.hidden = !on;
    r.tab.classList.toggle('active', on);
    if (on) {
      r.unread = 0;
      renderTab(r);
    }
  }
  const r = state.open.get(id);
  if (r) {
    r.view.follow();
    markRead(r);
    r.composer.text.focus();
  }
  renderLobby();
}

function send(r, eventName, data) {
  try {
    state.conn.send(eventName, data, r.id);
    return true;
  } catch (err) {
    banner.show(err.message);
    return false;
  }
}

function createRoom(detail) {
  const r = { id: detail.id, detail, unread: 0, ended: detail.status === 'ENDED', readUpTo: 0, pendingOlder: false };
  r.view = new RoomView({
    viewer: 'member',
    fileUrl: (p) => p,
    onDelete: (m) => send(r, 'DELETE_MESSAGE', { id: m.id }),
    onLoadOlder: (startId) => {
      r.pendingOlder = true;
      if (!send(r, 'MESSAGE_LIST', { messageAdminType: 1, startId })) r.view.setPage([], true);
    },
  });
  r.view.mySpeakerId = state.mySpeakerId;
  // Typing is best effort: a lost TYPING bothers nobody.
  r.typingOut = new TypingSender((data) => { try { state.conn.send('TYPING', data, r.id); } catch { /* offline */ } });
  r.typingIn = new TypingIndicator((d, target) => typingLabel(r, d, target));
  r.composer = new Composer({
    notes: true,
    onSend: (text, note) => send(r, 'MESSAGE', {
      messageType: 0, message: text, messageDetail: '', messageAdminType: note ? 1 : 0, clientMessageId: clientMessageId(),
    }),
    onImage: (file) => sendImage(r, file),
    onInput: (text, note) => { if (!r.ended) r.typingOut.input(text, note); },
    onKey: (e) => r.picker.key(e),
  });
  r.picker = new CannedPicker(r.composer.text, () => state.canned);
  r.composer.el.prepend(r.picker.el);
  r.composer.text.title = t('cannedHint');
  r.title = h('h2', { class: 'room-title' });
  r.meta = h('div', { class: 'room-meta' });
  r.status = h('span', { class: 'status-badge' });
  r.endButton = h('button', { type: 'button', class: 'danger end-room', onclick: () => { r.confirm.hidden = false; } });
  r.confirmText = h('span', {});
  r.confirmYes = h('button', { type: 'button', class: 'danger confirm-end', onclick: () => { r.confirm.hidden = true; send(r, 'END', {}); } });
  r.confirmNo = h('button', { type: 'button', class: 'ghost', onclick: () => { r.confirm.hidden = true; } });
  r.confirm = h('div', { class: 'confirm-bar', hidden: true }, r.confirmText, r.confirmYes, r.confirmNo);
  r.call = new VideoCall({
    // Accepting an invitation answers it; rejoining a running call found
    // after a reload needs no answer: the counselor's token opens it.
    onAccept: (invited) => {
      if (invited) return send(r, 'VIDEO_ACCEPT', {});
      return r.call.join({ token: state.session.token, userId: state.mySpeakerId, communityId: r.detail.companyId, videoRoomId: `r-${r.id}` }, 'callConnecting');
    },
    onDecline: () => send(r, 'VIDEO_DECLINE', {}),
    onHangUp: () => send(r, 'VIDEO_END', {}),
    // One call per room at a time.
    onPhase: () => { r.videoButton.disabled = r.call.active; },
  });
  r.videoButton = h('button', { type: 'button', class: 'ghost video-call-start', onclick: () => { if (!r.call.active) send(r, 'VIDEO_START', {}); } });
  r.transferButton = h('button', { type: 'button', class: 'ghost transfer-room', onclick: () => openTransfer(r) });
  r.exportButton = h('button', { type: 'button', class: 'ghost export-room', onclick: () => exportRoom(r) });
  r.transferTo = h('select', { class: 'transfer-member', 'aria-label': t('transferTo') });
  r.transferNote = h('input', { class: 'transfer-note', maxlength: 2000 });
  r.transferSend = h('button', { type: 'button', class: 'primary transfer-send', onclick: () => sendTransfer(r) });
  r.transferCancel = h('button', { type: 'button', class: 'ghost', onclick: () => { r.transferBar.hidden = true; } });
  r.transferEmpty = h('span', { class: 'muted transfer-empty' });
  r.transferBar = h('div', { class: 'transfer-bar', hidden: true }, r.transferTo, r.transferNote, r.transferSend, r.transferCancel, r.transferEmpty);
  r.endedNote = h('p', { class: 'ended-note', hidden: true });
  r.pane = h('section', { class: 'room-pane', dataset: { roomId: r.id }, hidden: true },
    h('header', { class: 'room-header' },
      h('div', {}, h('div', { class: 'title-row' }, r.title, r.status), r.meta),
      h('div', { class: 'room-actions' }, r.exportButton, r.transferButton, r.videoButton, r.endButton)),
    r.confirm,
    r.transferBar,
    r.call.el,
    r.view.el,
    r.typingIn.el,
    r.endedNote,
    r.composer.el);
  r.tabLabel = h('span', {});
  r.tabBadge = h('span', { class: 'badge', hidden: true });
  r.tab = h('div', { class: 'open-tab', dataset: { roomId: r.id } },
    h('button', { type: 'button', class: 'open-tab-main', onclick: () => activate(r.id) }, r.tabLabel, r.tabBadge),
    h('button', { type: 'button', class: 'open-tab-close', 'aria-label': t('closeRoom'), title: t('closeRoom'), onclick: () => closeRoom(r.id) }, '×'));
  renderHeader(r);
  renderTab(r);
  return r;
}

async function sendImage(r, file) {
  r.composer.setBusy(t('uploading'));
  try {
    const up = await uploadImage(file, r.id, bearer(state.session.token));
    send(r, 'MESSAGE', { messageType: 1, message: '', messageDetail: up.path, thumbnail: up.thumbnail, clientMessageId: clientMessageId() });
    r.composer.setBusy('');
  } catch (err) {
    r.composer.setBusy('');
    banner.show(err.message);
  }
}

function renderHeader(r) {
  const d = r.detail;
  if (r.view.readOnly !== r.ended) {
    r.view.readOnly = r.ended;
    r.view.render('keep');
  }
  r.title.textContent = d.customer.name || d.roomName || `#${d.id}`;
  r.status.textContent = statusText(d.status);
  r.status.dataset.status = d.status;
  r.meta.textContent = `${t('memberNo')} ${d.customer.gasappMemberNumber} · ${t('assignee')}: ${d.member ? d.member.name : t('unassigned')} · #${d.id}`;
  r.endButton.textContent = t('endRoom');
  r.endButton.hidden = r.ended;
  r.exportButton.textContent = t('exportRoom');
  r.transferButton.textContent = t('transfer');
  r.transferButton.hidden = r.ended || !(isMine(d) || state.session.member.isAdmin === 1);
  if (r.transferButton.hidden) r.transferBar.hidden = true;
  r.transferNote.placeholder = t('transferNote');
  r.transferSend.textContent = t('transferSend');
  r.transferCancel.textContent = t('cancel');
  renderTransfer(r);
  r.videoButton.textContent = t('videoCall');
  r.videoButton.hidden = r.ended;
  r.call.relabel();
  r.confirmText.textContent = t('confirmEnd');
  r.confirmYes.textContent = t('confirm');
  r.confirmNo.textContent = t('cancel');
  r.endedNote.textContent = t('roomEnded');
  r.endedNote.hidden = !r.ended;
  r.composer.el.hidden = r.ended;
  r.composer.relabel();
}

function renderTab(r) {
  r.tabLabel.textContent = r.detail.customer.name || `#${r.id}`;
  r.tabBadge.textContent = String(r.unread);
  r.tabBadge.hidden = r.unread === 0;
  r.tab.classList.toggle('ended', r.ended);
}

// ---- transfer, export, typing --------------------------------------------

function openTransfer(r) {
  r.transferBar.hidden = !r.transferBar.hidden;
  if (!r.transferBar.hidden) {
    loadMembers();
    renderTransfer(r);
  }
}

// renderTransfer lists the colleagues who may take the room: of the
// company, not OFFLINE, not its counselor.
function renderTransfer(r) {
  const current = r.detail.member ? r.detail.member.id : 0;
  const chosen = r.transferTo.value;
  const options = state.members.filter((m) => m.status !== 'OFFLINE' && m.id !== current);
  clear(r.transferTo);
  for (const m of options) {
    r.transferTo.append(h('option', { value: m.id }, `${m.name} (${t(`status${m.status}`)} · ${tf('openRoomsOf', { n: m.openRooms })})`));
  }
  if (options.some((m) => String(m.id) === chosen)) r.transferTo.value = chosen;
  r.transferEmpty.textContent = options.length ? '' : t('noColleague');
  r.transferTo.hidden = !options.length;
  r.transferSend.disabled = !options.length;
}

function sendTransfer(r) {
  const memberId = Number(r.transferTo.value);
  if (!memberId) return;
  const note = r.transferNote.value.trim();
  if (send(r, 'TRANSFER', note ? { memberId, note } : { memberId })) {
    r.transferNote.value = '';
    r.transferBar.hidden = true;
  }
}

async function exportRoom(r) {
  try {
    await download(`/api/rooms/${r.id}/transcript?format=html&includeNotes=1`, bearer(state.session.token), `room-${r.id}.html`);
  } catch (err) {
    banner.show(err.message);
  }
}

// typingLabel says who is typing in room r, or '' for this console itself.
function typingLabel(r, d, target) {
  if (Number(d.speakerId) === state.mySpeakerId) return '';
  let name = t('counselor');
  if (d.isCustomer === 1) name = r.detail.customer.name || r.detail.customer.gasappMemberNumber;
  else {
    const m = state.members.find((x) => x.speakerId === Number(d.speakerId));
    if (m) name = m.name;
  }
  return tf(target === 'MEMBER' ? 'typingNote' : 'typingSomeone', { name });
}

// markRead tells the room what the counselor has now seen: only for the
// room on screen while the page is visible.
function markRead(r) {
  if (r.id !== state.active || document.hidden || !state.conn || !state.conn.connected) return;
  const last = r.view.lastOtherId();
  if (last > r.readUpTo) {
    const start = r.readUpTo ? r.readUpTo + 1 : r.view.firstId();
    r.readUpTo = last;
    send(r, 'READ_MESSAGE', { startId: start, endId: last });
  }
}

// ---- events ----------------------------------------------------------

function onEvent(env) {
  switch (env.eventName) {
    case 'RELOAD':
      refreshLobbySoon();
      return;
    case 'RELOAD_READY': {
      refreshLobbySoon();
      const room = env.data && env.data.room;
      // Given to this member without its asking: auto-assignment.
      if (state.listed && isMine(room) && room.status === 'IN_PROGRESS' && !state.knownMine.has(room.id) && !state.open.has(room.id)) {
        adopt(room, tf('autoAssigned', { name: room.customer.name || room.customer.gasappMemberNumber }));
      }
      if (isMine(room)) state.knownMine.add(room.id);
      return;
    }
    case 'MEMBER_STATUS':
      if (env.data && env.data.memberId === state.session.member.id) $('#my-status').value = env.data.status;
      loadMembersSoon();
      return;
    case 'TRANSFERRED': {
      const d = env.data || {};
      if (!d.room) return;
      let notice = tf('transferredToYou', { from: d.from ? d.from.name : '', name: d.room.customer.name || d.room.customer.gasappMemberNumber });
      if (d.note) notice += ` ${tf('transferredNote', { note: d.note })}`;
      adopt(d.room, notice);
      loadMembersSoon();
      return;
    }
    case 'ERROR':
      banner.show((env.data && env.data.reason) || 'ERROR');
      return;
  }
  const r = state.open.get(Number(env.roomId));
  if (!r) return;
  const data = env.data || {};
  switch (env.eventName) {
    case 'JOINED': {
      const p = data.profile;
      if (p && p.isMember === 1 && p.id === state.session.member.id) {
        state.mySpeakerId = p.speakerId;
        for (const o of state.open.values()) o.view.mySpeakerId = p.speakerId;
      }
      if (data.room) { r.detail = data.room; renderHeader(r); }
      break;
    }
    case 'ROOM_DETAIL':
      if (data.room) {
        r.detail = data.room;
        r.ended = data.room.status === 'ENDED';
        if (r.ended) { r.typingOut.stop(); r.typingIn.clear(); }
        renderHeader(r);
        renderTab(r);
      }
      break;
    case 'MESSAGE_LIST':
      if (!r.pendingOlder && !r.ended && state.mySpeakerId && lastCallStep(data.messages || []) === 'running') r.call.ongoing(callRecorded(data.messages));
      r.view.setPage(data.messages || [], r.pendingOlder);
      r.pendingOlder = false;
      markRead(r);
      break;
    case 'TYPING':
      r.typingIn.event(env);
      break;
    case 'MESSAGE': {
      const m = data.message;
      if (!m) break;
      r.typingIn.hide(m.speakerId);
      const isNew = !r.view.messages.has(m.id);
      r.view.add(m);
      if (r.call.active && videoRecord(m)?.event === 'recording') r.call.setRecorded(true);
      if (isNew && r.id !== state.active && m.speakerId !== state.mySpeakerId) {
        r.unread += 1;
        renderTab(r);
      }
      markRead(r);
      break;
    }
    case 'READ_MESSAGE':
      r.view.applyRead(data);
      break;
    case 'DELETE_MESSAGE':
      if (data.success) r.view.markDeleted(Number(data.id));
      break;
    case 'VIDEO_INVITE':
      // The counselor's own bearer token opens the call; userId is this
      // console's speakerId.
      r.call.invited({ token: state.session.token, userId: data.userId, communityId: data.communityId, videoRoomId: data.videoRoomId,
        recorded: data.recorded },
        Boolean(data.from && String(data.from.speakerId) === String(data.userId)));
      break;
    case 'VIDEO_DECLINED':
      if (r.call.ws) r.call.ended('callDeclined');
      break;
    case 'VIDEO_ENDED':
      if (r.call.active) r.call.ended('callEnded');
      break;
    case 'END':
      if (r.call.active) r.call.ended('callEnded');
      r.ended = true;
      r.typingOut.stop();
      r.typingIn.clear();
      r.confirm.hidden = true;
      renderHeader(r);
      renderTab(r);
      refreshLobbySoon();
      break;
  }
}

// ---- start -----------------------------------------------------------

function main() {
  initLang();
  bindToggle($('#lang'));
  onLangChange(() => {
    renderLobby();
    for (const r of state.open.values()) { renderHeader(r); r.view.relabel(); }
    if (state.conn) {
      state.conn.setLanguage(document.documentElement.lang);
      renderState($('#conn'), state.conn.state);
    }
  });
  bindLogin({
    submit: (loginName, password) => request('POST', '/api/auth/login', { json: { loginName, password } }),
    signedIn,
    failed: showLogin,
  });
  $('#logout').addEventListener('click', () => logout(''));
  $('#my-status').addEventListener('change', (e) => setMyStatus(e.target.value));
  for (const tab of document.querySelectorAll('.lobby .tab')) {
    tab.addEventListener('click', () => { state.lobbyStatus = tab.dataset.status; renderLobby(); });
  }
  document.addEventListener('visibilitychange', () => {
    const r = state.open.get(state.active);
    if (r) markRead(r);
  });
  state.session = loadSession();
  if (!state.session) return showLogin('');
  // A kept token may have expired: ask before connecting.
  request('GET', '/api/me', { headers: bearer(state.session.token) })
    .then((member) => { state.session.member = member; startConsole(); })
    .catch((err) => logout(err.status === 401 ? t('sessionExpired') : err.message));
}

main();
