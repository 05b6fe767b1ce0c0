// The login page: POST /auth/login, the token into localStorage, on to the
// console.
new Vue({
  el: '#app',
  data: { loginName: '', password: '', busy: false, error: '' },
  methods: {
    login: function () {
      var vm = this;
      vm.busy = true;
      vm.error = '';
      axios.post('/auth/login', { loginName: vm.loginName, password: vm.password }).then(function (res) {
        localStorage.setItem('token', res.data.token);
        location.href = 'console.html';
      }).catch(function (err) {
        vm.busy = false;
        vm.error = err.response && err.response.data ? err.response.data.message : String(err);
      });
    }
  }
});
