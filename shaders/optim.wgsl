// Optimizer kernels: fused AdamW and the EMA of parameters (one dispatch per parameter tensor, or
// one over the flat buffer of packed parameters), and the two halves of global gradient-norm
// clipping (sums of squares per tensor or per chunk, then one scale).


// ---- AdamW with bias correction and decoupled weight decay ----
// g is scaled by gscale[0] (the clipping factor, 1 when not clipping).
struct AdamwParams {
    n: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    bias_correction1: f32, // 1 − beta1^t
    bias_correction2: f32, // 1 − beta2^t
}
@group(0) @binding(0) var<uniform> adam: AdamwParams;
@group(0) @binding(1) var<storage, read_write> ap: array<f32>;
@group(0) @binding(2) var<storage, read> ag: array<f32>;
@group(0) @binding(3) var<storage, read_write> am: array<f32>;
@group(0) @binding(4) var<storage, read_write> av: array<f32>;
@group(0) @binding(5) var<storage, read> agscale: array<f32>;

// One element's update with gradient g.
fn adamw_at(i: u32, g: f32) {
    let lr = adam.lr; let b1 = adam.beta1; let b2 = adam.beta2;
    let m = b1 * am[i] + (1.0 - b1) * g;
    let v = b2 * av[i] + (1.0 - b2) * g * g;
    am[i] = m;
    av[i] = v;
    let update = (m / adam.bias_correction1) / (sqrt(v / adam.bias_correction2) + adam.eps);
    ap[i] = ap[i] * (1.0 - lr * adam.weight_decay) - lr * update;
}

@compute @workgroup_size(256)
fn adamw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i >= adam.n) { return; }
    adamw_at(i, ag[i] * agscale[0]);
}

// With a loss scaler (loss_scale.wgsl): agscale = [factor, norm, skip]; a step whose gradients
// overflowed changes nothing.
@compute @workgroup_size(256)
fn adamw_scaled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i >= adam.n || agscale[2] != 0.0) { return; }
    adamw_at(i, ag[i] * agscale[0]);
}

// ---- EMA: e = decay·e + (1 − decay)·p ----
struct EmaParams { n: u32, decay: f32 }
@group(0) @binding(0) var<uniform> ema_params: EmaParams;
@group(0) @binding(1) var<storage, read_write> ee: array<f32>;
@group(0) @binding(2) var<storage, read> ep: array<f32>;

@compute @workgroup_size(256)
fn ema(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i >= ema_params.n) { return; }
    let d = ema_params.decay;
    ee[i] = d * ee[i] + (1.0 - d) * ep[i];
}

// ---- clipping, part 1: partial[slot + w] = Σ g² over chunk w of a tensor, one workgroup per
// chunk [w·chunk, min(n, (w + 1)·chunk)) ----
struct SumSquaresParams { n: u32, chunk: u32, slot: u32 }
@group(0) @binding(0) var<uniform> sq: SumSquaresParams;
@group(0) @binding(1) var<storage, read> sg: array<f32>;
@group(0) @binding(2) var<storage, read_write> spartial: array<f32>;


@compute @workgroup_size(256)
fn sum_squares(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let start = wid.x * sq.chunk;
    let end = min(sq.n, start + sq.chunk);
    var s = 0.0;
    for (var i = start + lid; i < end; i += 256u) { s += sg[i] * sg[i]; }
    red[lid] = s;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w >>= 1u) {
        if (lid < w) { red[lid] += red[lid + w]; }
        workgroupBarrier();
    }
    if (lid == 0u) { spartial[sq.slot + wid.x] = red[0]; }
}

// ---- clipping, part 2: out = [min(1, max_norm/(‖g‖ + 1e-6)), ‖g‖] over `slots` partial sums ----
struct ClipParams { slots: u32, max_norm: f32 }
@group(0) @binding(0) var<uniform> clip: ClipParams;
@group(0) @binding(1) var<storage, read> cpartial: array<f32>;
@group(0) @binding(2) var<storage, read_write> cout: array<f32>;

@compute @workgroup_size(1)
fn clip_scale() {
    var s = 0.0;
    for (var i = 0u; i < clip.slots; i++) { s += cpartial[i]; }
    let norm = sqrt(s);
    cout[0] = min(1.0, clip.max_norm / (norm + 1e-6));
    cout[1] = norm;
}
