// The page: opens the browser's GPU through the WebAssembly module (wasm-bindgen's
// `mtdiff_web.js`, built by .ci/web into pkg/), samples a checkpoint, trains live. With
// `?test=FILE.json` it runs the browser test's checks instead and leaves the results in
// `window.mtdiffTest` (trainer/web/tests/browser.mjs reads them).
import init, { Gpu } from "./pkg/mtdiff_web.js";

const $ = (id) => document.getElementById(id);
const showError = (e) => { $("error").textContent = String(e); };

// Draws [n, C, H, W] images in [-1, 1] as a grid of `cols` columns, each `scale` pixels per
// pixel, with an optional caption per image.
function drawGrid(canvas, images, n, [c, h, w], cols, scale, captions) {
  const rows = Math.ceil(n / cols);
  const cap = captions ? 12 : 0;
  const cellW = w * scale + 4, cellH = h * scale + 4 + cap;
  canvas.width = cols * cellW;
  canvas.height = rows * cellH;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const img = ctx.createImageData(w, h);
  const tmp = document.createElement("canvas");
  tmp.width = w; tmp.height = h;
  const tctx = tmp.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  for (let k = 0; k < n; k++) {
    for (let p = 0; p < h * w; p++) {
      for (let ch = 0; ch < 3; ch++) {
        const v = images[(k * c + Math.min(ch, c - 1)) * h * w + p];
        img.data[4 * p + ch] = Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)));
      }
      img.data[4 * p + 3] = 255;
    }
    tctx.putImageData(img, 0, 0);
    const x = (k % cols) * cellW + 2, y = Math.floor(k / cols) * cellH + 2;
    ctx.drawImage(tmp, x, y, w * scale, h * scale);
    if (captions) {
      ctx.fillStyle = "#333";
      ctx.font = "10px sans-serif";
      ctx.fillText(captions[k], x, y + h * scale + 10);
    }
  }
}

// The loss curve: every step's loss, log scale.
function drawLoss(canvas, losses) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, pad = 30;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, W, H);
  ctx.strokeStyle = "#999";
  ctx.strokeRect(pad, 5, W - pad - 5, H - pad - 5);
  if (losses.length < 2) return;
  const logs = losses.map((l) => Math.log10(Math.max(l, 1e-6)));
  const lo = Math.min(...logs), hi = Math.max(...logs);
  const x = (i) => pad + (i / (losses.length - 1)) * (W - pad - 5);
  const y = (v) => 5 + (1 - (v - lo) / Math.max(hi - lo, 1e-6)) * (H - pad - 5);
  ctx.strokeStyle = "#1f77b4";
  ctx.beginPath();
  logs.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
  ctx.stroke();
  ctx.fillStyle = "#333";
  ctx.font = "11px sans-serif";
  ctx.fillText(losses[0].toFixed(3), 2, 14);
  ctx.fillText(losses[losses.length - 1].toFixed(3), 2, H - pad);
  ctx.fillText(`step ${losses.length}`, W - 70, H - 10);
}

let gpu, checkpoint, training, losses = [], running = false;

function useCheckpoint(bytes, source) {
  checkpoint?.free();
  checkpoint = gpu.loadCheckpoint(bytes, false);
  const names = checkpoint.classNames();
  $("ckpt-status").textContent = `${source}: step ${checkpoint.step}, images ${checkpoint.imageShape().join("×")}`;
  const sel = $("label");
  sel.length = 1;
  names.forEach((name, k) => sel.add(new Option(`${k}: ${name}`, String(k))));
  $("sample").disabled = false;
}

async function sample() {
  const n = +$("n").value, seed = BigInt($("seed").value), steps = +$("steps").value;
  const label = $("label").value === "" ? undefined : +$("label").value;
  $("sample-status").textContent = "sampling…";
  const t0 = performance.now();
  const s = await checkpoint.sample(n, seed, steps, label);
  const secs = (performance.now() - t0) / 1000;
  const names = checkpoint.classNames();
  const caps = s.labels().length ? Array.from(s.labels(), (k) => names[k] ?? String(k)) : null;
  drawGrid($("sample-grid"), s.images(), s.n, checkpoint.imageShape(), Math.ceil(Math.sqrt(n)), 4, caps);
  $("sample-status").textContent = `${n} samples, ${steps} steps in ${secs.toFixed(1)} s (${(n / secs).toFixed(2)} images/s)`;
  s.free();
}

