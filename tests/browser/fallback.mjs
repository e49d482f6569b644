// What the page does with video a browser cannot play, in a real browser
// (BROWSER=chrome, the default, or firefox), driven by puppeteer-core.
//
//   node tests/browser/fallback.mjs http://127.0.0.1:PORT
//
// Expects a server whose cameras are a test source first (the large view)
// and then `h264` and `h265`, RTSP cameras of those codecs. Twice:
// - as this browser is: each RTSP tile plays through MSE where
//   MediaSource.isTypeSupported says it can, else an H.264 tile falls back
//   to the server's MJPEG view and an H.265 tile says it cannot be played
//   live and asks for nothing (the server decodes H.264 only);
// - as a browser without those codecs (isTypeSupported answers no): the
//   H.264 tile shows the MJPEG view, moving, and the H.265 tile the note.
// Never a request for the H.265 camera's /video (it would be 503), and no
// console error, failed request or HTTP error.

import { apiFor, baseArg, check, fingerprint, fmt, launchPuppeteer, log, run, sleep, until, watchErrors } from "./lib.mjs";

const which = process.env.BROWSER || "chrome";
const base = baseArg("node fallback.mjs http://HOST:PORT");
const api = apiFor(base);

function tile(page, id) {
  return page.evaluate((id) => {
    const li = document.querySelector(`li.tile[data-camera="${id}"]`);
    if (!li) return null;
    const el = li.querySelector("[data-live]");
    const note = li.querySelector(".live-note");
    return {
      live: el ? el.dataset.live : null,
      width: el ? el.videoWidth || el.naturalWidth || 0 : 0,
      time: el && el.tagName === "VIDEO" ? el.currentTime : null,
      note: note && note.offsetHeight > 0 ? note.textContent : null,
    };
  }, id);
}

/// The tile of `id` shows moving pictures: a video's time advancing, or an
/// MJPEG view's picture changing.
async function moving(page, id) {
  const sel = `li.tile[data-camera="${id}"] [data-live]`;
  let first = null;
  return until(`tile ${id} to move`, async () => {
    const t = await tile(page, id);
    const now = t.live === "mse" ? t.time : await fingerprint(page, sel);
    if (now === null || !t.width) return false;
    if (first === null) first = now;
    return now !== first && t;
  }, 20_000, 300);
}

async function visit(browser, cams, pretendNoCodecs) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const errors = watchErrors(page);
  const asked = [];
  page.on("request", (r) => asked.push(new URL(r.url()).pathname));
  if (pretendNoCodecs) {
    await page.evaluateOnNewDocument(() => {
      if (window.MediaSource) window.MediaSource.isTypeSupported = () => false;
    });
  }
  await page.goto(base + "/", { waitUntil: "load" });
  const can = await page.evaluate((codecs) => codecs.map((c) => !!window.MediaSource && MediaSource.isTypeSupported(`video/mp4; codecs="${c}"`)), cams.map((c) => c.codec));
  const said = [];
  for (const [i, c] of cams.entries()) {
    const h265 = /^(hvc1|hev1)\./.test(c.codec);
    if (can[i]) {
      const t = await moving(page, c.id);
      check(t.live === "mse", `${c.id}: ${fmt(t)}`);
      said.push(`${c.id}: MSE`);
    } else if (!h265) {
      const t = await moving(page, c.id);
      check(t.live === "mjpeg", `${c.id} should fall back to MJPEG: ${fmt(t)}`);
      said.push(`${c.id}: MJPEG view`);
    } else {
      const t = await until(`tile ${c.id}'s note`, async () => {
        const t = await tile(page, c.id);
        return t.note && t;
      });
      check(t.live === null && /H\.265: this browser cannot play it live/.test(t.note), `${c.id}: ${fmt(t)}`);
      said.push(`${c.id}: note`);
    }
  }
  // A few more seconds for retries that should not happen.
  await sleep(3000);
  const h265 = cams.find((c) => /^(hvc1|hev1)\./.test(c.codec));
  const bad = asked.filter((p) => p === `/cameras/${h265.id}/video` || p === `/cameras/${h265.id}/snapshot.jpg`);
  check(bad.length === 0, `asked for the H.265 camera's MJPEG view: ${fmt(bad)}`);
  check(errors.length === 0, `errors:\n  ${errors.join("\n  ")}`);
  await page.close();
  return said.join(", ");
}

async function main() {
  const cams = await until("both RTSP cameras with their codecs", async () => {
    const list = (await api("GET", "/cameras")).body.cameras.filter((c) => c.live_mp4);
    return list.length === 2 && list.every((c) => c.codec) && list;
  }, 30_000);
  const { browser, close } = await launchPuppeteer(which);
  try {
    log(`browser: ${await browser.version()}; ${cams.map((c) => `${c.id} ${c.codec}`).join(", ")}`);
    log(`as it is: ${await visit(browser, cams, false)}`);
    log(`without the codecs: ${await visit(browser, cams, true)}`);
  } finally {
    await close();
  }
}

run(main);
