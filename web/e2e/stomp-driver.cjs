'use strict';
// stomp-driver.cjs drives one real JavaScript STOMP client for Go tests
// (broker/brokertest.StartNode). It reads one JSON command per line on stdin
// and writes one JSON event per line on stdout, so a test can script a client
// and await what it observes.
//
// Libraries, used the way deployed apps use them:
//   lib "stompjs2": stompjs 2.3.3 as seed 003 does:
//       Stomp.over(new SockJS(url, null, {transports: [t]})), then
//       .connect(headers, ok, fail), .subscribe(dest, cb, headers),
//       .send(dest, headers, body), handle.unsubscribe(), .disconnect().
//   lib "stompjs7": @stomp/stompjs 7 Client, webSocketFactory returning a
//       SockJS, or brokerURL for the raw WebSocket; reconnectDelay 0.
//
// Transports Node can drive (sockjs-client's Node drivers: faye-websocket,
// node:http and the "eventsource" package):
//   websocket, xhr-streaming, xhr-polling, eventsource
// and "raw": plain STOMP over ws://host/ws/websocket without SockJS framing,
// through the "ws" package.
// Transports that need a DOM and exist only in browsers - iframe-eventsource,
// htmlfile, iframe-htmlfile, iframe-xhr-polling, jsonp-polling, xdr-* - are
// refused here with a "fail" event; the Chromium tests cover them.
//
// Commands (every command may carry "id", echoed on the events it causes):
//   {"op":"connect","lib":"stompjs2"|"stompjs7","url":"http://h:p/ws",
//    "transport":"websocket"|...|"raw","headers":{},"heartbeat":[out,in]}
//       -> {"ev":"connected","headers":{},"transport":"..."}
//          or {"ev":"error",...} / {"ev":"close",...}
//   {"op":"subscribe","sub":"s1","destination":"...","headers":{}}
//   {"op":"unsubscribe","sub":"s1","headers":{}}
//   {"op":"send","destination":"...","headers":{},"body":"..."}
//   {"op":"ack"|"nack","messageId":"...","sub":"s1","headers":{}}
//   {"op":"begin"|"commit"|"abort","transaction":"tx1"}
//   {"op":"raw","data":"..."}        writes data to the socket as is
//   {"op":"disconnect","receipt":"r1"}  -> {"ev":"disconnected",...}
//   {"op":"close"}                      drops the socket without DISCONNECT
//   {"op":"exit"}
// Events besides those: "message" {sub,destination,headers,body}, "receipt"
// {receiptId}, "error" (an ERROR frame: {headers,body}), "close" (socket
// closed: {code,reason}), "fail" (a command could not run: {error}), and
// "ready" once at start.
// A "receipt" header on send/subscribe/unsubscribe produces a "receipt" event
// when the server answers it, which is how a test knows the server has acted.

const readline = require('node:readline');
const SockJS = require('sockjs-client');
const WebSocketImpl = require('ws');
const Stomp = require('stompjs'); // index.js also installs Node timers for heart-beats
const StompJs = require('@stomp/stompjs');

const NODE_TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource'];
const DEBUG = !!process.env.STOMP_DRIVER_DEBUG;

function emit(ev) {
  process.stdout.write(JSON.stringify(ev) + '\n');
}

function debug(msg) {
  if (DEBUG) process.stderr.write('[stomp-driver] ' + msg + '\n');
}

// rawURL turns http://h:p/ws into ws://h:p/ws/websocket; ws:// URLs pass as is.
function rawURL(url) {
  if (/^wss?:/.test(url)) return url;
  const u = new URL(url);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = u.pathname.replace(/\/$/, '') + '/websocket';
  return u.toString();
}

function openSocket(url, transport) {
  if (transport === 'raw') {
    return new WebSocketImpl(rawURL(url), ['v12.stomp', 'v11.stomp', 'v10.stomp']);
  }
  if (!NODE_TRANSPORTS.includes(transport)) {
    throw new Error('transport ' + transport + ' needs a browser; Node drives ' + NODE_TRANSPORTS.join(', ') + ', raw');
  }
  return new SockJS(url, null, { transports: [transport] });
}

function transportName(sock, transport) {
  // sockjs-client records the transport it settled on once the session is open.
  return transport === 'raw' ? 'raw' : (sock && sock.transport) || transport;
}

