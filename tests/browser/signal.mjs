// Browser test of the page through a camera outage:
//
//   node tests/browser/signal.mjs http://127.0.0.1:PORT FILE.mjpeg
//
// Expects a server reading the MJPEG file FILE (`--source FILE`). The page
// shows LIVE without a banner; the script moves FILE away, and the page must
// say NO SIGNAL (banner, chip, source state) while the preview keeps its
// connection (the server sends its NO SIGNAL picture); it puts FILE back and
// the page must go LIVE again with moving pictures, on the same /video
// connection, without console errors.
//
// NOSIGNAL_SCREENSHOT=path saves the page during the outage.

import { renameSync, existsSync } from "node:fs";
import { apiFor, baseArg, check, log, openBrowser, previewFingerprint, run, until } from "./lib.mjs";

const base = baseArg("node signal.mjs http://HOST:PORT FILE.mjpeg");
const file = process.argv[3] || "";
check(file && existsSync(file), `no MJPEG file at ${JSON.stringify(file)}`);
const away = `${file}.away`;
const api = apiFor(base);

/// What the page says about the source, as a user reads it.
function pageSays(page) {
  return page.evaluate(() => {
    const banner = document.getElementById("banner");
    return {
      chip: document.getElementById("source-chip").textContent.trim(),
      banner: banner.hidden ? "" : banner.innerText.replace(/\s+/g, " ").trim(),
      source: document.getElementById("stat-source").textContent.trim(),
      reconnecting: !document.getElementById("reconnecting").hidden,
      picture: document.getElementById("preview").naturalWidth > 0,
    };
  });
}

async function movingPictures(page, what) {
  const seen = new Set();
  await until(`5 different preview pictures ${what}`, async () => {
    const f = await previewFingerprint(page);
    if (f !== null) seen.add(f);
    return seen.size >= 5;
  }, 15_000, 100);
}

async function main() {
  const browser = await openBrowser();
  let moved = false;
  try {
    const page = browser.context.pages()[0] || (await browser.context.newPage());
    browser.watch(page, "desktop");
    let streamRequests = 0;
    page.on("request", (r) => {
      if (new URL(r.url()).pathname === "/video") streamRequests++;
    });

    const resp = await page.goto(base + "/", { waitUntil: "load" });
    check(resp && resp.status() === 200, `GET / answered ${resp && resp.status()}`);
    let says = await until("the page to show LIVE without a banner", async () => {
      const s = await pageSays(page);
      return s.chip === "LIVE" && !s.banner && s.picture && s;
    });
    await movingPictures(page, "from the file");
    log(`live: chip ${says.chip}, source ${says.source}, no banner, moving pictures`);

    renameSync(file, away);
    moved = true;
    log("file moved away");
    says = await until("the page to say NO SIGNAL", async () => {
      const s = await pageSays(page);
      return s.chip === "NO SIGNAL" && /no signal/i.test(s.banner) && s;
    }, 30_000);
    const status = (await api("GET", "/status")).body;
    check(status.source.state === "down", `server source state ${status.source.state}`);
    const name = file.split("/").pop();
    check(says.banner.includes(name), `the banner does not name ${name}: ${says.banner}`);
    check(/no signal/i.test(says.source), `source stat says ${says.source}`);
    check(says.picture && !says.reconnecting, `preview lost its picture during the outage: ${JSON.stringify(says)}`);
    log(`down: banner "${says.banner}"`);
    if (process.env.NOSIGNAL_SCREENSHOT) await page.screenshot({ path: process.env.NOSIGNAL_SCREENSHOT });

    renameSync(away, file);
    moved = false;
    log("file back");
    says = await until("the page to show LIVE again without a banner", async () => {
      const s = await pageSays(page);
      return s.chip === "LIVE" && !s.banner && s;
    }, 30_000);
    await movingPictures(page, "after the outage");
    log(`live again: chip ${says.chip}, moving pictures`);

    check(streamRequests === 1, `the page opened /video ${streamRequests} times; the outage should not cost the connection`);
    browser.checkConsole();
    log("one /video connection throughout, no console errors");
  } finally {
    if (moved) renameSync(away, file);
    await browser.close();
  }
}

run(main);
