'use strict';
// harness.cjs: what the browser specs share. A spec calls
//   const { step, watch, shot, awaitDecodedFrames, run } =
//     harness.spec({ timeout, failureName, media });
// and hands its checks to run(async (browser) => ...). run launches
// Chromium (with a fake camera and microphone when media is set), fails the
// spec if a watched page showed a dialog, threw or broke the CSP, saves a
// screenshot of every watched page as <failureName>-N.png when a check
// fails, and exits the process: 0 when all passed, 1 otherwise. The specs
// read CSTALK_CHROMIUM (the browser executable) and CSTALK_ARTIFACTS (where
// screenshots go) from the environment the Go tests give them.
const { chromium } = require('playwright-core');
const assert = require('node:assert/strict');
const path = require('node:path');
const readline = require('node:readline');

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
// A fake camera and microphone that need no permission prompt, and video
// that plays without a click.
const MEDIA_ARGS = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required'];

// Chromium sends every simulcast layer a page asks for, not only as many
// as its table allows for the camera's size (two at 640x360): the specs
// see the three layers the pages publish on any machine.
const SIMULCAST_ARGS = ['--force-fieldtrials=WebRTC-LegacySimulcastLayerLimit/Disabled/'];

function launch({ media = false } = {}) {
  return chromium.launch({
    executablePath: process.env.CSTALK_CHROMIUM,
    args: media ? [...CHROMIUM_ARGS, ...MEDIA_ARGS, ...SIMULCAST_ARGS] : CHROMIUM_ARGS,
  });
}

function step(name) { console.log(`- ${name}`); }

async function shot(page, name) {
  await page.screenshot({ path: path.join(process.env.CSTALK_ARTIFACTS, `${name}.png`) });
}

// spec returns the helpers bound to one spec's timeout (ms, each page's
// default and the wait for decoded video) and failure screenshot name. With
// consoleErrors every console error of a watched page is a problem, not
// only CSP violations.
function spec({ timeout, failureName, media = false, consoleErrors = false }) {
  const problems = [];
  const pages = [];

  // watch records what must never happen on a page: dialogs, uncaught
  // errors, CSP violations (any console error with consoleErrors).
  function watch(page, label) {
    pages.push(page);
    page.on('dialog', async (d) => { problems.push(`${label}: dialog ${d.type()} ${d.message()}`); await d.dismiss(); });
    page.on('pageerror', (e) => problems.push(`${label}: page error ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && (consoleErrors || /Content Security Policy|Refused to/i.test(m.text()))) problems.push(`${label}: ${m.text()}`);
    });
    page.setDefaultTimeout(timeout);
  }

  // awaitDecodedFrames waits until the remote <video> in scope has decoded
  // min frames of a real size, as the element's playback quality counts
  // them, and returns what it shows.
  async function awaitDecodedFrames(page, scope, min) {
    const sel = `${scope} video.call-remote`;
    await page.waitForFunction(([s, n]) => {
      const v = document.querySelector(s);
      if (!v || !v.getVideoPlaybackQuality) return false;
      const q = v.getVideoPlaybackQuality();
      return q.totalVideoFrames - q.droppedVideoFrames >= n && v.videoWidth > 0;
    }, [sel, min], { timeout });
    return page.evaluate((s) => {
      const v = document.querySelector(s);
      return { frames: v.getVideoPlaybackQuality().totalVideoFrames, width: v.videoWidth, height: v.videoHeight };
    }, sel);
  }

  // awaitMoreFrames waits until the remote <video> in scope has decoded
  // more frames than it had (a picture that moves again after a break).
  async function awaitMoreFrames(page, scope, more, wait = timeout) {
    const sel = `${scope} video.call-remote`;
    const before = await page.evaluate((s) => {
      const v = document.querySelector(s);
      return v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
    }, sel);
    await page.waitForFunction(([s, n]) => {
      const v = document.querySelector(s);
      return v && v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames >= n;
    }, [sel, before + more], { timeout: wait, polling: 250 });
  }

  // counsel has a customer write from its page on customerBase and the
  // counselor (login agent, on consoleBase) open the room: it returns both
  // pages, the room's id, the console's pane of the room and its selector.
  async function counsel({ custCtx, agentCtx, customerBase, consoleBase, name, text, agent = 'agent2' }) {
    const cust = await custCtx.newPage();
    watch(cust, 'customer');
    const number = String(500000000 + Math.floor(Math.random() * 4e8));
    await cust.goto(`${customerBase}/customer?companyId=1&gasappMemberNumber=${number}&name=${encodeURIComponent(name)}`);
    await cust.locator('#conn[data-state="connected"]').waitFor();
    await cust.waitForFunction(() => Number(document.body.dataset.roomId) > 0);
    const roomId = Number(await cust.evaluate(() => document.body.dataset.roomId));
    await cust.locator('.compose-text').fill(text);
    await cust.locator('.compose-text').press('Enter');
    const page = await agentCtx.newPage();
    watch(page, 'console');
    await page.goto(consoleBase + '/');
    await page.locator('#login-name').fill(agent);
    await page.locator('#login-password').fill('demo1234');
    await page.locator('#login-submit').click();
    await page.locator('#conn[data-state="connected"]').waitFor();
    await page.locator(`.room-item[data-room-id="${roomId}"]`).click();
    const paneSel = `.room-pane[data-room-id="${roomId}"]`;
    const pane = page.locator(paneSel);
    await pane.locator('.status-badge[data-status="IN_PROGRESS"]').waitFor();
    return { cust, agent: page, roomId, pane, paneSel };
  }

  // metric sums the samples of a Prometheus metric of the server at base.
  async function metric(base, name) {
    const text = await (await fetch(`${base}/metrics`)).text();
    let sum = 0;
    for (const line of text.split('\n')) {
      if (line.startsWith(name + '{') || line.startsWith(name + ' ')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return sum;
  }

  async function main(checks) {
    const browser = await launch({ media });
    try {
      await checks(browser);
      assert.deepEqual(problems, [], 'no dialogs, page errors or CSP violations');
      console.log('ok');
    } catch (err) {
      // What each page showed when the check failed.
      for (const [i, page] of pages.entries()) {
        if (!page.isClosed()) {
          await page.screenshot({ path: path.join(process.env.CSTALK_ARTIFACTS, `${failureName}-${i}.png`) }).catch(() => {});
        }
      }
      console.error(`problems so far: ${JSON.stringify(problems)}`);
      throw err;
    } finally {
      await browser.close();
    }
  }

  function run(checks) {
    main(checks).then(() => process.exit(0), (err) => {
      console.error(err && err.stack ? err.stack : err);
      process.exit(1);
    });
  }

  return { step, watch, shot, awaitDecodedFrames, awaitMoreFrames, metric, counsel, run };
}

// control asks the Go test to act on the servers (one line `@@command` on
// stdout) and waits for its answer (one line on stdin).
let answers = null;
async function control(command, answer) {
  if (!answers) answers = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  console.log(`@@${command}`);
  const { value } = await answers.next();
  assert.equal(value, answer);
}

module.exports = { spec, launch, control };
