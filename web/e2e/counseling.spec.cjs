'use strict';
// counseling.spec.cjs: routing, typing, reply templates, transfers and the
// team figures in Chromium against `cstalk serve --demo` (company 1 routes
// automatically). web/counseling_test.go runs it with CSTALK_URL,
// CSTALK_CHROMIUM and CSTALK_ARTIFACTS.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const harness = require('./harness.cjs');

const base = process.env.CSTALK_URL;
const { step, watch, shot, run } = harness.spec({ timeout: 10000, failureName: 'counseling-failure' });

async function login(ctx, url, loginName, label) {
  const page = await ctx.newPage();
  watch(page, label);
  await page.goto(base + url);
  await page.locator('#login-name').fill(loginName);
  await page.locator('#login-password').fill('demo1234');
  await page.locator('#login-submit').click();
  await page.locator('#conn[data-state="connected"]').waitFor();
  return page;
}

// choose sets the console's status and waits until the server has it.
async function choose(page, status) {
  await page.locator('#status-box').waitFor();
  const answer = page.waitForResponse((r) => r.url().endsWith('/api/me/status') && r.request().method() === 'PUT');
  await page.locator('#my-status').selectOption(status);
  assert.equal((await answer).status(), 200);
}

// tile reads one of the admin's company figures.
async function tile(admin, key) {
  return (await admin.locator(`.stat-tile[data-key="${key}"] .stat-value`).textContent()).trim();
}

const bubble = (scope, text) => scope.locator('.msg').filter({ hasText: text }).last();

