// The live debug page in a real browser: Debian's chromium, headless, driven by playwright-core
// (no browser download: executablePath points at /usr/bin/chromium). Loads /debug/, waits for
// the heatmaps to be drawn, triggers /block?ms=300 on the data port, expects the report on the
// page within 2 s, opens its stack with the keyboard, checks dark mode, saves screenshots.
//
// Usage: node debug_page_browser.mjs --admin HOST:PORT --http HOST:PORT --out DIR
// Exit status 0 when every check passed; the failure otherwise.
import { chromium } from "playwright-core";
import http from "node:http";
import fs from "node:fs";
import path from "node:path";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((a, v, i, all) => (v.startsWith("--") ? [...a, [v.slice(2), all[i + 1]]] : a), []));
const executablePath = process.env.WEFT_CHROMIUM || "/usr/bin/chromium";
const out = args.out;
fs.mkdirSync(out, { recursive: true });

function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
  console.log("ok: " + what);
}

function get(addr, p) {
  return new Promise((resolve, reject) => {
    const [host, port] = addr.split(":");
    http.get({ host, port: Number(port), path: p }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    }).on("error", reject);
  });
}

// Root in a container has no user namespace sandbox: --no-sandbox (the page is our own).
const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1400 }, colorScheme: "light" });
  const page = await context.newPage();
  const external = [];
  page.on("request", (r) => {
    if (!r.url().startsWith("http://" + args.admin + "/")) external.push(r.url());
  });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

  await page.goto("http://" + args.admin + "/debug/", { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => document.getElementById("status").textContent === "live",
                             null, { timeout: 10000 });
  check(true, "the event stream is live");

  // A little traffic (bounded: 3 s, 8 clients, 127.0.0.1), so that every heatmap has data.
  const until = Date.now() + 3000;
  await Promise.all([...Array(8)].map(async (_, i) => {
    while (Date.now() < until) await get(args.http, i % 2 ? "/" : "/sleep?ms=3");
  }));

  // Heatmaps: a canvas per hub and histogram, with cells drawn once ticks carried data.
  await page.waitForFunction(() => {
    const cs = [...document.querySelectorAll("canvas[data-kind]")];
    return cs.length >= 3 && cs.filter((c) => Number(c.dataset.cells) > 0).length >= 1;
  }, null, { timeout: 15000 });
  const drawn = await page.evaluate(() => {
    // Pixels that differ from the background: the chart is really drawn, not only counted.
    return [...document.querySelectorAll("canvas[data-kind]")].map((c) => {
      const g = c.getContext("2d");
      const d = g.getImageData(0, 0, c.width, c.height).data;
      const bg = [d[0], d[1], d[2]];
      let n = 0;
      for (let i = 0; i < d.length; i += 4)
        if (Math.abs(d[i] - bg[0]) + Math.abs(d[i + 1] - bg[1]) + Math.abs(d[i + 2] - bg[2]) > 30) n++;
      return { kind: c.dataset.kind, hub: c.dataset.hub, w: c.width, h: c.height, painted: n,
               label: c.getAttribute("aria-label") };
    });
  });
  console.log(JSON.stringify(drawn));
  check(drawn.length >= 3, "heatmap canvases: " + drawn.length);
  check(drawn.some((c) => c.painted > 0), "a heatmap has painted cells");
  check(drawn.filter((c) => c.kind === "sched" && c.painted > 0).length >= 1,
        "a schedule-delay heatmap has painted cells");
  check(drawn.every((c) => /^hub \d+ /.test(c.label)), "each heatmap has an accessible label");
  const rows = await page.locator("#config tr").count();
  check(rows > 40, "configuration rows with sources: " + rows);
  const stackRow = await page.locator("#config tr", { hasText: "runtime.stack_size" })
    .locator("td").first().textContent();
  const timeoutRow = await page.locator("#config tr", { hasText: "server.header_timeout" })
    .locator("td").first().textContent();
  check(stackRow === '"auto"' && timeoutRow === '"10s"',
        "values as --print-config writes them: " + stackRow + ", " + timeoutRow);
  const plugins = await page.locator("#plugins tr").count();
  check(plugins >= 1, "plugins table");
  await page.waitForFunction(() => document.getElementById("fibers").textContent.includes("hub 0"),
                             null, { timeout: 5000 });
  check(true, "fiber tree shown");

  // A blockage on the data port appears on the page within 2 s.
  const before = await page.locator("#reports li").count();
  const t0 = Date.now();
  const blocked = get(args.http, "/block?ms=300");
  await page.waitForFunction((n) => document.querySelectorAll("#reports li").length > n, before,
                             { timeout: 2000 });
  const took = Date.now() - t0;
  check(took <= 2000, "report on the page " + took + " ms after /block?ms=300");
  check((await blocked).status === 200, "/block answered");
  const li = page.locator("#reports li").first();
  check((await li.getAttribute("data-route")) === "/block", "the report names the route");
  check((await li.getAttribute("data-plugin")) === "demo", "the report names the plugin");
  check((await li.getAttribute("data-kind")) === "syscall", "the report says system call");
  // The closing record updates the duration.
  await page.waitForFunction(() => document.querySelector("#reports li").dataset.ended === "1",
                             null, { timeout: 5000 });

  // Keyboard: Tab to the report's summary and open its stack with Enter.
  const summary = li.locator("summary");
  await summary.focus();
  await page.keyboard.press("Enter");
  const open = await li.locator("details").evaluate((d) => d.open);
  check(open, "the stack folds open from the keyboard");
  const stack = await li.locator("pre").textContent();
  check(stack.includes("raw_sleep"), "the stack names raw_sleep");

  // The demo plugin's stall budget is 0.5 s (set by the test): two more blockages of 300 ms
  // quarantine it, and the plugins table says so within a tick.
  for (let i = 0; i < 2; i++) await get(args.http, "/block?ms=300");
  check((await get(args.http, "/")).status === 503, "the demo plugin is quarantined");
  await page.waitForFunction(() => {
    const row = document.querySelector('#plugins tr[data-plugin="demo"]');
    return row && row.textContent.includes("quarantined");
  }, null, { timeout: 3000 });
  check(true, "the page shows the quarantine");

  await page.screenshot({ path: path.join(out, "debug_page.png"), fullPage: true });
  console.log("screenshot: " + path.join(out, "debug_page.png"));

  // Dark mode: the page follows prefers-color-scheme.
  const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.emulateMedia({ colorScheme: "dark" });
  const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check(light !== dark, "dark scheme: " + light + " -> " + dark);
  await page.waitForTimeout(1200);  // a tick redraws the heatmaps in the dark palette
  await page.screenshot({ path: path.join(out, "debug_page_dark.png"), fullPage: false });

  check(external.length === 0, "no request leaves the admin listener: " + external.join(", "));
  check(errors.length === 0, "no script errors: " + errors.join("; "));
} finally {
  await browser.close();
}
