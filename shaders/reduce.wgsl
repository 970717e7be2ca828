// Reductions: over one axis of a tensor viewed as (outer, mid, inner), row reductions with one
// workgroup per row, and softmax / log-softmax over the last axis with their backward.

// x viewed as [outer, mid, inner]: the axis kernels reduce mid, reduce_rows reduces rows of
// length mid (outer rows, inner unused), reduce_outer_inner* keep mid; results times scale (sum).
struct ReduceParams { outer: u32, mid: u32, inner: u32, scale: f32 }
struct SoftmaxParams { rows: u32, cols: u32 }
@group(0) @binding(0) var<uniform> params: ReduceParams;
@group(0) @binding(0) var<uniform> sm: SoftmaxParams;

// 0 sum (times a scale, so a mean is one dispatch), 1 max. For softmax: 0 softmax, 1 log-softmax.
override OP: u32 = 0u;

const NEG_INF: f32 = -0x1.fffffep+127f;

fn init() -> f32 { return select(0.0, NEG_INF, OP == 1u); }
fn combine(a: f32, b: f32) -> f32 { return select(a + b, max(a, b), OP == 1u); }

// ---- one thread per (outer, inner) output, looping over mid ----
@group(0) @binding(1) var<storage, read> ax: array<f32>;
@group(0) @binding(2) var<storage, read_write> ay: array<f32>;

@compute @workgroup_size(256)
fn reduce_axis(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    let r = params.mid;
    let inner = params.inner;
    if (i >= params.outer * inner) { return; }
    let base = (i / inner) * r * inner + i % inner;
    var acc = init();
    for (var k = 0u; k < r; k++) {
        acc = combine(acc, ax[base + k * inner]);
    }
    ay[i] = select(acc * params.scale, acc, OP == 1u);
}

// ---- the same with four elements per access (CPU adapters pay per lane access) ----
fn init4() -> vec4<f32> { return vec4<f32>(init()); }
fn combine4(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> { return select(a + b, max(a, b), OP == 1u); }

@group(0) @binding(1) var<storage, read> qx: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> qy: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> qrow: array<f32>;

// inner divisible by 4: thread q computes outputs 4q .. 4q + 3, which share their outer index
// and have consecutive inner indices, so each of the r steps is one vec4 load.
@compute @workgroup_size(256)
fn reduce_axis_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let q = (wid.y * nwg.x + wid.x) * 256u + lid;
    let r = params.mid;
    let inner4 = params.inner / 4u;
    if (q >= params.outer * inner4) { return; }
    let base = (q / inner4) * r * inner4 + q % inner4;
    var acc = init4();
    for (var k = 0u; k < r; k++) {
        acc = combine4(acc, qx[base + k * inner4]);
    }
    qy[q] = select(acc * params.scale, acc, OP == 1u);
}

// inner = 1 and r divisible by 4: one thread per row, r/4 vec4 loads, then the four lanes.
@compute @workgroup_size(256)
fn reduce_row_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = (wid.y * nwg.x + wid.x) * 256u + lid;
    let r4 = params.mid / 4u;
    if (row >= params.outer) { return; }
    var acc = init4();
    for (var k = 0u; k < r4; k++) {
        acc = combine4(acc, qx[row * r4 + k]);
    }
    let v = combine(combine(acc.x, acc.y), combine(acc.z, acc.w));
    qrow[row] = select(v * params.scale, v, OP == 1u);
}


// ---- one workgroup per row (outer rows of length mid) ----
@compute @workgroup_size(256)
fn reduce_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= params.outer) { return; }
    let r = params.mid;
    var acc = init();
    for (var k = lid; k < r; k += 256u) {
        acc = combine(acc, ax[row * r + k]);
    }
    red[lid] = acc;
    let v = tree(lid, OP == 1u);
    if (lid == 0u) {
        ay[row] = select(v * params.scale, v, OP == 1u);
    }
}

// ---- the axes before and after a kept middle axis (x viewed as [outer, mid, inner]): one
// workgroup per middle index m, summing x[o, m, i] over every (o, i). E.g. a bias gradient [N, C, H·W] → [C] in one dispatch. ----
@compute @workgroup_size(256)
fn reduce_outer_inner(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let m = wid.y * nwg.x + wid.x;
    let mid = params.mid;
    if (m >= mid) { return; }
    let inner = params.inner;
    var acc = init();
    for (var k = lid; k < params.outer * inner; k += 256u) {
        acc = combine(acc, ax[((k / inner) * mid + m) * inner + k % inner]);
    }
    red[lid] = acc;
    let v = tree(lid, OP == 1u);
    if (lid == 0u) {
        ay[m] = select(v * params.scale, v, OP == 1u);
    }
}

