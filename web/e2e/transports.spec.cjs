'use strict';
// transports.spec.cjs: the SockJS transports only a browser has (iframe
// and JSONP ones), and the others too, each forced in turn in Chromium with
// sockjs-client 1.6 and stompjs 2.x used as the deployed customer app uses
// them: CONNECT with customer headers, LOGINED on the private channel, the
// room subscribed, a MESSAGE sent and received back on the room.
// web/transports_test.go starts the server and runs it with CSTALK_URL and
// CSTALK_CHROMIUM. It exits non-zero on the first failed check.
const path = require('node:path');
const { launch } = require('./harness.cjs');

const base = process.env.CSTALK_URL;
// The polling transports run several times: each poll is a new request, and
// a next poll racing the end of the previous one must not end the session.
const polling = ['jsonp-polling', 'xhr-polling', 'iframe-xhr-polling'];
const transports = ['iframe-htmlfile', 'iframe-eventsource', 'xhr-streaming', 'websocket',
  ...Array.from({ length: 5 }, () => polling).flat()];

(async () => {
  const browser = await launch();
  const problems = [];
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => {
      if (!r.url().startsWith(base)) problems.push(`request off this host: ${r.url()}`);
    });
    page.on('request', (r) => {
      if (!r.url().startsWith(base)) problems.push(`request off this host: ${r.url()}`);
    });
    // A same-origin document without the pages' CSP, so the test can load
    // the two client libraries as plain scripts.
    await page.goto(`${base}/healthz`);
    await page.addScriptTag({ url: `${base}/assets/sockjs.min.js` });
    await page.addScriptTag({ path: path.join(__dirname, '..', 'node_modules', 'stompjs', 'lib', 'stomp.min.js') });
    for (const [i, transport] of transports.entries()) {
      const result = await page.evaluate(({ base, transport, number }) => new Promise((resolve) => {
        const timer = setTimeout(() => resolve({ error: 'timed out' }), 20000);
        const sock = new SockJS(`${base}/ws`, null, { transports: [transport] });
        const client = Stomp.over(sock);
        client.debug = null;
        const text = `hello over ${transport}`;
        client.connect({ companyId: '1', gasappMemberNumber: String(number), name: transport }, () => {
          client.subscribe('user/session/message', (frame) => {
            const ev = JSON.parse(frame.body);
            if (ev.eventName !== 'LOGINED') return;
            client.subscribe(`sub/socket/room/${ev.roomId}`, (m) => {
              const got = JSON.parse(m.body);
              if (got.eventName === 'MESSAGE' && got.data.message.message === text) {
                clearTimeout(timer);
                const used = sock._transport && sock._transport.transportName;
                client.disconnect(() => {});
                resolve({ used, roomId: ev.roomId });
              }
            });
            client.send('pub/socket/message', {}, JSON.stringify({ eventName: 'MESSAGE', data: { messageType: 0, message: text } }));
          });
        }, (err) => { clearTimeout(timer); resolve({ error: String(err && err.headers ? err.headers.message : err) }); });
      }), { base, transport, number: 7100 + i });
      if (result.error) throw new Error(`${transport}: ${result.error}`);
      if (result.used !== transport) throw new Error(`${transport}: sockjs-client used ${result.used}`);
      console.log(`- ${transport}: LOGINED room ${result.roomId}, MESSAGE round trip`);
    }
    // Video signaling's SockJS endpoint: an unknown message id is answered
    // with an error message, over each polling transport several times.
    for (const transport of Array.from({ length: 4 }, () => ['jsonp-polling', 'xhr-polling']).flat()) {
      const result = await page.evaluate(({ base, transport }) => new Promise((resolve) => {
        const timer = setTimeout(() => resolve({ error: 'timed out' }), 20000);
        const sock = new SockJS(`${base}/signal`, null, { transports: [transport] });
        sock.onopen = () => sock.send(JSON.stringify({ id: 'noSuchMessage' }));
        sock.onmessage = (e) => {
          clearTimeout(timer);
          const used = sock._transport && sock._transport.transportName;
          sock.close();
          resolve({ used, reply: JSON.parse(e.data) });
        };
        sock.onclose = (e) => { clearTimeout(timer); resolve({ error: `closed ${e.code} ${e.reason}` }); };
      }), { base, transport });
      if (result.error) throw new Error(`/signal ${transport}: ${result.error}`);
      if (result.used !== transport || result.reply.id !== 'error') {
        throw new Error(`/signal ${transport}: ${JSON.stringify(result)}`);
      }
      console.log(`- /signal ${transport}: error reply ${result.reply.code}`);
    }
    if (problems.length) throw new Error(problems.join('\n'));
  } finally {
    await browser.close();
  }
})().catch((err) => {
  console.error(err.stack || String(err));
  process.exit(1);
});
