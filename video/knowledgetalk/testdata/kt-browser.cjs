// Opens one Chromium page (fake camera and microphone) per name running
// kt-call.html in ROOM, and waits until every page decodes every other
// page's video; prints {"ok":..., "received":...} as one line:
// node kt-browser.cjs BASE_URL ROOM CP_CODE AUTH_KEY NAME...
const { launch } = require('../../testdata/chromium.cjs');

const [base, room, cp, key, ...names] = process.argv.slice(2);
const deadline = Date.now() + 120000;

(async () => {
  const browser = await launch();
  let ok = false;
  const last = {};
  try {
    const pages = [];
    for (const n of names) {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      page.on('console', (m) => process.stderr.write(`[${n}] ${m.text()}\n`));
      page.on('pageerror', (e) => process.stderr.write(`[${n}] page error ${e}\n`));
      await page.goto(`${base}/test/kt-call.html?room=${room}&cp=${encodeURIComponent(cp)}&key=${encodeURIComponent(key)}`);
      // Join in order: the first is there before the second comes.
      while (!(await page.evaluate(() => window.userId())) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      pages.push({ n, page, id: await page.evaluate(() => window.userId()) });
    }
    while (Date.now() < deadline) {
      ok = true;
      for (const p of pages) {
        for (const o of pages.filter((x) => x !== p)) {
          const r = await p.page.evaluate((u) => window.received(u), o.id);
          last[`${p.n}<-${o.n}`] = r;
          if (r.framesDecoded < 10 || r.width === 0) ok = false;
        }
        const errs = await p.page.evaluate(() => window.errors);
        if (errs.length) { last[`${p.n} errors`] = errs; ok = false; }
      }
      if (!ok) for (const p of pages) last[`${p.n} state`] = await p.page.evaluate(() => ({ state: window.state(), log: window.log.join(' ') }));
      if (ok) break;
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    process.stdout.write(JSON.stringify({ ok, received: last }) + '\n');
    await browser.close();
  }
  process.exit(ok ? 0 : 1);
})().catch((e) => { process.stderr.write(String(e.stack || e) + '\n'); process.exit(2); });