// Stompjs2 wraps the seed-003 API of stompjs 2.3.3.
class Stompjs2 {
  constructor(cmd) {
    this.sock = openSocket(cmd.url, cmd.transport);
    this.transport = cmd.transport;
    this.client = Stomp.over(this.sock);
    this.client.debug = DEBUG ? (m) => debug(m) : null;
    if (Array.isArray(cmd.heartbeat)) {
      this.client.heartbeat.outgoing = cmd.heartbeat[0];
      this.client.heartbeat.incoming = cmd.heartbeat[1];
    }
    this.subs = new Map();
    this.client.onreceipt = (frame) => emit({ ev: 'receipt', receiptId: frame.headers['receipt-id'], headers: frame.headers });
    this.client.connect(
      cmd.headers || {},
      (frame) => emit({ ev: 'connected', id: cmd.id, headers: frame.headers, transport: transportName(this.sock, this.transport) }),
      (err) => {
        // stompjs 2 reports both ERROR frames and a lost socket here.
        if (typeof err === 'string') emit({ ev: 'close', reason: err });
        else emit({ ev: 'error', headers: err.headers, body: err.body });
      },
    );
  }
  subscribe(cmd) {
    const headers = Object.assign({ id: cmd.sub }, cmd.headers || {});
    const sub = cmd.sub;
    const handle = this.client.subscribe(cmd.destination, (frame) => emit({
      ev: 'message', sub, destination: frame.headers.destination, headers: frame.headers, body: frame.body,
    }), headers);
    this.subs.set(sub, handle);
  }
  unsubscribe(cmd) {
    const handle = this.subs.get(cmd.sub);
    if (!handle) throw new Error('no subscription ' + cmd.sub);
    this.subs.delete(cmd.sub);
    if (cmd.headers && Object.keys(cmd.headers).length > 0) {
      // handle.unsubscribe() takes no headers in 2.x; a receipt needs the raw frame.
      delete this.client.subscriptions[cmd.sub];
      this.client._transmit('UNSUBSCRIBE', Object.assign({ id: cmd.sub }, cmd.headers));
    } else {
      handle.unsubscribe();
    }
  }
  send(cmd) { this.client.send(cmd.destination, Object.assign({}, cmd.headers || {}), cmd.body == null ? '' : cmd.body); }
  ack(cmd) { this.client.ack(cmd.messageId, cmd.sub, Object.assign({}, cmd.headers || {})); }
  nack(cmd) { this.client.nack(cmd.messageId, cmd.sub, Object.assign({}, cmd.headers || {})); }
  begin(cmd) { this.client.begin(cmd.transaction); }
  commit(cmd) { this.client.commit(cmd.transaction); }
  abort(cmd) { this.client.abort(cmd.transaction); }
  raw(cmd) { this.sock.send(cmd.data); }
  disconnect(cmd) {
    // stompjs 2 sends DISCONNECT and closes the socket at once, so a receipt
    // can never be observed; the server side sees the connection end.
    const headers = cmd.receipt ? { receipt: cmd.receipt } : {};
    this.client.disconnect(() => emit({ ev: 'disconnected', id: cmd.id, receiptId: null }), headers);
  }
  close() { this.sock.close(); }
}

