// Weft's WebSocket route (/ws/echo) against two real clients: npm's `ws` under Node (ws:// and
// wss:// with a private CA) and Chromium's own WebSocket from a page (Debian's chromium,
// headless, driven by playwright-core; no browser download). Each client sends text, binary and
// a large message, expects them back unchanged, agrees on the "echo" subprotocol, and closes
// with 1000. Node's client also pings and expects the pong.
//
// Usage: node websocket_clients.mjs --http HOST:PORT [--https HOST:PORT --ca FILE]
// Exit status 0 when every check passed.
import { chromium } from "playwright-core";
import WebSocket from "ws";
import fs from "node:fs";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((a, v, i, all) => (v.startsWith("--") ? [...a, [v.slice(2), all[i + 1]]] : a), []));

function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
  console.log("ok: " + what);
}

function withTimeout(p, ms, what) {
  return Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error("timed out: " + what)), ms))]);
}

async function nodeClient(url, options, label) {
  const ws = new WebSocket(url, ["echo"], options);
  const inbox = [];
  const waiters = [];
  ws.on("message", (data, isBinary) => {
    const m = { data, isBinary };
    if (waiters.length) waiters.shift()(m); else inbox.push(m);
  });
  const next = () => withTimeout(new Promise((r) => (inbox.length ? r(inbox.shift()) : waiters.push(r))), 5000, label + " echo");
  await withTimeout(new Promise((resolve, reject) => { ws.on("open", resolve); ws.on("error", reject); }), 5000, label + " open");
  check(ws.protocol === "echo", label + ": subprotocol echo chosen");
  ws.send("héllo from node");
  let m = await next();
  check(!m.isBinary && m.data.toString() === "héllo from node", label + ": text echoed");
  const bin = Buffer.from([0, 1, 2, 253, 254, 255]);
  ws.send(bin);
  m = await next();
  check(m.isBinary && Buffer.compare(m.data, bin) === 0, label + ": binary echoed");
  const big = Buffer.alloc(300 * 1024, 7);
  ws.send(big);
  m = await next();
  check(m.isBinary && m.data.length === big.length && Buffer.compare(m.data, big) === 0, label + ": 300 KiB echoed");
  const pong = withTimeout(new Promise((r) => ws.once("pong", r)), 5000, label + " pong");
  ws.ping(Buffer.from("are you there"));
  check(String(await pong) === "are you there", label + ": ping answered with its payload");
  const closed = withTimeout(new Promise((r) => ws.on("close", (code) => r(code))), 5000, label + " close");
  ws.close(1000, "bye");
  check((await closed) === 1000, label + ": closed with 1000");
}

await nodeClient("ws://" + args.http + "/ws/echo", {}, "node ws");
if (args.https) {
  await nodeClient("wss://" + args.https + "/ws/echo", { ca: fs.readFileSync(args.ca) }, "node wss");
}

// Chromium's WebSocket, from a page served by weft itself (same origin).
const browser = await chromium.launch({
  executablePath: process.env.WEFT_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
try {
  const page = await browser.newPage();
  await page.goto("http://" + args.http + "/");
  const result = await page.evaluate(async (addr) => {
    const ws = new WebSocket("ws://" + addr + "/ws/echo", ["echo"]);
    ws.binaryType = "arraybuffer";
    const got = [];
    const waiters = [];
    ws.onmessage = (e) => (waiters.length ? waiters.shift()(e.data) : got.push(e.data));
    const next = () => new Promise((r) => (got.length ? r(got.shift()) : waiters.push(r)));
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error("error")); });
    ws.send("hello from chromium ✓");
    const text = await next();
    ws.send(new Uint8Array([9, 8, 7, 0, 255]).buffer);
    const bin = Array.from(new Uint8Array(await next()));
    const big = "x".repeat(200000);
    ws.send(big);
    const bigBack = await next();
    const closed = new Promise((r) => (ws.onclose = (e) => r({ code: e.code, clean: e.wasClean })));
    ws.close(1000, "done");
    return { protocol: ws.protocol, extensions: ws.extensions, text, bin, bigOk: bigBack === big, close: await closed };
  }, args.http);
  check(result.protocol === "echo", "chromium: subprotocol echo chosen");
  check(result.extensions === "", "chromium: no extension agreed (permessage-deflate declined)");
  check(result.text === "hello from chromium ✓", "chromium: text echoed");
  check(JSON.stringify(result.bin) === "[9,8,7,0,255]", "chromium: binary echoed");
  check(result.bigOk, "chromium: 200 KB text echoed");
  check(result.close.code === 1000 && result.close.clean, "chromium: clean close with 1000");
} finally {
  await browser.close();
}
console.log("all WebSocket client checks passed");
