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

const D: u32 = 64u;
const TQ: u32 = 1u; // each K/V row loaded in the forward serves TQ queries

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

// The attention forward with rows in named vec4 registers and every loop over the head dimension
// unrolled (loops indexing private arrays keep them in memory on CPU adapters), TQ query rows
// per thread. Appended to attention.wgsl (whose D, params and lse it uses) when D is a multiple
// of 4; a template: engine/src/ops/attention.rs fills TQ and the unrolled BODY.
@group(0) @binding(1) var<storage, read> qv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> kv: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> vv: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> ov: array<vec4<f32>>;

@compute @workgroup_size(64)
fn attention_forward_vec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let s = params.seq;
    let blocks = (s + 8u - 1u) / 8u;
    let tid = thread_id(wid, nwg, lid);
    if (tid >= params.bh * blocks) { return; }
    let bh = tid / blocks;
    let i0 = (tid % blocks) * 8u;
    let base = bh * s * D;
    let qrow0 = (base + min(i0 + 0u, s - 1u) * D) / 4u;
    let q0_0 = qv[qrow0 + 0u] * params.scale;
    var a0_0 = vec4<f32>(0.0);
    let q0_1 = qv[qrow0 + 1u] * params.scale;
    var a0_1 = vec4<f32>(0.0);
    let q0_2 = qv[qrow0 + 2u] * params.scale;
    var a0_2 = vec4<f32>(0.0);
    let q0_3 = qv[qrow0 + 3u] * params.scale;
    var a0_3 = vec4<f32>(0.0);
    let q0_4 = qv[qrow0 + 4u] * params.scale;
    var a0_4 = vec4<f32>(0.0);
    let q0_5 = qv[qrow0 + 5u] * params.scale;
    var a0_5 = vec4<f32>(0.0);
    let q0_6 = qv[qrow0 + 6u] * params.scale;
    var a0_6 = vec4<f32>(0.0);
    let q0_7 = qv[qrow0 + 7u] * params.scale;
    var a0_7 = vec4<f32>(0.0);
    let q0_8 = qv[qrow0 + 8u] * params.scale;
    var a0_8 = vec4<f32>(0.0);
    let q0_9 = qv[qrow0 + 9u] * params.scale;
    var a0_9 = vec4<f32>(0.0);
    let q0_10 = qv[qrow0 + 10u] * params.scale;
    var a0_10 = vec4<f32>(0.0);
    let q0_11 = qv[qrow0 + 11u] * params.scale;
    var a0_11 = vec4<f32>(0.0);
    let q0_12 = qv[qrow0 + 12u] * params.scale;
    var a0_12 = vec4<f32>(0.0);
    let q0_13 = qv[qrow0 + 13u] * params.scale;
    var a0_13 = vec4<f32>(0.0);
    let q0_14 = qv[qrow0 + 14u] * params.scale;
    var a0_14 = vec4<f32>(0.0);
    let q0_15 = qv[qrow0 + 15u] * params.scale;
    var a0_15 = vec4<f32>(0.0);
    var m0 = -0x1.fffffep+127f;
    var l0 = 0.0;
    let qrow1 = (base + min(i0 + 1u, s - 1u) * D) / 4u;
    let q1_0 = qv[qrow1 + 0u] * params.scale;
    var a1_0 = vec4<f32>(0.0);
    let q1_1 = qv[qrow1 + 1u] * params.scale;
    var a1_1 = vec4<f32>(0.0);
    let q1_2 = qv[qrow1 + 2u] * params.scale;
    var a1_2 = vec4<f32>(0.0);
    let q1_3 = qv[qrow1 + 3u] * params.scale;
    var a1_3 = vec4<f32>(0.0);
    let q1_4 = qv[qrow1 + 4u] * params.scale;
    var a1_4 = vec4<f32>(0.0);
    let q1_5 = qv[qrow1 + 5u] * params.scale;
    var a1_5 = vec4<f32>(0.0);
    let q1_6 = qv[qrow1 + 6u] * params.scale;
    var a1_6 = vec4<f32>(0.0);
    let q1_7 = qv[qrow1 + 7u] * params.scale;
    var a1_7 = vec4<f32>(0.0);
    let q1_8 = qv[qrow1 + 8u] * params.scale;
    var a1_8 = vec4<f32>(0.0);
    let q1_9 = qv[qrow1 + 9u] * params.scale;
    var a1_9 = vec4<f32>(0.0);
    let q1_10 = qv[qrow1 + 10u] * params.scale;
    var a1_10 = vec4<f32>(0.0);
    let q1_11 = qv[qrow1 + 11u] * params.scale;
    var a1_11 = vec4<f32>(0.0);
    let q1_12 = qv[qrow1 + 12u] * params.scale;
    var a1_12 = vec4<f32>(0.0);
    let q1_13 = qv[qrow1 + 13u] * params.scale;
    var a1_13 = vec4<f32>(0.0);
    let q1_14 = qv[qrow1 + 14u] * params.scale;
    var a1_14 = vec4<f32>(0.0);
    let q1_15 = qv[qrow1 + 15u] * params.scale;
    var a1_15 = vec4<f32>(0.0);
    var m1 = -0x1.fffffep+127f;
    var l1 = 0.0;
    let qrow2 = (base + min(i0 + 2u, s - 1u) * D) / 4u;
    let q2_0 = qv[qrow2 + 0u] * params.scale;
    var a2_0 = vec4<f32>(0.0);
    let q2_1 = qv[qrow2 + 1u] * params.scale;
    var a2_1 = vec4<f32>(0.0);
    let q2_2 = qv[qrow2 + 2u] * params.scale;
    var a2_2 = vec4<f32>(0.0);
    let q2_3 = qv[qrow2 + 3u] * params.scale;
    var a2_3 = vec4<f32>(0.0);
    let q2_4 = qv[qrow2 + 4u] * params.scale;
    var a2_4 = vec4<f32>(0.0);
    let q2_5 = qv[qrow2 + 5u] * params.scale;
    var a2_5 = vec4<f32>(0.0);
    let q2_6 = qv[qrow2 + 6u] * params.scale;
    var a2_6 = vec4<f32>(0.0);
    let q2_7 = qv[qrow2 + 7u] * params.scale;
    var a2_7 = vec4<f32>(0.0);
    let q2_8 = qv[qrow2 + 8u] * params.scale;
    var a2_8 = vec4<f32>(0.0);
    let q2_9 = qv[qrow2 + 9u] * params.scale;
    var a2_9 = vec4<f32>(0.0);
    let q2_10 = qv[qrow2 + 10u] * params.scale;
    var a2_10 = vec4<f32>(0.0);
    let q2_11 = qv[qrow2 + 11u] * params.scale;
    var a2_11 = vec4<f32>(0.0);
    let q2_12 = qv[qrow2 + 12u] * params.scale;
    var a2_12 = vec4<f32>(0.0);
    let q2_13 = qv[qrow2 + 13u] * params.scale;
    var a2_13 = vec4<f32>(0.0);
    let q2_14 = qv[qrow2 + 14u] * params.scale;
    var a2_14 = vec4<f32>(0.0);
    let q2_15 = qv[qrow2 + 15u] * params.scale;
    var a2_15 = vec4<f32>(0.0);
    var m2 = -0x1.fffffep+127f;
    var l2 = 0.0;
    let qrow3 = (base + min(i0 + 3u, s - 1u) * D) / 4u;
    let q3_0 = qv[qrow3 + 0u] * params.scale;
    var a3_0 = vec4<f32>(0.0);
    let q3_1 = qv[qrow3 + 1u] * params.scale;
    var a3_1 = vec4<f32>(0.0);
    let q3_2 = qv[qrow3 + 2u] * params.scale;
    var a3_2 = vec4<f32>(0.0);
    let q3_3 = qv[qrow3 + 3u] * params.scale;
    var a3_3 = vec4<f32>(0.0);
    let q3_4 = qv[qrow3 + 4u] * params.scale;
    var a3_4 = vec4<f32>(0.0);
    let q3_5 = qv[qrow3 + 5u] * params.scale;
    var a3_5 = vec4<f32>(0.0);
    let q3_6 = qv[qrow3 + 6u] * params.scale;
    var a3_6 = vec4<f32>(0.0);
    let q3_7 = qv[qrow3 + 7u] * params.scale;
    var a3_7 = vec4<f32>(0.0);
    let q3_8 = qv[qrow3 + 8u] * params.scale;
    var a3_8 = vec4<f32>(0.0);
    let q3_9 = qv[qrow3 + 9u] * params.scale;
    var a3_9 = vec4<f32>(0.0);
    let q3_10 = qv[qrow3 + 10u] * params.scale;
    var a3_10 = vec4<f32>(0.0);
    let q3_11 = qv[qrow3 + 11u] * params.scale;
    var a3_11 = vec4<f32>(0.0);
    let q3_12 = qv[qrow3 + 12u] * params.scale;
    var a3_12 = vec4<f32>(0.0);
    let q3_13 = qv[qrow3 + 13u] * params.scale;
    var a3_13 = vec4<f32>(0.0);
    let q3_14 = qv[qrow3 + 14u] * params.scale;
    var a3_14 = vec4<f32>(0.0);
    let q3_15 = qv[qrow3 + 15u] * params.scale;
    var a3_15 = vec4<f32>(0.0);
    var m3 = -0x1.fffffep+127f;
    var l3 = 0.0;
    let qrow4 = (base + min(i0 + 4u, s - 1u) * D) / 4u;
    let q4_0 = qv[qrow4 + 0u] * params.scale;
    var a4_0 = vec4<f32>(0.0);
    let q4_1 = qv[qrow4 + 1u] * params.scale;
    var a4_1 = vec4<f32>(0.0);
    let q4_2 = qv[qrow4 + 2u] * params.scale;
    var a4_2 = vec4<f32>(0.0);
    let q4_3 = qv[qrow4 + 3u] * params.scale;
    var a4_3 = vec4<f32>(0.0);
    let q4_4 = qv[qrow4 + 4u] * params.scale;
    var a4_4 = vec4<f32>(0.0);
    let q4_5 = qv[qrow4 + 5u] * params.scale;
    var a4_5 = vec4<f32>(0.0);
    let q4_6 = qv[qrow4 + 6u] * params.scale;
    var a4_6 = vec4<f32>(0.0);
    let q4_7 = qv[qrow4 + 7u] * params.scale;
    var a4_7 = vec4<f32>(0.0);
    let q4_8 = qv[qrow4 + 8u] * params.scale;
    var a4_8 = vec4<f32>(0.0);
    let q4_9 = qv[qrow4 + 9u] * params.scale;
    var a4_9 = vec4<f32>(0.0);
    let q4_10 = qv[qrow4 + 10u] * params.scale;
    var a4_10 = vec4<f32>(0.0);
    let q4_11 = qv[qrow4 + 11u] * params.scale;
    var a4_11 = vec4<f32>(0.0);
    let q4_12 = qv[qrow4 + 12u] * params.scale;
    var a4_12 = vec4<f32>(0.0);
    let q4_13 = qv[qrow4 + 13u] * params.scale;
    var a4_13 = vec4<f32>(0.0);
    let q4_14 = qv[qrow4 + 14u] * params.scale;
    var a4_14 = vec4<f32>(0.0);
    let q4_15 = qv[qrow4 + 15u] * params.scale;
    var a4_15 = vec4<f32>(0.0);
    var m4 = -0x1.fffffep+127f;
    var l4 = 0.0;
    let qrow5 = (base + min(i0 + 5u, s - 1u) * D) / 4u;
    let q5_0 = qv[qrow5 + 0u] * params.scale;
    var a5_0 = vec4<f32>(0.0);
    let q5_1 = qv[qrow5 + 1u] * params.scale;
    var a5_1 = vec4<f32>(0.0);
    let q5_2 = qv[qrow5 + 2u] * params.scale;
    var a5_2 = vec4<f32>(0.0);
    let q5_3 = qv[qrow5 + 3u] * params.scale;
    var a5_3 = vec4<f32>(0.0);
    let q5_4 = qv[qrow5 + 4u] * params.scale;
    var a5_4 = vec4<f32>(0.0);
    let q5_5 = qv[qrow5 + 5u] * params.scale;
    var a5_5 = vec4<f32>(0.0);
    let q5_6 = qv[qrow5 + 6u] * params.scale;
    var a5_6 = vec4<f32>(0.0);
    let q5_7 = qv[qrow5 + 7u] * params.scale;
    var a5_7 = vec4<f32>(0.0);
    let q5_8 = qv[qrow5 + 8u] * params.scale;
    var a5_8 = vec4<f32>(0.0);
    let q5_9 = qv[qrow5 + 9u] * params.scale;
    var a5_9 = vec4<f32>(0.0);
    let q5_10 = qv[qrow5 + 10u] * params.scale;
    var a5_10 = vec4<f32>(0.0);
    let q5_11 = qv[qrow5 + 11u] * params.scale;
    var a5_11 = vec4<f32>(0.0);
    let q5_12 = qv[qrow5 + 12u] * params.scale;
    var a5_12 = vec4<f32>(0.0);
    let q5_13 = qv[qrow5 + 13u] * params.scale;
    var a5_13 = vec4<f32>(0.0);
    let q5_14 = qv[qrow5 + 14u] * params.scale;
    var a5_14 = vec4<f32>(0.0);
    let q5_15 = qv[qrow5 + 15u] * params.scale;
    var a5_15 = vec4<f32>(0.0);
    var m5 = -0x1.fffffep+127f;
    var l5 = 0.0;
    let qrow6 = (base + min(i0 + 6u, s - 1u) * D) / 4u;
    let q6_0 = qv[qrow6 + 0u] * params.scale;
    var a6_0 = vec4<f32>(0.0);
    let q6_1 = qv[qrow6 + 1u] * params.scale;
    var a6_1 = vec4<f32>(0.0);
    let q6_2 = qv[qrow6 + 2u] * params.scale;
    var a6_2 = vec4<f32>(0.0);
    let q6_3 = qv[qrow6 + 3u] * params.scale;
    var a6_3 = vec4<f32>(0.0);
    let q6_4 = qv[qrow6 + 4u] * params.scale;
    var a6_4 = vec4<f32>(0.0);
    let q6_5 = qv[qrow6 + 5u] * params.scale;
    var a6_5 = vec4<f32>(0.0);
    let q6_6 = qv[qrow6 + 6u] * params.scale;
    var a6_6 = vec4<f32>(0.0);
    let q6_7 = qv[qrow6 + 7u] * params.scale;
    var a6_7 = vec4<f32>(0.0);
    let q6_8 = qv[qrow6 + 8u] * params.scale;
    var a6_8 = vec4<f32>(0.0);
    let q6_9 = qv[qrow6 + 9u] * params.scale;
    var a6_9 = vec4<f32>(0.0);
    let q6_10 = qv[qrow6 + 10u] * params.scale;
    var a6_10 = vec4<f32>(0.0);
    let q6_11 = qv[qrow6 + 11u] * params.scale;
    var a6_11 = vec4<f32>(0.0);
    let q6_12 = qv[qrow6 + 12u] * params.scale;
    var a6_12 = vec4<f32>(0.0);
    let q6_13 = qv[qrow6 + 13u] * params.scale;
    var a6_13 = vec4<f32>(0.0);
    let q6_14 = qv[qrow6 + 14u] * params.scale;
    var a6_14 = vec4<f32>(0.0);
    let q6_15 = qv[qrow6 + 15u] * params.scale;
    var a6_15 = vec4<f32>(0.0);
    var m6 = -0x1.fffffep+127f;
    var l6 = 0.0;
    let qrow7 = (base + min(i0 + 7u, s - 1u) * D) / 4u;
    let q7_0 = qv[qrow7 + 0u] * params.scale;
    var a7_0 = vec4<f32>(0.0);
    let q7_1 = qv[qrow7 + 1u] * params.scale;
    var a7_1 = vec4<f32>(0.0);
    let q7_2 = qv[qrow7 + 2u] * params.scale;
    var a7_2 = vec4<f32>(0.0);
    let q7_3 = qv[qrow7 + 3u] * params.scale;
    var a7_3 = vec4<f32>(0.0);
    let q7_4 = qv[qrow7 + 4u] * params.scale;
    var a7_4 = vec4<f32>(0.0);
    let q7_5 = qv[qrow7 + 5u] * params.scale;
    var a7_5 = vec4<f32>(0.0);
    let q7_6 = qv[qrow7 + 6u] * params.scale;
    var a7_6 = vec4<f32>(0.0);
    let q7_7 = qv[qrow7 + 7u] * params.scale;
    var a7_7 = vec4<f32>(0.0);
    let q7_8 = qv[qrow7 + 8u] * params.scale;
    var a7_8 = vec4<f32>(0.0);
    let q7_9 = qv[qrow7 + 9u] * params.scale;
    var a7_9 = vec4<f32>(0.0);
    let q7_10 = qv[qrow7 + 10u] * params.scale;
    var a7_10 = vec4<f32>(0.0);
    let q7_11 = qv[qrow7 + 11u] * params.scale;
    var a7_11 = vec4<f32>(0.0);
    let q7_12 = qv[qrow7 + 12u] * params.scale;
    var a7_12 = vec4<f32>(0.0);
    let q7_13 = qv[qrow7 + 13u] * params.scale;
    var a7_13 = vec4<f32>(0.0);
    let q7_14 = qv[qrow7 + 14u] * params.scale;
    var a7_14 = vec4<f32>(0.0);
    let q7_15 = qv[qrow7 + 15u] * params.scale;
    var a7_15 = vec4<f32>(0.0);
    var m7 = -0x1.fffffep+127f;
    var l7 = 0.0;
    for (var j = 0u; j < s; j++) {
        let krow = (base + j * D) / 4u;
        let k0 = kv[krow + 0u];
        let v0 = vv[krow + 0u];
        let k1 = kv[krow + 1u];
        let v1 = vv[krow + 1u];
        let k2 = kv[krow + 2u];
        let v2 = vv[krow + 2u];
        let k3 = kv[krow + 3u];
        let v3 = vv[krow + 3u];
        let k4 = kv[krow + 4u];
        let v4 = vv[krow + 4u];
        let k5 = kv[krow + 5u];
        let v5 = vv[krow + 5u];
        let k6 = kv[krow + 6u];
        let v6 = vv[krow + 6u];
        let k7 = kv[krow + 7u];
        let v7 = vv[krow + 7u];
        let k8 = kv[krow + 8u];
        let v8 = vv[krow + 8u];
        let k9 = kv[krow + 9u];
        let v9 = vv[krow + 9u];
        let k10 = kv[krow + 10u];
        let v10 = vv[krow + 10u];
        let k11 = kv[krow + 11u];
        let v11 = vv[krow + 11u];
        let k12 = kv[krow + 12u];
        let v12 = vv[krow + 12u];
        let k13 = kv[krow + 13u];
        let v13 = vv[krow + 13u];
        let k14 = kv[krow + 14u];
        let v14 = vv[krow + 14u];
        let k15 = kv[krow + 15u];
        let v15 = vv[krow + 15u];
        let s0 = dot(q0_0, k0) + dot(q0_1, k1) + dot(q0_2, k2) + dot(q0_3, k3) + dot(q0_4, k4) + dot(q0_5, k5) + dot(q0_6, k6) + dot(q0_7, k7) + dot(q0_8, k8) + dot(q0_9, k9) + dot(q0_10, k10) + dot(q0_11, k11) + dot(q0_12, k12) + dot(q0_13, k13) + dot(q0_14, k14) + dot(q0_15, k15);
        let mn0 = max(m0, s0);
        let c0 = exp(m0 - mn0);
        let p0 = exp(s0 - mn0);
        l0 = l0 * c0 + p0;
        m0 = mn0;
        a0_0 = a0_0 * c0 + p0 * v0;
        a0_1 = a0_1 * c0 + p0 * v1;
        a0_2 = a0_2 * c0 + p0 * v2;
        a0_3 = a0_3 * c0 + p0 * v3;
        a0_4 = a0_4 * c0 + p0 * v4;
        a0_5 = a0_5 * c0 + p0 * v5;
        a0_6 = a0_6 * c0 + p0 * v6;
        a0_7 = a0_7 * c0 + p0 * v7;
        a0_8 = a0_8 * c0 + p0 * v8;
        a0_9 = a0_9 * c0 + p0 * v9;
        a0_10 = a0_10 * c0 + p0 * v10;
        a0_11 = a0_11 * c0 + p0 * v11;
        a0_12 = a0_12 * c0 + p0 * v12;
        a0_13 = a0_13 * c0 + p0 * v13;
        a0_14 = a0_14 * c0 + p0 * v14;
        a0_15 = a0_15 * c0 + p0 * v15;
        let s1 = dot(q1_0, k0) + dot(q1_1, k1) + dot(q1_2, k2) + dot(q1_3, k3) + dot(q1_4, k4) + dot(q1_5, k5) + dot(q1_6, k6) + dot(q1_7, k7) + dot(q1_8, k8) + dot(q1_9, k9) + dot(q1_10, k10) + dot(q1_11, k11) + dot(q1_12, k12) + dot(q1_13, k13) + dot(q1_14, k14) + dot(q1_15, k15);
        let mn1 = max(m1, s1);
        let c1 = exp(m1 - mn1);
        let p1 = exp(s1 - mn1);
        l1 = l1 * c1 + p1;
        m1 = mn1;
        a1_0 = a1_0 * c1 + p1 * v0;
        a1_1 = a1_1 * c1 + p1 * v1;
        a1_2 = a1_2 * c1 + p1 * v2;
        a1_3 = a1_3 * c1 + p1 * v3;
        a1_4 = a1_4 * c1 + p1 * v4;
        a1_5 = a1_5 * c1 + p1 * v5;
        a1_6 = a1_6 * c1 + p1 * v6;
        a1_7 = a1_7 * c1 + p1 * v7;
        a1_8 = a1_8 * c1 + p1 * v8;
        a1_9 = a1_9 * c1 + p1 * v9;
        a1_10 = a1_10 * c1 + p1 * v10;
        a1_11 = a1_11 * c1 + p1 * v11;
        a1_12 = a1_12 * c1 + p1 * v12;
        a1_13 = a1_13 * c1 + p1 * v13;
        a1_14 = a1_14 * c1 + p1 * v14;
        a1_15 = a1_15 * c1 + p1 * v15;
        let s2 = dot(q2_0, k0) + dot(q2_1, k1) + dot(q2_2, k2) + dot(q2_3, k3) + dot(q2_4, k4) + dot(q2_5, k5) + dot(q2_6, k6) + dot(q2_7, k7) + dot(q2_8, k8) + dot(q2_9, k9) + dot(q2_10, k10) + dot(q2_11, k11) + dot(q2_12, k12) + dot(q2_13, k13) + dot(q2_14, k14) + dot(q2_15, k15);
        let mn2 = max(m2, s2);
        let c2 = exp(m2 - mn2);
        let p2 = exp(s2 - mn2);
        l2 = l2 * c2 + p2;
        m2 = mn2;
        a2_0 = a2_0 * c2 + p2 * v0;
        a2_1 = a2_1 * c2 + p2 * v1;
        a2_2 = a2_2 * c2 + p2 * v2;
        a2_3 = a2_3 * c2 + p2 * v3;
        a2_4 = a2_4 * c2 + p2 * v4;
        a2_5 = a2_5 * c2 + p2 * v5;
        a2_6 = a2_6 * c2 + p2 * v6;
        a2_7 = a2_7 * c2 + p2 * v7;
        a2_8 = a2_8 * c2 + p2 * v8;
        a2_9 = a2_9 * c2 + p2 * v9;
        a2_10 = a2_10 * c2 + p2 * v10;
        a2_11 = a2_11 * c2 + p2 * v11;
        a2_12 = a2_12 * c2 + p2 * v12;
        a2_13 = a2_13 * c2 + p2 * v13;
        a2_14 = a2_14 * c2 + p2 * v14;
        a2_15 = a2_15 * c2 + p2 * v15;
        let s3 = dot(q3_0, k0) + dot(q3_1, k1) + dot(q3_2, k2) + dot(q3_3, k3) + dot(q3_4, k4) + dot(q3_5, k5) + dot(q3_6, k6) + dot(q3_7, k7) + dot(q3_8, k8) + dot(q3_9, k9) + dot(q3_10, k10) + dot(q3_11, k11) + dot(q3_12, k12) + dot(q3_13, k13) + dot(q3_14, k14) + dot(q3_15, k15);
        let mn3 = max(m3, s3);
        let c3 = exp(m3 - mn3);
        let p3 = exp(s3 - mn3);
        l3 = l3 * c3 + p3;
        m3 = mn3;
        a3_0 = a3_0 * c3 + p3 * v0;
        a3_1 = a3_1 * c3 + p3 * v1;
        a3_2 = a3_2 * c3 + p3 * v2;
        a3_3 = a3_3 * c3 + p3 * v3;
        a3_4 = a3_4 * c3 + p3 * v4;
        a3_5 = a3_5 * c3 + p3 * v5;
        a3_6 = a3_6 * c3 + p3 * v6;
        a3_7 = a3_7 * c3 + p3 * v7;
        a3_8 = a3_8 * c3 + p3 * v8;
        a3_9 = a3_9 * c3 + p3 * v9;
        a3_10 = a3_10 * c3 + p3 * v10;
        a3_11 = a3_11 * c3 + p3 * v11;
        a3_12 = a3_12 * c3 + p3 * v12;
        a3_13 = a3_13 * c3 + p3 * v13;
        a3_14 = a3_14 * c3 + p3 * v14;
        a3_15 = a3_15 * c3 + p3 * v15;
        let s4 = dot(q4_0, k0) + dot(q4_1, k1) + dot(q4_2, k2) + dot(q4_3, k3) + dot(q4_4, k4) + dot(q4_5, k5) + dot(q4_6, k6) + dot(q4_7, k7) + dot(q4_8, k8) + dot(q4_9, k9) + dot(q4_10, k10) + dot(q4_11, k11) + dot(q4_12, k12) + dot(q4_13, k13) + dot(q4_14, k14) + dot(q4_15, k15);
        let mn4 = max(m4, s4);
        let c4 = exp(m4 - mn4);
        let p4 = exp(s4 - mn4);
        l4 = l4 * c4 + p4;
        m4 = mn4;
        a4_0 = a4_0 * c4 + p4 * v0;
        a4_1 = a4_1 * c4 + p4 * v1;
        a4_2 = a4_2 * c4 + p4 * v2;
        a4_3 = a4_3 * c4 + p4 * v3;
        a4_4 = a4_4 * c4 + p4 * v4;
        a4_5 = a4_5 * c4 + p4 * v5;
        a4_6 = a4_6 * c4 + p4 * v6;
        a4_7 = a4_7 * c4 + p4 * v7;
        a4_8 = a4_8 * c4 + p4 * v8;
        a4_9 = a4_9 * c4 + p4 * v9;
        a4_10 = a4_10 * c4 + p4 * v10;
        a4_11 = a4_11 * c4 + p4 * v11;
        a4_12 = a4_12 * c4 + p4 * v12;
        a4_13 = a4_13 * c4 + p4 * v13;
        a4_14 = a4_14 * c4 + p4 * v14;
        a4_15 = a4_15 * c4 + p4 * v15;
        let s5 = dot(q5_0, k0) + dot(q5_1, k1) + dot(q5_2, k2) + dot(q5_3, k3) + dot(q5_4, k4) + dot(q5_5, k5) + dot(q5_6, k6) + dot(q5_7, k7) + dot(q5_8, k8) + dot(q5_9, k9) + dot(q5_10, k10) + dot(q5_11, k11) + dot(q5_12, k12) + dot(q5_13, k13) + dot(q5_14, k14) + dot(q5_15, k15);
        let mn5 = max(m5, s5);
        let c5 = exp(m5 - mn5);
        let p5 = exp(s5 - mn5);
        l5 = l5 * c5 + p5;
        m5 = mn5;
        a5_0 = a5_0 * c5 + p5 * v0;
        a5_1 = a5_1 * c5 + p5 * v1;
        a5_2 = a5_2 * c5 + p5 * v2;
        a5_3 = a5_3 * c5 + p5 * v3;
        a5_4 = a5_4 * c5 + p5 * v4;
        a5_5 = a5_5 * c5 + p5 * v5;
        a5_6 = a5_6 * c5 + p5 * v6;
        a5_7 = a5_7 * c5 + p5 * v7;
        a5_8 = a5_8 * c5 + p5 * v8;
        a5_9 = a5_9 * c5 + p5 * v9;
        a5_10 = a5_10 * c5 + p5 * v10;
        a5_11 = a5_11 * c5 + p5 * v11;
        a5_12 = a5_12 * c5 + p5 * v12;
        a5_13 = a5_13 * c5 + p5 * v13;
        a5_14 = a5_14 * c5 + p5 * v14;
        a5_15 = a5_15 * c5 + p5 * v15;
        let s6 = dot(q6_0, k0) + dot(q6_1, k1) + dot(q6_2, k2) + dot(q6_3, k3) + dot(q6_4, k4) + dot(q6_5, k5) + dot(q6_6, k6) + dot(q6_7, k7) + dot(q6_8, k8) + dot(q6_9, k9) + dot(q6_10, k10) + dot(q6_11, k11) + dot(q6_12, k12) + dot(q6_13, k13) + dot(q6_14, k14) + dot(q6_15, k15);
        let mn6 = max(m6, s6);
        let c6 = exp(m6 - mn6);
        let p6 = exp(s6 - mn6);
        l6 = l6 * c6 + p6;
        m6 = mn6;
        a6_0 = a6_0 * c6 + p6 * v0;
        a6_1 = a6_1 * c6 + p6 * v1;
        a6_2 = a6_2 * c6 + p6 * v2;
        a6_3 = a6_3 * c6 + p6 * v3;
        a6_4 = a6_4 * c6 + p6 * v4;
        a6_5 = a6_5 * c6 + p6 * v5;
        a6_6 = a6_6 * c6 + p6 * v6;
        a6_7 = a6_7 * c6 + p6 * v7;
        a6_8 = a6_8 * c6 + p6 * v8;
        a6_9 = a6_9 * c6 + p6 * v9;
        a6_10 = a6_10 * c6 + p6 * v10;
        a6_11 = a6_11 * c6 + p6 * v11;
        a6_12 = a6_12 * c6 + p6 * v12;
        a6_13 = a6_13 * c6 + p6 * v13;
        a6_14 = a6_14 * c6 + p6 * v14;
        a6_15 = a6_15 * c6 + p6 * v15;
        let s7 = dot(q7_0, k0) + dot(q7_1, k1) + dot(q7_2, k2) + dot(q7_3, k3) + dot(q7_4, k4) + dot(q7_5, k5) + dot(q7_6, k6) + dot(q7_7, k7) + dot(q7_8, k8) + dot(q7_9, k9) + dot(q7_10, k10) + dot(q7_11, k11) + dot(q7_12, k12) + dot(q7_13, k13) + dot(q7_14, k14) + dot(q7_15, k15);
        let mn7 = max(m7, s7);
        let c7 = exp(m7 - mn7);
        let p7 = exp(s7 - mn7);
        l7 = l7 * c7 + p7;
        m7 = mn7;
        a7_0 = a7_0 * c7 + p7 * v0;
        a7_1 = a7_1 * c7 + p7 * v1;
        a7_2 = a7_2 * c7 + p7 * v2;
        a7_3 = a7_3 * c7 + p7 * v3;
        a7_4 = a7_4 * c7 + p7 * v4;
        a7_5 = a7_5 * c7 + p7 * v5;
        a7_6 = a7_6 * c7 + p7 * v6;
        a7_7 = a7_7 * c7 + p7 * v7;
        a7_8 = a7_8 * c7 + p7 * v8;
        a7_9 = a7_9 * c7 + p7 * v9;
        a7_10 = a7_10 * c7 + p7 * v10;
        a7_11 = a7_11 * c7 + p7 * v11;
        a7_12 = a7_12 * c7 + p7 * v12;
        a7_13 = a7_13 * c7 + p7 * v13;
        a7_14 = a7_14 * c7 + p7 * v14;
        a7_15 = a7_15 * c7 + p7 * v15;
    }
    if (i0 + 0u < s) {
        ov[(base + (i0 + 0u) * D) / 4u + 0u] = a0_0 / l0;
        ov[(base + (i0 + 0u) * D) / 4u + 1u] = a0_1 / l0;
        ov[(base + (i0 + 0u) * D) / 4u + 2u] = a0_2 / l0;
        ov[(base + (i0 + 0u) * D) / 4u + 3u] = a0_3 / l0;
        ov[(base + (i0 + 0u) * D) / 4u + 4u] = a0_4 / l0;
        ov[(base + (i0 + 0u) * D) / 4u + 5u] = a0_5 / l0;
        ov[(base + (i0 + 0u) * D) / 4u + 6u] = a0_6 / l0;
        ov[(base + (i0 + 0u) * D) / 4u + 7u] = a0_7 / l0;
        ov[(base + (i0 + 0u) * D) / 4u + 8u] = a0_8 / l0;
        ov[(base + (i0 + 0u) * D) / 4u + 9u] = a0_9 / l0;
        ov[(base + (i0 + 0u) * D) / 4u + 10u] = a0_10 / l0;
        ov[(base + (i0 + 0u) * D) / 4u + 11u] = a0_11 / l0;
        ov[(base + (i0 + 0u) * D) / 4u + 12u] = a0_12 / l0;
        ov[(base + (i0 + 0u) * D) / 4u + 13u] = a0_13 / l0;
        ov[(base + (i0 + 0u) * D) / 4u + 14u] = a0_14 / l0;
        ov[(base + (i0 + 0u) * D) / 4u + 15u] = a0_15 / l0;
        lse[bh * s + i0 + 0u] = m0 + log(l0);
    }
    if (i0 + 1u < s) {
        ov[(base + (i0 + 1u) * D) / 4u + 0u] = a1_0 / l1;
        ov[(base + (i0 + 1u) * D) / 4u + 1u] = a1_1 / l1;
        ov[(base + (i0 + 1u) * D) / 4u + 2u] = a1_2 / l1;
        ov[(base + (i0 + 1u) * D) / 4u + 3u] = a1_3 / l1;
        ov[(base + (i0 + 1u) * D) / 4u + 4u] = a1_4 / l1;
        ov[(base + (i0 + 1u) * D) / 4u + 5u] = a1_5 / l1;
        ov[(base + (i0 + 1u) * D) / 4u + 6u] = a1_6 / l1;
        ov[(base + (i0 + 1u) * D) / 4u + 7u] = a1_7 / l1;
        ov[(base + (i0 + 1u) * D) / 4u + 8u] = a1_8 / l1;
        ov[(base + (i0 + 1u) * D) / 4u + 9u] = a1_9 / l1;
        ov[(base + (i0 + 1u) * D) / 4u + 10u] = a1_10 / l1;
        ov[(base + (i0 + 1u) * D) / 4u + 11u] = a1_11 / l1;
        ov[(base + (i0 + 1u) * D) / 4u + 12u] = a1_12 / l1;
        ov[(base + (i0 + 1u) * D) / 4u + 13u] = a1_13 / l1;
        ov[(base + (i0 + 1u) * D) / 4u + 14u] = a1_14 / l1;
        ov[(base + (i0 + 1u) * D) / 4u + 15u] = a1_15 / l1;
        lse[bh * s + i0 + 1u] = m1 + log(l1);
    }
    if (i0 + 2u < s) {
        ov[(base + (i0 + 2u) * D) / 4u + 0u] = a2_0 / l2;
        ov[(base + (i0 + 2u) * D) / 4u + 1u] = a2_1 / l2;
        ov[(base + (i0 + 2u) * D) / 4u + 2u] = a2_2 / l2;
        ov[(base + (i0 + 2u) * D) / 4u + 3u] = a2_3 / l2;
        ov[(base + (i0 + 2u) * D) / 4u + 4u] = a2_4 / l2;
        ov[(base + (i0 + 2u) * D) / 4u + 5u] = a2_5 / l2;
        ov[(base + (i0 + 2u) * D) / 4u + 6u] = a2_6 / l2;
        ov[(base + (i0 + 2u) * D) / 4u + 7u] = a2_7 / l2;
        ov[(base + (i0 + 2u) * D) / 4u + 8u] = a2_8 / l2;
        ov[(base + (i0 + 2u) * D) / 4u + 9u] = a2_9 / l2;
        ov[(base + (i0 + 2u) * D) / 4u + 10u] = a2_10 / l2;
        ov[(base + (i0 + 2u) * D) / 4u + 11u] = a2_11 / l2;
        ov[(base + (i0 + 2u) * D) / 4u + 12u] = a2_12 / l2;
        ov[(base + (i0 + 2u) * D) / 4u + 13u] = a2_13 / l2;
        ov[(base + (i0 + 2u) * D) / 4u + 14u] = a2_14 / l2;
        ov[(base + (i0 + 2u) * D) / 4u + 15u] = a2_15 / l2;
        lse[bh * s + i0 + 2u] = m2 + log(l2);
    }
    if (i0 + 3u < s) {
        ov[(base + (i0 + 3u) * D) / 4u + 0u] = a3_0 / l3;
        ov[(base + (i0 + 3u) * D) / 4u + 1u] = a3_1 / l3;
        ov[(base + (i0 + 3u) * D) / 4u + 2u] = a3_2 / l3;
        ov[(base + (i0 + 3u) * D) / 4u + 3u] = a3_3 / l3;
        ov[(base + (i0 + 3u) * D) / 4u + 4u] = a3_4 / l3;
        ov[(base + (i0 + 3u) * D) / 4u + 5u] = a3_5 / l3;
        ov[(base + (i0 + 3u) * D) / 4u + 6u] = a3_6 / l3;
        ov[(base + (i0 + 3u) * D) / 4u + 7u] = a3_7 / l3;
        ov[(base + (i0 + 3u) * D) / 4u + 8u] = a3_8 / l3;
        ov[(base + (i0 + 3u) * D) / 4u + 9u] = a3_9 / l3;
        ov[(base + (i0 + 3u) * D) / 4u + 10u] = a3_10 / l3;
        ov[(base + (i0 + 3u) * D) / 4u + 11u] = a3_11 / l3;
        ov[(base + (i0 + 3u) * D) / 4u + 12u] = a3_12 / l3;
        ov[(base + (i0 + 3u) * D) / 4u + 13u] = a3_13 / l3;
        ov[(base + (i0 + 3u) * D) / 4u + 14u] = a3_14 / l3;
        ov[(base + (i0 + 3u) * D) / 4u + 15u] = a3_15 / l3;
        lse[bh * s + i0 + 3u] = m3 + log(l3);
    }
    if (i0 + 4u < s) {
        ov[(base + (i0 + 4u) * D) / 4u + 0u] = a4_0 / l4;
        ov[(base + (i0 + 4u) * D) / 4u + 1u] = a4_1 / l4;
        ov[(base + (i0 + 4u) * D) / 4u + 2u] = a4_2 / l4;
        ov[(base + (i0 + 4u) * D) / 4u + 3u] = a4_3 / l4;
        ov[(base + (i0 + 4u) * D) / 4u + 4u] = a4_4 / l4;
        ov[(base + (i0 + 4u) * D) / 4u + 5u] = a4_5 / l4;
        ov[(base + (i0 + 4u) * D) / 4u + 6u] = a4_6 / l4;
        ov[(base + (i0 + 4u) * D) / 4u + 7u] = a4_7 / l4;
        ov[(base + (i0 + 4u) * D) / 4u + 8u] = a4_8 / l4;
        ov[(base + (i0 + 4u) * D) / 4u + 9u] = a4_9 / l4;
        ov[(base + (i0 + 4u) * D) / 4u + 10u] = a4_10 / l4;
        ov[(base + (i0 + 4u) * D) / 4u + 11u] = a4_11 / l4;
        ov[(base + (i0 + 4u) * D) / 4u + 12u] = a4_12 / l4;
        ov[(base + (i0 + 4u) * D) / 4u + 13u] = a4_13 / l4;
        ov[(base + (i0 + 4u) * D) / 4u + 14u] = a4_14 / l4;
        ov[(base + (i0 + 4u) * D) / 4u + 15u] = a4_15 / l4;
        lse[bh * s + i0 + 4u] = m4 + log(l4);
    }
    if (i0 + 5u < s) {
        ov[(base + (i0 + 5u) * D) / 4u + 0u] = a5_0 / l5;
        ov[(base + (i0 + 5u) * D) / 4u + 1u] = a5_1 / l5;
        ov[(base + (i0 + 5u) * D) / 4u + 2u] = a5_2 / l5;
        ov[(base + (i0 + 5u) * D) / 4u + 3u] = a5_3 / l5;
        ov[(base + (i0 + 5u) * D) / 4u + 4u] = a5_4 / l5;
        ov[(base + (i0 + 5u) * D) / 4u + 5u] = a5_5 / l5;
        ov[(base + (i0 + 5u) * D) / 4u + 6u] = a5_6 / l5;
        ov[(base + (i0 + 5u) * D) / 4u + 7u] = a5_7 / l5;
        ov[(base + (i0 + 5u) * D) / 4u + 8u] = a5_8 / l5;
        ov[(base + (i0 + 5u) * D) / 4u + 9u] = a5_9 / l5;
        ov[(base + (i0 + 5u) * D) / 4u + 10u] = a5_10 / l5;
        ov[(base + (i0 + 5u) * D) / 4u + 11u] = a5_11 / l5;
        ov[(base + (i0 + 5u) * D) / 4u + 12u] = a5_12 / l5;
        ov[(base + (i0 + 5u) * D) / 4u + 13u] = a5_13 / l5;
        ov[(base + (i0 + 5u) * D) / 4u + 14u] = a5_14 / l5;
        ov[(base + (i0 + 5u) * D) / 4u + 15u] = a5_15 / l5;
        lse[bh * s + i0 + 5u] = m5 + log(l5);
    }
    if (i0 + 6u < s) {
        ov[(base + (i0 + 6u) * D) / 4u + 0u] = a6_0 / l6;
        ov[(base + (i0 + 6u) * D) / 4u + 1u] = a6_1 / l6;
        ov[(base + (i0 + 6u) * D) / 4u + 2u] = a6_2 / l6;
        ov[(base + (i0 + 6u) * D) / 4u + 3u] = a6_3 / l6;
        ov[(base + (i0 + 6u) * D) / 4u + 4u] = a6_4 / l6;
        ov[(base + (i0 + 6u) * D) / 4u + 5u] = a6_5 / l6;
        ov[(base + (i0 + 6u) * D) / 4u + 6u] = a6_6 / l6;
        ov[(base + (i0 + 6u) * D) / 4u + 7u] = a6_7 / l6;
        ov[(base + (i0 + 6u) * D) / 4u + 8u] = a6_8 / l6;
        ov[(base + (i0 + 6u) * D) / 4u + 9u] = a6_9 / l6;
        ov[(base + (i0 + 6u) * D) / 4u + 10u] = a6_10 / l6;
        ov[(base + (i0 + 6u) * D) / 4u + 11u] = a6_11 / l6;
        ov[(base + (i0 + 6u) * D) / 4u + 12u] = a6_12 / l6;
        ov[(base + (i0 + 6u) * D) / 4u + 13u] = a6_13 / l6;
        ov[(base + (i0 + 6u) * D) / 4u + 14u] = a6_14 / l6;
        ov[(base + (i0 + 6u) * D) / 4u + 15u] = a6_15 / l6;
        lse[bh * s + i0 + 6u] = m6 + log(l6);
    }
    if (i0 + 7u < s) {
        ov[(base + (i0 + 7u) * D) / 4u + 0u] = a7_0 / l7;
        ov[(base + (i0 + 7u) * D) / 4u + 1u] = a7_1 / l7;
        ov[(base + (i0 + 7u) * D) / 4u + 2u] = a7_2 / l7;
        ov[(base + (i0 + 7u) * D) / 4u + 3u] = a7_3 / l7;
        ov[(base + (i0 + 7u) * D) / 4u + 4u] = a7_4 / l7;
        ov[(base + (i0 + 7u) * D) / 4u + 5u] = a7_5 / l7;
        ov[(base + (i0 + 7u) * D) / 4u + 6u] = a7_6 / l7;
        ov[(base + (i0 + 7u) * D) / 4u + 7u] = a7_7 / l7;
        ov[(base + (i0 + 7u) * D) / 4u + 8u] = a7_8 / l7;
        ov[(base + (i0 + 7u) * D) / 4u + 9u] = a7_9 / l7;
        ov[(base + (i0 + 7u) * D) / 4u + 10u] = a7_10 / l7;
        ov[(base + (i0 + 7u) * D) / 4u + 11u] = a7_11 / l7;
        ov[(base + (i0 + 7u) * D) / 4u + 12u] = a7_12 / l7;
        ov[(base + (i0 + 7u) * D) / 4u + 13u] = a7_13 / l7;
        ov[(base + (i0 + 7u) * D) / 4u + 14u] = a7_14 / l7;
        ov[(base + (i0 + 7u) * D) / 4u + 15u] = a7_15 / l7;
        lse[bh * s + i0 + 7u] = m7 + log(l7);
    }
}

