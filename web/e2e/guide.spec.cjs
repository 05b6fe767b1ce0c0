'use strict';
// guide.spec.cjs: one guide from match to rating on /guide, in Chromium with
// a fake camera and microphone. User guide-user1 asks friend guide-mate1
// (first while the mate is offline, then available with the mate's page
// closed), the mate opens the page again and finds the request in
// /guide/requests, approves, each page decodes the other's video through
// the SFU, the user's page begins the guide, both pages show the server's
// clock and its warning, the user extends once, reloads and is back in
// the guide; the mate's page goes away, the user ends the guide, and the
// mate's page comes back to the summary from the session check's history;
// the user rates the mate and sees the ranking, the mate writes the CRM
// note, and the API must agree: two tickets spent, the rating and the note
// stored. Then a second request is declined and the user is told, and a
// third guide runs out of time by itself, the mate's page reloaded after
// the warning showing it again from the check. web/guide_test.go starts
// the server with short tickets and runs it with
//   CSTALK_URL                  the server, e.g. http://127.0.0.1:41234
//   CSTALK_CHROMIUM             the browser executable
//   CSTALK_ARTIFACTS            where screenshots go
//   CSTALK_GUIDE_TICKET_SECONDS the server's --guide-ticket-duration
//   CSTALK_GUIDE_WARN_SECONDS   the server's --guide-warn-before
// It exits non-zero on the first failed check.
const assert = require('node:assert/strict');
const harness = require('./harness.cjs');

const base = process.env.CSTALK_URL;
const ticketSeconds = Number(process.env.CSTALK_GUIDE_TICKET_SECONDS || 20);
const warnSeconds = Number(process.env.CSTALK_GUIDE_WARN_SECONDS || 15);
const PASSWORD = 'demo1234';
const MATE_NAME = '김가스'; // guide-mate1
const USER_NAME = '최고객'; // guide-user1
const NOTE = '보일러 점화 불량 안내, 다음 주 재방문 예약';
const COMMENT = '친절하게 알려주셨어요 <b>감사</b>';

const { step, watch, shot, awaitDecodedFrames, run } = harness.spec({
  timeout: 15000, failureName: 'guide-failure', media: true,
});

