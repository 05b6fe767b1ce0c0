// chat.js: what both pages of the deployed kind do with chat events (test
// pages for e2e/deployed.spec.cjs, never shipped). Plain ES5 globals, as
// pages of Vue 2.5's day were written.
var chat = {
  // send writes one client event to pub/socket/message; the room is the one
  // the connection subscribed to last, as seed 003 sends it.
  send: function (ws, eventName, data) {
    ws.send('/pub/socket/message', {}, JSON.stringify({ eventName: eventName, data: data || {} }));
  },
  parse: function (frame) {
    return JSON.parse(frame.body);
  },
  // add puts a live message into the list once.
  add: function (messages, m) {
    for (var i = 0; i < messages.length; i++) if (messages[i].id === m.id) return false;
    messages.push(m);
    return true;
  },
  remove: function (messages, id) {
    for (var i = 0; i < messages.length; i++) {
      if (messages[i].id === Number(id)) { messages.splice(i, 1); return; }
    }
  },
  // applyRead: speakerId read startId..endId; each message of someone else
  // in that range it had not read has one reader less to wait for.
  applyRead: function (messages, d) {
    for (var i = 0; i < messages.length; i++) {
      var m = messages[i];
      if (m.id >= Number(d.startId) && m.id <= Number(d.endId) && m.speakerId !== Number(d.speakerId) && m.noReadCount > 0) {
        m.noReadCount -= 1;
      }
    }
  },
  // readLive: a message of the other side that shows up in the open room
  // is read at once.
  readLive: function (ws, me, m) {
    if (m.speakerId !== me) chat.send(ws, 'READ_MESSAGE', { startId: m.id, endId: m.id });
  },
  // roomEvent applies an event of the room destination to the page's
  // message list; END is the page's own business.
  roomEvent: function (ws, me, messages, ev) {
    var d = ev.data || {};
    switch (ev.eventName) {
      case 'MESSAGE':
        if (chat.add(messages, d.message)) chat.readLive(ws, me, d.message);
        break;
      case 'READ_MESSAGE':
        chat.applyRead(messages, d);
        break;
      case 'DELETE_MESSAGE':
        chat.remove(messages, d.id);
        break;
    }
  },
  say: function (ws, text) {
    chat.send(ws, 'MESSAGE', { messageType: 0, message: text, messageDetail: '' });
  },
  connect: function (headers, onConnected, onLost) {
    var ws = Stomp.over(new SockJS('/ws'));
    ws.debug = null;
    ws.connect(headers, function () { onConnected(ws); }, onLost);
    return ws;
  }
};
