// Fused losses: softmax cross-entropy with integer labels, and mean squared error.
// Both leave a per-row / per-workgroup partial that reduce.wgsl's reduce_rows averages.

struct CrossEntropyParams { rows: u32, classes: u32 }
struct MseParams { n: u32, threads: u32 } // threads: the grid stride of mse_partial
@group(0) @binding(0) var<uniform> ce: CrossEntropyParams;
@group(0) @binding(0) var<uniform> mse: MseParams;


// ---- cross-entropy: loss[n] = logsumexp(x[n, :]) − x[n, label[n]], one workgroup per row ----
// Also stores lse[n] for the backward. A label ≥ classes gives NaN (visible in the logged loss).
@group(0) @binding(1) var<storage, read> cx: array<f32>;
@group(0) @binding(2) var<storage, read> clabel: array<u32>;
@group(0) @binding(3) var<storage, read_write> closs: array<f32>;
@group(0) @binding(4) var<storage, read_write> clse: array<f32>;

@compute @workgroup_size(256)
fn cross_entropy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= ce.rows) { return; }
    let c = ce.classes;
    let base = row * c;
    var m = -0x1.fffffep+127f;
    for (var k = lid; k < c; k += 256u) { m = max(m, cx[base + k]); }
    red[lid] = m;
    let mx = tree(lid, true);
    var s = 0.0;
    for (var k = lid; k < c; k += 256u) { s += exp(cx[base + k] - mx); }
    red[lid] = s;
    let lse = mx + log(tree(lid, false));
    if (lid == 0u) {
        let label = clabel[row];
        let nan = bitcast<f32>(0x7fc00000u);
        closs[row] = select(nan, lse - cx[base + min(label, c - 1u)], label < c);
        clse[row] = lse;
    }
}

// dx[n, j] = (softmax(x[n])[j] − [j = label[n]]) · g / rows, g read from a one-element buffer.
@group(0) @binding(1) var<storage, read> bx: array<f32>;
@group(0) @binding(2) var<storage, read> blabel: array<u32>;
@group(0) @binding(3) var<storage, read> blse: array<f32>;
@group(0) @binding(4) var<storage, read> bg: array<f32>;
@group(0) @binding(5) var<storage, read_write> bdx: array<f32>;

@compute @workgroup_size(256)
fn cross_entropy_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    let rows = ce.rows;
    let c = ce.classes;
    if (i >= rows * c) { return; }
    let row = i / c;
    let onehot = select(0.0, 1.0, blabel[row] == i % c);
    bdx[i] = (exp(bx[i] - blse[row]) - onehot) * bg[0] / f32(rows);
}

// ---- MSE: partial[w] = Σ (a − b)² over a grid-strided share ----
@group(0) @binding(1) var<storage, read> ma: array<f32>;
@group(0) @binding(2) var<storage, read> mb: array<f32>;
@group(0) @binding(3) var<storage, read_write> mpartial: array<f32>;

@compute @workgroup_size(256)
fn mse_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n = mse.n;
    var s = 0.0;
    for (var i = wid.x * 256u + lid; i < n; i += mse.threads) {
        let d = ma[i] - mb[i];
        s += d * d;
    }
    red[lid] = s;
    let total = tree(lid, false);
    if (lid == 0u) { mpartial[wid.x] = total; }
}

// da = 2 (a − b) · g / n (`threads` unused)
@group(0) @binding(1) var<storage, read> ga: array<f32>;
@group(0) @binding(2) var<storage, read> gb: array<f32>;
@group(0) @binding(3) var<storage, read> gg: array<f32>;
@group(0) @binding(4) var<storage, read_write> gda: array<f32>;

@compute @workgroup_size(256)
fn mse_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    let n = mse.n;
    if (i >= n) { return; }
    gda[i] = 2.0 * (ga[i] - gb[i]) * gg[0] / f32(n);
}

// ---- thread-per-row cross-entropy for few classes (no barriers); same bindings and parameters ----
@compute @workgroup_size(64)
fn cross_entropy_thread(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = (wid.y * nwg.x + wid.x) * 64u + lid;
    if (row >= ce.rows) { return; }
    let c = ce.classes;
    let base = row * c;
    var mx = -0x1.fffffep+127f;
    for (var k = 0u; k < c; k++) { mx = max(mx, cx[base + k]); }
    var s = 0.0;
    for (var k = 0u; k < c; k++) { s += exp(cx[base + k] - mx); }
    let lse = mx + log(s);
    let label = clabel[row];
    let nan = bitcast<f32>(0x7fc00000u);
    closs[row] = select(nan, lse - cx[base + min(label, c - 1u)], label < c);
    clse[row] = lse;
}
