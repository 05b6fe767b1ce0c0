import { h, $, clear } from './dom.js';
import { t, initLang, bindToggle, onLangChange } from './i18n.js';
import { request, bearer, ApiError } from './api.js';
import { Connection, PRIVATE, lobby, room as roomDest, renderState } from './stomp.js';
import { RoomView, PAGE_SIZE } from './room-view.js';
import { Banner, statusText, preview } from './common.js';
import { showLoginForm, bindLogin } from './login.js';

const SESSION_KEY = 'cstalk.session';
const banner = new Banner($('#banner'));
const state = {
  session: null,
  conn: null,
  rooms: null,
  roomsError: '',
  filter: '',
  members: null,
  detail: null, // {room, view, sub}
  refreshTimer: 0,
};

const auth = () => bearer(state.session.token);

function loadSession() {
  try { return JSON.parse(sessionStorage.getItem(SESSION_KEY)); } catch { return null; }
}

function showLogin(message) {
  showLoginForm($('#admin-view'), message);
}

function logout(message) {
  if (state.conn) state.conn.stop();
  state.conn = null;
  state.session = null;
  sessionStorage.removeItem(SESSION_KEY);
  closeDetail();
  showLogin(message);
}

function signedIn(res) {
  state.session = { token: res.token, member: res.member };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(state.session));
  start();
}

function start() {
  const { member, token } = state.session;
  if (member.isAdmin !== 1) {
    showLogin(t('notAdmin'));
    $('#logout').hidden = false;
    return;
  }
  $('#login-view').hidden = true;
  $('#admin-view').hidden = false;
  $('#logout').hidden = false;
  $('#who').textContent = `${member.name} (${member.loginName})`;
  request('POST', '/api/files/access', { headers: auth() }).catch(() => {});
  renderRooms();
  loadMembers();
  const conn = new Connection({
    headers: { Authorization: `Bearer ${token}`, 'accept-language': document.documentElement.lang },
    onState: (s) => { const el = $('#conn'); el.hidden = false; renderState(el, s); },
    onRefused: () => logout(t('sessionExpired')),
    onConnect: () => {
      conn.subscribe(PRIVATE, onEvent);
      conn.subscribe(lobby(member.companyId), onEvent);
      if (state.detail) watchDetail();
      loadRooms();
    },
  });
  state.conn = conn;
  conn.start();
}

// ---- rooms -----------------------------------------------------------

async function loadRooms() {
  try {
    const res = await request('GET', '/api/rooms?limit=500', { headers: auth() });
    state.rooms = res.rooms;
    state.roomsError = '';
    // A room watched while WAITING can be followed live once taken.
    const d = state.detail;
    const now = d && res.rooms.find((r) => r.id === d.room.id);
    if (now) {
      d.room = now;
      watchDetail();
    }
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return logout(t('sessionExpired'));
    state.roomsError = err.message;
  }
  renderRooms();
}

function renderRooms() {
  for (const b of document.querySelectorAll('#status-filter button')) b.classList.toggle('active', b.dataset.status === state.filter);
  for (const c of document.querySelectorAll('#status-filter .count')) {
    const rooms = state.rooms || [];
    c.textContent = state.rooms ? String(c.dataset.count ? rooms.filter((r) => r.status === c.dataset.count).length : rooms.length) : '';
  }
  const info = $('#rooms-state');
  const body = $('#rooms-body');
  clear(body);
  const rooms = (state.rooms || []).filter((r) => !state.filter || r.status === state.filter);
  info.className = state.roomsError ? 'list-state error' : 'list-state';
  info.textContent = state.roomsError || (!state.rooms ? t('loading') : rooms.length ? '' : t('noRooms'));
  for (const r of rooms) {
    body.append(h('tr', { dataset: { roomId: r.id } },
      h('td', { class: 'num' }, String(r.id)),
      h('td', {}, h('div', { class: 'strong' }, r.customer.name || r.roomName), h('div', { class: 'muted' }, `${t('memberNo')} ${r.customer.gasappMemberNumber}`)),
      h('td', {}, h('span', { class: 'status-badge', dataset: { status: r.status } }, statusText(r.status)),
        r.reviewScore ? h('div', { class: 'muted review-cell', title: t('review') }, `★ ${r.reviewScore}/5`) : null),
      h('td', { class: 'assignee' }, r.member ? r.member.name : h('span', { class: 'muted' }, t('unassigned'))),
      h('td', { class: 'preview' }, preview(r.lastMessage)),
      h('td', { class: 'muted nowrap' }, r.updateDate),
      h('td', { class: 'actions nowrap' }, h('div', {},
        h('button', { type: 'button', class: 'ghost small view-room', onclick: () => openDetail(r) }, t('view')),
        r.status !== 'ENDED' ? h('button', { type: 'button', class: 'danger small end-room', onclick: (e) => confirmEnd(e.currentTarget, r) }, t('endRoom')) : null))));
  }
}

// confirmEnd asks once more in place, without a blocking dialog.
function confirmEnd(button, r) {
  if (button.dataset.confirm) return endRoom(r, button);
  button.dataset.confirm = '1';
  button.textContent = t('confirm');
  button.classList.add('confirming');
}

