import { h, $, clear } from './dom.js';
import { t, tf, lang, initLang, bindToggle, onLangChange } from './i18n.js';
import { Banner } from './common.js';
import { showLoginForm, bindLogin } from './login.js';
import { VideoCall } from './video-call.js';

// The guide page (/guide): timed expert help over video, for both roles.
// A user asks for a guide (quick connect, a friend, or shake), waits, and
// meets the approving mate in video room g-{gsSeq}; a mate goes available,
// approves or declines requests and gives the guide. The server keeps the
// clock: this page shows its endsAt, its warning and its ending, whichever
// path the ending took (the pushes of /guide/events, and the 5-second
// /guide/session check both sides run while in a guide). Afterwards the
// user rates the mate and the mate writes the CRM note.

const SESSION_KEY = 'cstalk.guide';
// GUIDE_KEY keeps the guide in progress across a reload, with its video
// token: the page rejoins the room (a resume within the video server's
// grace) and still shows the summary and rating form afterwards.
const GUIDE_KEY = 'cstalk.guide.current';
const CHECK_EVERY = 5000;
const banner = new Banner($('#banner'));

const state = {
  session: null, // {token, account}
  account: null, // the latest /guide/me
  friends: null,
  events: null, // EventSource
  eventsRetry: 0,
  incoming: null, // the mate's pending request {gsSeq, user, expiresAt}
  // guide is the session this page is in, from the request to the
  // summary: {gsSeq, ghSeq, phase: requested|approved|active|ended, peer,
  // expiresAt, roomId, videoToken, endsAt, ticketsUsed, warning,
  // beginSent, summary, rated, noteSaved}.
  guide: null,
  // warnBefore is the server's warning lead in seconds, from the session
  // check: a check finding less left shows the warning whose push was
  // lost (the push stays the rule). 0 until a check has answered.
  warnBefore: 0,
  outcome: '', // the last outcome's i18n key, shown in the status line
  checkTimer: 0,
  tickTimer: 0,
  clockOffset: 0, // server time minus this browser's, from clock answers
  stars: 0,
  top: null,
};

// ---- helpers ---------------------------------------------------------

// GuideError is a refused guide call: the HTTP status, the stable reason
// and the server's message in the page's language.
class GuideError extends Error {
  constructor(status, reason, message) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

// api calls the guide API with the account's token.
async function api(method, path, json) {
  const headers = { Accept: 'application/json', 'Accept-Language': lang() };
  if (state.session) headers.Authorization = `Bearer ${state.session.token}`;
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  }
  let resp;
  try {
    resp = await fetch(path, { method, headers, body, credentials: 'same-origin' });
  } catch {
    throw new GuideError(0, 'network', t('networkError'));
  }
  let data = null;
  try { data = await resp.json(); } catch { /* not JSON */ }
  if (!resp.ok) {
    const err = new GuideError(resp.status, (data && data.reason) || '', (data && data.message) || String(resp.status));
    if (resp.status === 401 && state.session && path !== '/guide/login') logout(t('sessionExpired'));
    throw err;
  }
  return data;
}

function loadSession() {
  try { return JSON.parse(sessionStorage.getItem(SESSION_KEY)); } catch { return null; }
}

function saveSession(s) {
  if (s) sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
  else sessionStorage.removeItem(SESSION_KEY);
}

const kept = ['gsSeq', 'ghSeq', 'phase', 'peer', 'expiresAt', 'roomId', 'videoToken', 'ticketsUsed', 'summary', 'rated', 'noteSaved'];

function saveGuide() {
  const g = state.guide;
  if (!g) {
    sessionStorage.removeItem(GUIDE_KEY);
    return;
  }
  sessionStorage.setItem(GUIDE_KEY, JSON.stringify(Object.fromEntries(kept.map((k) => [k, g[k]]))));
}

// restoreGuide picks up the guide a reload interrupted: the first check
// brings the clock, or the summary if the guide ended while the page was
// away; only a guide still on rejoins the room with the kept token.
async function restoreGuide() {
  let g = null;
  try { g = JSON.parse(sessionStorage.getItem(GUIDE_KEY)); } catch { /* none */ }
  if (!g || !g.gsSeq) return;
  if (g.phase === 'ended') {
    state.guide = g;
    return;
  }
  enterGuide(g);
  await check();
  if (state.guide === g && (g.phase === 'approved' || g.phase === 'active') && g.videoToken) joinVideo(g.roomId, g.videoToken);
}

