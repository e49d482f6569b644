// Browser test of signing in, for a server that needs credentials:
//
//   node tests/browser/login.mjs http://127.0.0.1:PORT PASSWORD
//
// `/` sends a signed-out browser to the login form; a wrong password says so;
// the right one opens the page with live pictures and a session cookie that
// scripts cannot read (HttpOnly, SameSite=Strict); Sign out ends it.

import { baseArg, check, log, openBrowser, previewChanges, run, until } from "./lib.mjs";

const base = baseArg("node login.mjs http://HOST:PORT PASSWORD");
const password = process.argv[3] || "";
check(password.length >= 8, "no password given");

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

    await page.fill('input[name="password"]', password);
    await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    check(new URL(page.url()).pathname === "/", `after signing in: ${page.url()}`);
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

    // Two navigations may race here (the form's 303 to /login, and the
    // page's own poll seeing 401 and going to /login): wait for where the
    // page ends up, not for one navigation, which the other can abort.
    await page.click("#logout button");
    await until("the login form after signing out", async () =>
      new URL(page.url()).pathname === "/login" && (await page.locator("form").count()) > 0);
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