run(async (browser) => {
  const desk = { viewport: { width: 1360, height: 860 }, locale: 'ko-KR' };
  const phone = { viewport: { width: 390, height: 780 }, locale: 'ko-KR', isMobile: true, hasTouch: true };
  const [adminCtx, agent1Ctx, agent2Ctx, custCtx] = await Promise.all([
    browser.newContext(desk), browser.newContext(desk), browser.newContext({ ...desk, acceptDownloads: true }), browser.newContext(phone)]);

  step('the admin watches the team figures');
  const admin = await login(adminCtx, '/admin', 'admin1', 'admin');
  await admin.locator('.stat-tile[data-key="messages"]').waitFor();
  const before = { messages: Number(await tile(admin, 'messages')), handled: Number(await tile(admin, 'roomsHandled')) };
  await admin.locator('#auto-assign:checked').waitFor();
  await admin.locator('#chart-volume canvas').waitFor();
  await admin.locator('#canned-list .canned-row[data-shortcut="인사"]').waitFor();

  step('agent1 is available, agent2 away');
  const agent1 = await login(agent1Ctx, '/', 'agent1', 'agent1');
  await choose(agent1, 'AVAILABLE');
  const agent2 = await login(agent2Ctx, '/', 'agent2', 'agent2');
  await choose(agent2, 'AWAY');
  await admin.locator('#members-body tr[data-login="agent1"] .member-status[data-status="AVAILABLE"]').waitFor();

  step('a customer writes; the available counselor gets the room by itself');
  const cust = await custCtx.newPage();
  watch(cust, 'customer');
  await cust.goto(`${base}/customer?companyId=1&gasappMemberNumber=${Date.now() % 1e9}&name=${encodeURIComponent('정고객')}`);
  await cust.locator('#conn[data-state="connected"]').waitFor();
  await cust.waitForFunction(() => Number(document.body.dataset.roomId) > 0);
  const roomId = Number(await cust.evaluate(() => document.body.dataset.roomId));
  await cust.locator('.compose-text').fill('보일러 점검 문의드립니다.');
  await cust.locator('.compose-text').press('Enter');
  const pane1 = agent1.locator(`.room-pane[data-room-id="${roomId}"]`);
  await pane1.locator('.status-badge[data-status="IN_PROGRESS"]').waitFor();
  await bubble(pane1, '보일러 점검 문의드립니다.').waitFor();
  await agent1.locator('#banner').filter({ hasText: '새 상담이 배정되었습니다' }).waitFor();
  await cust.locator('.msg.system').filter({ hasText: '상담사1 상담사가 상담을 시작합니다.' }).waitFor();

  step('each side sees the other typing');
  await cust.locator('.compose-text').fill('주소는 서울');
  await pane1.locator('.typing-indicator').filter({ hasText: '정고객님이 입력 중' }).waitFor();
  await cust.locator('.compose-text').press('Enter');
  await bubble(pane1, '주소는 서울').waitFor();
  await pane1.locator('.typing-indicator').waitFor({ state: 'hidden' });

  step('agent1 answers with a canned response');
  const text1 = pane1.locator('.compose-text');
  await text1.fill('/인');
  await pane1.locator('.canned-item[data-shortcut="인사"]').waitFor();
  await text1.press('Enter');
  assert.match(await text1.inputValue(), /무엇을 도와드릴까요\?/);
  await cust.locator('.typing-indicator').filter({ hasText: '상담사가 입력 중' }).waitFor();
  await shot(agent1, 'counseling-canned');
  await text1.press('Enter');
  await bubble(cust, '무엇을 도와드릴까요?').waitFor();
  await cust.locator('.typing-indicator').waitFor({ state: 'hidden' });

  step('agent1 transfers the room to agent2 with a note');
  await pane1.locator('.transfer-room').click();
  const colleague = pane1.locator('.transfer-member option', { hasText: '상담사2' });
  await pane1.locator('.transfer-member').selectOption(await colleague.getAttribute('value'));
  await pane1.locator('.transfer-note').fill('요금 체납 확인 부탁드립니다');
  await pane1.locator('.transfer-send').click();
  await cust.locator('.msg.system').filter({ hasText: '상담이 상담사2 상담사에게 전달되었습니다.' }).waitFor();
  await agent2.locator('#banner').filter({ hasText: '상담사1님이 상담을 전달했습니다' }).filter({ hasText: '요금 체납' }).waitFor();
  const pane2 = agent2.locator(`.room-pane[data-room-id="${roomId}"]`);
  await pane2.locator('.msg.note').filter({ hasText: '요금 체납 확인 부탁드립니다' }).waitFor();
  await pane1.locator('.transfer-room').waitFor({ state: 'hidden' });
  assert.equal(await cust.getByText('체납', { exact: false }).count(), 0, 'the transfer note reached the customer');

  step('agent2 carries on, sees typing, exports the conversation');
  await cust.locator('.compose-text').fill('네 기다릴게요');
  await pane2.locator('.typing-indicator').filter({ hasText: '정고객님이 입력 중' }).waitFor();
  await cust.locator('.compose-text').press('Enter');
  await pane2.locator('.compose-text').fill('이어서 도와드리겠습니다.');
  await pane2.locator('.compose-text').press('Enter');
  await bubble(cust, '이어서 도와드리겠습니다.').waitFor();
  await shot(agent2, 'counseling-transferred');
  const downloading = agent2.waitForEvent('download');
  await pane2.locator('.export-room').click();
  const file = await (await downloading).path();
  const html = fs.readFileSync(file, 'utf8');
  for (const want of ['정고객', '보일러 점검 문의드립니다.', '상담사2 상담사에게 전달되었습니다', '요금 체납 확인 부탁드립니다']) {
    assert.ok(html.includes(want), `the transcript lacks ${want}`);
  }

  step('the room ends and is rated; the admin sees the figures change');
  await pane2.locator('.end-room').click();
  await pane2.locator('.confirm-end').click();
  await cust.locator('#ended').waitFor();
  await cust.locator('.score[data-score="5"]').click();
  await cust.locator('#review-thanks').waitFor();
  // The figures follow the lobby's RELOADs by themselves.
  await admin.waitForFunction(([m, h]) => {
    const v = (k) => Number(document.querySelector(`.stat-tile[data-key="${k}"] .stat-value`).textContent);
    return v('messages') === m + 5 && v('roomsHandled') === h + 1;
  }, [before.messages, before.handled]);
  // A REVIEW tells the lobby nothing: the next refresh shows it.
  await admin.locator('#stats-form button[type="submit"]').click();
  await admin.locator('.stat-tile[data-key="csat"]').filter({ hasText: '★' }).waitFor();
  await admin.locator('#stats-body tr[data-login="agent2"] .stat-handled').filter({ hasText: /^1$/ }).waitFor();
  await shot(admin, 'counseling-admin');

  step('English');
  await agent1.locator('#lang').click();
  await agent1.locator('#status-box').filter({ hasText: 'My status' }).waitFor();
  await admin.locator('#lang').click();
  await admin.locator('.stat-tile[data-key="messages"] .stat-label').filter({ hasText: 'Messages' }).waitFor();
});
