// The customer page the gas app opens: it connects with companyId,
// gasappMemberNumber and secretKey from its address (no name), enters the
// room of its LOGINED, and offers the review while connected, before END.
var query = new URLSearchParams(location.search);
var headers = {
  companyId: query.get('companyId'),
  gasappMemberNumber: query.get('gasappMemberNumber'),
  secretKey: query.get('secretKey')
};

new Vue({
  el: '#app',
  data: {
    connected: false, roomId: '', status: '', speakerId: 0, welcome: '',
    messages: [], text: '', reviewed: false, error: ''
  },
  created: function () {
    this.connect();
  },
  methods: {
    connect: function () {
      var vm = this;
      vm.ws = chat.connect(headers, function (ws) {
        vm.connected = true;
        ws.subscribe('/user/session/message', function (f) { vm.onPrivate(chat.parse(f)); });
      }, function (err) {
        vm.connected = false;
        vm.error = String(err && err.headers ? err.headers.message : err);
      });
    },
    onPrivate: function (ev) {
      var vm = this;
      var d = ev.data || {};
      switch (ev.eventName) {
        case 'LOGINED':
          vm.roomId = ev.roomId;
          vm.speakerId = d.profile.speakerId;
          vm.ws.subscribe('/sub/socket/room/' + ev.roomId, function (f) { vm.onRoom(chat.parse(f)); });
          break;
        case 'UNAUTHORIZED':
          vm.error = 'UNAUTHORIZED';
          break;
        case 'ROOM_DETAIL':
          vm.status = d.room.status;
          break;
        case 'MESSAGE_LIST':
          vm.messages = d.messages;
          break;
        case 'WELCOME_MESSAGE':
          vm.welcome = d.autoMessage1;
          break;
        case 'REVIEW':
          vm.reviewed = d.success === true;
          break;
        case 'ERROR':
          vm.error = d.reason;
          break;
      }
    },
    onRoom: function (ev) {
      chat.roomEvent(this.ws, this.speakerId, this.messages, ev);
      if (ev.eventName === 'END') this.status = 'ENDED';
    },
    say: function () {
      if (!this.text) return;
      chat.say(this.ws, this.text);
      this.text = '';
    },
    review: function (n) {
      chat.send(this.ws, 'REVIEW', { reviewScore: n });
    },
    end: function () {
      chat.send(this.ws, 'END', {});
    },
    // reconnect starts over on a new connection: the server opens a new room.
    reconnect: function () {
      var vm = this;
      vm.ws.disconnect(function () {
        vm.connected = false;
        vm.roomId = '';
        vm.status = '';
        vm.welcome = '';
        vm.messages = [];
        vm.reviewed = false;
        vm.connect();
      });
    }
  }
});
