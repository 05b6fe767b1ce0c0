import { $ } from './dom.js';
import { t } from './i18n.js';

// The login form the console, the admin page and the guide page share:
// #login-view with #login-form, #login-name, #login-password,
// #login-submit and #login-error, shown in place of the page's own view.

// showLoginForm hides view and the signed-in header, and shows the form
// with message, if any, as its error.
export function showLoginForm(view, message) {
  view.hidden = true;
  $('#login-view').hidden = false;
  $('#logout').hidden = true;
  $('#conn').hidden = true;
  $('#who').textContent = '';
  const err = $('#login-error');
  err.textContent = message || '';
  err.hidden = !message;
  $('#login-name').focus();
}

// bindLogin handles the form: submit(loginName, password) asks the server,
// signedIn(answer) starts the page, and whatever either throws goes to
// failed(message). The button says it is busy until then.
export function bindLogin({ submit, signedIn, failed }) {
  $('#login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const button = $('#login-submit');
    button.disabled = true;
    button.textContent = t('loggingIn');
    $('#login-error').hidden = true;
    try {
      const res = await submit($('#login-name').value.trim(), $('#login-password').value);
      $('#login-password').value = '';
      signedIn(res);
    } catch (err) {
      failed(err.message);
    } finally {
      button.disabled = false;
      button.textContent = t('login');
    }
  });
}
