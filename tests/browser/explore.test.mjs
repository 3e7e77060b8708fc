// vae-explore's page in headless Chromium: the scatter is drawn, the mouse
// decodes live with one request in flight (latest wins), a click shows a
// test image and its reconstruction, samples load, sliders decode, and
// server errors reach the status line.  Writes OUTDIR/decoded.json (for
// check_decoded.py) and OUTDIR/explore.png (a full-page screenshot).
// Usage: node explore.test.mjs URL OUTDIR [--no-data]
//   --no-data: the server runs without --data (no scatter, no click check)
// Env CHROMIUM: the browser (default /usr/bin/chromium).
// Prints "ok: ..." per check; exits non-zero at the first failure.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const noData = process.argv.includes('--no-data');
if (args.length !== 2) {
  console.error('usage: node explore.test.mjs URL OUTDIR [--no-data]');
  process.exit(2);
}
const [url, outdir] = args;
const WAIT = 20000;
const ok = (msg) => console.log('ok: ' + msg);
const check = (cond, msg) => { if (!cond) throw new Error(msg); };
const same = (a, b) => a.length === b.length && a.every((v, k) => v === b[k]);
setTimeout(() => { console.log('FAIL: the test took over 3 minutes'); process.exit(1); }, 180000).unref();

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'vae-explore-chromium-'));
let browser, page;
const problems = [];   // page errors and failed requests, reported at the end

// The <img> selector's pixels as the model's CHW layout, 0..255: for a grey
// image, R (and R = G = B is checked); for RGB, the R, G and B planes.
async function pixels(selector, channels) {
  const px = await page.$eval(selector, (img) => {
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    return { w: c.width, h: c.height, rgba: Array.from(g.getImageData(0, 0, c.width, c.height).data) };
  });
  const n = px.w * px.h, out = new Array(channels * n);
  for (let p = 0; p < n; p++) {
    const [r, g, b, a] = px.rgba.slice(4 * p, 4 * p + 4);
    check(a === 255, `${selector}: pixel ${p} is not opaque`);
    if (channels === 1) {
      check(r === g && g === b, `${selector}: grey image has a coloured pixel ${p}: ${r},${g},${b}`);
      out[p] = r;
    } else {
      out[p] = r; out[n + p] = g; out[2 * n + p] = b;
    }
  }
  return { w: px.w, h: px.h, values: out };
}

async function waitShown(z, what) {
  try {
    await page.waitForFunction((want) => {
      const s = window.explore.shown;
      return s && s.z.length === want.length && s.z.every((v, k) => v === want[k]);
    }, { timeout: WAIT }, z);
  } catch (e) {
    const shown = await page.evaluate(() => window.explore.shown);
    throw new Error(`${what}: #decoded never showed z=${z} (shows ${JSON.stringify(shown)}): ${e.message}`);
  }
}

