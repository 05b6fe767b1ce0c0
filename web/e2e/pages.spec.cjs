'use strict';
// pages.spec.cjs drives cstalk's pages in Chromium (playwright-core): the
// counselor console (/), the customer chat page (/customer) and the admin
// view (/admin). web/e2e_test.go starts the server and runs it with
//   CSTALK_URL        the server, e.g. http://127.0.0.1:41234
//   CSTALK_CHROMIUM   the browser executable
//   CSTALK_ARTIFACTS  where screenshots go
//   CSTALK_TEST_IMAGE a PNG to upload
// It exits non-zero on the first failed check.
const assert = require('node:assert/strict');
const harness = require('./harness.cjs');

const base = process.env.CSTALK_URL;
const image = process.env.CSTALK_TEST_IMAGE;

const XSS_IMG = '<img src=x onerror="window.__xss=1;alert(1)">';
const XSS_SCRIPT = '<script>window.__xss=2;alert(2)</script>';

const { step, watch, shot, run } = harness.spec({ timeout: 10000, failureName: 'failure' });

const { control } = harness;

async function login(page, url, loginName) {
  await page.goto(base + url);
  await page.locator('#login-name').fill(loginName);
  await page.locator('#login-password').fill('demo1234');
  await page.locator('#login-submit').click();
  await page.locator('#conn[data-state="connected"]').waitFor();
}

async function openCustomer(ctx, number, name) {
  const page = await ctx.newPage();
  watch(page, `customer ${name}`);
  await page.goto(`${base}/customer?companyId=1&gasappMemberNumber=${number}&name=${encodeURIComponent(name)}`);
  await page.locator('#conn[data-state="connected"]').waitFor();
  await page.waitForFunction(() => Number(document.body.dataset.roomId) > 0);
  await page.locator('.compose-text').waitFor();
  return page;
}

async function say(page, text, scope = page) {
  await scope.locator('.compose-text').fill(text);
  await scope.locator('.compose-text').press('Enter');
}

// bubble is the message whose text is exactly text.
const bubble = (scope, text) => {
  const page = typeof scope.page === 'function' ? scope.page() : scope;
  return scope.locator('.msg').filter({ has: page.locator('.text', { hasText: text }) }).last();
};