// api calls the guide API from node, as an app would.
async function api(method, p, { token, json } = {}) {
  const headers = { Accept: 'application/json', 'Accept-Language': 'ko' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (json !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(base + p, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
  return { status: resp.status, body: await resp.json() };
}

async function apiLogin(loginName) {
  const { status, body } = await api('POST', '/guide/login', { json: { loginName, password: PASSWORD } });
  assert.equal(status, 200, `login ${loginName}: ${JSON.stringify(body)}`);
  return body.token;
}

async function login(page, loginName) {
  await page.goto(`${base}/guide`);
  await page.locator('#login-name').fill(loginName);
  await page.locator('#login-password').fill(PASSWORD);
  await page.locator('#login-submit').click();
  await page.locator('#conn[data-state="connected"]').waitFor();
}

const phase = (page, p) => page.locator(`body[data-phase="${p}"]`).waitFor({ state: 'attached' });
const outcome = (page, key) => page.locator(`#guide-status[data-outcome="${key}"]`).waitFor();
const endsAt = (page) => page.locator('#guide-ends-at').getAttribute('datetime');
// answer waits for the page's next answer from the API path that matches re.
const answer = (page, re) => page.waitForResponse((r) => re.test(new URL(r.url()).pathname)).then((r) => r.json());
const CHECK_PATH = /^\/guide\/session\/\d+$/;

run(async (browser) => {
  const userCtx = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'ko-KR', isMobile: true, hasTouch: true });
  const mateCtx = await browser.newContext({ viewport: { width: 1100, height: 900 }, locale: 'ko-KR' });

  step('the mate and the user log in; the user sees 5 tickets and friend guide-mate1');
  let mate = await mateCtx.newPage();
  watch(mate, 'mate');
  await login(mate, 'guide-mate1');
  await mate.locator('#mate-home').waitFor();
  await mate.locator('#availability[data-availability="available"]').waitFor();
  await mate.locator('#who', { hasText: MATE_NAME }).waitFor();

  const user = await userCtx.newPage();
  watch(user, 'user');
  await login(user, 'guide-user1');
  await user.locator('#user-home').waitFor();
  await user.locator('#tickets-left', { hasText: /^5$/ }).waitFor();
  const friend = user.locator('.mate-item', { hasText: MATE_NAME });
  await friend.waitFor();
  await shot(user, 'guide-user-home');

  step('an offline friend is refused at once, with the reason');
  await mate.locator('#available').uncheck();
  await mate.locator('#availability[data-availability="offline"]').waitFor();
  await friend.locator('.connect-friend').click();
  await outcome(user, 'outcomeMateOffline');
  await user.locator('#guide-status', { hasText: '메이트가 오프라인입니다.' }).waitFor();
  await user.locator('.mate-item[data-availability="offline"]', { hasText: MATE_NAME }).waitFor();

  step('the mate goes available and closes the page; the user asks the friend and waits');
  await mate.locator('#available').check();
  await mate.locator('#availability[data-availability="available"]').waitFor();
  await mate.close();
  await friend.locator('.connect-friend').click();
  await phase(user, 'requested');
  await user.locator('#waiting-mate', { hasText: MATE_NAME }).waitFor();
  await user.locator('#cancel-request').waitFor();

  step('the mate opens the page again: the request pushed while it was closed comes from /guide/requests; the mate approves');
  mate = await mateCtx.newPage();
  watch(mate, 'mate');
  const listed = answer(mate, /^\/guide\/requests$/);
  await login(mate, 'guide-mate1');
  const open = (await listed).requests;
  assert.equal(open.length, 1, `one open request: ${JSON.stringify(open)}`);
  assert.equal(open[0].user.name, USER_NAME);
  await mate.locator('#request-card #request-from', { hasText: `${USER_NAME}님이 가이드를 요청했습니다.` }).waitFor();
  assert.equal(Number(await mate.locator('#request-card').getAttribute('data-gs-seq')), open[0].session.gsSeq);
  await mate.locator('#request-expires', { hasText: /\d\d:\d\d:\d\d/ }).waitFor();
  await outcome(mate, 'outcomeRequested');
  await shot(mate, 'guide-mate-request');
  const approvedAt = Date.now();
  await mate.locator('#approve').click();

  step('both join the guide room and decode each other; the user begins the guide');
  const userSees = await awaitDecodedFrames(user, '#in-guide', 5);
  const mateSees = await awaitDecodedFrames(mate, '#in-guide', 5);
  console.log(`  decoding after ${Date.now() - approvedAt} ms: user ${JSON.stringify(userSees)}, mate ${JSON.stringify(mateSees)}`);
  assert.ok(userSees.width > 0 && mateSees.width > 0, 'both remote videos have a size');
  for (const page of [user, mate]) {
    await phase(page, 'active');
    await page.locator('#guide-remaining', { hasText: /^\d+:\d\d$/ }).waitFor();
    await page.locator('#peer-name', { hasText: page === user ? MATE_NAME : USER_NAME }).waitFor();
    const left = Number(await page.locator('#guide-remaining').getAttribute('data-seconds'));
    assert.ok(left > 0 && left <= ticketSeconds, `the clock shows ${left} s of a ${ticketSeconds} s ticket`);
  }
  await user.locator('#guide-tickets-left', { hasText: /^4$/ }).waitFor();
  // The user's app cued the mate's over the room (G0001) as well as the
  // server's guideBegun push.
  await mate.locator('#in-guide[data-cue="G0001"]').waitFor({ state: 'attached' });
  const firstEnd = await endsAt(user);
  assert.ok(firstEnd, 'the user page shows the end');
  await mate.waitForFunction((e) => document.querySelector('#guide-ends-at').getAttribute('datetime') === e, firstEnd);
  await shot(user, 'guide-user-call');
  await shot(mate, 'guide-mate-call');

  step('the warning comes to both pages; the user extends with a ticket');
  await user.locator('#guide-warning').waitFor({ timeout: ticketSeconds * 1000 });
  await mate.locator('#guide-warning').waitFor({ timeout: ticketSeconds * 1000 });
  assert.equal(await mate.locator('#extend').isVisible(), false, 'the mate cannot extend');
  await user.locator('#guide-warning-text', { hasText: '곧 끝납니다' }).waitFor();
  await shot(user, 'guide-user-warning');
  await user.locator('#extend').click();
  await user.locator('#guide-tickets-left', { hasText: /^3$/ }).waitFor();
  const secondEnd = new Date(new Date(firstEnd).getTime() + ticketSeconds * 1000).toISOString();
  for (const page of [user, mate]) {
    await page.waitForFunction((e) => document.querySelector('#guide-ends-at').getAttribute('datetime') === e, secondEnd);
    await page.locator('#guide-warning').waitFor({ state: 'hidden' });
    await page.locator('#guide-tickets-used', { hasText: '2' }).waitFor();
  }
  await outcome(mate, 'outcomeExtended');

  step('the user reloads during the guide: the page rejoins the room and the guide goes on');
  const mateFramesBefore = (await awaitDecodedFrames(mate, '#in-guide', 1)).frames;
  await user.reload();
  await phase(user, 'active');
  await awaitDecodedFrames(user, '#in-guide', 5);
  await user.waitForFunction((e) => document.querySelector('#guide-ends-at').getAttribute('datetime') === e, secondEnd);
  await user.locator('#guide-tickets-left', { hasText: /^3$/ }).waitFor();
  // The user's camera reaches the mate again, over the new page's publisher.
  await awaitDecodedFrames(mate, '#in-guide', mateFramesBefore + 10);
  assert.equal(await mate.locator('body').getAttribute('data-phase'), 'active', 'the reload did not end the guide');

  step('the mate\'s page goes away; the user ends the guide; the mate\'s page comes back to the summary from the check');
  await mate.goto('about:blank');
  await user.locator('#end-guide').click();
  await phase(user, 'ended');
  // The guideEnded push went to no stream: the kept guide's first check
  // (its history) is all the page learns the ending from.
  const checked = answer(mate, CHECK_PATH);
  await mate.goto(`${base}/guide`);
  const check = await checked;
  assert.equal(check.valid, false, JSON.stringify(check));
  assert.equal(check.warnBeforeSeconds, warnSeconds);
  assert.ok(check.history, `the check of an ended guide carries its history: ${JSON.stringify(check)}`);
  assert.equal(check.history.endReason, 'userEnded');
  assert.equal(check.history.ticketsUsed, 2);
  for (const page of [user, mate]) {
    await phase(page, 'ended');
    await page.locator('#ended[data-reason="userEnded"]').waitFor();
    await page.locator('#summary-reason', { hasText: '사용자가 종료했습니다.' }).waitFor();
    await page.locator('#summary-tickets', { hasText: '2장' }).waitFor();
    await page.locator('#summary-duration', { hasText: /\d+초/ }).waitFor();
    assert.equal(await page.locator('video.call-remote').count(), 0, 'the call is put away');
  }
  const ghSeq = Number(await user.locator('#ended').getAttribute('data-gh-seq'));
  assert.ok(ghSeq > 0, 'the summary knows its guide history');
  assert.equal(Number(await mate.locator('#ended').getAttribute('data-gh-seq')), ghSeq);
  await mate.locator('#crm-form').waitFor();
  assert.equal(await mate.locator('#rating-form').isVisible(), false, 'mates do not rate');

  step('the user rates 5 stars with a comment and sees the ranking');
  await user.locator('#rating-submit').click();
  await user.locator('#rating-error', { hasText: '별점을 골라 주세요.' }).waitFor();
  await user.locator('label.star[data-stars="5"]').click();
  assert.equal(await user.locator('label.star.on').count(), 5);
  await user.locator('#rating-comment').fill(COMMENT);
  await user.locator('#rating-submit').click();
  await user.locator('#rating-done .thanks').waitFor();
  const top = user.locator('#top-mates .top-mate', { hasText: MATE_NAME });
  await top.waitFor();
  assert.equal(await top.getAttribute('data-rank'), '1', 'the only rated mate ranks first');
  assert.equal(await top.locator('.mate-rating').getAttribute('data-rating'), '5.00');
  assert.equal(await top.locator('.mate-rating').getAttribute('data-count'), '1');
  await user.locator('#top-mates .top-mate', { hasText: '평점 5.0 (평가 1개)' }).waitFor();
  await shot(user, 'guide-user-rated');

  step('the mate writes the CRM note and is available again');
  await mate.locator('#crm-note').fill(NOTE);
  await mate.locator('#crm-submit').click();
  await mate.locator('#crm-result', { hasText: '메모를 저장했습니다.' }).waitFor();
  await shot(mate, 'guide-mate-ended');

  step('the API agrees: two tickets spent, rating and CRM note stored');
  const userToken = await apiLogin('guide-user1');
  const mateToken = await apiLogin('guide-mate1');
  const me = await api('GET', '/guide/me', { token: userToken });
  assert.equal(me.body.account.tickets, 5 - 2, 'exactly the two tickets spent are gone');
  const crm = await api('GET', `/guide/crm/${ghSeq}`, { token: mateToken });
  assert.equal(crm.status, 200, JSON.stringify(crm.body));
  assert.equal(crm.body.crm.note, NOTE);
  assert.equal(crm.body.crm.ticketsUsed, 2);
  assert.equal(crm.body.crm.endReason, 'userEnded');
  const ranking = await api('GET', '/guide/mates/top');
  const rated = ranking.body.mates.find((m) => m.name === MATE_NAME);
  assert.ok(rated && rated.rating === 5 && rated.ratingCount === 1 && rated.rank === 1, `ranking ${JSON.stringify(ranking.body.mates)}`);
  const again = await api('POST', '/eval', { token: userToken, json: { ghSeq, stars: 1, comment: '' } });
  assert.equal(again.status, 409, 'the rating is stored once');
  assert.equal(again.body.reason, 'alreadyEvaluated');
  const mateMe = await api('GET', '/guide/me', { token: mateToken });
  assert.equal(mateMe.body.account.availability, 'available');

  step('a second request is declined; the user is told and keeps the tickets');
  await user.locator('#back-home').click();
  await user.locator('#tickets-left', { hasText: /^3$/ }).waitFor();
  await user.locator('#quick-connect').click();
  await phase(user, 'requested');
  await mate.locator('#request-card #request-from', { hasText: USER_NAME }).waitFor();
  await mate.locator('#reject').click();
  await outcome(mate, 'outcomeDeclined');
  await outcome(user, 'outcomeRejected');
  await phase(user, 'home');
  await user.locator('#tickets-left', { hasText: /^3$/ }).waitFor();

  step('another guide runs out of time: both pages show it ended by itself');
  await user.locator('#quick-connect').click();
  await mate.locator('#request-card #request-from', { hasText: USER_NAME }).waitFor();
  await mate.locator('#approve').click();
  for (const page of [user, mate]) {
    await phase(page, 'active');
    await awaitDecodedFrames(page, '#in-guide', 5);
  }
  await user.locator('#guide-warning').waitFor({ timeout: ticketSeconds * 1000 });
  await mate.locator('#guide-warning').waitFor({ timeout: ticketSeconds * 1000 });

  step('the mate reloads after the warning: the check (warnBeforeSeconds) shows it again');
  const rechecked = answer(mate, CHECK_PATH);
  await mate.reload();
  const recheck = await rechecked;
  assert.equal(recheck.valid, true, `the guide still runs after the reload: ${JSON.stringify(recheck)}`);
  assert.ok(recheck.remainingSeconds <= warnSeconds, `${recheck.remainingSeconds} s left is within the warning`);
  await phase(mate, 'active');
  await mate.locator('#guide-warning').waitFor();
  for (const page of [user, mate]) {
    await page.locator('#ended[data-reason="expired"]').waitFor({ timeout: (ticketSeconds + 10) * 1000 });
    await page.locator('#summary-reason', { hasText: '가이드 시간이 끝났습니다.' }).waitFor();
    await page.locator('#summary-tickets', { hasText: '1장' }).waitFor();
  }
  await user.locator('#rating-form').waitFor();
  await user.locator('#back-home').click();
  await user.locator('#tickets-left', { hasText: /^2$/ }).waitFor();

  step('English');
  await user.locator('#lang').click();
  await user.locator('#quick-connect', { hasText: 'Quick connect' }).waitFor();
  await user.locator('#friend-list .connect-friend', { hasText: 'Connect' }).first().waitFor();
  await mate.locator('#lang').click();
  await mate.locator('#summary-reason', { hasText: 'The guide time ran out.' }).waitFor();

});