async function main() {
  fs.mkdirSync(outdir, { recursive: true });
  browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: WAIT,
    protocolTimeout: 60000,
    args: ['--no-sandbox', '--headless=new', '--disable-dev-shm-usage', '--disable-gpu',
           '--no-first-run', '--disable-background-networking', '--disable-component-update',
           '--disable-sync', '--disable-quic', '--force-color-profile=srgb',
           '--user-data-dir=' + profile],
  });
  page = await browser.newPage();
  page.setDefaultTimeout(WAIT);
  await page.setViewport({ width: 1000, height: 800, deviceScaleFactor: 1 });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.status()} for ${r.url()}`); });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));

  await page.goto(url, { waitUntil: 'load', timeout: WAIT });
  await page.waitForFunction(() => window.explore && window.explore.ready, { timeout: WAIT });
  const info = await page.evaluate(() => window.explore.info);
  ok(`page ready: ${info.model}, latent ${info.latent}, ${info.channels}x${info.height}x${info.width}, ${info.points} points`);
  const scatter = await (await fetch(new URL('api/scatter', url))).json();

  // ---- the scatter ----
  const drawn = await page.evaluate(() => window.explore.pointsDrawn);
  check(drawn === info.points, `pointsDrawn ${drawn} != info.points ${info.points}`);
  check(noData ? info.points === 0 : info.points > 0, `info.points is ${info.points}`);
  ok(`${drawn} points drawn`);
  const canvasStats = await page.$eval('#plane', (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let coloured = 0, ink = 0;
    for (let p = 0; p < d.length; p += 4) {
      const hi = Math.max(d[p], d[p + 1], d[p + 2]), lo = Math.min(d[p], d[p + 1], d[p + 2]);
      if (hi - lo > 40) coloured++;
      if (lo < 235) ink++;
    }
    return { coloured, ink, w: c.width, h: c.height };
  });
  check(canvasStats.ink > 500, `the plane has almost nothing drawn (${canvasStats.ink} pixels)`);
  if (noData) {
    check(canvasStats.coloured === 0, `no data, yet ${canvasStats.coloured} coloured pixels`);
    ok(`plane without data: grid only (${canvasStats.ink} drawn pixels, none coloured)`);
  } else {
    check(canvasStats.coloured >= Math.min(50, info.points), `only ${canvasStats.coloured} coloured pixels on the plane`);
    ok(`plane has ${canvasStats.coloured} coloured pixels of ${canvasStats.w}x${canvasStats.h}`);
  }
  const legend = await page.$eval('#legend', (l) => ({ hidden: l.hidden || l.offsetParent === null, n: l.children.length }));
  if (scatter.label && scatter.label.length) {
    const labels = new Set(scatter.label).size;
    check(!legend.hidden && legend.n === labels, `legend: ${JSON.stringify(legend)}, labels ${labels}`);
    ok(`legend shows ${labels} labels`);
  } else {
    check(legend.hidden, 'legend shown without labels');
    ok('no legend without labels');
  }

  // ---- live decoding at two places ----
  // client coordinates of a place on the canvas, as fractions of its size
  // (measured each time: clicking a button may have scrolled the page)
  const plane = () => page.$eval('#plane', (c) => { const r = c.getBoundingClientRect(); return { x: r.left, y: r.top, w: r.width, h: r.height }; });
  const at = async (fx, fy) => { const b = await plane(); return { x: Math.round(b.x + fx * b.w), y: Math.round(b.y + fy * b.h) }; };
  const box = await plane();
  const decoded = [];
  for (const [fx, fy] of [[0.3, 0.3], [0.72, 0.68]]) {
    const p = await at(fx, fy);
    await page.mouse.move(p.x, p.y);
    const z = await page.evaluate((x, y) => window.explore.zAt(x, y), p.x, p.y);
    check(z && z.length === info.latent, `zAt(${p.x}, ${p.y}) = ${JSON.stringify(z)}`);
    await waitShown(z, `mouse at ${p.x},${p.y}`);
    const px = await pixels('#decoded', info.channels);
    check(px.w === info.width && px.h === info.height, `#decoded is ${px.w}x${px.h}`);
    decoded.push({ z, pixels: px.values });
    ok(`mouse at (${p.x}, ${p.y}) shows the decoding of z = (${z.join(', ')})`);
  }
  check(!same(decoded[0].pixels, decoded[1].pixels), 'the two decoded images are the same');
  ok('the two decoded images differ');

  // the plane's mapping: a test point's dot decodes (about) the point's own plane position
  if (!noData) {
    const i = Math.floor(info.points / 3);
    const p = await page.evaluate((k) => window.explore.pointAt(k), i);
    const z = await page.evaluate((x, y) => window.explore.zAt(x, y), p.x, p.y);
    const want = info.origin.map((o, j) => o + scatter.x[i] * info.axes[0][j] + scatter.y[i] * info.axes[1][j]);
    const err = Math.hypot(...z.map((v, j) => v - want[j]));
    const pixel = Math.hypot((info.extent[1] - info.extent[0]) / box.w, (info.extent[3] - info.extent[2]) / box.h);
    check(err <= 2 * pixel, `point ${i}: z at its dot is off by ${err} (a pixel is ${pixel})`);
    ok(`point ${i}'s dot is at its plane position (off by ${err.toPrecision(2)}, a pixel is ${pixel.toPrecision(2)})`);
  }

  // ---- quick moves with a slow network: one request in flight, the latest wins ----
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 60, downloadThroughput: -1, uploadThroughput: -1 });
  const sent0 = await page.evaluate(() => window.explore.requestsSent);
  const b = await plane();
  let last;
  for (let k = 0; k < 30; k++) {
    const fx = 0.15 + 0.7 * k / 29, fy = 0.5 + 0.3 * Math.sin(k / 4);
    last = { x: Math.round(b.x + fx * b.w), y: Math.round(b.y + fy * b.h) };
    await page.mouse.move(last.x, last.y);
  }
  const zLast = await page.evaluate((x, y) => window.explore.zAt(x, y), last.x, last.y);
  await waitShown(zLast, 'after 30 quick moves');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  const st = await page.evaluate(() => ({ max: window.explore.maxInFlight, sent: window.explore.requestsSent }));
  check(st.max === 1, `maxInFlight is ${st.max}`);
  ok(`30 quick moves: ${st.sent - sent0} decode requests, at most 1 in flight, the last position shown`);

  // ---- a click on a test point ----
  let point = null;
  if (!noData) {
    const dots = await page.evaluate((n) => Array.from({ length: n }, (_, k) => window.explore.pointAt(k)), info.points);
    // a point whose dot has no other within 3 px (else the farthest from its neighbours)
    let best = -1, bestD = -1;
    for (let k = 0; k < dots.length && bestD < 9; k++) {
      let nn = Infinity;
      for (let j = 0; j < dots.length; j++) {
        if (j !== k) nn = Math.min(nn, (dots[j].x - dots[k].x) ** 2 + (dots[j].y - dots[k].y) ** 2);
      }
      if (nn > bestD) { bestD = nn; best = k; }
    }
    const i = best, p = dots[i];
    await page.mouse.click(p.x, p.y);
    await page.waitForFunction((k) => window.explore.selected === k, { timeout: WAIT }, i);
    const original = await pixels('#original', info.channels);
    const reconstruction = await pixels('#reconstruction', info.channels);
    check(original.w === info.width && reconstruction.w === info.width, 'clicked images have the wrong size');
    const text = await page.$eval('#point-info', (e) => e.textContent);
    check(text.includes('test image ' + i), `#point-info says "${text}"`);
    if (scatter.label) {
      const name = info.label_names ? info.label_names[scatter.label[i]] : String(scatter.label[i]);
      check(text.includes('label ' + name), `#point-info says "${text}", label ${name}`);
    }
    point = { i, original: original.values, reconstruction: reconstruction.values };
    ok(`click on test point ${i} (nearest other dot ${Math.sqrt(bestD).toFixed(1)} px away): "${text}"`);
  }

  // ---- samples from the prior ----
  await page.click('#samples');
  await page.waitForFunction(() => window.explore.samplesLoaded >= 1, { timeout: WAIT });
  const grid = await page.$eval('#samples-img', (img) => ({ w: img.naturalWidth, h: img.naturalHeight, src: img.src }));
  const side = 2 + 4 * (info.width + 2);
  check(grid.w === side && grid.h === 2 + 4 * (info.height + 2), `samples grid is ${grid.w}x${grid.h}`);
  ok(`samples loaded: a ${grid.w}x${grid.h} grid of 16`);

  // ---- sliders ----
  const sliders = await page.$$eval('input.slider', (s) => s.map((e) => ({ axis: +e.dataset.axis, min: +e.min, max: +e.max, value: +e.value })));
  const want = Math.max(0, Math.min(7, info.axes.length - 1) - 1);
  check(sliders.length === want, `${sliders.length} sliders, want ${want}`);
  if (sliders.length) {
    for (const s of sliders) {
      const r = 3 * info.spread[s.axis];
      check(s.value === 0 && Math.abs(s.max - r) <= 1e-6 * Math.max(1, r) + 1e-6 && Math.abs(s.min + r) <= 1e-6 * Math.max(1, r) + 1e-6,
        `slider ${s.axis}: ${JSON.stringify(s)}, spread ${info.spread[s.axis]}`);
    }
    const s = sliders[0], before = await page.evaluate(() => window.explore.shown.z);
    await page.$eval(`input.slider[data-axis="${s.axis}"]`, (e) => {
      e.value = String(+e.max * 0.8);
      e.dispatchEvent(new Event('input', { bubbles: true }));
    });
    const value = await page.$eval(`input.slider[data-axis="${s.axis}"]`, (e) => +e.value);
    await page.waitForFunction((b) => !b.every((v, k) => v === window.explore.shown.z[k]), { timeout: WAIT }, before);
    const after = await page.evaluate(() => window.explore.shown.z);
    const moved = after.map((v, j) => v - before[j]);
    const err = Math.hypot(...moved.map((d, j) => d - value * info.axes[s.axis][j]));
    check(err < 1e-4 * (1 + Math.abs(value)), `slider ${s.axis} moved z by ${moved}, want ${value} * axes[${s.axis}]`);
    ok(`${sliders.length} sliders; direction ${s.axis + 1} at ${value.toFixed(3)} moves z along axes[${s.axis}]`);
  } else {
    ok('no sliders for a latent of ' + info.latent);
  }

  // ---- nothing went wrong so far; the screenshot ----
  check(problems.length === 0, problems.join('; '));
  const status = await page.$eval('#status', (e) => e.textContent.trim());
  check(status === '', `status line says "${status}"`);
  ok('no page errors, no failed requests, empty status line');
  const shot = await at(0.62, 0.4);
  await page.mouse.move(shot.x, shot.y);
  await waitShown(await page.evaluate((x, y) => window.explore.zAt(x, y), shot.x, shot.y), 'before the screenshot');
  await page.screenshot({ path: path.join(outdir, 'explore.png'), fullPage: true });
  ok('screenshot ' + path.join(outdir, 'explore.png'));
  fs.writeFileSync(path.join(outdir, 'decoded.json'), JSON.stringify({
    url, latent: info.latent, channels: info.channels, height: info.height, width: info.width,
    decoded, point }) + '\n');
  ok('wrote ' + path.join(outdir, 'decoded.json'));

  // ---- a server error reaches the status line ----
  await page.setRequestInterception(true);
  const fake = (r) => {
    if (r.url().includes('/api/decode?')) r.respond({ status: 400, contentType: 'text/plain', body: 'z: injected failure\n' });
    else r.continue();
  };
  page.on('request', fake);
  problems.length = 0;
  const e1 = await at(0.4, 0.6);
  await page.mouse.move(e1.x, e1.y);
  await page.waitForFunction(() => document.getElementById('status').textContent.includes('z: injected failure'), { timeout: WAIT });
  const statusText = await page.$eval('#status', (e) => e.textContent);
  page.off('request', fake);
  await page.setRequestInterception(false);
  const e2 = await at(0.45, 0.55);
  await page.mouse.move(e2.x, e2.y);
  await waitShown(await page.evaluate((x, y) => window.explore.zAt(x, y), e2.x, e2.y), 'after an error');
  ok(`a 400 from the server shows in #status ("${statusText.trim()}"), and decoding goes on`);
}

let status = 0;
try {
  await main();
} catch (e) {
  console.log('FAIL: ' + (e && e.message ? e.message : e));
  if (problems.length) console.log('  seen: ' + problems.join('; '));
  if (page) {
    await page.screenshot({ path: path.join(outdir, 'explore-failed.png'), fullPage: true }).catch(() => {});
  }
  status = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(status);