const isUser = () => state.account && state.account.role === 'user';
const serverNow = () => Date.now() + state.clockOffset;

function formatTime(d) {
  return d.toLocaleTimeString(lang() === 'en' ? 'en-GB' : 'ko-KR', { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

function formatClock(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds || 0));
  return s >= 60 ? tf('durationMinSec', { m: Math.floor(s / 60), s: s % 60 }) : tf('durationSec', { s });
}

function availabilityText(a) {
  return t({ available: 'availableNow', busy: 'busyNow', offline: 'offlineNow' }[a] || 'offlineNow');
}

function ratingText(m) {
  return tf('ratingOf', { r: Number(m.rating || 0).toFixed(1), n: m.ratingCount || 0 });
}

const reasonKeys = {
  userEnded: 'reasonUserEnded', mateEnded: 'reasonMateEnded', expired: 'reasonExpired',
  connectionLost: 'reasonConnectionLost', vanished: 'reasonVanished',
};

// refusalKeys turn a refusal's reason into this page's outcome text.
const refusalKeys = {
  mateBusy: 'outcomeMateBusy', mateOffline: 'outcomeMateOffline', noTicket: 'outcomeNoTicket',
  noMateAvailable: 'outcomeNoMate', notFriend: 'outcomeNotFriend', alreadyInGuide: 'outcomeInGuide',
};

// setOutcome shows what just happened in the status line (an aria-live
// region); key is an i18n key, data-outcome names it for scripts.
function setOutcome(key) {
  state.outcome = key;
  renderStatus();
}

function fail(err) {
  if (err instanceof GuideError && refusalKeys[err.reason]) setOutcome(refusalKeys[err.reason]);
  else banner.show(err.message);
}

// ---- login -----------------------------------------------------------

function showLogin(message) {
  document.body.dataset.phase = 'login';
  showLoginForm($('#guide-view'), message);
}

function signedIn(res) {
  state.session = { token: res.token, account: res.account };
  saveSession(state.session);
  start(res.account);
}

function logout(message) {
  stopEvents();
  leaveGuide();
  state.session = null;
  state.account = null;
  state.friends = null;
  state.incoming = null;
  state.outcome = '';
  saveSession(null);
  saveGuide();
  showLogin(message);
}

// ---- the page --------------------------------------------------------

function start(account) {
  state.account = account;
  $('#login-view').hidden = true;
  $('#guide-view').hidden = false;
  $('#logout').hidden = false;
  document.body.dataset.role = account.role;
  restoreGuide();
  openEvents();
  refreshAccount();
  // The stream's opening asks again; this shows a waiting request even
  // while the stream is still connecting.
  loadRequests();
  render();
}

async function refreshAccount() {
  try {
    const me = await api('GET', '/guide/me');
    state.account = me.account;
    if (isUser()) state.friends = (await api('GET', '/guide/friends')).friends || [];
  } catch (err) {
    if (err.status !== 401) banner.show(err.message);
    return;
  }
  render();
}

function phase() {
  return state.guide ? state.guide.phase : 'home';
}

function render() {
  if (!state.account) return;
  const a = state.account;
  const p = phase();
  document.body.dataset.phase = p;
  $('#who').textContent = `${a.name} (${t(isUser() ? 'roleUser' : 'roleMate')})`;
  $('#user-home').hidden = !(isUser() && p === 'home');
  $('#mate-home').hidden = !(!isUser() && p === 'home');
  $('#waiting').hidden = p !== 'requested';
  $('#in-guide').hidden = p !== 'approved' && p !== 'active';
  $('#ended').hidden = p !== 'ended';
  if (isUser()) {
    renderUserHome();
    $('#request-card').hidden = true;
  } else {
    renderMateHome();
  }
  renderWaiting();
  renderInGuide();
  renderEnded();
  renderStatus();
  saveGuide();
}

function renderStatus() {
  const el = $('#guide-status');
  el.textContent = state.outcome ? t(state.outcome) : '';
  el.dataset.outcome = state.outcome;
}

function renderUserHome() {
  const a = state.account;
  $('#tickets-left').textContent = a.tickets === undefined ? '–' : String(a.tickets);
  const busy = Boolean(state.guide);
  $('#quick-connect').disabled = busy;
  $('#shake').disabled = busy;
  const list = $('#friend-list');
  clear(list);
  const friends = state.friends || [];
  $('#friends-empty').hidden = !state.friends || friends.length > 0;
  for (const f of friends) {
    list.append(h('li', { class: 'mate-item', dataset: { mateId: f.id, availability: f.availability } },
      h('div', { class: 'mate-info' },
        h('span', { class: 'mate-name' }, f.name),
        h('span', { class: `availability ${f.availability}` }, availabilityText(f.availability)),
        h('span', { class: 'muted' }, ratingText(f))),
      h('button', {
        type: 'button', class: 'ghost connect-friend', disabled: busy,
        'aria-label': `${t('connectFriend')}: ${f.name}`, onclick: () => ask({ friendId: f.id }),
      }, t('connectFriend'))));
  }
}

function renderMateHome() {
  const a = state.account;
  const box = $('#available');
  box.checked = a.availability === 'available' || a.availability === 'busy';
  box.disabled = a.availability === 'busy';
  $('#availability').textContent = availabilityText(a.availability);
  $('#availability').dataset.availability = a.availability || '';
  $('#my-rating').textContent = ratingText(a);
  // A request may come while the last guide's summary is still up.
  const req = state.incoming;
  $('#request-card').hidden = !req || (phase() !== 'home' && phase() !== 'ended');
  if (req) {
    $('#request-card').dataset.gsSeq = req.gsSeq;
    $('#request-from').textContent = tf('requestFrom', { name: (req.user && req.user.name) || '?' });
    $('#request-expires').textContent = req.expiresAt ? tf('answerBy', { time: formatTime(new Date(req.expiresAt)) }) : '';
  }
}

function renderWaiting() {
  const g = state.guide;
  if (!g || g.phase !== 'requested') return;
  $('#waiting-mate').textContent = g.peer ? tf('waitingFor', { name: g.peer.name }) : '';
  $('#waiting-expires').textContent = g.expiresAt ? tf('requestExpiresAt', { time: formatTime(new Date(g.expiresAt)) }) : '';
}

function renderInGuide() {
  const g = state.guide;
  if (!g || (g.phase !== 'approved' && g.phase !== 'active')) return;
  $('#in-guide').dataset.gsSeq = g.gsSeq;
  $('#in-guide-title').textContent = g.phase === 'active' ? t('guideRunning') : t('joiningVideo');
  $('#peer-name').textContent = g.peer ? tf('guideWith', { name: g.peer.name }) : '';
  const running = g.phase === 'active' && g.endsAt;
  $('#guide-clock').hidden = !running;
  if (running) {
    const ends = $('#guide-ends-at');
    ends.setAttribute('datetime', g.endsAt.toISOString());
    ends.textContent = formatTime(g.endsAt);
    $('#guide-tickets-used').textContent = tf('ticketsUsedNow', { n: g.ticketsUsed || 0 });
    $('#guide-tickets-left').textContent = String(state.account.tickets);
  }
  $('#guide-tickets').hidden = !(running && isUser());
  tick();
  const warn = $('#guide-warning');
  warn.hidden = !(running && g.warning);
  $('#guide-warning-text').textContent = t(isUser() ? 'warningUser' : 'warningMate');
  const extend = $('#extend');
  extend.hidden = !isUser();
  const noTicket = isUser() && state.account.tickets <= 0;
  extend.disabled = noTicket || g.extending;
  $('#extend-note').hidden = !noTicket;
  $('#extend-note').textContent = t('extendNoTicket');
  if (noTicket) extend.setAttribute('aria-describedby', 'extend-note');
  else extend.removeAttribute('aria-describedby');
  $('#end-guide').disabled = Boolean(g.ending);
}

// tick shows the time left until the server's endsAt.
function tick() {
  const g = state.guide;
  if (!g || g.phase !== 'active' || !g.endsAt) return;
  const left = (g.endsAt.getTime() - serverNow()) / 1000;
  const el = $('#guide-remaining');
  el.textContent = formatClock(left);
  el.dataset.seconds = String(Math.max(0, Math.ceil(left)));
}

function renderEnded() {
  const g = state.guide;
  if (!g || g.phase !== 'ended') return;
  const s = g.summary || {};
  $('#ended').dataset.gsSeq = g.gsSeq;
  $('#ended').dataset.reason = s.reason || '';
  $('#ended').dataset.ghSeq = g.ghSeq || '';
  $('#summary-reason').textContent = t(reasonKeys[s.reason] || 'reasonUnknown');
  $('#summary-tickets').textContent = s.ticketsUsed === undefined ? '–' : tf('ticketCount', { n: s.ticketsUsed });
  $('#summary-duration').textContent = s.durationSeconds === undefined ? '–' : formatDuration(s.durationSeconds);
  const canRate = isUser() && g.ghSeq > 0;
  $('#rating-form').hidden = !canRate || g.rated;
  $('#rating-done').hidden = !(isUser() && g.rated);
  renderStars();
  renderTop();
  $('#crm-form').hidden = isUser() || !(g.ghSeq > 0);
  const result = $('#crm-result');
  result.hidden = !g.noteSaved;
  result.className = 'form-result ok';
  result.textContent = t('noteSaved');
}

function renderStars() {
  const box = $('#stars');
  if (!box.childElementCount) {
    for (let n = 1; n <= 5; n += 1) {
      const input = h('input', { type: 'radio', name: 'stars', value: n, class: 'sr-only' });
      input.addEventListener('change', () => { state.stars = n; renderStars(); });
      box.append(h('label', { class: 'star', dataset: { stars: n } }, input, h('span', { 'aria-hidden': 'true' }, '★'), h('span', { class: 'sr-only star-text' })));
    }
  }
  for (const label of box.querySelectorAll('label.star')) {
    const n = Number(label.dataset.stars);
    label.classList.toggle('on', n <= state.stars);
    label.querySelector('.star-text').textContent = tf('starN', { n });
    label.title = tf('starN', { n });
  }
}

function renderTop() {
  const list = $('#top-mates');
  clear(list);
  for (const m of state.top || []) {
    list.append(h('li', { class: 'top-mate', dataset: { mateId: m.id, rank: m.rank } },
      h('span', { class: 'rank' }, tf('rankN', { n: m.rank })),
      h('span', { class: 'mate-name' }, m.name),
      h('span', { class: 'mate-rating', dataset: { rating: Number(m.rating || 0).toFixed(2), count: m.ratingCount || 0 } }, ratingText(m))));
  }
}

// ---- events (/guide/events) --------------------------------------------

function renderConn(s) {
  const el = $('#conn');
  el.hidden = false;
  el.dataset.state = s;
  el.textContent = t({ connecting: 'stateConnecting', connected: 'stateConnected', reconnecting: 'stateReconnecting', disconnected: 'stateDisconnected' }[s]);
}

const eventTypes = ['guideRequest', 'guideApproved', 'guideRejected', 'guideTimeout', 'guideCancelled',
  'guideBegun', 'guideWarning', 'guideExtended', 'guideEnded'];

function openEvents() {
  stopEvents();
  renderConn('connecting');
  const es = new EventSource(`/guide/events?token=${encodeURIComponent(state.session.token)}&lang=${lang()}`);
  state.events = es;
  es.onopen = () => {
    renderConn('connected');
    // Pushes sent while the stream was down are gone: ask.
    if (state.guide && state.guide.phase !== 'ended') check();
    loadRequests();
  };
  es.onerror = () => {
    if (state.events !== es) return;
    if (es.readyState !== EventSource.CLOSED) { renderConn('reconnecting'); return; }
    // The browser gave up (the server refused the stream): a dead token
    // logs out (api does), anything else is retried.
    renderConn('disconnected');
    es.close();
    state.events = null;
    api('GET', '/guide/me').then(() => {
      if (state.session) state.eventsRetry = setTimeout(openEvents, 3000);
    }, (err) => {
      if (err.status !== 401 && state.session) state.eventsRetry = setTimeout(openEvents, 3000);
    });
  };
  for (const type of eventTypes) {
    es.addEventListener(type, (e) => {
      let ev;
      try { ev = JSON.parse(e.data); } catch { return; }
      onEvent(type, ev);
    });
  }
}

function stopEvents() {
  clearTimeout(state.eventsRetry);
  if (state.events) state.events.close();
  state.events = null;
}

function onEvent(type, ev) {
  const g = state.guide && state.guide.gsSeq === ev.gsSeq ? state.guide : null;
  // A warning is about one end: the extension's answer may reach the page
  // before the warning of the end it replaced, which then no longer holds.
  if (type === 'guideWarning' && g && g.endsAt && ev.endsAt && new Date(ev.endsAt) < g.endsAt) return;
  if (typeof ev.ticketsLeft === 'number' && isUser()) state.account.tickets = ev.ticketsLeft;
  switch (type) {
    case 'guideRequest':
      offer({ gsSeq: ev.gsSeq, user: ev.user, expiresAt: ev.expiresAt });
      break;
    case 'guideCancelled':
      if (state.incoming && state.incoming.gsSeq === ev.gsSeq) {
        state.incoming = null;
        setOutcome(ev.reason === 'timeout' ? 'outcomeRequestExpired' : 'outcomeRequestWithdrawn');
        refreshAccount();
      } else if (g && g.phase !== 'ended') {
        backHome(ev.reason === 'notBegun' ? 'outcomeNotBegun' : 'outcomeCancelledByOther');
      }
      break;
    case 'guideApproved':
      if (g && g.phase === 'requested') {
        g.phase = 'approved';
        if (ev.mate) g.peer = ev.mate;
        g.roomId = ev.roomId;
        g.videoToken = ev.token;
        setOutcome('outcomeApproved');
        joinVideo(ev.roomId, ev.token);
      }
      break;
    case 'guideRejected':
      if (g && g.phase === 'requested') backHome('outcomeRejected');
      break;
    case 'guideTimeout':
      if (g && g.phase === 'requested') backHome('outcomeTimeout');
      break;
    case 'guideBegun':
    case 'guideWarning':
    case 'guideExtended':
      if (!g || g.phase === 'ended') break;
      if (type === 'guideBegun' && g.phase !== 'active') setOutcome('outcomeBegun');
      if (type === 'guideExtended') setOutcome('outcomeExtended');
      runClock(g, { ghSeq: ev.ghSeq, endsAt: ev.endsAt, remainingSeconds: ev.remainingSeconds, ticketsUsed: ev.ticketsUsed });
      // A warning stands until an extension moves the end.
      if (type === 'guideWarning') g.warning = true;
      if (type === 'guideExtended') g.warning = false;
      break;
    case 'guideEnded':
      if (g) ended(g, { reason: ev.reason, ticketsUsed: ev.ticketsUsed, durationSeconds: ev.durationSeconds, ghSeq: ev.ghSeq });
      break;
  }
  render();
}

// ---- requests to the mate ------------------------------------------------

// offer shows a request to this mate, pushed (guideRequest) or listed
// (/guide/requests); one already shown stays as it is.
function offer(req) {
  if (isUser() || (state.guide && state.guide.phase !== 'ended')) return;
  if (state.incoming && state.incoming.gsSeq === req.gsSeq) return;
  state.incoming = req;
  setOutcome('outcomeRequested');
}

// loadRequests shows the requests still waiting for this mate's answer:
// a guideRequest pushed while the page was closed or its stream was down
// is gone, the list is not. A shown request the list no longer has was
// answered or lapsed meanwhile.
async function loadRequests() {
  const session = state.session;
  if (!session || !state.account || isUser()) return;
  const shown = state.incoming;
  let requests;
  try {
    requests = (await api('GET', '/guide/requests')).requests || [];
  } catch (err) {
    // A network error: the stream's next opening asks again.
    if (err.status !== 401 && err.status !== 0) banner.show(err.message);
    return;
  }
  if (state.session !== session) return;
  // Only a request shown before the list was asked for can be missing
  // from it for good; one pushed meanwhile may be newer than the list.
  if (shown && state.incoming === shown && !requests.some((r) => r.session.gsSeq === shown.gsSeq)) {
    state.incoming = null;
    const lapsed = shown.expiresAt && new Date(shown.expiresAt).getTime() <= serverNow();
    state.outcome = lapsed ? 'outcomeRequestExpired' : 'outcomeRequestWithdrawn';
  }
  // The oldest first, as a push would have shown it.
  if (!state.incoming && requests.length) {
    const r = requests[0];
    offer({ gsSeq: r.session.gsSeq, user: r.user, expiresAt: r.expiresAt });
  }
  render();
}

// ---- the guide ---------------------------------------------------------

// runClock puts g in the active phase with the server's clock.
function runClock(g, { ghSeq, endsAt, remainingSeconds, ticketsUsed }) {
  if (ghSeq) g.ghSeq = ghSeq;
  if (typeof ticketsUsed === 'number') g.ticketsUsed = ticketsUsed;
  if (endsAt) {
    const end = new Date(endsAt);
    // The end only moves later (an extension); an earlier one is an
    // answer that was on its way while the guide was extended.
    if (!g.endsAt || end > g.endsAt) {
      // A new period: the warning was for the old end.
      if (g.endsAt) g.warning = false;
      g.endsAt = end;
    }
    // Only a skew the rounding of remainingSeconds cannot explain counts.
    if (typeof remainingSeconds === 'number') {
      const skew = end.getTime() - remainingSeconds * 1000 - Date.now();
      state.clockOffset = Math.abs(skew) > 2000 ? skew : 0;
    }
  }
  g.phase = 'active';
}

function enterGuide(g) {
  state.guide = g;
  state.outcome = '';
  delete $('#in-guide').dataset.cue;
  clearInterval(state.checkTimer);
  state.checkTimer = setInterval(check, CHECK_EVERY);
  clearInterval(state.tickTimer);
  state.tickTimer = setInterval(tick, 250);
}

// ask is quick connect ({} or {friendId}).
async function ask(body) {
  if (state.guide) return;
  setOutcome('');
  try {
    const res = await api('POST', '/guide/match', body);
    requested(res);
  } catch (err) {
    fail(err);
    refreshAccount();
  }
}

async function shake() {
  if (state.guide) return;
  setOutcome('');
  try {
    requested(await api('POST', '/guide/shake'));
  } catch (err) {
    fail(err);
    refreshAccount();
  }
}

function requested(res) {
  enterGuide({ gsSeq: res.session.gsSeq, ghSeq: 0, phase: 'requested', peer: res.mate, expiresAt: res.expiresAt });
  render();
  $('#cancel-request').focus();
}

async function cancelRequest() {
  const g = state.guide;
  if (!g || g.phase !== 'requested') return;
  try {
    await api('POST', '/guide/cancel', { gsSeq: g.gsSeq });
    if (state.guide === g) backHome('outcomeCancelled');
  } catch (err) {
    // Answered meanwhile: the push (or the next check) says how.
    if (err.reason !== 'requestClosed') banner.show(err.message);
  }
}

async function approve() {
  const req = state.incoming;
  if (!req || (state.guide && state.guide.phase !== 'ended')) return;
  if (state.guide) leaveGuide();
  $('#approve').disabled = true;
  try {
    const res = await api('POST', '/guide/create', { gsSeq: req.gsSeq });
    state.incoming = null;
    state.account.availability = 'busy';
    enterGuide({ gsSeq: req.gsSeq, ghSeq: 0, phase: 'approved', peer: res.user || req.user, roomId: res.roomId, videoToken: res.token });
    setOutcome('');
    render();
    joinVideo(res.roomId, res.token);
  } catch (err) {
    state.incoming = null;
    if (err.reason === 'requestClosed') setOutcome('outcomeRequestWithdrawn');
    else banner.show(err.message);
    render();
  } finally {
    $('#approve').disabled = false;
  }
}

async function reject() {
  const req = state.incoming;
  if (!req) return;
  state.incoming = null;
  try {
    await api('POST', '/guide/reject', { gsSeq: req.gsSeq });
    setOutcome('outcomeDeclined');
  } catch (err) {
    if (err.reason !== 'requestClosed') banner.show(err.message);
  }
  render();
}

async function setAvailable(on) {
  try {
    const res = await api('POST', '/guide/availability', { availability: on ? 'available' : 'offline' });
    state.account = res.account;
  } catch (err) {
    banner.show(err.message);
  }
  render();
}

const call = new VideoCall({
  onAccept: () => {},
  onDecline: () => {},
  onHangUp: () => endGuide(),
  // The user's app begins the guide once the mate's video shows.
  onRemoteVideo: () => begin(),
  onAppSignal: (msg) => {
    // G0001: the user's app has begun the guide. The cue carries nothing
    // this page trusts; it asks the server at once instead of waiting for
    // the push or the next check.
    const g = state.guide;
    if (msg.id !== 'G0001' || !g || (msg.data && msg.data.gsSeq !== g.gsSeq)) return;
    $('#in-guide').dataset.cue = msg.id;
    if (g.phase === 'approved') check();
  },
});
// The guide has its own end button (the server ends the guide and the
// room with it).
call.hangUpButton.hidden = true;

function joinVideo(roomId, token) {
  call.join({ token, userId: state.account.id, videoRoomId: roomId }, 'callConnecting');
}

async function begin() {
  const g = state.guide;
  if (!isUser() || !g || g.phase !== 'approved' || g.beginSent) return;
  g.beginSent = true;
  try {
    const res = await api('POST', '/guide/begin', { gsSeq: g.gsSeq });
    state.account.tickets = res.ticketsLeft;
    if (state.guide === g && g.phase !== 'ended') {
      runClock(g, { ghSeq: res.ghSeq, endsAt: res.history.endsAt, remainingSeconds: res.remainingSeconds, ticketsUsed: res.history.ticketsUsed });
      setOutcome('outcomeBegun');
      // The seed's cue to the mate's app over the room: the guide runs.
      call.signal({ id: 'G0001', data: { gsSeq: g.gsSeq, ghSeq: res.ghSeq } });
    }
  } catch (err) {
    // Begun before a reload, or withdrawn meanwhile: the check tells.
    if (err.reason === 'notApproved') check();
    else banner.show(err.message);
  }
  render();
}

async function extend() {
  const g = state.guide;
  if (!g || g.phase !== 'active' || g.extending) return;
  g.extending = true;
  render();
  try {
    const res = await api('POST', '/guide/extend', { gsSeq: g.gsSeq });
    state.account.tickets = res.ticketsLeft;
    if (state.guide === g && g.phase === 'active') {
      runClock(g, { ghSeq: res.ghSeq, endsAt: res.history.endsAt, remainingSeconds: res.remainingSeconds, ticketsUsed: res.history.ticketsUsed });
      g.warning = false;
      setOutcome('outcomeExtended');
    }
  } catch (err) {
    if (err.reason === 'noTicket') state.account.tickets = 0;
    fail(err);
  } finally {
    g.extending = false;
  }
  render();
}

async function endGuide() {
  const g = state.guide;
  if (!g || (g.phase !== 'active' && g.phase !== 'approved') || g.ending) return;
  g.ending = true;
  render();
  try {
    if (g.phase === 'approved') {
      // Not begun yet: withdraw it, no ticket is spent.
      await api('POST', '/guide/cancel', { gsSeq: g.gsSeq });
      if (state.guide === g) backHome('outcomeCancelled');
      return;
    }
    const res = await api('POST', '/guide/complete', { gsSeq: g.gsSeq });
    ended(g, summaryOf(res.history));
  } catch (err) {
    banner.show(err.message);
    check();
  } finally {
    g.ending = false;
  }
  render();
}

// check is the 5-second session check; it also notices endings whose push
// was lost.
async function check() {
  const g = state.guide;
  if (!g || g.phase === 'ended') return;
  let res;
  try {
    res = await api('GET', `/guide/session/${g.gsSeq}`);
  } catch (err) {
    if (err.status === 404 && state.guide === g) backHome('outcomeCancelledByOther');
    return; // a network error: the next check tries again
  }
  if (state.guide !== g || g.phase === 'ended') return;
  if (typeof res.warnBeforeSeconds === 'number') state.warnBefore = res.warnBeforeSeconds;
  if (res.valid) {
    if (g.phase !== 'active') setOutcome('outcomeBegun');
    runClock(g, { ghSeq: res.ghSeq, endsAt: res.endsAt, remainingSeconds: res.remainingSeconds, ticketsUsed: res.ticketsUsed });
    if (state.warnBefore > 0 && (g.endsAt - serverNow()) / 1000 <= state.warnBefore) g.warning = true;
    render();
    return;
  }
  switch (res.status) {
    case 'completed':
    case 'deleted':
      // The guideEnded push was lost: the check's history says how it
      // ended.
      ended(g, summaryOf(res.history, res.ticketsUsed));
      render();
      break;
    case 'rejected':
      backHome('outcomeRejected');
      break;
    case 'timeout':
      backHome(isUser() ? 'outcomeTimeout' : 'outcomeRequestExpired');
      break;
    case 'cancelled':
      backHome('outcomeCancelledByOther');
      break;
  }
}

// summaryOf is the summary of an ended guide from its history (the
// answers of /guide/complete and of the check); without one it shows what
// is known.
function summaryOf(hist, ticketsUsed) {
  if (!hist) return { ticketsUsed };
  return { reason: hist.endReason, ticketsUsed: hist.ticketsUsed, durationSeconds: hist.durationSeconds, ghSeq: hist.ghSeq };
}

// ended shows the summary once, whichever way the guide ended.
function ended(g, summary) {
  if (g.phase === 'ended') return;
  g.phase = 'ended';
  g.summary = summary;
  if (summary.ghSeq) g.ghSeq = summary.ghSeq;
  g.warning = false;
  clearInterval(state.checkTimer);
  clearInterval(state.tickTimer);
  if (call.active || call.ws) call.ended('callEnded');
  state.outcome = 'outcomeEnded';
  state.stars = 0;
  for (const r of document.querySelectorAll('#stars input')) r.checked = false;
  $('#rating-comment').value = '';
  $('#crm-note').value = '';
  if (isUser()) {
    // The session is finished with; the history, CRM record and rating
    // stay.
    api('POST', '/guide/session/delete', { gsSeq: g.gsSeq }).catch(() => {});
  }
  refreshAccount();
}

// backHome leaves the guide (if any) and shows outcome.
function backHome(outcome) {
  leaveGuide();
  state.outcome = outcome || '';
  refreshAccount();
  render();
}

function leaveGuide() {
  clearInterval(state.checkTimer);
  clearInterval(state.tickTimer);
  if (call.active || call.ws) call.ended('');
  state.guide = null;
  state.top = null;
}

async function rate(e) {
  e.preventDefault();
  const g = state.guide;
  if (!g || !g.ghSeq) return;
  const err = $('#rating-error');
  if (!state.stars) {
    err.textContent = t('pickStars');
    err.hidden = false;
    return;
  }
  err.hidden = true;
  const button = $('#rating-submit');
  button.disabled = true;
  try {
    await api('POST', '/eval', { ghSeq: g.ghSeq, stars: state.stars, comment: $('#rating-comment').value.trim() });
    g.rated = true;
    await loadTop();
  } catch (e2) {
    if (e2.reason === 'alreadyEvaluated') {
      g.rated = true;
      await loadTop();
    } else {
      err.textContent = e2.message;
      err.hidden = false;
    }
  } finally {
    button.disabled = false;
  }
  render();
}

async function loadTop() {
  try {
    state.top = (await api('GET', '/guide/mates/top?limit=10')).mates || [];
  } catch (err) {
    banner.show(err.message);
  }
}

async function saveNote(e) {
  e.preventDefault();
  const g = state.guide;
  if (!g || !g.ghSeq) return;
  const button = $('#crm-submit');
  button.disabled = true;
  try {
    await api('POST', '/guide/crm', { ghSeq: g.ghSeq, note: $('#crm-note').value });
    g.noteSaved = true;
  } catch (err) {
    banner.show(err.message);
  } finally {
    button.disabled = false;
  }
  render();
}

// ---- start -----------------------------------------------------------

function main() {
  initLang();
  bindToggle($('#lang'));
  $('#call-slot').replaceWith(call.el);
  onLangChange(() => {
    call.relabel();
    if (state.account) render();
    const conn = $('#conn');
    if (conn.dataset.state) renderConn(conn.dataset.state);
  });
  bindLogin({
    submit: (loginName, password) => api('POST', '/guide/login', { loginName, password }),
    signedIn,
    failed: showLogin,
  });
  $('#logout').addEventListener('click', () => logout(''));
  $('#quick-connect').addEventListener('click', () => ask({}));
  $('#shake').addEventListener('click', shake);
  $('#cancel-request').addEventListener('click', cancelRequest);
  $('#available').addEventListener('change', (e) => setAvailable(e.target.checked));
  $('#approve').addEventListener('click', approve);
  $('#reject').addEventListener('click', reject);
  $('#extend').addEventListener('click', extend);
  $('#end-guide').addEventListener('click', endGuide);
  $('#rating-form').addEventListener('submit', rate);
  $('#crm-form').addEventListener('submit', saveNote);
  $('#back-home').addEventListener('click', () => backHome(''));
  state.session = loadSession();
  if (!state.session) return showLogin('');
  // A kept token may have expired: ask before opening the stream.
  api('GET', '/guide/me')
    .then((me) => start(me.account))
    .catch((err) => { if (err.status !== 401) logout(err.message); });
}

main();