// The same with inner divisible by 4: each step one vec4 of a row, the four lanes combined last.
@compute @workgroup_size(256)
fn reduce_outer_inner_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let m = wid.y * nwg.x + wid.x;
    let mid = params.mid;
    if (m >= mid) { return; }
    let inner4 = params.inner / 4u;
    var acc = init4();
    for (var k = lid; k < params.outer * inner4; k += 256u) {
        acc = combine4(acc, qx[((k / inner4) * mid + m) * inner4 + k % inner4]);
    }
    red[lid] = combine(combine(acc.x, acc.y), combine(acc.z, acc.w));
    let v = tree(lid, OP == 1u);
    if (lid == 0u) {
        qrow[m] = select(v * params.scale, v, OP == 1u);
    }
}

// CPU adapters: one invocation per middle index, no barriers (a workgroup tree costs more there
// than the serial loop).
@compute @workgroup_size(64)
fn reduce_outer_inner_thread_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let m = (wid.y * nwg.x + wid.x) * 64u + lid;
    let mid = params.mid;
    if (m >= mid) { return; }
    let inner4 = params.inner / 4u;
    var acc = init4();
    for (var o = 0u; o < params.outer; o++) {
        let row = (o * mid + m) * inner4;
        for (var i = 0u; i < inner4; i++) {
            acc = combine4(acc, qx[row + i]);
        }
    }
    let v = combine(combine(acc.x, acc.y), combine(acc.z, acc.w));
    qrow[m] = select(v * params.scale, v, OP == 1u);
}

// ---- softmax / log-softmax of rows of length cols ----
@compute @workgroup_size(256)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= sm.rows) { return; }
    let c = sm.cols;
    let base = row * c;
    var m = NEG_INF;
    for (var k = lid; k < c; k += 256u) { m = max(m, ax[base + k]); }
    red[lid] = m;
    let mx = tree(lid, true);
    var s = 0.0;
    for (var k = lid; k < c; k += 256u) { s += exp(ax[base + k] - mx); }
    red[lid] = s;
    let total = tree(lid, false);
    let log_total = log(total);
    for (var k = lid; k < c; k += 256u) {
        let z = ax[base + k] - mx;
        ay[base + k] = select(exp(z) / total, z - log_total, OP == 1u);
    }
}

// ---- softmax backward: dx = y·(dy − Σ dy·y); log-softmax: dx = dy − exp(y)·Σ dy ----
@group(0) @binding(1) var<storage, read> sy: array<f32>;
@group(0) @binding(2) var<storage, read> sdy: array<f32>;
@group(0) @binding(3) var<storage, read_write> sdx: array<f32>;

@compute @workgroup_size(256)
fn softmax_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= sm.rows) { return; }
    let c = sm.cols;
    let base = row * c;
    var s = 0.0;
    for (var k = lid; k < c; k += 256u) {
        s += select(sdy[base + k] * sy[base + k], sdy[base + k], OP == 1u);
    }
    red[lid] = s;
    let total = tree(lid, false);
    for (var k = lid; k < c; k += 256u) {
        let y = sy[base + k];
        let dy = sdy[base + k];
        sdx[base + k] = select(y * (dy - total), dy - exp(y) * total, OP == 1u);
    }
}

// ---- thread-per-row softmax for short rows (no barriers: cheap on CPU adapters) ----
@compute @workgroup_size(64)
fn softmax_thread(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = (wid.y * nwg.x + wid.x) * 64u + lid;
    if (row >= sm.rows) { return; }
    let c = sm.cols;
    let base = row * c;
    var mx = NEG_INF;
    for (var k = 0u; k < c; k++) { mx = max(mx, ax[base + k]); }
    var total = 0.0;
    for (var k = 0u; k < c; k++) { total += exp(ax[base + k] - mx); }
    let log_total = log(total);
    for (var k = 0u; k < c; k++) {
        let z = ax[base + k] - mx;
        ay[base + k] = select(exp(z) / total, z - log_total, OP == 1u);
    }
}

@compute @workgroup_size(64)
fn softmax_backward_thread(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = (wid.y * nwg.x + wid.x) * 64u + lid;
    if (row >= sm.rows) { return; }
    let c = sm.cols;
    let base = row * c;
    var total = 0.0;
    for (var k = 0u; k < c; k++) {
        total += select(sdy[base + k] * sy[base + k], sdy[base + k], OP == 1u);
    }
    for (var k = 0u; k < c; k++) {
        let y = sy[base + k];
        let dy = sdy[base + k];
        sdx[base + k] = select(y * (dy - total), dy - exp(y) * total, OP == 1u);
    }
}
