// Eight cameras on one page in a real browser: Debian's Chromium
// (BROWSER=chrome, the default) or Firefox ESR (BROWSER=firefox), driven by
// puppeteer-core. A browser opens at most six HTTP/1.1 connections to one
// server: with a stream in each tile the page's own requests waited.
//
//   node tests/browser/tiles.mjs http://127.0.0.1:PORT
//
// Expects a server whose cameras are test sources of different widths and
// an RTSP camera sending H.264, none recording. Checks every
// tile shows its own camera (its width) and moves, the large view too; the
// page's /status polls keep coming (a recording started elsewhere shows on
// its tile); a clip recorded from a tile is listed with its thumbnail and
// plays inline while all tiles stay live; each camera has one viewer (no
// stream twice); and no console error, failed request or media error.
// With OUTAGE_DIR set, the RTSP camera goes away (the script writes
// OUTAGE_DIR/stop) and its tile must say NO SIGNAL and why, on the tile;
// then it comes back (OUTAGE_DIR/start) and plays again.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { apiFor, baseArg, check, fingerprint, fmt, launchPuppeteer, log, playLibraryClip, run, sleep, until, watchErrors } from "./lib.mjs";

const which = process.env.BROWSER || "chrome";
const base = baseArg("node tiles.mjs http://HOST:PORT");
const api = apiFor(base);
const outage = process.env.OUTAGE_DIR;

/// What a tile shows now: its live element's kind and size, a fingerprint
/// of its picture (a video's time instead), REC, and why it is down.
async function tileState(page, id) {
  const t = await page.evaluate((id) => {
    const li = document.querySelector(`li.tile[data-camera="${id}"]`);
    if (!li) return null;
    const el = li.querySelector("[data-live]");
    const down = li.querySelector(".tile-down");
    const out = {
      live: el ? el.dataset.live : null,
      width: 0,
      print: null,
      rec: !li.querySelector(".tile-rec").hidden,
      down: down && !down.hidden && down.offsetHeight > 0 ? down.innerText : null,
    };
    if (el && el.tagName === "VIDEO") {
      if (el.error) throw new Error(`tile ${id}: media error ${el.error.code}`);
      out.width = el.videoWidth;
      out.print = el.readyState >= 2 ? el.currentTime : null;
    } else if (el) {
      out.width = el.naturalWidth;
    }
    return out;
  }, id);
  if (t && t.live === "mjpeg") t.print = await fingerprint(page, `li.tile[data-camera="${id}"] img[data-live]`);
  return t;
}

/// Waits until tile `id` shows camera `cam` live: its size, and a picture
/// that changes (or a video time that advances) between two looks.
async function tileMoves(page, cam, ms = 20_000) {
  let first = null;
  return until(
    `tile ${cam.id} to show its camera (${cam.width} wide) and move`,
    async () => {
      const t = await tileState(page, cam.id);
      if (!t || t.width !== cam.width || t.print === null) {
        first = null;
        return false;
      }
      if (first === null) {
        first = t.print;
        return false;
      }
      return t.print !== first && t;
    },
    ms,
    300,
  );
}

