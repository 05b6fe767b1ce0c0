import { t, lang } from './i18n.js';
import { h } from './dom.js';

// ApiError carries the server's {code, message} of a failed request.
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// request calls the REST API; headers carry the bearer token or the
// customer's CONNECT-style headers.
export async function request(method, path, { headers = {}, json, body } = {}) {
  const h = { Accept: 'application/json', 'Accept-Language': lang(), ...headers };
  let payload = body;
  if (json !== undefined) {
    h['Content-Type'] = 'application/json';
    payload = JSON.stringify(json);
  }
  let resp;
  try {
    resp = await fetch(path, { method, headers: h, body: payload, credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, t('networkError'));
  }
  let data = null;
  try { data = await resp.json(); } catch { /* empty or not JSON */ }
  if (!resp.ok) throw new ApiError(resp.status, (data && data.message) || `${resp.status}`);
  return data;
}

// download fetches path (a transcript) and hands it to the browser as the
// file name; fetch, because a plain link cannot carry the bearer token.
export async function download(path, headers, name) {
  let resp;
  try {
    resp = await fetch(path, { headers: { 'Accept-Language': lang(), ...headers }, credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, t('networkError'));
  }
  if (!resp.ok) {
    let data = null;
    try { data = await resp.json(); } catch { /* not JSON */ }
    throw new ApiError(resp.status, (data && data.message) || `${resp.status}`);
  }
  const url = URL.createObjectURL(await resp.blob());
  const link = h('a', { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

export function bearer(token) { return { Authorization: `Bearer ${token}` }; }

// uploadImage stores file for roomId and returns {path, thumbnail, url, thumbnailUrl}.
export function uploadImage(file, roomId, headers) {
  const form = new FormData();
  form.append('roomId', String(roomId));
  form.append('file', file);
  return request('POST', '/api/uploads', { headers, body: form });
}
