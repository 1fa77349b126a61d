// Drives the ops console of a running `l3map run` in Debian's headless
// Chromium, keyboard only where a person would use the keyboard, the way
// tests/console_browser.rs asks: sign in, find the dead letter, read it,
// retry it, read the ticket's audit trail, the refused reload, the graph
// and the budgets. Prints one JSON object of what it saw; exits 1 on any
// failure (the message on stderr).
//
// Environment: L3MAP_URL, L3MAP_OPS_TOKEN, L3MAP_TICKET, L3MAP_ACTION,
// L3MAP_REFUSED (a fragment of the refused reload's diagnostics),
// L3MAP_SHOTS (a folder for the screenshots), CHROMIUM (the browser).
import { chromium } from "playwright-core";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const url = env("L3MAP_URL");
const token = env("L3MAP_OPS_TOKEN");
const ticket = env("L3MAP_TICKET");
const action = env("L3MAP_ACTION");
const refused = env("L3MAP_REFUSED");
const shots = env("L3MAP_SHOTS");
const seen = {};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("dialog", (d) => { errors.push("a native dialog opened: " + d.message()); d.dismiss(); });
  await page.goto(url + "/ui");
  // Sign in: the token field has the focus; type, Enter.
  await page.waitForSelector("#token");
  seen.focus_at_start = await page.evaluate(() => document.activeElement && document.activeElement.id);
  await page.keyboard.type(token);
  await page.keyboard.press("Enter");
  await page.waitForSelector("#nav:not([hidden])");
  await page.waitForSelector(".graph svg");
  // A reload of the page would lose this.
  await page.evaluate(() => { window.__kept = "kept"; });
  await page.screenshot({ path: shots + "/graph.png", fullPage: true });

  // To the dead letters by keyboard: Tab until the link, Enter.
  const tabTo = async (test, max) => {
    for (let i = 1; i <= max; i++) {
      await page.keyboard.press("Tab");
      if (await page.evaluate(test)) return i;
    }
    throw new Error("Tab never reached the element");
  };
  seen.tabs_to_dead = await tabTo(() => document.activeElement.textContent === "Dead letters", 20);
  await page.keyboard.press("Enter");
  await page.waitForSelector(`tr[data-id="${action}"]`);
  const row = page.locator(`tr[data-id="${action}"]`);
  seen.reason = (await row.locator("td").nth(5).textContent()).trim();
  seen.location = (await row.locator("code.loc").textContent()).trim();
  seen.answer = (await row.locator("td.answer").textContent()).trim();
  seen.record = (await row.locator("td").nth(1).textContent()).trim();
  seen.injected_elements = await page.evaluate(() => document.querySelectorAll("#view img, #view script").length);
  seen.xss = await page.evaluate(() => window.__xss === undefined ? null : window.__xss);
  await page.screenshot({ path: shots + "/dead-letters.png", fullPage: true });

  // Retry by keyboard: Tab to the row's Retry, Enter; the dialog opens on
  // Cancel; Tab to Confirm, Enter.
  seen.tabs_to_retry = await tabTo(
    new Function(`return document.activeElement.dataset.key === "retry-${action}"`), 200);
  await page.keyboard.press("Enter");
  await page.waitForSelector("dialog#confirm[open]");
  seen.dialog_focus = await page.evaluate(() => document.activeElement.id);
  seen.dialog_text = await page.locator("#confirm-text").textContent();
  await page.screenshot({ path: shots + "/retry-confirm.png" });
  await page.keyboard.press("Tab");
  seen.confirm_focus = await page.evaluate(() => document.activeElement.id);
  await page.keyboard.press("Enter");
  await page.waitForSelector(`tr[data-id="${action}"]`, { state: "detached", timeout: 15000 });
  seen.status = await page.locator("#status").textContent();
  seen.kept_after_retry = await page.evaluate(() => window.__kept || null);

  // The ticket's audit trail, through its address; it updates by itself
  // until the retried action shows as applied.
  await page.evaluate((t) => { location.hash = "#/trail/" + t; }, ticket);
  await page.waitForSelector("#trail-actions");
  await page.waitForFunction(() => /applied/.test(document.querySelector("#trail-actions").textContent), null, { timeout: 20000 });
  seen.trail = await page.locator("#trail-actions").textContent();
  seen.trail_events = await page.locator("#trail-events").textContent();
  await page.screenshot({ path: shots + "/audit-trail.png", fullPage: true });

  // The refused reload's diagnostics.
  await page.evaluate(() => { location.hash = "#/reloads"; });
  await page.waitForSelector("#reloads-table pre.diagnostics");
  seen.diagnostics = await page.locator("#reloads-table pre.diagnostics").first().textContent();
  if (!seen.diagnostics.includes(refused)) throw new Error("the diagnostics do not show " + refused);
  await page.screenshot({ path: shots + "/reloads.png", fullPage: true });

  await page.evaluate(() => { location.hash = "#/budgets"; });
  await page.waitForSelector("#page-title");
  await page.waitForFunction(() => document.querySelector("#page-title").textContent === "Budgets");
  await page.screenshot({ path: shots + "/budgets.png", fullPage: true });

  await page.evaluate(() => { location.hash = "#/graph?window=15m"; });
  await page.waitForSelector(".graph svg text.count");
  seen.graph_counts = await page.locator(".graph svg text.count").allTextContents();
  await page.screenshot({ path: shots + "/graph.png", fullPage: true });

  seen.kept_at_end = await page.evaluate(() => window.__kept || null);
  seen.page_errors = errors;
  const html = await page.content();
  seen.token_in_page = html.includes(token);
  const cookies = await page.context().cookies();
  seen.cookie_http_only = cookies.every((c) => c.httpOnly);
  seen.token_in_cookie = cookies.some((c) => c.value.includes(token));
  seen.token_in_storage = await page.evaluate((t) => JSON.stringify(Object.assign({}, localStorage, sessionStorage)).includes(t), token);
  process.stdout.write(JSON.stringify(seen) + "\n");
} catch (e) {
  process.stderr.write(String(e && e.stack || e) + "\nseen so far: " + JSON.stringify(seen) + "\n");
  process.exitCode = 1;
} finally {
  await browser.close();
}
