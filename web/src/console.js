import { h, $, clear } from './dom.js';
import { t, initLang, bindToggle, onLangChange } from './i18n.js';
import { request, bearer, uploadImage, ApiError } from './api.js';
import { Connection, PRIVATE, lobby, room as roomDest, renderState } from './stomp.js';
import { RoomView } from './room-view.js';
import { Banner, Composer, clientMessageId, statusText, preview } from './common.js';
import { showLoginForm, bindLogin } from './login.js';
import { VideoCall, lastCallStep } from './video-call.js';

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
  let r = state.open.get(detail.id);
  if (!r) {
    r = createRoom(detail);
    state.open.set(r.id, r);
    $('#room-panes').append(r.pane);
    $('#open-tabs').append(r.tab);
    subscribeRoom(r);
  }
  activate(r.id);
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
  r.composer = new Composer({
    notes: true,
    onSend: (text, note) => send(r, 'MESSAGE', {
      messageType: 0, message: text, messageDetail: '', messageAdminType: note ? 1 : 0, clientMessageId: clientMessageId(),
    }),
    onImage: (file) => sendImage(r, file),
  });
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
  r.endedNote = h('p', { class: 'ended-note', hidden: true });
  r.pane = h('section', { class: 'room-pane', dataset: { roomId: r.id }, hidden: true },
    h('header', { class: 'room-header' },
      h('div', {}, h('div', { class: 'title-row' }, r.title, r.status), r.meta),
      h('div', { class: 'room-actions' }, r.videoButton, r.endButton)),
    r.confirm,
    r.call.el,
    r.view.el,
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
    case 'RELOAD_READY':
      refreshLobbySoon();
      return;
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
        renderHeader(r);
        renderTab(r);
      }
      break;
    case 'MESSAGE_LIST':
      if (!r.pendingOlder && !r.ended && state.mySpeakerId && lastCallStep(data.messages || []) === 'running') r.call.ongoing();
      r.view.setPage(data.messages || [], r.pendingOlder);
      r.pendingOlder = false;
      markRead(r);
      break;
    case 'MESSAGE': {
      const m = data.message;
      if (!m) break;
      const isNew = !r.view.messages.has(m.id);
      r.view.add(m);
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
      r.call.invited({ token: state.session.token, userId: data.userId, communityId: data.communityId, videoRoomId: data.videoRoomId },
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
