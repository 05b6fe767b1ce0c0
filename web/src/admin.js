import { h, $, clear } from './dom.js';
import { t, tf, initLang, bindToggle, onLangChange } from './i18n.js';
import { request, bearer, download, ApiError } from './api.js';
import { Connection, PRIVATE, lobby, room as roomDest, renderState } from './stomp.js';
import { RoomView, PAGE_SIZE } from './room-view.js';
import { Banner, statusText, preview } from './common.js';
import { showLoginForm, bindLogin } from './login.js';
import { StatsView } from './stats-view.js';

const SESSION_KEY = 'cstalk.session';
const banner = new Banner($('#banner'));
const state = {
  session: null,
  conn: null,
  rooms: null,
  roomsError: '',
  filter: '',
  members: null, // the company's members as routing sees them (/api/members)
  membersTimer: 0,
  canned: [],
  editing: 0, // the template being edited, 0 for a new one
  statsTimer: 0,
  statsPoll: 0,
  detail: null, // {room, view, sub}
  refreshTimer: 0,
  recordings: null,
  access: '', // a file access grant: a <video> cannot send the bearer token
};

const statsView = new StatsView({ tiles: $('#stat-tiles'), body: $('#stats-body'), volume: $('#chart-volume'), times: $('#chart-times') });

const auth = () => bearer(state.session.token);

function loadSession() {
  try { return JSON.parse(sessionStorage.getItem(SESSION_KEY)); } catch { return null; }
}

function showLogin(message) {
  showLoginForm($('#admin-view'), message);
}

function logout(message) {
  clearInterval(state.statsPoll);
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
  request('POST', '/api/files/access', { headers: auth() })
    .then((res) => { state.access = res.access; renderRecordings(); })
    .catch(() => {});
  renderRooms();
  loadMembers();
  loadSettings();
  loadRecordings();
  loadCanned();
  loadStats();
  // Reviews tell the lobby nothing: the figures also refresh each minute.
  clearInterval(state.statsPoll);
  state.statsPoll = setInterval(() => { if (!document.hidden) { loadStats(); loadRecordings(); } }, 60000);
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
      // Rooms change as conversations go: the figures follow, a little
      // later, once per burst.
      clearTimeout(state.statsTimer);
      state.statsTimer = setTimeout(loadStats, 1000);
      return;
    case 'MEMBER_STATUS':
      clearTimeout(state.membersTimer);
      state.membersTimer = setTimeout(loadMembers, 300);
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
    const res = await request('GET', '/api/members', { headers: auth() });
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
    const capacity = h('input', { type: 'number', min: 0, max: 100, value: m.capacity, class: 'capacity-input', 'aria-label': t('capacity') });
    const save = h('button', { type: 'button', class: 'ghost small capacity-save', onclick: () => saveCapacity(m, capacity, save) }, t('save'));
    body.append(h('tr', { dataset: { login: m.loginName } },
      h('td', {}, m.loginName, m.isAdmin === 1 ? h('span', { class: 'muted' }, ` (${t('isAdmin')})`) : null),
      h('td', {}, m.name),
      h('td', {}, h('span', { class: 'member-status', dataset: { status: m.status } }, t(`status${m.status}`))),
      h('td', { class: 'open-rooms num' }, String(m.openRooms)),
      h('td', { class: 'nowrap' }, capacity, save)));
  }
}

async function saveCapacity(m, input, button) {
  button.disabled = true;
  try {
    await request('PUT', `/api/admin/members/${m.id}`, { headers: auth(), json: { capacity: Number(input.value) } });
    await loadMembers();
  } catch (err) {
    banner.show(err.message);
    button.disabled = false;
  }
}

// ---- routing settings and reply templates --------------------------------

function showSettings(res) {
  $('#auto-assign').checked = res.autoAssign;
  $('#record-calls').checked = res.recordCalls;
}

async function loadSettings() {
  try {
    showSettings(await request('GET', '/api/admin/settings', { headers: auth() }));
  } catch (err) {
    banner.show(err.message);
  }
}

// setSetting changes one setting (autoAssign, recordCalls).
async function setSetting(name, on) {
  try {
    showSettings(await request('PUT', '/api/admin/settings', { headers: auth(), json: { [name]: on } }));
  } catch (err) {
    banner.show(err.message);
    loadSettings();
  }
}

// ---- recordings ----------------------------------------------------------

async function loadRecordings() {
  const info = $('#recordings-state');
  try {
    const res = await request('GET', '/api/admin/recordings?limit=20', { headers: auth() });
    state.recordings = res.recordings;
    info.textContent = '';
    info.className = 'list-state';
  } catch (err) {
    info.textContent = err.message;
    info.className = 'list-state error';
  }
  renderRecordings();
}

