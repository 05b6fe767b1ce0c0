import { h } from './dom.js';
import { t, lang } from './i18n.js';

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
export class VideoCall {
  constructor({ onAccept, onDecline, onHangUp, onPhase = () => {}, onRemoteVideo = () => {}, onAppSignal = () => {} }) {
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
    if (this.ws) return;
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
      this.ws.onclose = null;
      this.ws.close();
      this.ws = null;
    }
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
  // creds.userId with creds.token.
  async join(creds, stateKey) {
    this.creds = creds;
    this.me = String(creds.userId);
    this.videoOn = true;
    this.audioOn = true;
    this.setPhase(stateKey === 'callWaiting' ? 'waiting' : 'connecting', stateKey);
    try {
      this.local = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
    } catch (err) {
      this.ended('mediaFailed', err.message);
      return;
    }
    if (!this.creds) { // put away while the camera was opening
      for (const track of this.local.getTracks()) track.stop();
      this.local = null;
      return;
    }
    this.localVideo.srcObject = this.local;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/signal?lang=${lang()}`);
    this.ws = ws;
    ws.onopen = () => this.signal({
      id: 'joinRoom', token: creds.token, userId: this.me, communityId: creds.communityId,
      roomId: creds.videoRoomId, video: true, audio: true,
    });
    ws.onmessage = (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch { return; }
      this.onSignal(msg).catch((err) => this.ended('callFailed', err.message));
    };
    ws.onclose = () => { if (this.ws === ws) this.ended('callFailed', t('callLost')); };
  }

  signal(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  async onSignal(msg) {
    switch (msg.id) {
      case 'existingParticipants':
        this.iceServers = msg.iceServers || [];
        await this.publish();
        for (const m of msg.members || []) await this.receive(String(m.userId), m.video !== false);
        if ((msg.members || []).length > 0) this.setPhase('connecting', 'callConnecting');
        break;
      case 'newParticipantArrived':
        if (msg.member) {
          this.setPhase('connecting', 'callConnecting');
          await this.receive(String(msg.member.userId), msg.member.video !== false);
        }
        break;
      case 'receiveVideoAnswer': {
        const p = this.peers.get(String(msg.userId));
        if (!p) break;
        await p.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdpAnswer });
        p.answered = true;
        for (const c of p.pending.splice(0)) await p.pc.addIceCandidate(c);
        break;
      }
      case 'iceCandidate': {
        const p = this.peers.get(String(msg.userId));
        if (!p || !msg.candidate) break;
        if (p.answered) await p.pc.addIceCandidate(msg.candidate);
        else p.pending.push(msg.candidate);
        break;
      }
      case 'participantLeft':
        this.dropPeer(String(msg.userId));
        if (this.peers.size <= 1) this.setPhase('waiting', 'callPeerLeft');
        break;
      case 'videoStateAnswer':
        if (String(msg.userId) !== this.me) this.showRemoteVideo(String(msg.userId), msg.video !== false);
        break;
      case 'error':
        if (['unauthorized', 'forbidden', 'roomClosed', 'replaced', 'shutdown', 'joinTimeout'].includes(msg.code)) {
          this.ended(msg.code === 'roomClosed' ? 'callEnded' : 'callFailed', msg.code === 'roomClosed' ? '' : msg.message);
        }
        break;
      default:
        if (/^G\d{4}$/.test(msg.id || '')) this.onAppSignal(msg);
    }
  }

  newPeer(userId) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    const p = { pc, pending: [], answered: false };
    this.peers.set(userId, p);
    pc.onicecandidate = (e) => {
      if (!e.candidate) return;
      this.signal({
        id: 'onIceCandidate', userId,
        candidate: { candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid, sdpMLineIndex: e.candidate.sdpMLineIndex },
      });
    };
    return p;
  }

  async offer(userId, p) {
    const offer = await p.pc.createOffer();
    await p.pc.setLocalDescription(offer);
    this.signal({ id: 'receiveVideoFrom', userId, sdpOffer: offer.sdp });
  }

  // publish sends this side's camera and microphone into the room.
  async publish() {
    const p = this.newPeer(this.me);
    for (const track of this.local.getTracks()) p.pc.addTransceiver(track, { direction: 'sendonly', streams: [this.local] });
    await this.offer(this.me, p);
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
    p.pc.onconnectionstatechange = () => {
      if (p.pc.connectionState === 'connected') this.setPhase('connected', 'callConnected');
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
