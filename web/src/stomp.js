import { Client } from '@stomp/stompjs';
import SockJS from 'sockjs-client';
import { t } from './i18n.js';

export const PRIVATE = '/user/session/message';
export const PUBLISH = '/pub/socket/message';
export const lobby = (companyId) => `/sub/socket/room/LOBBY${companyId}`;
export const room = (roomId) => `/sub/socket/room/${roomId}`;

// Connection is a STOMP session over SockJS that reconnects by itself.
// onConnect runs after every (re)connect: STOMP subscriptions do not
// survive a new socket, so the page subscribes again there.
export class Connection {
  constructor({ headers, onConnect, onState, onRefused }) {
    this.state = 'connecting';
    this.onState = onState || (() => {});
    this.everConnected = false;
    this.client = new Client({
      webSocketFactory: () => new SockJS('/ws'),
      connectHeaders: headers,
      reconnectDelay: 2000,
      heartbeatIncoming: 20000,
      heartbeatOutgoing: 20000,
      onConnect: () => {
        this.everConnected = true;
        this.setState('connected');
        onConnect();
      },
      onWebSocketClose: () => {
        if (this.client.active) this.setState(this.everConnected ? 'reconnecting' : 'connecting');
      },
      onStompError: (frame) => {
        const reason = frame.headers.message || '';
        if (onRefused && /unauthori[sz]ed|인증/i.test(reason)) {
          this.stop();
          onRefused(reason);
        }
      },
    });
  }

  start() {
    this.setState(this.everConnected ? 'reconnecting' : 'connecting');
    this.client.activate();
  }

  stop() {
    this.client.deactivate();
    this.setState('disconnected');
  }

  setState(s) {
    this.state = s;
    this.onState(s);
  }

  get connected() { return this.client.connected; }

  // setLanguage makes the server's ERROR reasons follow the page's language
  // from the next (re)connect on.
  setLanguage(l) { this.client.connectHeaders['accept-language'] = l; }

  // subscribe delivers each event's parsed envelope to fn.
  subscribe(destination, fn) {
    return this.client.subscribe(destination, (frame) => {
      let env;
      try { env = JSON.parse(frame.body); } catch { return; }
      fn(env);
    });
  }

  // send publishes one event; roomId names the target room explicitly, so
  // a console with several rooms open never writes into the wrong one.
  send(eventName, data, roomId) {
    if (!this.client.connected) throw new Error(t('stateDisconnected'));
    const headers = roomId ? { roomId: String(roomId) } : {};
    this.client.publish({ destination: PUBLISH, headers, body: JSON.stringify({ eventName, data }) });
  }
}

// renderState shows a connection state in a status pill.
export function renderState(el, state) {
  const key = { connecting: 'stateConnecting', connected: 'stateConnected', reconnecting: 'stateReconnecting', disconnected: 'stateDisconnected' }[state];
  el.dataset.state = state;
  el.textContent = t(key);
}