function renderRecordings() {
  const list = $('#recordings-list');
  clear(list);
  if (!state.recordings) return;
  if (state.recordings.length === 0) {
    $('#recordings-state').textContent = t('noRecordings');
    return;
  }
  const when = (s) => new Date(s).toLocaleString(document.documentElement.lang);
  for (const rec of state.recordings) {
    const title = rec.roomId ? tf('recordingRoom', { id: rec.roomId }) : rec.videoRoomId;
    const span = `${when(rec.startedAt)} – ${rec.endedAt ? when(rec.endedAt) : t('recordingRunning')}`;
    const files = h('div', { class: 'recording-files' });
    for (const f of rec.participants) {
      const role = t(f.isCustomer ? 'customerRole' : 'counselorRole');
      const line = h('p', {}, `${f.name} (${role}) · ${Math.round(f.duration)}s · ${t(`recordingStatus_${f.status}`)}`);
      const item = h('div', { class: 'recording-file', dataset: { fileId: f.id } }, line);
      if (f.status !== 'recording' && state.access) {
        item.append(h('video', { controls: true, preload: 'metadata', src: `${f.url}?access=${encodeURIComponent(state.access)}` }));
      }
      files.append(item);
    }
    list.append(h('li', { class: 'recording', dataset: { recordingId: rec.id } }, h('p', { class: 'recording-head' }, `${title} · ${span}`), files));
  }
}

async function loadCanned() {
  try {
    const res = await request('GET', '/api/canned-responses', { headers: auth() });
    state.canned = res.cannedResponses;
  } catch (err) {
    banner.show(err.message);
  }
  renderCanned();
}

function renderCanned() {
  const list = $('#canned-list');
  clear(list);
  for (const c of state.canned) {
    const del = h('button', { type: 'button', class: 'danger small canned-delete', onclick: () => deleteCanned(c, del) }, t('deleteMsg'));
    list.append(h('li', { class: 'canned-row', dataset: { shortcut: c.shortcut } },
      h('div', { class: 'canned-head' }, h('span', { class: 'canned-shortcut' }, `/${c.shortcut}`), h('span', { class: 'strong' }, c.title)),
      h('p', { class: 'canned-body' }, c.text),
      h('div', { class: 'canned-actions' },
        h('button', { type: 'button', class: 'ghost small canned-edit', onclick: () => editCanned(c) }, t('edit')), del)));
  }
  $('#canned-cancel').hidden = !state.editing;
}

function editCanned(c) {
  state.editing = c ? c.id : 0;
  $('#canned-shortcut').value = c ? c.shortcut : '';
  $('#canned-title').value = c ? c.title : '';
  $('#canned-text').value = c ? c.text : '';
  $('#canned-result').hidden = true;
  renderCanned();
  if (c) $('#canned-text').focus();
}

async function onSaveCanned(e) {
  e.preventDefault();
  const result = $('#canned-result');
  const json = { shortcut: $('#canned-shortcut').value, title: $('#canned-title').value, text: $('#canned-text').value };
  try {
    if (state.editing) await request('PUT', `/api/canned-responses/${state.editing}`, { headers: auth(), json });
    else await request('POST', '/api/canned-responses', { headers: auth(), json });
    editCanned(null);
    result.textContent = t('saved');
    result.className = 'form-result ok';
    await loadCanned();
  } catch (err) {
    result.textContent = err.message;
    result.className = 'form-result error';
  }
  result.hidden = false;
}

// deleteCanned asks once more in place, like ending a room.
async function deleteCanned(c, button) {
  if (!button.dataset.confirm) {
    button.dataset.confirm = '1';
    button.textContent = t('confirm');
    button.classList.add('confirming');
    return;
  }
  button.disabled = true;
  try {
    await request('DELETE', `/api/canned-responses/${c.id}`, { headers: auth() });
    if (state.editing === c.id) editCanned(null);
    await loadCanned();
  } catch (err) {
    banner.show(err.message);
    button.disabled = false;
  }
}

// ---- team figures -----------------------------------------------------------

async function loadStats() {
  const from = $('#stats-from').value;
  const to = $('#stats-to').value;
  const q = from && to ? `?from=${from}&to=${to}` : '';
  const info = $('#stats-state');
  try {
    const stats = await request('GET', `/api/admin/stats${q}`, { headers: auth() });
    $('#stats-from').value = stats.from;
    $('#stats-to').value = stats.to;
    info.textContent = '';
    info.className = 'list-state';
    statsView.render(stats);
  } catch (err) {
    info.textContent = err.message;
    info.className = 'list-state error';
  }
}

function exportDetail(format) {
  const d = state.detail;
  if (!d) return;
  download(`/api/rooms/${d.room.id}/transcript?format=${format}&includeNotes=1`, auth(), `room-${d.room.id}.${format === 'html' ? 'html' : 'txt'}`)
    .catch((err) => banner.show(err.message));
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
    renderCanned();
    renderRecordings();
    statsView.relabel();
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
  $('#auto-assign').addEventListener('change', (e) => setSetting('autoAssign', e.target.checked));
  $('#record-calls').addEventListener('change', (e) => setSetting('recordCalls', e.target.checked));
  $('#canned-form').addEventListener('submit', onSaveCanned);
  $('#canned-cancel').addEventListener('click', () => editCanned(null));
  $('#stats-form').addEventListener('submit', (e) => { e.preventDefault(); loadStats(); });
  $('#export-text').addEventListener('click', () => exportDetail('text'));
  $('#export-html').addEventListener('click', () => exportDetail('html'));
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
