'use strict';
// deployed.spec.cjs: pages of the deployed CS-talk kind — a login page, a
// counselor console and the gas app's customer page, written with the
// libraries the deployed ones use (vue 2.5.16, axios 0.17.1, sockjs-client
// 1.0.0 bundled for the browser, stompjs 2.3.3) — in Chromium against
// `cstalk serve`. The pages live in e2e/deployed/ and are served on cstalk's
// own origin by this spec (never by cstalk). web/deployed_test.go starts the
// servers and runs it with CSTALK_CASES: a JSON list of
// {name, console, customer} base URLs (one node, or the console on one node
// and the customer on another), CSTALK_SECRET_KEY (the customers'
// secretKey for today) and CSTALK_CHROMIUM / CSTALK_ARTIFACTS.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const esbuild = require('esbuild');
const harness = require('./harness.cjs');

const { step, watch, shot, run } = harness.spec({ timeout: 20000, failureName: 'deployed-failure', consoleErrors: true });
const cases = JSON.parse(process.env.CSTALK_CASES);
const secretKey = process.env.CSTALK_SECRET_KEY;
const modules = path.join(__dirname, '..', 'node_modules');
const pagesDir = path.join(__dirname, 'deployed');

// sockjs-client 1.0.0 ships no browser build: bundle it as its own build
// did (browserify with NODE_ENV=production), into the global SockJS.
function bundleSockJS() {
  const out = esbuild.buildSync({
    entryPoints: [path.join(modules, 'sockjs-client-1.0.0', 'lib', 'entry.js')],
    bundle: true, format: 'iife', globalName: 'SockJS', platform: 'browser', write: false, logLevel: 'silent',
    define: { global: 'window', 'process.env.NODE_ENV': '"production"' },
  });
  return out.outputFiles[0].text;
}

const libraries = {
  'vue.js': () => fs.readFileSync(path.join(modules, 'vue', 'dist', 'vue.js')),
  'axios.js': () => fs.readFileSync(path.join(modules, 'axios', 'dist', 'axios.js')),
  'stomp.js': () => fs.readFileSync(path.join(modules, 'stompjs', 'lib', 'stomp.js')),
  'sockjs.js': bundleSockJS,
};
const served = {};
for (const [name, load] of Object.entries(libraries)) served[`lib/${name}`] = load();
for (const name of fs.readdirSync(pagesDir)) served[name] = fs.readFileSync(path.join(pagesDir, name));

const types = { '.html': 'text/html; charset=utf-8', '.js': 'application/javascript; charset=utf-8' };

// serveDeployed answers base/deployed/* in ctx from memory; everything else
// (the API, /ws) reaches cstalk.
async function serveDeployed(ctx, base) {
  await ctx.route(`${base}/deployed/**`, (route) => {
    const name = new URL(route.request().url()).pathname.replace(/^\/deployed\//, '');
    const body = served[name];
    if (!body) return route.fulfill({ status: 404, body: 'not found' });
    return route.fulfill({ status: 200, contentType: types[path.extname(name)], body });
  });
}

const msg = (page, text) => page.locator('#messages .msg').filter({ has: page.locator('.text', { hasText: text }) });
const room = (page, list, id) => page.locator(`${list} li.room[data-room-id="${id}"]`);

// unreadIs waits until the message with text shows the unread count want
// (0: no mark).
async function unreadIs(page, text, want) {
  const m = msg(page, text);
  await m.waitFor();
  if (want === 0) await m.locator('.unread').waitFor({ state: 'detached' });
  else await m.locator('.unread', { hasText: String(want) }).waitFor();
}

async function say(page, text) {
  await page.locator('#text').fill(text);
  await page.locator('#send').click();
  await msg(page, text).waitFor();
}

async function noErrorShown(page, label) {
  assert.equal((await page.locator('#error').textContent()).trim(), '', `${label} shows an error`);
}

// checkTransports connects the customer's way over each transport
// sockjs-client 1.0.0 picks on a page of cstalk's own origin, from the page's
// libraries, and has a MESSAGE come back on the room.
async function checkTransports(page, base, number) {
  const info = await page.evaluate(async () => (await fetch('/ws/info')).json());
  assert.equal(info.websocket, true, '/ws/info websocket');
  assert.equal(typeof info.cookie_needed, 'boolean', '/ws/info cookie_needed');
  for (const [i, transport] of ['websocket', 'xhr-streaming', 'eventsource', 'htmlfile', 'xhr-polling', 'jsonp-polling'].entries()) {
    const result = await page.evaluate(({ transport, number, secretKey }) => new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ error: 'timed out' }), 15000);
      const sock = new SockJS('/ws', null, { transports: [transport] });
      const client = Stomp.over(sock);
      client.debug = null;
      const text = `1.0.0 over ${transport}`;
      client.connect({ companyId: '1', gasappMemberNumber: number, secretKey }, () => {
        client.subscribe('/user/session/message', (frame) => {
          const ev = JSON.parse(frame.body);
          if (ev.eventName !== 'LOGINED') return;
          client.subscribe(`/sub/socket/room/${ev.roomId}`, (m) => {
            const got = JSON.parse(m.body);
            if (got.eventName === 'MESSAGE' && got.data.message.message === text) {
              clearTimeout(timer);
              const used = sock._transport && sock._transport.transportName;
              // Closed without DISCONNECT: over the HTTP transports
              // stompjs 2.3.3 sends it while it aborts the receiving request,
              // which ends the session, so the send may find none (404).
              client.ws.onclose = null;
              sock.close();
              resolve({ used });
            }
          });
          client.send('/pub/socket/message', {}, JSON.stringify({ eventName: 'MESSAGE', data: { messageType: 0, message: text } }));
        });
      }, (err) => { clearTimeout(timer); resolve({ error: String(err && err.headers ? err.headers.message : err) }); });
    }), { transport, number: String(number + i), secretKey });
    if (result.error) throw new Error(`sockjs-client 1.0.0 over ${transport}: ${result.error}`);
    assert.equal(result.used, transport, `sockjs-client 1.0.0 used ${result.used} for ${transport}`);
    step(`sockjs-client 1.0.0 over ${transport}: LOGINED, MESSAGE round trip`);
  }
}