async function endRoom(r, button) {
  button.disabled = true;
  try {
    await request('POST', `/api/admin/rooms/${r.id}/end`, { headers: auth() });
    await loadRooms();
  } catch (err) {
    banner.show(err.message);
    button.disabled = false;
  }
}

// ---- one room's conversation ------------------------------------------

function openDetail(r) {
  closeDetail();
  const view = new RoomView({
    viewer: 'admin',
    fileUrl: (p) => p,
    onDelete: (m) => {
      try { state.conn.send('DELETE_MESSAGE', { id: m.id }, r.id); } catch (err) { banner.show(err.message); }
    },
    onLoadOlder: (before) => loadMessages(before),
  });
  state.detail = { room: r, view, sub: null };
  $('#detail-title').textContent = `#${r.id} ${r.customer.name || ''}`;
  $('#detail-body').replaceChildren(view.el);
  $('#detail-card').hidden = false;
  loadMessages(0);
  watchDetail();
  $('#detail-card').scrollIntoView({ block: 'nearest' });
}

// watchDetail follows the room live. A WAITING room is only read: the
// first member subscribing to it would take it over.
function watchDetail() {
  const d = state.detail;
  if (!d || d.sub || d.room.status === 'WAITING' || !state.conn || !state.conn.connected) return;
  d.sub = state.conn.subscribe(roomDest(d.room.id), onEvent);
}

async function loadMessages(before) {
  const d = state.detail;
  try {
    const q = before ? `?before=${before}&limit=${PAGE_SIZE}` : `?limit=${PAGE_SIZE}`;
    const res = await request('GET', `/api/rooms/${d.room.id}/messages${q}`, { headers: auth() });
    if (state.detail !== d) return;
    d.view.setPage(res.messages, Boolean(before));
    d.view.hasMore = res.hasMore;
    d.view.render(before ? 'keep' : 'bottom');
  } catch (err) {
    banner.show(err.message);
  }
}

function closeDetail() {
  const d = state.detail;
  if (!d) return;
  try { d.sub && d.sub.unsubscribe(); } catch { /* connection gone */ }
  state.detail = null;
  $('#detail-card').hidden = true;
  clear($('#detail-body'));
}

function onEvent(env) {
  const data = env.data || {};
  switch (env.eventName) {
    case 'RELOAD':
      clearTimeout(state.refreshTimer);
      state.refreshTimer = setTimeout(loadRooms, 150);
      return;
    case 'ERROR':
      banner.show(data.reason || 'ERROR');
      return;
  }
  const d = state.detail;
  if (!d || Number(env.roomId) !== d.room.id) return;
  switch (env.eventName) {
    case 'MESSAGE':
      if (data.message) d.view.add(data.message);
      break;
    case 'DELETE_MESSAGE':
      if (data.success) d.view.markDeleted(Number(data.id));
      break;
    case 'READ_MESSAGE':
      d.view.applyRead(data);
      break;
    case 'ROOM_DETAIL':
      if (data.room) d.room = data.room;
      break;
  }
}

// ---- counselors --------------------------------------------------------

async function loadMembers() {
  const info = $('#members-state');
  info.textContent = state.members ? '' : t('loading');
  try {
    const res = await request('GET', '/api/admin/members', { headers: auth() });
    state.members = res.members;
    info.textContent = '';
    info.className = 'list-state';
  } catch (err) {
    info.textContent = err.message;
    info.className = 'list-state error';
  }
  renderMembers();
}

function renderMembers() {
  const body = $('#members-body');
  clear(body);
  for (const m of state.members || []) {
    body.append(h('tr', { dataset: { login: m.loginName } },
      h('td', { class: 'num' }, String(m.id)),
      h('td', {}, m.loginName),
      h('td', {}, m.name),
      h('td', {}, m.isAdmin === 1 ? t('yes') : t('no'))));
  }
}

async function onAddMember(e) {
  e.preventDefault();
  const result = $('#member-result');
  const button = $('#member-submit');
  button.disabled = true;
  try {
    await request('POST', '/api/admin/members', {
      headers: auth(),
      json: {
        loginName: $('#new-login').value.trim(),
        name: $('#new-name').value.trim(),
        password: $('#new-password').value,
        isAdmin: $('#new-admin').checked ? 1 : 0,
      },
    });
    $('#member-form').reset();
    result.textContent = t('added');
    result.className = 'form-result ok';
    await loadMembers();
  } catch (err) {
    result.textContent = err.message;
    result.className = 'form-result error';
  } finally {
    result.hidden = false;
    button.disabled = false;
  }
}

function main() {
  initLang();
  bindToggle($('#lang'));
  onLangChange(() => {
    renderRooms();
    renderMembers();
    if (state.detail) state.detail.view.relabel();
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
  $('#detail-close').addEventListener('click', closeDetail);
  $('#member-form').addEventListener('submit', onAddMember);
  for (const b of document.querySelectorAll('#status-filter button')) {
    b.addEventListener('click', () => { state.filter = b.dataset.status; renderRooms(); });
  }
  state.session = loadSession();
  if (!state.session) return showLogin('');
  request('GET', '/api/me', { headers: auth() })
    .then((member) => { state.session.member = member; start(); })
    .catch((err) => logout(err.status === 401 ? t('sessionExpired') : err.message));
}

main();
