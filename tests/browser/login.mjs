// Browser test of signing in, for a server that needs credentials:
//
//   node tests/browser/login.mjs http://127.0.0.1:PORT PASSWORD VIEWER_PASSWORD
//
// `/` sends a signed-out browser to the login form; a wrong password says so;
// the right one opens the page with live pictures and a session cookie that
// scripts cannot read (HttpOnly, SameSite=Strict); Sign out ends it. The
// server has one clip: the admin's library offers to delete it; signed in
// as the viewer, the page shows no Start button and no Delete, and the clip
// downloads.

import { baseArg, check, log, openBrowser, previewChanges, run, until } from "./lib.mjs";

const base = baseArg("node login.mjs http://HOST:PORT PASSWORD");
const password = process.argv[3] || "";
const viewerPassword = process.argv[4] || "";
check(password.length >= 8 && viewerPassword.length >= 8, "no passwords given");

/// Signs in through the form; ends on the page.
async function signIn(page, user, pw) {
  await page.fill('input[name="user"]', user);
  await page.fill('input[name="password"]', pw);
  await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
  check(new URL(page.url()).pathname === "/", `after signing in as ${user}: ${page.url()}`);
}

/// Opens the library's only clip; what its buttons show.
async function openClip(page) {
  await until("the clip in the library", () => page.locator("#lib-list li .lib-card").count(), 20_000);
  await page.locator("#lib-list li .lib-card").first().click();
  await until("the clip's player", () => page.locator("#lib-download").isVisible());
  return {
    download: await page.locator("#lib-download").getAttribute("href"),
    del: await page.locator("#lib-delete").isVisible(),
    record: await page.locator("#record").isVisible(),
  };
}

/// Signs out and waits for the form.
async function signOut(page) {
  // Two navigations may race here (the form's 303 to /login, and the
  // page's own poll seeing 401 and going to /login): wait for where the
  // page ends up, not for one navigation, which the other can abort.
  await page.click("#logout button");
  await until("the login form after signing out", async () =>
    new URL(page.url()).pathname === "/login" && (await page.locator("form").count()) > 0);
}

run(async () => {
  const b = await openBrowser();
  try {
    const page = await b.context.newPage();
    b.watch(page, "page");

    await page.goto(base + "/");
    check(new URL(page.url()).pathname === "/login", `signed out, / should lead to /login, not ${page.url()}`);
    log("signed out: sent to the login form");

    await page.fill('input[name="user"]', "admin");
    await page.fill('input[name="password"]', "not-the-password");
    await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    const msg = await page.locator(".error").innerText();
    check(/wrong user or password/i.test(msg), `no error for a wrong password: ${JSON.stringify(msg)}`);
    log("wrong password: refused with a message");

    await signIn(page, "admin", password);
    const cookies = await b.context.cookies(base);
    const session = cookies.find((c) => c.name === "vr_session");
    check(session, `no session cookie: ${JSON.stringify(cookies)}`);
    check(session.httpOnly && session.sameSite === "Strict", `cookie flags: ${JSON.stringify(session)}`);
    const visible = await page.evaluate(() => document.cookie);
    check(!visible.includes("vr_session"), "scripts can read the session cookie");
    log("signed in: session cookie HttpOnly, SameSite=Strict");

    await previewChanges(page, 3, 15_000, 100);
    await until("the Sign out button", () => page.locator("#logout").isVisible());
    log("live pictures and Sign out shown");
    const admin = await openClip(page);
    check(admin.del && admin.record, `the admin's page lacks Delete or Start: ${JSON.stringify(admin)}`);
    log("admin: the clip offers Delete, the page Start");

    await signOut(page);
    await signIn(page, "viewer", viewerPassword);
    await previewChanges(page, 3, 15_000, 100);
    const viewer = await openClip(page);
    check(!viewer.del && !viewer.record, `a viewer is offered what it may not do: ${JSON.stringify(viewer)}`);
    check(/\?download=1$/.test(viewer.download), `download link ${viewer.download}`);
    const file = await page.request.get(new URL(viewer.download, base).href);
    check(file.status() === 200, `the viewer's download answered ${file.status()}`);
    check(/^attachment/.test(file.headers()["content-disposition"] || ""), `download headers ${JSON.stringify(file.headers())}`);
    const bytes = await file.body();
    check(bytes.length > 1000 && bytes.subarray(4, 8).toString() === "ftyp", `the download is ${bytes.length} bytes, not an MP4`);
    log(`viewer: no Start, no Delete; the clip downloads (${bytes.length} bytes)`);

    await signOut(page);
    check(new URL(page.url()).pathname === "/login", `after signing out: ${page.url()}`);
    const res = await page.request.get(base + "/status");
    check(res.status() === 401, `/status after signing out answered ${res.status()}`);
    log("signed out: back at the login form, /status refused");
    // The page's own 401 for /status after sign-out is expected; nothing else.
    b.consoleErrors = b.consoleErrors.filter((e) => !/401/.test(e));
    b.checkConsole();
  } finally {
    await b.close();
  }
});
