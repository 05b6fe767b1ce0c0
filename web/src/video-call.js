import { h } from './dom.js';
import { t, lang } from './i18n.js';

// REJOIN_DELAYS are the pauses (ms) before each rejoin of a call whose
// signaling went away; past the last the call has failed. Together they
// outlast a dead node's room lease (10 s by default), after which the
// room opens on a node that is alive.
const REJOIN_DELAYS = [300, 1000, 2000, 3000, 5000, 5000, 5000, 5000, 5000, 5000];
// DISCONNECTED_GRACE is how long a disconnected peer connection may come
// back by itself before ICE is restarted; RESTART_RETRY how long a restart
// has to connect before the next; MAX_ICE_RESTARTS how many in a row
// before the call is joined again from scratch.
const DISCONNECTED_GRACE = 3000;
const RESTART_RETRY = 10000;
const MAX_ICE_RESTARTS = 3;
// SIMULCAST_LAYERS are the camera's encodings, smallest first, as the
// server takes them (any rids; it ranks layers by width).
const SIMULCAST_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4 },
  { rid: 'h', scaleResolutionDownBy: 2 },
  { rid: 'f', scaleResolutionDownBy: 1 },
];

// VideoCall is the call panel of a chat room: the invitation prompt, the
// local and remote videos, camera and microphone switches, hang-up and the
// call's state. It speaks seed 002's signaling protocol over a plain
// WebSocket to /signal: joinRoom, then one publishing peer connection for
// this side and one receiving peer connection per other participant.
//
// The chat side of the call (VIDEO_START, VIDEO_INVITE, VIDEO_ACCEPT,
// VIDEO_DECLINE, VIDEO_END, VIDEO_ENDED) is the page's; it calls
// invited/join/ended and gets onAccept/onDecline/onHangUp; onRemoteVideo
// tells, once per participant, that its video shows (the guide page
// begins the guide on it), and onAppSignal hands over the app signals
// (G0001…) other participants relay through the room.
//
// The call survives what a network and a cluster do to it: a signaling
// socket that drops, or a server that says shutdown (it drains, or the
// room's node died), is joined again by itself, with pauses that grow
// (REJOIN_DELAYS) and a notice, wherever the room is then; a peer
// connection that fails while the socket is up restarts ICE on the same
// connection (restartIce), and the server's own restart offers
// (iceRestartOffer) are answered. onTokenExpired, when given, is asked for
// a fresh token (the page calls join with it) when a rejoin's token ran
// out; without it the call ends. The camera is published in three
// simulcast layers (SIMULCAST_LAYERS) where the browser can.
export class VideoCall {
  constructor({ onAccept, onDecline, onHangUp, onPhase = () => {}, onRemoteVideo = () => {}, onAppSignal = () => {}, onTokenExpired = null }) {
    this.onTokenExpired = onTokenExpired;
    this.attempts = 0; // rejoins since the last that worked
    this.retryTimer = null;
    this.rejoining = false;
    this.peerConnections = 0; // made so far: a restart makes none
    this.iceRestarts = 0;
    this.onPhase = onPhase;
    this.onRemoteVideo = onRemoteVideo;
    this.onAppSignal = onAppSignal;
    this.onAccept = onAccept;
    this.onDecline = onDecline;
    this.onHangUp = onHangUp;
    this.phase = 'idle'; // idle | invited | waiting | connecting | connected
    this.stateKey = '';
    this.stateExtra = '';
    this.ws = null;
    this.me = '';
    this.local = null; // MediaStream
    this.peers = new Map(); // userId -> {pc, pending: [], answered}
    this.creds = null;
    this.videoOn = true;
    this.audioOn = true;

    this.recorded = false;
    this.stateText = h('p', { class: 'call-state', role: 'status' });
    this.recordedNote = h('p', { class: 'call-recorded', hidden: true });
    this.acceptButton = h('button', { type: 'button', class: 'primary call-accept', onclick: () => this.accept() });
    this.declineButton = h('button', { type: 'button', class: 'danger call-decline', onclick: () => this.decline() });
    this.prompt = h('div', { class: 'call-prompt', hidden: true }, this.acceptButton, this.declineButton);
    this.localVideo = h('video', { class: 'call-local', autoplay: true, playsinline: true, muted: true });
    this.localVideo.muted = true;
    this.remoteBox = h('div', { class: 'call-remotes' });
    this.remoteNote = h('p', { class: 'call-remote-note', hidden: true });
    this.stage = h('div', { class: 'call-stage', hidden: true }, this.remoteBox, this.remoteNote, this.localVideo);
    this.cameraButton = h('button', { type: 'button', class: 'ghost call-camera', onclick: () => this.toggleVideo() });
    this.micButton = h('button', { type: 'button', class: 'ghost call-mic', onclick: () => this.toggleAudio() });
    this.hangUpButton = h('button', { type: 'button', class: 'danger call-hangup', onclick: () => this.hangUp() });
    this.controls = h('div', { class: 'call-controls', hidden: true }, this.cameraButton, this.micButton, this.hangUpButton);
    this.el = h('section', { class: 'video-call', hidden: true, dataset: { phase: 'idle' } },
      this.stateText, this.recordedNote, this.prompt, this.stage, this.controls);
    this.relabel();
  }

