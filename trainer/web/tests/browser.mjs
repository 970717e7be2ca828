// The browser test: serves SITE (the page, its pkg/ and browser_fixture's files) on the
// loopback, opens it in headless Chromium with WebGPU (`?test=test.json`), waits for the page's
// results over the DevTools protocol (on a pipe: no port, no WebSocket client needed, any Node
// from 18 on) and compares them with the native ones in test.json.
//
//   node trainer/web/tests/browser.mjs SITE [SECONDS]
//
// Tolerances: the page runs on the browser's adapter (SwiftShader in headless Chromium) and the
// native side on this machine's (lavapipe with its 8-lane subgroup kernels; WebGPU exposes no
// subgroups there, so the page takes the plain CPU-profile kernels), so sums are taken in other
// orders, and WGSL lets exp, log and sqrt be a few ULP off (SwiftShader's are less exact than
// LLVM's). Measured on the tiny fixture (2026-12-07): images differ by at most 2.3e-3 (pixels in
// [-1, 1]; both sides add the same counter-based noise), losses by 1.1e-4 relatively. The
// tolerances are about 4× that: IMAGE_TOL absolute per value, LOSS_TOL relative per step.
import http from "node:http";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";

const IMAGE_TOL = 1e-2;
const LOSS_TOL = 5e-4;

const site = path.resolve(process.argv[2] ?? "");
const timeoutSeconds = Number(process.argv[3] ?? 600);
if (!fs.existsSync(path.join(site, "test.json"))) {
  console.error(`usage: browser.mjs SITE [SECONDS]: SITE needs index.html, app.js, pkg/ and test.json`);
  process.exit(2);
}
const spec = JSON.parse(fs.readFileSync(path.join(site, "test.json"), "utf8"));

const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };
const server = http.createServer((req, res) => {
  const rel = decodeURIComponent(new URL(req.url, "http://x").pathname).replace(/^\/+/, "") || "index.html";
  const file = path.join(site, rel);
  if (!file.startsWith(site) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": types[path.extname(file)] ?? "application/octet-stream" });
  fs.createReadStream(file).pipe(res);
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const url = `http://127.0.0.1:${server.address().port}/index.html?test=test.json`;

const profile = fs.mkdtempSync(path.join(os.tmpdir(), "mtdiff-chromium-"));
// --remote-debugging-pipe: the DevTools protocol on fds 3 (to Chromium) and 4 (from it),
// messages as JSON ended by a NUL byte.
const browser = spawn(process.env.CHROMIUM ?? "chromium", [
  "--headless=new", "--no-sandbox", "--enable-unsafe-webgpu", "--no-first-run",
  "--remote-debugging-pipe", `--user-data-dir=${profile}`, "about:blank",
], { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] });
let browserLog = "";
browser.stderr.on("data", (d) => { browserLog += d; });
browser.on("error", (e) => { browserLog += `could not start Chromium: ${e.message}`; });

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
let failures = 0, passes = 0;
function check(name, ok, detail) {
  console.log(`${ok ? "ok  " : "FAIL"} ${name}: ${detail}`);
  ok ? passes++ : failures++;
}

try {
  let nextId = 1, buffered = "", sessionId;
  const pending = new Map();
  browser.stdio[4].on("data", (chunk) => {
    buffered += chunk.toString("utf8");
    let end;
    while ((end = buffered.indexOf("\0")) >= 0) {
      const msg = JSON.parse(buffered.slice(0, end));
      buffered = buffered.slice(end + 1);
      if (msg.id && pending.has(msg.id)) { pending.get(msg.id)(msg); pending.delete(msg.id); }
      else if (msg.method === "Runtime.consoleAPICalled")
        console.log(`page console: ${msg.params.args.map((a) => a.value ?? a.description).join(" ")}`);
      else if (msg.method === "Runtime.exceptionThrown")
        console.log(`page exception: ${msg.params.exceptionDetails.exception?.description ?? msg.params.exceptionDetails.text}`);
    }
  });
  const send = (method, params = {}, session = sessionId) => new Promise((ok, fail) => {
    const id = nextId++;
    const timer = setTimeout(() => {
      pending.delete(id);
      fail(new Error(`Chromium did not answer ${method}:\n${browserLog}`));
    }, 30000);
    pending.set(id, (msg) => { clearTimeout(timer); ok(msg); });
    browser.stdio[3].write(JSON.stringify({ id, method, params, ...(session ? { sessionId: session } : {}) }) + "\0");
  });
  const { result: created } = await send("Target.createTarget", { url }, null);
  if (!created) throw new Error(`Chromium could not open the page:\n${browserLog}`);
  const { result: attached } = await send("Target.attachToTarget", { targetId: created.targetId, flatten: true }, null);
  sessionId = attached.sessionId;
  await send("Runtime.enable");
  const started = Date.now();
  let result = null;
  while (!result) {
    if (Date.now() - started > timeoutSeconds * 1000) throw new Error(`no result after ${timeoutSeconds} s`);
    await sleep(1000);
    const r = await send("Runtime.evaluate", { expression: "JSON.stringify(window.mtdiffTest ?? null)", returnByValue: true });
    result = JSON.parse(r.result?.result?.value ?? "null");
  }
  if (!result.ok) throw new Error(`the page failed: ${result.error}`);
  const native = spec.native;
  console.log(`page adapter: ${result.adapter} (${result.profile} kernel profile); native: ${native.adapter}`);
  const maxDiff = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
  check("sample size", result.images.length === native.images.length, `${result.images.length} values, native ${native.images.length}`);
  const dImg = maxDiff(result.images, native.images);
  check("samples equal native", dImg <= IMAGE_TOL, `max |page − native| = ${dImg.toExponential(2)} (tolerance ${IMAGE_TOL})`);
  check("labels equal native", JSON.stringify(result.labels) === JSON.stringify(native.labels ?? []), `${JSON.stringify(result.labels)}`);
  const rel = result.losses.map((l, i) => Math.abs(l - native.losses[i]) / Math.abs(native.losses[i]));
  check("loss count", result.losses.length === native.losses.length, `${result.losses.length} steps`);
  const dLoss = Math.max(...rel);
  check("losses equal native", dLoss <= LOSS_TOL, `page ${result.losses.map((l) => l.toFixed(6)).join(", ")}; native ${native.losses.map((l) => l.toFixed(6)).join(", ")}; max relative difference ${dLoss.toExponential(2)} (tolerance ${LOSS_TOL})`);
  const n = spec.sample.n, steps = spec.train.steps, batch = spec.train.config.batch;
  console.log(`speed: sampling ${n} images × ${spec.sample.steps} steps: page ${result.sample_seconds.toFixed(2)} s, native ${native.sample_seconds.toFixed(2)} s; ` +
    `training ${steps} steps of batch ${batch}: page ${result.train_seconds.toFixed(2)} s (${(steps * batch / result.train_seconds).toFixed(1)} img/s), ` +
    `native ${native.train_seconds.toFixed(2)} s (${(steps * batch / native.train_seconds).toFixed(1)} img/s); both including first-use kernel compilation`);
} catch (e) {
  check("browser run", false, e.message ?? String(e));
} finally {
  const exited = new Promise((ok) => browser.once("exit", ok));
  browser.kill("SIGKILL");
  await Promise.race([exited, sleep(5000)]);
  server.close();
  try { fs.rmSync(profile, { recursive: true, force: true }); } catch { /* a child still writing */ }
}
console.log(`browser test: ${passes} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