// Stompjs7 wraps @stomp/stompjs 7's Client.
class Stompjs7 {
  constructor(cmd) {
    this.transport = cmd.transport;
    const conf = {
      connectHeaders: cmd.headers || {},
      reconnectDelay: 0,
      debug: DEBUG ? (m) => debug(m) : () => {},
      onConnect: (frame) => emit({ ev: 'connected', id: cmd.id, headers: frame.headers, transport: transportName(this.sock, this.transport) }),
      onStompError: (frame) => emit({ ev: 'error', headers: frame.headers, body: frame.body }),
      onWebSocketClose: (evt) => emit({ ev: 'close', code: evt && evt.code, reason: evt && evt.reason }),
      onUnhandledReceipt: (frame) => emit({ ev: 'receipt', receiptId: frame.headers['receipt-id'], headers: frame.headers }),
      onUnhandledMessage: (frame) => emit({ ev: 'message', sub: frame.headers.subscription, destination: frame.headers.destination, headers: frame.headers, body: frame.body }),
    };
    if (Array.isArray(cmd.heartbeat)) {
      conf.heartbeatOutgoing = cmd.heartbeat[0];
      conf.heartbeatIncoming = cmd.heartbeat[1];
    }
    if (cmd.transport === 'raw') {
      conf.brokerURL = rawURL(cmd.url);
      conf.webSocketFactory = () => (this.sock = new WebSocketImpl(conf.brokerURL, ['v12.stomp', 'v11.stomp', 'v10.stomp']));
    } else {
      if (!NODE_TRANSPORTS.includes(cmd.transport)) openSocket(cmd.url, cmd.transport); // throws the explanation
      conf.webSocketFactory = () => (this.sock = new SockJS(cmd.url, null, { transports: [cmd.transport] }));
    }
    this.client = new StompJs.Client(conf);
    this.subs = new Map();
    this.client.activate();
  }
  watch(headers) {
    const receipt = headers && headers.receipt;
    if (receipt) this.client.watchForReceipt(receipt, (frame) => emit({ ev: 'receipt', receiptId: frame.headers['receipt-id'], headers: frame.headers }));
  }
  subscribe(cmd) {
    const headers = Object.assign({ id: cmd.sub }, cmd.headers || {});
    this.watch(headers);
    const sub = cmd.sub;
    const handle = this.client.subscribe(cmd.destination, (frame) => emit({
      ev: 'message', sub, destination: frame.headers.destination, headers: frame.headers, body: frame.body,
    }), headers);
    this.subs.set(sub, handle);
  }
  unsubscribe(cmd) {
    const handle = this.subs.get(cmd.sub);
    if (!handle) throw new Error('no subscription ' + cmd.sub);
    this.subs.delete(cmd.sub);
    this.watch(cmd.headers);
    handle.unsubscribe(Object.assign({}, cmd.headers || {}));
  }
  send(cmd) {
    const headers = Object.assign({}, cmd.headers || {});
    this.watch(headers);
    this.client.publish({ destination: cmd.destination, headers, body: cmd.body == null ? '' : cmd.body });
  }
  ack(cmd) { this.client.ack(cmd.messageId, cmd.sub, Object.assign({}, cmd.headers || {})); }
  nack(cmd) { this.client.nack(cmd.messageId, cmd.sub, Object.assign({}, cmd.headers || {})); }
  begin(cmd) { this.client.begin(cmd.transaction); }
  commit(cmd) { this.client.commit(cmd.transaction); }
  abort(cmd) { this.client.abort(cmd.transaction); }
  raw(cmd) { this.sock.send(cmd.data); }
  disconnect(cmd) {
    // Client 7 waits for the DISCONNECT receipt before closing the socket.
    this.client.onDisconnect = (frame) => emit({ ev: 'disconnected', id: cmd.id, receiptId: frame.headers['receipt-id'] });
    if (cmd.receipt) this.client.configure({ disconnectHeaders: { receipt: cmd.receipt } });
    this.client.deactivate();
  }
  close() { this.client.forceDisconnect(); }
}

let conn = null;

function run(cmd) {
  switch (cmd.op) {
    case 'connect':
      if (conn) throw new Error('already connected; one connection per driver');
      if (cmd.lib === 'stompjs2') conn = new Stompjs2(cmd);
      else if (cmd.lib === 'stompjs7') conn = new Stompjs7(cmd);
      else throw new Error('unknown lib ' + cmd.lib + ' (stompjs2, stompjs7)');
      return;
    case 'exit':
      process.exit(0);
      return;
    case 'subscribe': case 'unsubscribe': case 'send': case 'ack': case 'nack':
    case 'begin': case 'commit': case 'abort': case 'raw': case 'disconnect': case 'close':
      if (!conn) throw new Error(cmd.op + ' before connect');
      conn[cmd.op](cmd);
      return;
    default:
      throw new Error('unknown op ' + cmd.op);
  }
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  if (line.trim() === '') return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    emit({ ev: 'fail', error: 'bad command JSON: ' + e.message });
    return;
  }
  try {
    run(cmd);
  } catch (e) {
    emit({ ev: 'fail', id: cmd.id, op: cmd.op, error: String(e && e.message ? e.message : e) });
  }
});
// The test closing stdin (or dying) ends the client.
lines.on('close', () => process.exit(0));
process.on('uncaughtException', (e) => emit({ ev: 'fail', error: 'uncaught: ' + String(e && e.stack ? e.stack : e) }));
emit({ ev: 'ready' });
