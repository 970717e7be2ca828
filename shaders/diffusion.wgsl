// Noise-schedule kernels: Gaussian noise from a counter-based generator (Philox4x32-10), the
// forward-process sample q(x_t | x_0), fused DDPM ancestral and DDIM steps with per-sample
// timesteps gathered from GPU schedule tables, and the sinusoidal timestep embedding.
// MT-Diffusion's aggregated term enters every step as `agg · scale[b, ·]` (a per-sample scale
// times a tensor of the sample's shape), in the `_agg` entry points; the others do not bind it.


// ---- Philox4x32-10 ----
// 32×32→64-bit product as (hi, lo) from 16-bit halves (WGSL has no mulhi).
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let al = a & 0xffffu; let ah = a >> 16u;
    let bl = b & 0xffffu; let bh = b >> 16u;
    let ll = al * bl; let hl = ah * bl; let lh = al * bh; let hh = ah * bh;
    let cross = (ll >> 16u) + (hl & 0xffffu) + lh;
    let hi = hh + (hl >> 16u) + (cross >> 16u);
    let lo = (cross << 16u) | (ll & 0xffffu);
    return vec2<u32>(hi, lo);
}

fn philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var r = 0; r < 10; r++) {
        let p0 = mulhilo(0xD2511F53u, c.x);
        let p1 = mulhilo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
        k += vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
    }
    return c;
}

// (0, 1]: never 0, so log() below is finite.
fn unit(u: u32) -> f32 { return (f32(u >> 8u) + 1.0) * (1.0 / 16777216.0); }

// The i-th standard normal of the stream (seed, stream): counter (i/4, stream_lo, stream_hi, 0),
// key (seed_lo, seed_hi); Box–Muller turns the 4 words into 4 normals.
fn normal_at(i: u32, seed: vec2<u32>, stream: vec2<u32>) -> f32 {
    let r = philox(vec4<u32>(i / 4u, stream.x, stream.y, 0u), seed);
    let pair = (i & 3u) >> 1u;
    let u1 = unit(select(r.x, r.z, pair == 1u));
    let u2 = unit(select(r.y, r.w, pair == 1u));
    let a = 6.283185307179586 * u2;
    return sqrt(-2.0 * log(u1)) * select(cos(a), sin(a), (i & 1u) == 1u);
}

// ---- randn: y[i] ~ N(0, 1), element first + i of the stream of (seed, stream) ----
struct RandnParams { n: u32, seed_lo: u32, seed_hi: u32, stream_lo: u32, stream_hi: u32, first: u32 }
@group(0) @binding(0) var<uniform> rn: RandnParams;
@group(0) @binding(1) var<storage, read_write> ny: array<f32>;

@compute @workgroup_size(256)
fn randn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i >= rn.n) { return; }
    ny[i] = normal_at(rn.first + i, vec2<u32>(rn.seed_lo, rn.seed_hi), vec2<u32>(rn.stream_lo, rn.stream_hi));
}

// ---- per-sample schedule steps ----
// x, e: [B, per_sample]; t: [B] timesteps; table: [T, cols] coefficient rows;
// scale: [B, scols] aggregate scales; agg: [B, per_sample]. The steps draw their noise z from
// normal_at (no noise buffer, nothing uploaded).
@group(0) @binding(1) var<storage, read> sx: array<f32>;
@group(0) @binding(2) var<storage, read> se: array<f32>;
@group(0) @binding(3) var<storage, read> st: array<u32>;
@group(0) @binding(4) var<storage, read> stable: array<f32>;
@group(0) @binding(5) var<storage, read> sscale: array<f32>;
@group(0) @binding(6) var<storage, read> sagg: array<f32>;
@group(0) @binding(7) var<storage, read_write> sout: array<f32>;
@group(0) @binding(8) var<storage, read_write> sx0: array<f32>;

struct Step { i: u32, b: u32, row: u32, agg: f32, agg2: f32 }

// The step kernels' parameters: the noise's (seed, stream) as for randn.
struct StepParams {
    n: u32,
    per_sample: u32, // elements per sample
    cols: u32,       // coefficients per table row
    scols: u32,      // scales per sample (1, or 2 for DDIM's t and t')
    clip: f32,       // clip x̂_0 to ±clip when > 0
    seed_lo: u32,
    seed_hi: u32,
    stream_lo: u32,
    stream_hi: u32,
}
@group(0) @binding(0) var<uniform> sp: StepParams;
fn noise(i: u32) -> f32 {
    return normal_at(i, vec2<u32>(sp.seed_lo, sp.seed_hi), vec2<u32>(sp.stream_lo, sp.stream_hi));
}

// Each step has two entry points: `name` without the aggregated term (sscale and sagg unbound)
// and `name_agg` with it; both run the same `name_at` on the element's Step.
fn step_setup(i: u32) -> Step {
    let b = i / sp.per_sample;
    return Step(i, b, st[b] * sp.cols, 0.0, 0.0);
}

fn step_setup_agg(i: u32) -> Step {
    var s = step_setup(i);
    s.agg = sscale[s.b * sp.scols] * sagg[i];
    if (sp.scols > 1u) { s.agg2 = sscale[s.b * sp.scols + 1u] * sagg[i]; }
    return s;
}

