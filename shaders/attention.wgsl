// Fused multi-head scaled-dot-product attention over (batch·heads, seq, head_dim) with an online
// (streaming) softmax: the seq×seq score matrix is never written to memory. The backward
// recomputes the scores from the saved log-sum-exp (FlashAttention-2 style) in three kernels:
// Δ_i = dO_i·O_i, then dQ (one thread per query) and dK, dV (one thread per key), no atomics.
// A template (engine/src/ops/attention.rs fills its slots): HEAD_DIM is the head dimension, so
// rows live in registers; QUERIES_PER_THREAD how many query rows one forward thread carries
// (fewer for wide heads: large private arrays spill, and broke lavapipe at 4×64); VEC_FORWARD
// the vec4 forward of shaders/attention_vec.wgsl where the head dimension is a multiple of 4.

struct AttentionParams { bh: u32, seq: u32, scale: f32 } // batch·heads, sequence length, score scale
@group(0) @binding(0) var<uniform> params: AttentionParams;

const D: u32 = {{HEAD_DIM}}u;
const TQ: u32 = {{QUERIES_PER_THREAD}}u; // each K/V row loaded in the forward serves TQ queries

@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

fn thread_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return (wid.y * nwg.x + wid.x) * 64u + lid; }

@compute @workgroup_size(64)
fn attention_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let s = params.seq;
    let blocks = (s + TQ - 1u) / TQ;
    let tid = thread_id(wid, nwg, lid);
    if (tid >= params.bh * blocks) { return; }
    let bh = tid / blocks;
    let i0 = (tid % blocks) * TQ;
    let base = bh * s * D;
    var qr: array<array<f32, D>, TQ>;
    var acc: array<array<f32, D>, TQ>;
    var m: array<f32, TQ>;
    var l: array<f32, TQ>;
    for (var t = 0u; t < TQ; t++) {
        let row = base + min(i0 + t, s - 1u) * D;
        for (var d = 0u; d < D; d++) { qr[t][d] = q[row + d] * params.scale; }
        m[t] = -0x1.fffffep+127f;
    }
    for (var j = 0u; j < s; j++) {
        var kr: array<f32, D>;
        var vr: array<f32, D>;
        for (var d = 0u; d < D; d++) {
            kr[d] = k[base + j * D + d];
            vr[d] = v[base + j * D + d];
        }
        for (var t = 0u; t < TQ; t++) {
            var sc = 0.0;
            for (var d = 0u; d < D; d++) { sc += qr[t][d] * kr[d]; }
            // Online softmax: rescale what was accumulated under the old maximum.
            let m_new = max(m[t], sc);
            let corr = exp(m[t] - m_new);
            let pj = exp(sc - m_new);
            l[t] = l[t] * corr + pj;
            for (var d = 0u; d < D; d++) { acc[t][d] = acc[t][d] * corr + pj * vr[d]; }
            m[t] = m_new;
        }
    }
    for (var t = 0u; t < TQ; t++) {
        let i = i0 + t;
        if (i >= s) { break; }
        for (var d = 0u; d < D; d++) { o[base + i * D + d] = acc[t][d] / l[t]; }
        lse[bh * s + i] = m[t] + log(l[t]);
    }
}

// ---- backward ----
@group(0) @binding(1) var<storage, read> bq: array<f32>;
@group(0) @binding(2) var<storage, read> bk: array<f32>;
@group(0) @binding(3) var<storage, read> bv: array<f32>;
@group(0) @binding(4) var<storage, read> bdo: array<f32>;
@group(0) @binding(5) var<storage, read> blse: array<f32>;
@group(0) @binding(6) var<storage, read> bdelta: array<f32>;
@group(0) @binding(7) var<storage, read_write> bout: array<f32>;

// Δ_i = dO_i · O_i (O bound at binding 1, dO at 4); one thread per row; out = Δ.
@compute @workgroup_size(64)
fn attention_delta(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = thread_id(wid, nwg, lid);
    if (r >= params.bh * params.seq) { return; }
    var acc = 0.0;
    for (var d = 0u; d < D; d++) { acc += bdo[r * D + d] * bq[r * D + d]; }
    bout[r] = acc;
}

// dQ_i = scale · Σ_j P_ij (dO_i·V_j − Δ_i) K_j; one thread per query row.
@compute @workgroup_size(64)
fn attention_backward_q(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = thread_id(wid, nwg, lid);
    let s = params.seq;
    if (r >= params.bh * s) { return; }
    let base = (r / s) * s * D;
    let scale = params.scale;
    var qr: array<f32, D>;
    var dor: array<f32, D>;
    var dq: array<f32, D>;
    for (var d = 0u; d < D; d++) { qr[d] = bq[r * D + d] * scale; dor[d] = bdo[r * D + d]; }
    let l = blse[r];
    let delta = bdelta[r];
    for (var j = 0u; j < s; j++) {
        var sc = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < D; d++) {
            sc += qr[d] * bk[base + j * D + d];
            dp += dor[d] * bv[base + j * D + d];
        }
        let ds = exp(sc - l) * (dp - delta);
        for (var d = 0u; d < D; d++) { dq[d] += ds * bk[base + j * D + d]; }
    }
    for (var d = 0u; d < D; d++) { bout[r * D + d] = dq[d] * scale; }
}

// dK_j = scale · Σ_i dS_ij Q_i and dV_j = Σ_i P_ij dO_i; one thread per key row; out = [dK; dV].
@compute @workgroup_size(64)
fn attention_backward_kv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = thread_id(wid, nwg, lid);
    let s = params.seq;
    let total = params.bh * s;
    if (r >= total) { return; }
    let bh = r / s;
    let base = bh * s * D;
    let scale = params.scale;
    var kr: array<f32, D>;
    var vr: array<f32, D>;
    var dk: array<f32, D>;
    var dv: array<f32, D>;
    for (var d = 0u; d < D; d++) { kr[d] = bk[r * D + d]; vr[d] = bv[r * D + d]; }
    for (var i = 0u; i < s; i++) {
        let qi = base + i * D;
        var sc = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < D; d++) {
            sc += bq[qi + d] * kr[d];
            dp += bdo[qi + d] * vr[d];
        }
        let pij = exp(sc * scale - blse[bh * s + i]);
        let ds = pij * (dp - bdelta[bh * s + i]);
        for (var d = 0u; d < D; d++) {
            dv[d] += pij * bdo[qi + d];
            dk[d] += ds * bq[qi + d];
        }
    }
    for (var d = 0u; d < D; d++) {
        bout[r * D + d] = dk[d] * scale;
        bout[total * D + r * D + d] = dv[d];
    }
}

{{VEC_FORWARD}}