  get active() { return this.phase !== 'idle'; }

  relabel() {
    this.acceptButton.textContent = t('callAccept');
    this.declineButton.textContent = t('callDecline');
    this.cameraButton.textContent = t(this.videoOn ? 'cameraOff' : 'cameraOn');
    this.micButton.textContent = t(this.audioOn ? 'micOff' : 'micOn');
    this.hangUpButton.textContent = t('hangUp');
    this.cameraButton.setAttribute('aria-pressed', String(!this.videoOn));
    this.micButton.setAttribute('aria-pressed', String(!this.audioOn));
    this.stateText.textContent = this.stateKey ? t(this.stateKey) + (this.stateExtra ? `: ${this.stateExtra}` : '') : '';
    this.remoteNote.textContent = t('remoteCameraOff');
    this.recordedNote.textContent = t('callRecorded');
    this.recordedNote.hidden = !this.recorded || this.phase === 'idle';
  }

  // setRecorded shows (or hides) that the call is recorded: the
  // invitation says whether the company records, and the system message
  // of a recording that began says it again.
  setRecorded(on) {
    this.recorded = Boolean(on);
    this.relabel();
  }

  setPhase(phase, stateKey, extra = '') {
    this.phase = phase;
    this.stateKey = stateKey;
    this.stateExtra = extra;
    this.el.dataset.phase = phase;
    this.el.hidden = phase === 'idle' && !stateKey;
    this.prompt.hidden = phase !== 'invited';
    const inCall = phase === 'waiting' || phase === 'connecting' || phase === 'connected';
    this.stage.hidden = !inCall;
    this.controls.hidden = !inCall;
    this.relabel();
    this.onPhase(phase);
  }

  // invited shows VIDEO_INVITE: the side that called joins at once and
  // waits; the other is asked.
  invited(creds, mine) {
    if (this.ws || this.local) return;
    this.creds = creds;
    this.recorded = Boolean(creds.recorded);
    if (mine) this.join(creds, 'callWaiting');
    else this.setPhase('invited', 'callIncoming');
  }

  // accept answers the prompt. Without credentials (a call found running
  // after a reload) the page asks for them and calls join when they come.
  accept() {
    if (this.phase !== 'invited') return;
    this.onAccept(Boolean(this.creds));
    if (this.creds) this.join(this.creds, 'callConnecting');
    else this.setPhase('connecting', 'callConnecting');
  }

  // ongoing offers to rejoin a call the history says is still running.
  ongoing(recorded = false) {
    if (this.phase !== 'idle' || this.ws) return;
    this.creds = null;
    this.recorded = recorded;
    this.setPhase('invited', 'callOngoing');
  }

  decline() {
    if (this.phase !== 'invited') return;
    this.onDecline();
    this.setPhase('idle', '');
  }

  hangUp() {
    this.onHangUp();
    this.ended('callEnded');
  }

  // ended puts the call away (VIDEO_ENDED, VIDEO_DECLINED, a hang-up),
  // leaving a line that says why.
  ended(stateKey = 'callEnded', extra = '') {
    if (this.ws) {
      try { this.ws.send(JSON.stringify({ id: 'leaveRoom' })); } catch { /* closing anyway */ }
    }
    this.closeSocket();
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.attempts = 0;
    this.rejoining = false;
    for (const userId of [...this.peers.keys()]) this.dropPeer(userId);
    if (this.local) for (const track of this.local.getTracks()) track.stop();
    this.local = null;
    this.localVideo.srcObject = null;
    this.remoteBox.replaceChildren();
    this.creds = null;
    this.recorded = false;
    this.setPhase('idle', stateKey, extra);
  }

