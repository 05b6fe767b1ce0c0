import { $, h } from './dom.js';
import { t, initLang, bindToggle, onLangChange } from './i18n.js';
import { request, uploadImage } from './api.js';
import { Connection, PRIVATE, room as roomDest, renderState } from './stomp.js';
import { RoomView } from './room-view.js';
import { Banner, Composer, clientMessageId } from './common.js';
import { VideoCall, lastCallStep, callRecorded, videoRecord } from './video-call.js';
import { TypingSender, TypingIndicator } from './typing.js';

// The page the gas app opens in a web view:
// /customer?companyId=1&gasappMemberNumber=3825&name=... (plus secretKey,
// or timestamp and signature, when the company requires them).
const params = new URLSearchParams(location.search);
const banner = new Banner($('#banner'));
const state = {
  conn: null,
  roomId: 0,
  roomSub: null,
  ended: false,
  access: '',
  readUpTo: 0,
  pendingOlder: false,
  welcome: null,
  status: '',
};

// identity is what both STOMP CONNECT and the HTTP API accept from a
// customer. name is left out of HTTP headers: they must be ASCII.
function identity() {
  const id = { companyId: params.get('companyId') || '', gasappMemberNumber: params.get('gasappMemberNumber') || '' };
  for (const k of ['secretKey', 'timestamp', 'signature']) if (params.get(k)) id[k] = params.get(k);
  return id;
}

const view = new RoomView({
  viewer: 'customer',
  fileUrl: (p) => (state.access ? `${p}?access=${encodeURIComponent(state.access)}` : p),
  onDelete: (m) => send('DELETE_MESSAGE', { id: m.id }),
  onLoadOlder: (startId) => {
    state.pendingOlder = true;
    if (!send('MESSAGE_LIST', { messageAdminType: 0, startId })) view.setPage([], true);
  },
});

// The customer sees the counselor typing (never a note being written: the
// server keeps those for members), and the counselor sees the customer.
const typingIn = new TypingIndicator((d) => (d.isCustomer === 1 ? '' : t('typingCounselor')));
const typingOut = new TypingSender((data) => {
  if (!state.roomId || state.ended) return;
  try { state.conn.send('TYPING', data, state.roomId); } catch { /* offline: nobody to tell */ }
});

const composer = new Composer({
  notes: false,
  onSend: (text) => send('MESSAGE', { messageType: 0, message: text, messageDetail: '', clientMessageId: clientMessageId() }),
  onImage: sendImage,
  onInput: (text) => typingOut.input(text, false),
});

const call = new VideoCall({
  // Accepting an invitation answers it; accepting to rejoin a running call
  // (after a reload) first asks for a fresh video token.
  onAccept: (invited) => send(invited ? 'VIDEO_ACCEPT' : 'VIDEO_TOKEN', {}),
  onDecline: () => send('VIDEO_DECLINE', {}),
  onHangUp: () => send('VIDEO_END', {}),
  // A rejoin after the token's ten minutes asks for a fresh one too.
  onTokenExpired: () => send('VIDEO_TOKEN', {}),
});

// offerRejoin asks to rejoin when the history's last call step says a call
// is still running.
function offerRejoin(messages) {
  if (!state.ended && lastCallStep(messages) === 'running') call.ongoing(callRecorded(messages));
}

function send(eventName, data) {
  if (!state.roomId) return false;
  try {
    state.conn.send(eventName, data, state.roomId);
    return true;
  } catch (err) {
    banner.show(err.message);
    return false;
  }
}

async function sendImage(file) {
  composer.setBusy(t('uploading'));
  try {
    const up = await uploadImage(file, state.roomId, identity());
    send('MESSAGE', { messageType: 1, message: '', messageDetail: up.path, thumbnail: up.thumbnail, clientMessageId: clientMessageId() });
  } catch (err) {
    banner.show(err.message);
  } finally {
    composer.setBusy('');
  }
}

// refreshAccess gets a grant for showing this customer's images; cookies
// are not relied on, since app web views often drop them.
async function refreshAccess() {
  try {
    const res = await request('POST', '/api/files/access', { headers: identity() });
    state.access = res.access;
    view.render('keep');
  } catch { /* images then show as broken; text still works */ }
}

function markRead() {
  if (document.hidden || !state.roomId || state.ended) return;
  const last = view.lastOtherId();
  if (last > state.readUpTo) {
    const start = state.readUpTo ? state.readUpTo + 1 : view.firstId();
    state.readUpTo = last;
    send('READ_MESSAGE', { startId: start, endId: last });
  }
}

function setEnded(ended) {
  state.ended = ended;
  if (view.readOnly !== ended) {
    view.readOnly = ended;
    view.render('keep');
  }
  $('#ended').hidden = !ended;
  composer.el.hidden = ended;
}