async function consultation(browser, c, index) {
  const number = String(7700 + index * 10);
  // A page fulfilled by the test has no server address, so Chromium counts
  // it as public and its WebSocket to 127.0.0.1 as local network access;
  // served by cstalk itself, as in production, it is the same address.
  const contextOptions = { permissions: ['local-network-access'] };
  const consoleCtx = await browser.newContext(contextOptions);
  const customerCtx = await browser.newContext(contextOptions);
  await serveDeployed(consoleCtx, c.console);
  await serveDeployed(customerCtx, c.customer);
  const agent = await consoleCtx.newPage();
  watch(agent, `${c.name} console`);
  const cust = await customerCtx.newPage();
  watch(cust, `${c.name} customer`);

  step(`${c.name}: a customer without a name connects and writes; its messages wait unread`);
  await cust.goto(`${c.customer}/deployed/customer.html?companyId=1&gasappMemberNumber=${number}&secretKey=${encodeURIComponent(secretKey)}`);
  await cust.locator('#status', { hasText: 'WAITING' }).waitFor();
  const roomId = (await cust.locator('#room-id').textContent()).trim();
  assert.match(roomId, /^\d+$/);
  await cust.locator('#welcome').waitFor();
  await say(cust, '안녕하세요');
  await say(cust, '요금 문의드립니다');
  await unreadIs(cust, '안녕하세요', 1);
  await unreadIs(cust, '요금 문의드립니다', 1);

  step(`${c.name}: the console without a token sends to the login page; logging in keeps the token`);
  await agent.goto(`${c.console}/deployed/console.html`);
  await agent.waitForURL(/login\.html$/);
  await agent.locator('#loginName').fill('agent1');
  await agent.locator('#password').fill('demo1234');
  await agent.locator('#login').click();
  await agent.waitForURL(/console\.html$/);
  await agent.locator('#profile-name', { hasText: '상담사1' }).waitFor();
  await agent.locator('#conn', { hasText: 'connected' }).waitFor();
  assert.ok(await agent.evaluate(() => localStorage.getItem('token')), 'token kept in localStorage');

  step(`${c.name}: the waiting list shows the room by member number with 2 unread; the console takes it`);
  const waiting = room(agent, '#ready', roomId);
  await waiting.locator('.last', { hasText: '요금 문의드립니다' }).waitFor();
  assert.equal((await waiting.locator('.name').textContent()).trim(), number);
  assert.equal((await waiting.locator('.unread').textContent()).trim(), '2');
  await waiting.locator('.match').click();
  await agent.locator(`#room[data-room-id="${roomId}"] #room-status`, { hasText: 'IN_PROGRESS' }).waitFor();
  assert.equal((await agent.locator('#room-title').textContent()).trim(), number);
  await msg(agent, '상담사1 상담사가 상담을 시작합니다.').waitFor();
  // Opening the room read it: no unread mark left on either page.
  await unreadIs(agent, '안녕하세요', 0);
  await unreadIs(agent, '요금 문의드립니다', 0);
  await unreadIs(cust, '안녕하세요', 0);
  await unreadIs(cust, '요금 문의드립니다', 0);
  assert.equal(await msg(agent, '안녕하세요').locator('.speaker').textContent(), number);
  assert.equal(await msg(agent, '요금 문의드립니다').locator('.delete').count(), 0, 'the console offers to delete the customer\'s message');
  await room(agent, '#ready', roomId).waitFor({ state: 'detached' });
  await room(agent, '#ing', roomId).waitFor();
  await cust.locator('#status', { hasText: 'IN_PROGRESS' }).waitFor();
  await msg(cust, '상담사1 상담사가 상담을 시작합니다.').waitFor();
  assert.equal(await agent.locator('#history li').count(), 0, 'a first visit has no earlier rooms');
  await agent.locator('#contracts li', { hasText: `C-${number} 주택난방` }).waitFor();

  step(`${c.name}: the counselor replies; the customer reads it`);
  await say(agent, '네, 확인해 드리겠습니다.');
  await msg(cust, '네, 확인해 드리겠습니다.').waitFor();
  await unreadIs(agent, '네, 확인해 드리겠습니다.', 0);
  assert.equal(await msg(cust, '네, 확인해 드리겠습니다.').locator('.speaker').textContent(), '상담사1');

  step(`${c.name}: the counselor deletes a message; both pages drop it, and the history comes back without it`);
  await say(agent, '잘못 보낸 메시지');
  await msg(cust, '잘못 보낸 메시지').waitFor();
  await msg(agent, '잘못 보낸 메시지').locator('.delete').click();
  await msg(agent, '잘못 보낸 메시지').waitFor({ state: 'detached' });
  await msg(cust, '잘못 보낸 메시지').waitFor({ state: 'detached' });
  await room(agent, '#ing', roomId).click();
  await msg(agent, '네, 확인해 드리겠습니다.').waitFor();
  const texts = await agent.locator('#messages .msg .text').allTextContents();
  assert.deepEqual(texts, ['안녕하세요', '요금 문의드립니다', '상담사1 상담사가 상담을 시작합니다.', '네, 확인해 드리겠습니다.'],
    'history after a delete');
  assert.equal(await agent.locator('#messages .msg .unread').count(), 0, 'the history read again shows unread marks');
  await shot(agent, `deployed-console-${c.name}`);

  step(`${c.name}: the customer reviews while the counselor is there; the counselor ends`);
  await cust.locator('.review button[data-score="5"]').click();
  await cust.locator('#review-done').waitFor();
  await agent.locator('#end').click();
  await agent.locator('#room-status', { hasText: 'ENDED' }).waitFor();
  await cust.locator('#status', { hasText: 'ENDED' }).waitFor();
  assert.equal(await cust.locator('.review').count(), 0, 'the review is offered after END');
  await room(agent, '#closed', roomId).locator('.review', { hasText: '5' }).waitFor();
  await shot(cust, `deployed-customer-${c.name}`);

  step(`${c.name}: the customer comes back to a new room, which shows the earlier one; the customer ends it`);
  await cust.locator('#reconnect').click();
  await cust.locator('#status', { hasText: 'WAITING' }).waitFor();
  const room2 = (await cust.locator('#room-id').textContent()).trim();
  assert.notEqual(room2, roomId);
  await say(cust, '다시 문의드립니다');
  await room(agent, '#ready', room2).locator('.unread', { hasText: '1' }).waitFor();
  await room(agent, '#ready', room2).locator('.match').click();
  await agent.locator(`#room[data-room-id="${room2}"] #room-status`, { hasText: 'IN_PROGRESS' }).waitFor();
  await agent.locator(`#history li[data-room-id="${roomId}"]`, { hasText: 'ENDED' }).waitFor();
  await unreadIs(agent, '다시 문의드립니다', 0);
  await unreadIs(cust, '다시 문의드립니다', 0);
  await cust.locator('#end').click();
  await cust.locator('#status', { hasText: 'ENDED' }).waitFor();
  await agent.locator('#room-status', { hasText: 'ENDED' }).waitFor();
  await room(agent, '#closed', room2).waitFor();

  await noErrorShown(agent, `${c.name} console`);
  await noErrorShown(cust, `${c.name} customer`);
  if (index === 0) await checkTransports(cust, c.customer, Number(number) + 5);
  await consoleCtx.close();
  await customerCtx.close();
}

run(async (browser) => {
  for (const [i, c] of cases.entries()) await consultation(browser, c, i);
});