async function main() {
  const cams = await until("all cameras with a size in /cameras", async () => {
    const list = (await api("GET", "/cameras")).body.cameras;
    return list.length >= 8 && list.every((c) => c.width > 0 && (c.kind !== "rtsp" || c.codec)) && list;
  }, 30_000);
  const [large, ...tiled] = cams;
  const rtsp = cams.find((c) => c.kind === "rtsp");
  check(rtsp && rtsp.live_mp4, `no RTSP camera: ${fmt(cams.map((c) => c.id))}`);
  check(new Set(cams.map((c) => c.width)).size === cams.length, `cameras must differ in width: ${fmt(cams.map((c) => c.width))}`);

  const { browser, close } = await launchPuppeteer(which);
  try {
    log(`browser: ${await browser.version()}, ${cams.length} cameras`);
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const errors = watchErrors(page);

    const resp = await page.goto(base + "/", { waitUntil: "load" });
    check(resp && resp.status() === 200, `GET / answered ${resp && resp.status()}`);

    // 1. Every tile its own camera, moving; the first camera large.
    for (const c of tiled) await tileMoves(page, c);
    const rtspTile = await tileState(page, rtsp.id);
    check(rtspTile.live === "mse", `the RTSP tile plays as ${rtspTile.live}, not through MSE`);
    const big = await until("the large view to show the first camera", () =>
      page.evaluate(() => {
        const i = document.getElementById("preview");
        return i.naturalWidth > 0 && i.naturalWidth;
      }),
    );
    check(big === large.width, `the large view is ${big} wide, camera ${large.id} is ${large.width}`);
    // Each tile's whole name fits at 1,280 px (the bar wraps instead).
    const cut = await page.evaluate(() =>
      [...document.querySelectorAll(".tile-name")].filter((n) => n.scrollWidth > n.clientWidth).map((n) => n.textContent),
    );
    check(cut.length === 0, `names cut on their tiles: ${fmt(cut)}`);
    log(`${tiled.length} tiles live, each its own camera; ${large.id} large`);

    // 2. The page's own requests are not starved: /status polls keep
    // coming, and a recording started elsewhere shows on its tile.
    const polls = () =>
      page.evaluate(() => performance.getEntriesByType("resource").filter((e) => /\/status(\?|$)/.test(e.name)).map((e) => e.responseEnd));
    const before = (await polls()).length;
    const other = tiled[2];
    check((await api("POST", `/cameras/${other.id}/start`)).status === 200, "start by the API");
    await until(`REC on tile ${other.id}`, async () => (await tileState(page, other.id)).rec, 10_000);
    await sleep(4000);
    const done = await polls();
    check(done.length - before >= 3, `only ${done.length - before} /status polls finished in ~4 s`);
    check((await api("POST", `/cameras/${other.id}/stop`)).status === 200, "stop by the API");
    await until(`no REC on tile ${other.id}`, async () => !(await tileState(page, other.id)).rec, 10_000);
    log(`${done.length - before} status polls in ~4 s; REC shown and gone`);

    // 3. A clip from a tile, listed and playing while every tile streams.
    const rec = tiled[0];
    const earlier = new Set((await api("GET", `/clips?camera=${rec.id}`)).body.clips.map((c) => c.id));
    await page.evaluate((id) => document.querySelector(`li.tile[data-camera="${id}"] .tile-btn`).click(), rec.id);
    await until(`camera ${rec.id} recording`, async () => (await api("GET", "/cameras")).body.cameras.find((c) => c.id === rec.id).recording);
    await sleep(2000);
    await page.evaluate((id) => document.querySelector(`li.tile[data-camera="${id}"] .tile-btn`).click(), rec.id);
    const clip = await until("the new clip in /clips", async () =>
      (await api("GET", `/clips?camera=${rec.id}`)).body.clips.find((c) => !earlier.has(c.id)),
    );
    await page.evaluate(() => document.getElementById("lib-list").scrollIntoView());
    await until(`clip ${clip.id} in the library with its thumbnail`, () =>
      page.evaluate((id) => {
        const li = document.querySelector(`#lib-list li[data-id="${id}"]`);
        const img = li && li.querySelector("img");
        return img && img.naturalWidth > 0;
      }, clip.id),
    );
    const played = (await playLibraryClip(page, clip.id)).w;
    check(played === rec.width, `the clip plays ${played} wide, camera ${rec.id} is ${rec.width}`);
    for (const c of tiled) await tileMoves(page, c, 10_000);
    log(`clip ${clip.id} listed and playing; every tile still live`);

    // 4. One stream per camera: a tile and the large view never both. (A
    // stream the page just replaced holds its seat until the server's next
    // write to it fails: counted once that has settled.)
    await until("one viewer per camera", async () => {
      const viewers = (await api("GET", "/cameras")).body.cameras.map((c) => [c.id, c.viewers]);
      if (viewers.every(([, n]) => n === 1)) return true;
      throw new Error(`viewers per camera: ${fmt(viewers)}`);
    }, 10_000);

    // 5. The RTSP camera away: NO SIGNAL and why, on its tile; then back.
    if (outage) {
      writeFileSync(join(outage, "stop"), "");
      // The reason on the tile is the one /cameras gives (it may change
      // as the camera is retried: both read in one look).
      const down = await until("NO SIGNAL and the reason /cameras gives, on the RTSP tile", async () => {
        const t = await tileState(page, rtsp.id);
        const reason = (await api("GET", "/cameras")).body.cameras.find((c) => c.id === rtsp.id).message;
        return t.down && reason && t.down.includes(reason) && t;
      }, 20_000);
      check(/NO SIGNAL/.test(down.down), `the tile says ${fmt(down.down)}`);
      log(`RTSP tile down: ${fmt(down.down)}`);
      writeFileSync(join(outage, "start"), "");
      await until("the RTSP tile without NO SIGNAL", async () => !(await tileState(page, rtsp.id)).down, 30_000);
      await tileMoves(page, rtsp, 30_000);
      log("RTSP tile live again");
    }

    check(errors.length === 0, `errors:\n  ${errors.join("\n  ")}`);
  } finally {
    await close();
  }
}

run(main);
