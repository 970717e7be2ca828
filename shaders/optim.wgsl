// Optimizer kernels: fused AdamW and the EMA of parameters (one dispatch per parameter tensor, or
// one over the flat buffer of packed parameters), and the two halves of global gradient-norm
// clipping (sums of squares per tensor or per chunk, then one scale).

@group(0) @binding(0) var<uniform> P: array<vec4<u32>, 16>;
fn p(i: u32) -> u32 { return P[i >> 2u][i & 3u]; }
fn pf(i: u32) -> f32 { return bitcast<f32>(p(i)); }
fn gid(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return (wid.y * nwg.x + wid.x) * 256u + lid; }

// ---- AdamW with bias correction and decoupled weight decay ----
// g is scaled by gscale[0] (the clipping factor, 1 when not clipping).
// params: [n, lr, beta1, beta2, eps, weight_decay, 1 − beta1^t, 1 − beta2^t]
@group(0) @binding(1) var<storage, read_write> ap: array<f32>;
@group(0) @binding(2) var<storage, read> ag: array<f32>;
@group(0) @binding(3) var<storage, read_write> am: array<f32>;
@group(0) @binding(4) var<storage, read_write> av: array<f32>;
@group(0) @binding(5) var<storage, read> agscale: array<f32>;

@compute @workgroup_size(256)
fn adamw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i >= p(0u)) { return; }
    let lr = pf(1u); let b1 = pf(2u); let b2 = pf(3u);
    let g = ag[i] * agscale[0];
    let m = b1 * am[i] + (1.0 - b1) * g;
    let v = b2 * av[i] + (1.0 - b2) * g * g;
    am[i] = m;
    av[i] = v;
    let update = (m / pf(6u)) / (sqrt(v / pf(7u)) + pf(4u));
    ap[i] = ap[i] * (1.0 - lr * pf(5u)) - lr * update;
}

// ---- EMA: e = decay·e + (1 − decay)·p; params: [n, decay] ----
@group(0) @binding(1) var<storage, read_write> ee: array<f32>;
@group(0) @binding(2) var<storage, read> ep: array<f32>;

@compute @workgroup_size(256)
fn ema(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i >= p(0u)) { return; }
    let d = pf(1u);
    ee[i] = d * ee[i] + (1.0 - d) * ep[i];
}

// ---- clipping, part 1: partial[slot + w] = Σ g² over chunk w of a tensor, one workgroup per
// chunk [w·chunk, min(n, (w + 1)·chunk)); params [n, chunk, slot] ----
@group(0) @binding(1) var<storage, read> sg: array<f32>;
@group(0) @binding(2) var<storage, read_write> spartial: array<f32>;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn sum_squares(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let start = wid.x * p(1u);
    let end = min(p(0u), start + p(1u));
    var s = 0.0;
    for (var i = start + lid; i < end; i += 256u) { s += sg[i] * sg[i]; }
    red[lid] = s;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w >>= 1u) {
        if (lid < w) { red[lid] += red[lid + w]; }
        workgroupBarrier();
    }
    if (lid == 0u) { spartial[p(2u) + wid.x] = red[0]; }
}

// ---- clipping, part 2: out = [min(1, max_norm/(‖g‖ + 1e-6)), ‖g‖]; params [slots, max_norm] ----
@group(0) @binding(1) var<storage, read> cpartial: array<f32>;
@group(0) @binding(2) var<storage, read_write> cout: array<f32>;

@compute @workgroup_size(1)
fn clip_scale() {
    var s = 0.0;
    for (var i = 0u; i < p(0u); i++) { s += cpartial[i]; }
    let norm = sqrt(s);
    cout[0] = min(1.0, pf(1u) / (norm + 1e-6));
    cout[1] = norm;
}