// Two samples of every class from the EMA weights, one row per class pair.
async function drawTrainingGrid() {
  $("train-status").textContent += " · sampling the grid…";
  const g = await training.sampleGrid(2, 0n);
  const names = training.classNames();
  drawGrid($("train-grid"), g.images(), g.n, training.imageShape(), 4, 3, Array.from(g.labels(), (k) => names[k]));
  g.free();
  $("train-status").textContent = $("train-status").textContent.replace(" · sampling the grid…", "");
}

async function trainLoop() {
  while (running && training.stepsDone < training.totalSteps) {
    const t0 = performance.now();
    const got = await training.train(5);
    const secs = (performance.now() - t0) / 1000;
    losses.push(...got);
    drawLoss($("loss"), losses);
    const batch = +$("batch").value;
    $("train-status").textContent =
      `step ${training.stepsDone}/${training.totalSteps}, loss ${got[got.length - 1].toFixed(4)}, ` +
      `${((got.length * batch) / secs).toFixed(1)} images/s`;
    const done = training.stepsDone;
    if (done === 10 || done % 50 === 0 || done === training.totalSteps || !running) await drawTrainingGrid();
  }
  running = false;
  $("train-pause").textContent = "Resume";
  $("train-pause").disabled = training.stepsDone >= training.totalSteps;
}

// The browser test: sample the given checkpoint and train a few steps, record everything.
async function runTest(url) {
  const spec = await (await fetch(url)).json();
  const out = { adapter: gpu.adapter(), profile: gpu.profile() };
  const bytes = new Uint8Array(await (await fetch(spec.checkpoint)).arrayBuffer());
  useCheckpoint(bytes, spec.checkpoint);
  const r = spec.sample;
  let t0 = performance.now();
  const s = await checkpoint.sample(r.n, BigInt(r.seed), r.steps, r.label ?? undefined);
  out.sample_seconds = (performance.now() - t0) / 1000;
  out.images = Array.from(s.images());
  out.labels = Array.from(s.labels());
  const t = gpu.startTraining(JSON.stringify(spec.train.config));
  t0 = performance.now();
  out.losses = Array.from(await t.train(spec.train.steps));
  out.train_seconds = (performance.now() - t0) / 1000;
  return out;
}

async function main() {
  await init();
  // ?kernels=gpu|cpu forces a kernel profile (default: the adapter type's).
  const params = new URLSearchParams(location.search);
  gpu = await Gpu.open(params.get("kernels") ?? "auto");
  $("adapter").textContent = `Adapter: ${gpu.adapter()} · kernels: ${gpu.profile()} profile`;
  const test = params.get("test");
  if (test) {
    try {
      window.mtdiffTest = { ok: true, ...(await runTest(test)) };
    } catch (e) {
      window.mtdiffTest = { ok: false, error: String(e) };
    }
    return;
  }
  // Every handler shows its error on the page (a file that is no checkpoint, a missing model).
  const shown = (f) => (...args) => { $("error").textContent = ""; f(...args).catch(showError); };
  $("ckpt-file").onchange = shown(async (ev) => {
    const f = ev.target.files[0];
    if (f) useCheckpoint(new Uint8Array(await f.arrayBuffer()), f.name);
  });
  $("ckpt-published").onclick = shown(async () => {
    const r = await fetch("./model.safetensors");
    if (!r.ok) throw new Error("no model.safetensors beside the page: build it with `bash .ci/web build RUN_DIR`, or choose a checkpoint file");
    useCheckpoint(new Uint8Array(await r.arrayBuffer()), "model.safetensors");
  });
  $("sample").onclick = shown(sample);
  $("train-start").onclick = () => {
    $("error").textContent = "";
    if (running) { showError("pause the run first"); return; }
    training?.free();
    const config = { batch: +$("batch").value, steps: +$("train-steps").value };
    training = gpu.startTraining(JSON.stringify(config));
    losses = [];
    running = true;
    $("train-pause").disabled = false;
    $("train-pause").textContent = "Pause";
    trainLoop().catch(showError);
  };
  $("train-pause").onclick = () => {
    if (running) { running = false; return; }
    running = true;
    $("train-pause").textContent = "Pause";
    trainLoop().catch(showError);
  };
}

main().catch((e) => { showError(e); window.mtdiffTest = { ok: false, error: String(e) }; });