// renderReview offers a 1-5 rating once the consultation has ended.
function renderReview() {
  const box = $('#review-scores');
  box.replaceChildren(...[1, 2, 3, 4, 5].map((n) => h('button', {
    type: 'button', class: 'score', dataset: { score: n }, 'aria-label': `${n} ${t('reviewScore')}`,
    onclick: () => {
      for (const b of box.querySelectorAll('button')) b.disabled = true;
      if (!send('REVIEW', { reviewScore: n })) for (const b of box.querySelectorAll('button')) b.disabled = false;
    },
  }, '★', h('span', {}, String(n)))));
}

function renderWelcome() {
  const el = $('#welcome');
  el.textContent = state.welcome || t('customerWelcome');
  // The waiting text matters only until a counselor takes the room.
  el.hidden = state.ended || !state.roomId || state.status !== 'WAITING';
}

function onEvent(env) {
  const data = env.data || {};
  switch (env.eventName) {
    case 'LOGINED': {
      const roomId = Number(env.roomId || (data.profile && data.profile.roomId));
      view.mySpeakerId = data.profile ? data.profile.speakerId : 0;
      if (roomId && roomId !== state.roomId) {
        if (state.roomSub) state.roomSub.unsubscribe();
        state.roomId = roomId;
        document.body.dataset.roomId = String(roomId);
      }
      state.readUpTo = 0;
      state.roomSub = state.conn.subscribe(roomDest(state.roomId), onEvent);
      setEnded(false);
      renderWelcome();
      return;
    }
    case 'UNAUTHORIZED':
      banner.show(t('missingParams'));
      state.conn.stop();
      return;
    case 'ERROR':
      banner.show(data.reason || 'ERROR');
      return;
  }
  if (Number(env.roomId) !== state.roomId) return;
  switch (env.eventName) {
    case 'WELCOME_MESSAGE':
      state.welcome = data.autoMessage1 || null;
      renderWelcome();
      break;
    case 'ROOM_DETAIL':
      if (data.room) {
        state.status = data.room.status;
        setEnded(data.room.status === 'ENDED');
        renderWelcome();
      }
      break;
    case 'VIDEO_INVITE':
      if (data.token) {
        call.invited({ token: data.token, userId: data.userId, communityId: data.communityId, videoRoomId: data.videoRoomId,
          recorded: data.recorded },
          Boolean(data.from && data.from.isCustomer === 1));
      }
      break;
    case 'VIDEO_TOKEN':
      if (call.phase === 'connecting' && !call.ws) call.join(data, 'callConnecting');
      break;
    case 'VIDEO_DECLINED':
      if (call.ws) call.ended('callDeclined');
      break;
    case 'VIDEO_ENDED':
      if (call.active) call.ended('callEnded');
      break;
    case 'MESSAGE_LIST':
      if (!state.pendingOlder) offerRejoin(data.messages || []);
      view.setPage(data.messages || [], state.pendingOlder);
      state.pendingOlder = false;
      markRead();
      break;
    case 'TYPING':
      typingIn.event(env);
      break;
    case 'MESSAGE':
      if (data.message) {
        typingIn.hide(data.message.speakerId);
        view.add(data.message);
        if (call.active && videoRecord(data.message)?.event === 'recording') call.setRecorded(true);
      }
      markRead();
      break;
    case 'READ_MESSAGE':
      view.applyRead(data);
      break;
    case 'DELETE_MESSAGE':
      if (data.success) view.markDeleted(Number(data.id));
      break;
    case 'END':
      if (call.active) call.ended('callEnded');
      typingOut.stop();
      typingIn.clear();
      setEnded(true);
      renderWelcome();
      break;
    case 'REVIEW':
      if (data.success) {
        $('#review-scores').hidden = true;
        $('#review-thanks').hidden = false;
      }
      break;
  }
}

function main() {
  initLang();
  bindToggle($('#lang'));
  $('#conversation').before(call.el);
  $('#conversation').append(view.el);
  $('#composer').replaceWith(composer.el);
  composer.el.before(typingIn.el);
  onLangChange(() => {
    typingIn.clear();
    renderReview();
    call.relabel();
    view.relabel();
    composer.relabel();
    renderWelcome();
    if (state.conn) {
      state.conn.setLanguage(document.documentElement.lang);
      renderState($('#conn'), state.conn.state);
    }
  });
  $('#restart').addEventListener('click', () => location.reload());
  renderReview();
  document.addEventListener('visibilitychange', markRead);
  const id = identity();
  if (!/^\d+$/.test(id.companyId) || !/^\d+$/.test(id.gasappMemberNumber)) {
    banner.show(t('missingParams'));
    composer.el.hidden = true;
    view.empty.hidden = true;
    renderState($('#conn'), 'disconnected');
    return;
  }
  const headers = { ...id, 'accept-language': document.documentElement.lang };
  if (params.get('name')) headers.name = params.get('name');
  state.conn = new Connection({
    headers,
    onState: (s) => renderState($('#conn'), s),
    onConnect: () => {
      state.roomSub = null;
      state.conn.subscribe(PRIVATE, onEvent);
    },
  });
  state.conn.start();
  refreshAccess();
  // Grants last an hour; renew well before.
  setInterval(refreshAccess, 45 * 60 * 1000);
}

main();
