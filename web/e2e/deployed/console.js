// The counselor console: the token from the login page, the profile, the
// three room lists, the lobby and the private channel; a waiting room is
// taken with matchRoom and opened; the history comes from MESSAGE_LIST.
// It never sends READ_MESSAGE for history: the server marks it read.
var token = localStorage.getItem('token');
axios.defaults.headers.common.Authorization = 'Bearer ' + token;

function toLogin() {
  localStorage.removeItem('token');
  location.href = 'login.html';
}

if (!token) toLogin();
else new Vue({
  el: '#app',
  data: {
    profile: {}, connected: false, ready: [], ing: [], closed: [],
    room: null, roomId: null, messages: [], history: [], contracts: [], text: '', error: ''
  },
  created: function () {
    var vm = this;
    vm.ws = null;
    vm.roomSub = null;
    axios.get('/auth/profile').then(function (res) {
      vm.profile = res.data;
      vm.loadLists();
      vm.ws = chat.connect({ Authorization: 'Bearer ' + token }, vm.connected_, function (err) {
        vm.connected = false;
        vm.error = String(err && err.headers ? err.headers.message : err);
      });
    }).catch(function (err) {
      if (err.response && err.response.status === 401) toLogin();
      else vm.error = String(err);
    });
  },
  methods: {
    connected_: function (ws) {
      var vm = this;
      vm.connected = true;
      ws.subscribe('/user/session/message', function (f) { vm.onPrivate(chat.parse(f)); });
      ws.subscribe('/sub/socket/room/LOBBY' + vm.profile.companyId, function (f) {
        var ev = chat.parse(f);
        if (ev.eventName === 'RELOAD') vm.loadLists();
      });
    },
    loadLists: function () {
      var vm = this;
      ['findReadyState', 'findIngState', 'findCloseState'].forEach(function (q, i) {
        axios.get('/api/room', { params: { queryId: q } }).then(function (res) {
          vm[['ready', 'ing', 'closed'][i]] = res.data;
        }).catch(function (err) { vm.error = String(err); });
      });
    },
    match: function (r) {
      var vm = this;
      axios.post('/api/room/' + r.id + '/matchRoom').then(function (res) {
        vm.open(res.data);
      }).catch(function (err) { vm.error = err.response ? err.response.data.message : String(err); });
    },
    open: function (r) {
      var vm = this;
      if (vm.roomSub) vm.roomSub.unsubscribe();
      vm.roomId = String(r.id);
      vm.room = r;
      vm.messages = [];
      vm.roomSub = vm.ws.subscribe('/sub/socket/room/' + r.id, function (f) { vm.onRoom(chat.parse(f)); });
      axios.get('/api/room/' + r.id + '/findSearchJoinHistory').then(function (res) { vm.history = res.data; });
      axios.get('/api/customer/' + r.customer.gasappMemberNumber + '/contracts').then(function (res) { vm.contracts = res.data; });
    },
    mine: function (ev) {
      return ev.roomId === this.roomId;
    },
    onPrivate: function (ev) {
      var d = ev.data || {};
      switch (ev.eventName) {
        case 'JOINED':
        case 'ROOM_DETAIL':
          if (this.mine(ev) && d.room) this.room = d.room;
          break;
        case 'MESSAGE_LIST':
          if (this.mine(ev)) this.messages = d.messages;
          break;
        case 'ERROR':
          this.error = d.reason;
          break;
      }
    },
    onRoom: function (ev) {
      chat.roomEvent(this.ws, this.profile.speakerId, this.messages, ev);
      if (ev.eventName === 'END') this.loadLists();
    },
    reply: function () {
      if (!this.text) return;
      chat.say(this.ws, this.text);
      this.text = '';
    },
    remove: function (m) {
      chat.send(this.ws, 'DELETE_MESSAGE', { id: m.id });
    },
    end: function () {
      chat.send(this.ws, 'END', {});
    }
  }
});
