// Opens three Chromium pages running call.html in ROOM: pub publishes its
// camera in three simulcast layers, full and bounded only receive, full
// asking for the full layer, bounded with its video bounded to 150 kbit/s.
// Waits until pub sends all three layers and both decode pub's video, the
// bounded one a narrower picture, then prints the figures as one
// JSON line and stays until stdin closes: node simulcast.cjs BASE_URL ROOM
const { launch } = require('./chromium.cjs');

const [base, room] = process.argv.slice(2);
const deadline = Date.now() + 90000;

(async () => {
  // Chromium sends as many layers as asked for at any size, not only the
  // ones its table allows for 640x360.
  const browser = await launch(['--force-fieldtrials=WebRTC-LegacySimulcastLayerLimit/Disabled/']);
  let ok = false;
  const last = {};
  try {
    const pages = {};
    const open = async (name, query) => {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      page.on('console', (m) => process.stderr.write(`[${name}] ${m.text()}\n`));
      page.on('pageerror', (e) => process.stderr.write(`[${name}] page error ${e}\n`));
      await page.goto(`${base}/test/call.html?user=${name}&room=${room}&${query}`);
      pages[name] = page;
    };
    await open('pub', 'simulcast=1');
    await open('full', 'publish=0&layer=f');
    await open('bounded', 'publish=0&bandwidth=150');
    // Both must decode, steadily, the bounded one a narrower picture, and
    // the publisher must be sending all three layers: Chromium enables its
    // top layer only once its bandwidth estimate allows, which on a busy
    // machine can take a while after the lower two already suffice.
    let steady = 0;
    while (Date.now() < deadline) {
      last.full = await pages.full.evaluate(() => window.received('pub'));
      last.bounded = await pages.bounded.evaluate(() => window.received('pub'));
      last.sent = await pages.pub.evaluate(() => window.sent());
      const good = last.full.framesDecoded >= 30 && last.bounded.framesDecoded >= 30 &&
        last.bounded.frameWidth > 0 && last.bounded.frameWidth < last.full.frameWidth &&
        last.sent.length === 3 && last.sent.every((l) => l.bytesSent > 0);
      steady = good ? steady + 1 : 0;
      if (steady >= 4) { ok = true; break; }
      await new Promise((r) => setTimeout(r, 500));
    }
    process.stdout.write(JSON.stringify({ ok, ...last }) + '\n');
    if (ok) await new Promise((r) => { process.stdin.on('end', r); process.stdin.resume(); });
  } finally {
    await browser.close();
  }
  process.exit(ok ? 0 : 1);
})().catch((e) => { process.stderr.write(String(e.stack || e) + '\n'); process.exit(2); });
