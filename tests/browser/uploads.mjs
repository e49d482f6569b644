// The library's upload badges stay live on an open page, in a real browser
// (BROWSER=chrome, the default, or firefox), driven by puppeteer-core.
//
//   node tests/browser/uploads.mjs http://127.0.0.1:PORT
//
// Expects a server uploading to a bucket that does not exist yet, and
// CONTROL_DIR: once the page shows the failure the script writes
// CONTROL_DIR/bucket, and the test creates the bucket and asks for the
// upload again. A clip recorded with the page open (Start and Stop on the
// page) gets its badge without a reload; the failure says why, with a
// countdown that ticks; once the bucket exists the badge says the clip is
// in the bucket, without a reload; no console error, failed request or
// HTTP error.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { apiFor, baseArg, check, fmt, launchPuppeteer, log, run, sleep, until, watchErrors } from "./lib.mjs";

const which = process.env.BROWSER || "chrome";
const base = baseArg("node uploads.mjs http://HOST:PORT");
const api = apiFor(base);
const control = process.env.CONTROL_DIR;

function badge(page, id) {
  return page.evaluate((id) => {
    const b = document.querySelector(`#lib-list li[data-id="${id}"] .lib-upload`);
    return b && { state: b.dataset.upload, text: b.textContent };
  }, id);
}

async function main() {
  check(control, "CONTROL_DIR is not set");
  const { browser, close } = await launchPuppeteer(which);
  try {
    log(`browser: ${await browser.version()}`);
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const errors = watchErrors(page);
    await page.goto(base + "/", { waitUntil: "load" });
    await until("the page live", () => page.evaluate(() => document.getElementById("preview").naturalWidth > 0), 20_000);

    // Recorded while the page is open, from the page.
    await page.click("#record");
    await until("recording", async () => (await api("GET", "/status")).body.recording);
    await sleep(1500);
    await page.click("#record");
    const clip = await until("the clip in /clips", async () => (await api("GET", "/clips")).body.clips[0]);
    await page.evaluate(() => document.getElementById("lib-list").scrollIntoView());

    // Its badge, without a reload: the failure in words, and a countdown.
    const failed = await until(`a failed badge on ${clip.id}`, async () => {
      const b = await badge(page, clip.id);
      return b && b.state === "failed" && b;
    }, 30_000);
    check(/upload failed: .*no such bucket.*; (next try in \d+ s|trying again)$/.test(failed.text), `badge says ${fmt(failed.text)}`);
    check(!/\.;/.test(failed.text), `badge says ${fmt(failed.text)}`);
    const left = (t) => Number((/next try in (\d+) s/.exec(t) || [])[1]);
    const first = await until("a countdown", async () => {
      const b = await badge(page, clip.id);
      return b && left(b.text) >= 3 && b;
    }, 60_000);
    // (A reload in between takes the server's own count again, which a
    // slow server, under qemu, gives a second late: at least one tick.)
    await sleep(3200);
    const later = await badge(page, clip.id);
    const ticked = later.state !== "failed" || /trying again$/.test(later.text) || left(later.text) <= left(first.text) - 1;
    check(ticked, `the countdown is frozen: ${fmt(first.text)} then ${fmt(later.text)}`);
    log(`failed: ${fmt(first.text)}, then ${fmt(later.text)}`);

    // The bucket appears and the clip is tried again: the badge follows.
    writeFileSync(join(control, "bucket"), "");
    const done = await until(`${clip.id} in the bucket on the page`, async () => {
      const b = await badge(page, clip.id);
      return b && b.state === "uploaded" && b;
    }, 30_000);
    check(/in the bucket/.test(done.text), `badge says ${fmt(done.text)}`);
    log(`then: ${fmt(done.text)}`);

    check(errors.length === 0, `errors:\n  ${errors.join("\n  ")}`);
  } finally {
    await close();
  }
}

run(main);