run(async (browser) => {
  const agentCtx = await browser.newContext({ viewport: { width: 1360, height: 820 }, locale: 'ko-KR' });
  const custCtx = await browser.newContext({ viewport: { width: 390, height: 780 }, locale: 'ko-KR', isMobile: true, hasTouch: true });
  const cust2Ctx = await browser.newContext({ viewport: { width: 390, height: 780 }, locale: 'ko-KR', isMobile: true, hasTouch: true });
  const adminCtx = await browser.newContext({ viewport: { width: 1360, height: 900 }, locale: 'ko-KR' });
  const number = String(Date.now() % 1e9);

  step('headers of the pages');
  {
    const page = await agentCtx.newPage();
    watch(page, 'console');
    const resp = await page.goto(base + '/');
    const csp = resp.headers()['content-security-policy'];
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.equal(resp.headers()['x-content-type-options'], 'nosniff');
    assert.ok(resp.headers()['referrer-policy']);
    await page.locator('#login-form').waitFor();
    assert.equal(await page.locator('#login-submit').textContent(), '로그인', 'Korean by default');
    await shot(page, 'console-login');

    step('wrong password is shown');
    await page.locator('#login-name').fill('agent1');
    await page.locator('#login-password').fill('wrong-password');
    await page.locator('#login-submit').click();
    await page.locator('#login-error').filter({ hasText: '비밀번호' }).waitFor();
    await page.close();
  }

  step('counselor logs in');
  const agent = await agentCtx.newPage();
  watch(agent, 'console');
  await login(agent, '/', 'agent1');
  await agent.locator('#who').filter({ hasText: 'agent1' }).waitFor();

  step('customer opens the chat page and writes');
  const cust = await openCustomer(custCtx, number, '김고객');
  const roomId = Number(await cust.evaluate(() => document.body.dataset.roomId));
  await say(cust, '안녕하세요, 요금 문의드립니다.');
  await bubble(cust, '안녕하세요, 요금 문의드립니다.').locator('.read-state.unread').waitFor();

  step('the waiting list reloads live and shows the room');
  const waitingItem = agent.locator(`.room-item[data-room-id="${roomId}"]`);
  await waitingItem.filter({ hasText: '김고객' }).waitFor();
  await waitingItem.filter({ hasText: '요금 문의' }).waitFor();
  await waitingItem.locator('.badge[data-unread="1"]').waitFor();
  assert.equal(await agent.locator('#count-waiting').textContent(), String(await agent.locator('.room-item').count()));
  await shot(agent, 'console-lobby');

  step('opening the room assigns it; the customer sees the message read');
  await waitingItem.click();
  const pane = agent.locator(`.room-pane[data-room-id="${roomId}"]`);
  await bubble(pane, '안녕하세요, 요금 문의드립니다.').waitFor();
  await pane.locator('.status-badge[data-status="IN_PROGRESS"]').waitFor();
  await pane.locator('.msg.system').first().waitFor();
  await bubble(cust, '안녕하세요, 요금 문의드립니다.').locator('.read-state:not(.unread)').waitFor();
  await agent.locator('#tab-progress').click();
  await agent.locator(`.room-item[data-room-id="${roomId}"] .assignee.mine`).waitFor();
  assert.equal(await pane.locator('.video-call-start').isVisible(), true, 'the video call button is shown');

  step('counselor answers; read state reaches the counselor');
  await say(agent, '안녕하세요, 상담사입니다. 무엇을 도와드릴까요?', pane);
  await bubble(cust, '무엇을 도와드릴까요?').waitFor();
  await bubble(pane, '무엇을 도와드릴까요?').locator('.read-state:not(.unread)').waitFor();

  step('internal note: marked for members, never sent to the customer');
  await pane.locator('.note-toggle').check();
  await say(agent, '내부 메모: 체납 이력 확인 필요', pane);
  await pane.locator('.msg.note', { hasText: '체납 이력 확인 필요' }).locator('.note-tag').waitFor();
  await pane.locator('.note-toggle').uncheck();
  await say(agent, '확인 후 바로 안내드리겠습니다.', pane);
  await bubble(cust, '확인 후 바로 안내드리겠습니다.').waitFor();
  assert.equal(await cust.getByText('체납 이력', { exact: false }).count(), 0, 'the note reached the customer');

  step('images both ways, shown as thumbnails');
  await pane.locator('.compose-file').setInputFiles(image);
  const agentImg = cust.locator('.msg.theirs .bubble img');
  await agentImg.waitFor();
  await cust.waitForFunction(() => [...document.querySelectorAll('.msg.theirs .bubble img')].some((i) => i.complete && i.naturalWidth > 0));
  await cust.locator('.compose-file').setInputFiles(image);
  await pane.locator('.msg.theirs .bubble img').waitFor();
  await agent.waitForFunction((id) => [...document.querySelectorAll(`.room-pane[data-room-id="${id}"] .msg.theirs .bubble img`)]
    .some((i) => i.complete && i.naturalWidth > 0), roomId);
  const src = await pane.locator('.msg.theirs .bubble img').first().getAttribute('src');
  assert.match(src, /^\/files\/1\/\d+\/[0-9a-f]{32}\.thumb\.(png|jpg)$/, 'thumbnail shown');

  step('markup typed by a customer is shown as text and runs nothing');
  await say(cust, XSS_IMG);
  await say(cust, XSS_SCRIPT);
  for (const page of [cust, agent]) {
    await bubble(page, XSS_IMG).waitFor();
    await bubble(page, XSS_SCRIPT).waitFor();
    assert.equal(await page.evaluate(() => window.__xss), undefined, 'injected code ran');
    assert.equal(await page.locator('img[src="x"]').count(), 0, 'markup became an element');
    assert.equal(await page.locator('.messages script').count(), 0, 'markup became a script');
  }
  assert.equal(await bubble(agent, XSS_IMG).locator('.text').textContent(), XSS_IMG);
  assert.equal(await cust.locator('#welcome').isVisible(), false, 'waiting text stays after assignment');
  await shot(agent, 'console-conversation');
  await shot(cust, 'customer-chat');

  step('counselor deletes its own message; both sides see it deleted');
  const doomed = bubble(pane, '확인 후 바로 안내드리겠습니다.');
  const doomedId = await doomed.getAttribute('data-id');
  await doomed.locator('button.delete').click();
  await pane.locator(`.msg.deleted[data-id="${doomedId}"]`).waitFor();
  await cust.locator(`.msg.deleted[data-id="${doomedId}"]`).filter({ hasText: '삭제된 메시지입니다.' }).waitFor();
  assert.equal(await cust.locator('.msg.theirs button.delete').count(), 0, 'customer may not delete the counselor\'s messages');

  step('history pages back with MESSAGE_LIST startId');
  for (let i = 1; i <= 32; i++) await say(cust, `추가 질문 ${i}`);
  await bubble(pane, '추가 질문 32').waitFor();
  await agent.locator(`.open-tab[data-room-id="${roomId}"] .open-tab-close`).click();
  await agent.locator(`.room-item[data-room-id="${roomId}"]`).click();
  await bubble(pane, '추가 질문 32').waitFor();
  assert.equal(await bubble(pane, '요금 문의드립니다').count(), 0, 'first page should hold only the newest messages');
  await pane.locator('button.older').click();
  await bubble(pane, '안녕하세요, 요금 문의드립니다.').waitFor();

  step('a second customer: two rooms open at once, unread counted on the background tab');
  const cust2 = await openCustomer(cust2Ctx, String(Number(number) + 1), '이고객');
  const room2 = Number(await cust2.evaluate(() => document.body.dataset.roomId));
  await say(cust2, '가스 점검 예약하고 싶어요.');
  await agent.locator('#tab-waiting').click();
  await agent.locator(`.room-item[data-room-id="${room2}"]`).click();
  const pane2 = agent.locator(`.room-pane[data-room-id="${room2}"]`);
  await bubble(pane2, '가스 점검 예약').waitFor();
  await say(agent, '네, 원하시는 날짜를 알려 주세요.', pane2);
  await bubble(cust2, '원하시는 날짜').waitFor();
  await agent.locator(`.open-tab[data-room-id="${roomId}"] .open-tab-main`).click();
  await say(cust2, '다음 주 화요일이요.');
  await agent.locator(`.open-tab[data-room-id="${room2}"] .badge`).filter({ hasText: '1' }).waitFor();
  await shot(agent, 'console-two-rooms');

  step('the server restarts: the pages show it and reconnect by themselves');
  await control('stop-server', 'stopped');
  await agent.locator('#conn[data-state="reconnecting"]').waitFor();
  await cust2.locator('#conn[data-state="reconnecting"]').waitFor();
  await shot(cust2, 'customer-reconnecting');
  await control('start-server', 'started');
  await agent.locator('#conn[data-state="connected"]').waitFor({ timeout: 30000 });
  await cust2.locator('#conn[data-state="connected"]').waitFor({ timeout: 30000 });
  await say(cust2, '재연결 후 보내는 메시지입니다.');
  await agent.locator(`.open-tab[data-room-id="${room2}"] .open-tab-main`).click();
  await bubble(pane2, '재연결 후 보내는').waitFor();
  await say(agent, '네, 잘 받았습니다.', pane2);
  await bubble(cust2, '잘 받았습니다').waitFor();

  step('admin sees every room, who is assigned, and the counselors');
  const admin = await adminCtx.newPage();
  watch(admin, 'admin');
  await login(admin, '/admin', 'admin1');
  const row1 = admin.locator(`tr[data-room-id="${roomId}"]`);
  await row1.locator('.status-badge[data-status="IN_PROGRESS"]').waitFor();
  await row1.locator('.assignee').filter({ hasText: /\S/ }).waitFor();
  await admin.locator('#members-body tr[data-login="agent1"]').waitFor();

  step('admin adds a counselor');
  await admin.locator('#new-login').fill('agent7');
  await admin.locator('#new-name').fill('상담사 칠');
  await admin.locator('#new-password').fill('seven-password');
  await admin.locator('#member-submit').click();
  await admin.locator('#members-body tr[data-login="agent7"]').filter({ hasText: '상담사 칠' }).waitFor();
  await admin.locator('#member-result.ok').waitFor();
  await admin.locator('#new-login').fill('agent7');
  await admin.locator('#new-password').fill('seven-password');
  await admin.locator('#member-submit').click();
  await admin.locator('#member-result.error').filter({ hasText: '이미 사용 중' }).waitFor();

  step('admin deletes a customer\'s message in a room it does not handle');
  await admin.locator(`tr[data-room-id="${room2}"] .view-room`).click();
  const detail = admin.locator('#detail-body');
  await bubble(detail, '가스 점검 예약').waitFor();
  const victimId = await bubble(detail, '가스 점검 예약').getAttribute('data-id');
  await bubble(detail, '가스 점검 예약').locator('button.delete').click();
  await detail.locator(`.msg.deleted[data-id="${victimId}"]`).waitFor();
  await agent.locator(`.open-tab[data-room-id="${room2}"] .open-tab-main`).click();
  await pane2.locator(`.msg.deleted[data-id="${victimId}"]`).waitFor();
  await cust2.locator(`.msg.deleted[data-id="${victimId}"]`).waitFor();
  await shot(admin, 'admin');

  step('admin ends a room; customer, counselor and lists follow');
  const endButton = admin.locator(`tr[data-room-id="${room2}"] .end-room`);
  await endButton.click();
  await endButton.click(); // the second click confirms
  await admin.locator(`tr[data-room-id="${room2}"] .status-badge[data-status="ENDED"]`).waitFor();
  await cust2.locator('#ended').waitFor();
  assert.equal(await cust2.locator('.composer').isVisible(), false);
  await pane2.locator('.ended-note').waitFor();

  step('counselor ends its room');
  await agent.locator(`.open-tab[data-room-id="${roomId}"] .open-tab-main`).click();
  await pane.locator('.end-room').click();
  await pane.locator('.confirm-end').click();
  await cust.locator('#ended').filter({ hasText: '상담이 종료되었습니다.' }).waitFor();
  await pane.locator('.ended-note').waitFor();
  assert.equal(await cust.locator('button.delete').count(), 0, 'an ended room offers no delete');
  assert.equal(await pane.locator('button.delete').count(), 0, 'an ended room offers no delete');
  await admin.locator(`tr[data-room-id="${roomId}"] .status-badge[data-status="ENDED"]`).waitFor();

  step('the customer rates the ended consultation');
  await cust.locator('.score[data-score="5"]').click();
  await cust.locator('#review-thanks').waitFor();
  await shot(cust, 'customer-ended');
  await admin.reload();
  await admin.locator(`tr[data-room-id="${roomId}"] .review-cell`).filter({ hasText: '5/5' }).waitFor();

  step('English on request, remembered');
  await admin.locator('#lang').click();
  await admin.locator('.members-card h2').filter({ hasText: 'Counselors' }).waitFor();
  await admin.reload();
  await admin.locator('#conn[data-state="connected"]').waitFor();
  await admin.locator('.members-card h2').filter({ hasText: 'Counselors' }).waitFor();
  await shot(admin, 'admin-english');
  const en = await adminCtx.newPage();
  watch(en, 'customer en');
  await en.goto(`${base}/customer?companyId=1&gasappMemberNumber=${Number(number) + 2}`);
  await en.locator('.send').filter({ hasText: 'Send' }).waitFor();
  await en.locator('#conn[data-state="connected"]').waitFor();

  step('customer page without identity says so');
  const bad = await custCtx.newPage();
  watch(bad, 'customer bad');
  await bad.goto(`${base}/customer`);
  await bad.locator('#banner').filter({ hasText: '잘못된 접근' }).waitFor();

});