  // join opens the signaling socket and joins creds.videoRoomId as
  // creds.userId with creds.token. A call already under way (a rejoin
  // with a fresh token) keeps its camera and switches.
  async join(creds, stateKey) {
    this.creds = creds;
    this.me = String(creds.userId);
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.local) {
      this.connect();
      return;
    }
    this.videoOn = true;
    this.audioOn = true;
    this.attempts = 0;
    this.rejoining = false;
    this.setPhase(stateKey === 'callWaiting' ? 'waiting' : 'connecting', stateKey);
    let local;
    try {
      local = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
    } catch (err) {
      this.ended('mediaFailed', err.message);
      return;
    }
    if (!this.creds || this.local) { // put away (or opened twice) while the camera was opening
      for (const track of local.getTracks()) track.stop();
      return;
    }
    this.local = local;
    this.localVideo.srcObject = local;
    this.connect();
  }

  // connect opens a signaling socket and joins the room with it. The
  // socket's messages are handled one at a time, in order: a candidate
  // must not overtake the offer or answer it belongs to.
  connect() {
    this.closeSocket();
    const creds = this.creds;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/signal?lang=${lang()}`);
    this.ws = ws;
    let queue = Promise.resolve();
    ws.onopen = () => this.signal({
      id: 'joinRoom', token: creds.token, userId: this.me, communityId: creds.communityId,
      roomId: creds.videoRoomId, video: this.videoOn, audio: this.audioOn,
    });
    ws.onmessage = (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch { return; }
      queue = queue.then(() => (this.ws === ws ? this.onSignal(msg) : null))
        .catch((err) => { if (this.ws === ws) this.ended('callFailed', err.message); });
    };
    ws.onclose = () => { if (this.ws === ws) this.lost(); };
  }

  closeSocket() {
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onclose = null;
    ws.onmessage = null;
    ws.close();
  }

  // lost handles a signaling socket that dropped, or a server that went
  // away (shutdown: it drains, or the room's node died): the call is
  // joined again on a new socket, after a growing pause, with new peer
  // connections, wherever the room is now. The camera stays on.
  lost() {
    this.closeSocket();
    for (const userId of [...this.peers.keys()]) this.dropPeer(userId);
    if (!this.creds || !this.local) return;
    if (this.attempts >= REJOIN_DELAYS.length) {
      this.ended('callFailed', t('callLost'));
      return;
    }
    const delay = REJOIN_DELAYS[this.attempts++];
    this.rejoining = true;
    this.setPhase('connecting', 'callReconnecting');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.creds && this.local && !this.ws) this.connect();
    }, delay);
  }

  signal(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  async onSignal(msg) {
    switch (msg.id) {
      case 'existingParticipants':
        this.iceServers = msg.iceServers || [];
        this.attempts = 0;
        await this.publish();
        // A rejoin tells the others the switches it kept.
        if (!this.videoOn) this.signal({ id: 'videoStateFrom', userId: this.me, video: false });
        if (!this.audioOn) this.signal({ id: 'audioStateFrom', userId: this.me, audio: false });
        for (const m of msg.members || []) await this.receive(String(m.userId), m.video !== false);
        if ((msg.members || []).length > 0) this.setPhase('connecting', this.rejoining ? 'callReconnecting' : 'callConnecting');
        else if (this.rejoining) this.setPhase('waiting', 'callReconnecting');
        break;
      case 'newParticipantArrived':
        if (msg.member) {
          this.setPhase('connecting', this.rejoining ? 'callReconnecting' : 'callConnecting');
          await this.receive(String(msg.member.userId), msg.member.video !== false);
        }
        break;
      case 'receiveVideoAnswer': {
        const p = this.peers.get(String(msg.userId));
        // An answer is for the offer under way; none is (it was given up
        // for the server's crossing restart offer): nothing to apply.
        if (!p || msg.usage === 'screen' || p.pc.signalingState !== 'have-local-offer') break;
        await p.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdpAnswer });
        p.answered = true;
        for (const c of p.pending.splice(0)) await this.addCandidate(p, c);
        if (String(msg.userId) === this.me) this.countLayers(p);
        break;
      }
      case 'iceCandidate': {
        const p = this.peers.get(String(msg.userId));
        if (!p || !msg.candidate || msg.usage === 'screen') break;
        if (p.answered) await this.addCandidate(p, msg.candidate);
        else p.pending.push(msg.candidate);
        break;
      }
      case 'iceRestartOffer':
        await this.answerRestart(msg);
        break;
      case 'participantLeft':
        this.dropPeer(String(msg.userId));
        if (this.peers.size <= 1) this.setPhase('waiting', 'callPeerLeft');
        break;
      case 'videoStateAnswer':
        if (String(msg.userId) !== this.me) this.showRemoteVideo(String(msg.userId), msg.video !== false);
        break;
      case 'error':
        if (msg.code === 'shutdown') this.lost();
        else if (msg.code === 'unauthorized' && this.rejoining && this.onTokenExpired) {
          // The token ran out while the call went on: the page fetches a
          // fresh one and calls join with it.
          this.closeSocket();
          this.onTokenExpired();
        } else if (['unauthorized', 'forbidden', 'roomClosed', 'replaced', 'joinTimeout'].includes(msg.code)) {
          this.ended(msg.code === 'roomClosed' ? 'callEnded' : 'callFailed', msg.code === 'roomClosed' ? '' : msg.message);
        }
        break;
      default:
        if (/^G\d{4}$/.test(msg.id || '')) this.onAppSignal(msg);
    }
  }

  // addCandidate adds a candidate of the server's; one of an ICE
  // generation the connection has left behind is refused and does no harm.
  async addCandidate(p, candidate) {
    try {
      await p.pc.addIceCandidate(candidate);
    } catch { /* a stale generation's candidate */ }
  }

  newPeer(userId) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    const p = { pc, pending: [], answered: false, restarts: 0, restartTimer: null };
    this.peers.set(userId, p);
    this.peerConnections++;
    this.el.dataset.peerConnections = String(this.peerConnections);
    pc.onicecandidate = (e) => {
      if (!e.candidate) return;
      this.signal({
        id: 'onIceCandidate', userId,
        candidate: { candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid, sdpMLineIndex: e.candidate.sdpMLineIndex },
      });
    };
    pc.onconnectionstatechange = () => this.watchConnection(userId, p);
    pc.oniceconnectionstatechange = () => this.watchConnection(userId, p);
    return p;
  }

  // watchConnection restarts ICE on a connection that failed, or stayed
  // disconnected for a while, while the signaling socket is up (a new
  // network, a path that broke); the socket's own loss rejoins instead.
  watchConnection(userId, p) {
    if (this.peers.get(userId) !== p) return;
    const state = p.pc.connectionState || p.pc.iceConnectionState;
    if (state === 'connected') {
      clearTimeout(p.restartTimer);
      p.restartTimer = null;
      p.restarts = 0;
      if (userId !== this.me) {
        this.rejoining = false;
        this.setPhase('connected', 'callConnected');
      }
    } else if (state === 'failed') {
      this.restartIce(userId, p);
    } else if (state === 'disconnected' && !p.restartTimer) {
      p.restartTimer = setTimeout(() => {
        p.restartTimer = null;
        if (['disconnected', 'failed'].includes(p.pc.connectionState)) this.restartIce(userId, p);
      }, DISCONNECTED_GRACE);
    }
  }

  // restartIce sends a new offer with new ICE credentials from the same
  // peer connection; the server answers on its same connection, so the
  // tracks stay. One that does not connect again is restarted again, and
  // after a few tries the call is joined again from scratch.
  async restartIce(userId, p) {
    if (this.peers.get(userId) !== p || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    if (p.pc.signalingState !== 'stable') return; // an offer is under way (ours or the server's)
    if (p.restarts >= MAX_ICE_RESTARTS) {
      this.lost();
      return;
    }
    p.restarts++;
    this.countRestart();
    clearTimeout(p.restartTimer);
    p.restartTimer = setTimeout(() => {
      p.restartTimer = null;
      if (p.pc.connectionState !== 'connected') this.restartIce(userId, p);
    }, RESTART_RETRY);
    p.pc.restartIce();
    await this.offer(userId, p, { iceRestart: true });
  }

  // answerRestart applies the server's ICE restart offer (its side of a
  // connection failed) on the same peer connection. An offer of ours
  // crossing it wins: the server rolls back and answers ours.
  async answerRestart(msg) {
    const p = this.peers.get(String(msg.userId));
    if (!p || msg.usage === 'screen' || p.pc.signalingState !== 'stable') return;
    this.countRestart();
    await p.pc.setRemoteDescription({ type: 'offer', sdp: msg.sdpOffer });
    const answer = await p.pc.createAnswer();
    await p.pc.setLocalDescription(answer);
    this.signal({ id: 'iceRestartAnswer', userId: msg.userId, sdpAnswer: answer.sdp });
  }

  countRestart() {
    this.iceRestarts++;
    this.el.dataset.iceRestarts = String(this.iceRestarts);
  }

  async offer(userId, p, options) {
    const offer = await p.pc.createOffer(options);
    await p.pc.setLocalDescription(offer);
    this.signal({ id: 'receiveVideoFrom', userId, sdpOffer: offer.sdp });
  }

  // publish sends this side's camera and microphone into the room, the
  // camera in three simulcast layers where the browser can: the server
  // forwards each other participant the layer its layout and bandwidth
  // allow. A browser that cannot publishes one encoding.
  async publish() {
    const p = this.newPeer(this.me);
    for (const track of this.local.getTracks()) {
      const init = { direction: 'sendonly', streams: [this.local] };
      if (track.kind !== 'video') {
        p.pc.addTransceiver(track, init);
        continue;
      }
      try {
        p.pc.addTransceiver(track, { ...init, sendEncodings: SIMULCAST_LAYERS.map((l) => ({ ...l })) });
      } catch {
        p.pc.addTransceiver(track, init);
      }
    }
    await this.offer(this.me, p);
  }

  // countLayers shows how many encodings the camera is sent in, once the
  // server's answer settled them (one when it took no simulcast).
  countLayers(p) {
    const sender = p.pc.getSenders().find((s) => s.track && s.track.kind === 'video');
    const encodings = sender ? (sender.getParameters().encodings || []) : [];
    this.el.dataset.layers = String(Math.max(encodings.length, 1));
  }

  // receive subscribes to another participant's media.
  async receive(userId, videoOn) {
    if (userId === this.me || this.peers.has(userId)) return;
    const p = this.newPeer(userId);
    p.pc.addTransceiver('audio', { direction: 'recvonly' });
    p.pc.addTransceiver('video', { direction: 'recvonly' });
    const video = h('video', { class: 'call-remote', autoplay: true, playsinline: true, dataset: { userId } });
    const stream = new MediaStream();
    video.srcObject = stream;
    p.video = video;
    p.pc.ontrack = (e) => {
      stream.addTrack(e.track);
      video.play().catch(() => { /* autoplay waits for the first frame */ });
    };
    // 'resize' comes with the first decoded frame; 'playing' may come
    // earlier, on audio alone, so the width decides.
    const shown = () => {
      if (p.shown || video.videoWidth === 0 || this.peers.get(userId) !== p) return;
      p.shown = true;
      this.onRemoteVideo(userId);
    };
    video.addEventListener('resize', shown);
    video.addEventListener('playing', shown);
    this.remoteBox.append(video);
    this.showRemoteVideo(userId, videoOn);
    await this.offer(userId, p);
  }

  showRemoteVideo(userId, on) {
    const p = this.peers.get(userId);
    if (p && p.video) p.video.classList.toggle('off', !on);
    this.remoteNote.hidden = on;
  }

  dropPeer(userId) {
    const p = this.peers.get(userId);
    if (!p) return;
    this.peers.delete(userId);
    clearTimeout(p.restartTimer);
    p.pc.close();
    if (p.video) p.video.remove();
  }

  toggleVideo() {
    this.videoOn = !this.videoOn;
    if (this.local) for (const track of this.local.getVideoTracks()) track.enabled = this.videoOn;
    this.signal({ id: 'videoStateFrom', userId: this.me, video: this.videoOn });
    this.relabel();
  }

  toggleAudio() {
    this.audioOn = !this.audioOn;
    if (this.local) for (const track of this.local.getAudioTracks()) track.enabled = this.audioOn;
    this.signal({ id: 'audioStateFrom', userId: this.me, audio: this.audioOn });
    this.relabel();
  }
}

// videoRecord reads the call step a system message carries in its
// messageDetail (null for other messages).
export function videoRecord(m) {
  if (!m || !m.isSystemMessage || !m.messageDetail || m.messageDetail[0] !== '{') return null;
  try { return JSON.parse(m.messageDetail).video || null; } catch { return null; }
}

// lastCallStep says whether the newest call step in messages leaves a call
// running ('running': invited, or someone still in it), over ('over'), or
// there is none ('').
export function lastCallStep(messages) {
  const last = lastCall(messages);
  if (!last) return '';
  return ['invite', 'joined', 'left', 'recording'].includes(last.rec.event) ? 'running' : 'over';
}

// callRecorded says whether the newest call in messages is recorded: its
// invitation said so, or its recording began.
export function callRecorded(messages) {
  let recorded = false;
  for (const m of [...messages].sort((a, b) => a.id - b.id)) {
    const rec = videoRecord(m);
    if (!rec) continue;
    if (rec.event === 'invite') recorded = Boolean(rec.recorded);
    if (rec.event === 'recording') recorded = true;
  }
  return recorded;
}

function lastCall(messages) {
  let last = null;
  for (const m of messages) {
    const rec = videoRecord(m);
    if (rec && (!last || m.id > last.id)) last = { id: m.id, rec };
  }
  return last;
}