// x_t = a[t]·x_0 + b[t]·ε + scale[b]·agg; table rows (√ᾱ_t, √(1−ᾱ_t)).
fn q_sample_at(s: Step) {
    let i = s.i;
    sout[i] = stable[s.row] * sx[i] + stable[s.row + 1u] * se[i] + s.agg;
}

@compute @workgroup_size(256)
fn q_sample(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i < sp.n) { q_sample_at(step_setup(i)); }
}

@compute @workgroup_size(256)
fn q_sample_agg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i < sp.n) { q_sample_at(step_setup_agg(i)); }
}

// DDPM ancestral step, x_0 form (as diffusers, so x̂_0 can be clipped):
// x̂_0 = (x_t − √(1−ᾱ_t) ε̂)/√ᾱ_t, clipped to ±clip when clip > 0;
// x_{t−1} = c0[t]·x̂_0 + c1[t]·x_t − scale[b]·agg + σ[t]·z (a_t of docs/method.md §7.1 is scale·agg).
// table rows (√ᾱ_t, √(1−ᾱ_t), c0, c1, σ). Also writes x̂_0.
fn ddpm_step_at(s: Step) {
    let i = s.i;
    var x0 = (sx[i] - stable[s.row + 1u] * se[i]) / stable[s.row];
    let clip = sp.clip;
    if (clip > 0.0) { x0 = clamp(x0, -clip, clip); }
    sx0[i] = x0;
    sout[i] = stable[s.row + 2u] * x0 + stable[s.row + 3u] * sx[i] - s.agg + select(0.0, stable[s.row + 4u] * noise(i), stable[s.row + 4u] > 0.0);
}

// DDIM step from t to the respaced t' (η folded into σ):
// x̂_0 = (x_t − ĉ_t − √(1−ᾱ_t) ε̂)/√ᾱ_t; x_t' = √ᾱ_t' x̂_0 + ĉ_t' + √(1−ᾱ_t'−σ²) ε̂ + σ z,
// with ĉ_t = scale[b,0]·agg and ĉ_t' = scale[b,1]·agg. table rows (ᾱ_t, ᾱ_t', σ). Also writes x̂_0.
@compute @workgroup_size(256)
fn ddpm_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i < sp.n) { ddpm_step_at(step_setup(i)); }
}

@compute @workgroup_size(256)
fn ddpm_step_agg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i < sp.n) { ddpm_step_at(step_setup_agg(i)); }
}

fn ddim_step_at(s: Step) {
    let i = s.i;
    let ab = stable[s.row];
    let ab_prev = stable[s.row + 1u];
    let sigma = stable[s.row + 2u];
    var x0 = (sx[i] - s.agg - sqrt(1.0 - ab) * se[i]) / sqrt(ab);
    let clip = sp.clip;
    if (clip > 0.0) { x0 = clamp(x0, -clip, clip); }
    sx0[i] = x0;
    let dir = sqrt(max(1.0 - ab_prev - sigma * sigma, 0.0)) * se[i];
    sout[i] = sqrt(ab_prev) * x0 + s.agg2 + dir + select(0.0, sigma * noise(i), sigma > 0.0);
}

@compute @workgroup_size(256)
fn ddim_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i < sp.n) { ddim_step_at(step_setup(i)); }
}

@compute @workgroup_size(256)
fn ddim_step_agg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i < sp.n) { ddim_step_at(step_setup_agg(i)); }
}

// ---- gradient helper: out[i] = table[t[b]·cols + col] · g[i] (q_sample's backward) ----
struct ScaleByTableParams { n: u32, per_sample: u32, cols: u32, col: u32 }
@group(0) @binding(0) var<uniform> sbt: ScaleByTableParams;
@group(0) @binding(1) var<storage, read> gg: array<f32>;
@group(0) @binding(2) var<storage, read> gt: array<u32>;
@group(0) @binding(3) var<storage, read> gtable: array<f32>;
@group(0) @binding(4) var<storage, read_write> gout: array<f32>;

@compute @workgroup_size(256)
fn scale_by_table(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i >= sbt.n) { return; }
    gout[i] = gtable[gt[i / sbt.per_sample] * sbt.cols + sbt.col] * gg[i];
}

// ---- sinusoidal timestep embedding: [B] → [B, dim] ----
// f_j = exp(−ln(max_period)·j/(half − shift)); sin half then cos half (swapped when flip = 1).
// t is read as u32 timesteps.
struct EmbeddingParams { batch: u32, dim: u32, max_period: f32, shift: f32, flip: u32 }
@group(0) @binding(0) var<uniform> emb: EmbeddingParams;
@group(0) @binding(1) var<storage, read> et: array<u32>;
@group(0) @binding(2) var<storage, read_write> eout: array<f32>;

@compute @workgroup_size(256)
fn timestep_embedding(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    let dim = emb.dim;
    if (i >= emb.batch * dim) { return; }
    let half = dim / 2u;
    let j = i % dim;
    if (j >= 2u * half) { eout[i] = 0.0; return; }  // odd dim: zero pad
    let k = j % half;
    let freq = exp(-log(emb.max_period) * f32(k) / (f32(half) - emb.shift));
    let arg = f32(et[i / dim]) * freq;
    let first = j < half;
    eout[i] = select(cos(arg), sin(arg), first != (emb.flip == 1u));
}
