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

const D: u32 = 16u;
const TQ: u32 = 4u; // each K/V row loaded in the forward serves TQ queries

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
    let blocks = (s + 16u - 1u) / 16u;
    let tid = thread_id(wid, nwg, lid);
    if (tid >= params.bh * blocks) { return; }
    let bh = tid / blocks;
    let i0 = (tid % blocks) * 16u;
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
    var m7 = -0x1.fffffep+127f;
    var l7 = 0.0;
    let qrow8 = (base + min(i0 + 8u, s - 1u) * D) / 4u;
    let q8_0 = qv[qrow8 + 0u] * params.scale;
    var a8_0 = vec4<f32>(0.0);
    let q8_1 = qv[qrow8 + 1u] * params.scale;
    var a8_1 = vec4<f32>(0.0);
    let q8_2 = qv[qrow8 + 2u] * params.scale;
    var a8_2 = vec4<f32>(0.0);
    let q8_3 = qv[qrow8 + 3u] * params.scale;
    var a8_3 = vec4<f32>(0.0);
    var m8 = -0x1.fffffep+127f;
    var l8 = 0.0;
    let qrow9 = (base + min(i0 + 9u, s - 1u) * D) / 4u;
    let q9_0 = qv[qrow9 + 0u] * params.scale;
    var a9_0 = vec4<f32>(0.0);
    let q9_1 = qv[qrow9 + 1u] * params.scale;
    var a9_1 = vec4<f32>(0.0);
    let q9_2 = qv[qrow9 + 2u] * params.scale;
    var a9_2 = vec4<f32>(0.0);
    let q9_3 = qv[qrow9 + 3u] * params.scale;
    var a9_3 = vec4<f32>(0.0);
    var m9 = -0x1.fffffep+127f;
    var l9 = 0.0;
    let qrow10 = (base + min(i0 + 10u, s - 1u) * D) / 4u;
    let q10_0 = qv[qrow10 + 0u] * params.scale;
    var a10_0 = vec4<f32>(0.0);
    let q10_1 = qv[qrow10 + 1u] * params.scale;
    var a10_1 = vec4<f32>(0.0);
    let q10_2 = qv[qrow10 + 2u] * params.scale;
    var a10_2 = vec4<f32>(0.0);
    let q10_3 = qv[qrow10 + 3u] * params.scale;
    var a10_3 = vec4<f32>(0.0);
    var m10 = -0x1.fffffep+127f;
    var l10 = 0.0;
    let qrow11 = (base + min(i0 + 11u, s - 1u) * D) / 4u;
    let q11_0 = qv[qrow11 + 0u] * params.scale;
    var a11_0 = vec4<f32>(0.0);
    let q11_1 = qv[qrow11 + 1u] * params.scale;
    var a11_1 = vec4<f32>(0.0);
    let q11_2 = qv[qrow11 + 2u] * params.scale;
    var a11_2 = vec4<f32>(0.0);
    let q11_3 = qv[qrow11 + 3u] * params.scale;
    var a11_3 = vec4<f32>(0.0);
    var m11 = -0x1.fffffep+127f;
    var l11 = 0.0;
    let qrow12 = (base + min(i0 + 12u, s - 1u) * D) / 4u;
    let q12_0 = qv[qrow12 + 0u] * params.scale;
    var a12_0 = vec4<f32>(0.0);
    let q12_1 = qv[qrow12 + 1u] * params.scale;
    var a12_1 = vec4<f32>(0.0);
    let q12_2 = qv[qrow12 + 2u] * params.scale;
    var a12_2 = vec4<f32>(0.0);
    let q12_3 = qv[qrow12 + 3u] * params.scale;
    var a12_3 = vec4<f32>(0.0);
    var m12 = -0x1.fffffep+127f;
    var l12 = 0.0;
    let qrow13 = (base + min(i0 + 13u, s - 1u) * D) / 4u;
    let q13_0 = qv[qrow13 + 0u] * params.scale;
    var a13_0 = vec4<f32>(0.0);
    let q13_1 = qv[qrow13 + 1u] * params.scale;
    var a13_1 = vec4<f32>(0.0);
    let q13_2 = qv[qrow13 + 2u] * params.scale;
    var a13_2 = vec4<f32>(0.0);
    let q13_3 = qv[qrow13 + 3u] * params.scale;
    var a13_3 = vec4<f32>(0.0);
    var m13 = -0x1.fffffep+127f;
    var l13 = 0.0;
    let qrow14 = (base + min(i0 + 14u, s - 1u) * D) / 4u;
    let q14_0 = qv[qrow14 + 0u] * params.scale;
    var a14_0 = vec4<f32>(0.0);
    let q14_1 = qv[qrow14 + 1u] * params.scale;
    var a14_1 = vec4<f32>(0.0);
    let q14_2 = qv[qrow14 + 2u] * params.scale;
    var a14_2 = vec4<f32>(0.0);
    let q14_3 = qv[qrow14 + 3u] * params.scale;
    var a14_3 = vec4<f32>(0.0);
    var m14 = -0x1.fffffep+127f;
    var l14 = 0.0;
    let qrow15 = (base + min(i0 + 15u, s - 1u) * D) / 4u;
    let q15_0 = qv[qrow15 + 0u] * params.scale;
    var a15_0 = vec4<f32>(0.0);
    let q15_1 = qv[qrow15 + 1u] * params.scale;
    var a15_1 = vec4<f32>(0.0);
    let q15_2 = qv[qrow15 + 2u] * params.scale;
    var a15_2 = vec4<f32>(0.0);
    let q15_3 = qv[qrow15 + 3u] * params.scale;
    var a15_3 = vec4<f32>(0.0);
    var m15 = -0x1.fffffep+127f;
    var l15 = 0.0;
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
        let s0 = dot(q0_0, k0) + dot(q0_1, k1) + dot(q0_2, k2) + dot(q0_3, k3);
        let mn0 = max(m0, s0);
        let c0 = exp(m0 - mn0);
        let p0 = exp(s0 - mn0);
        l0 = l0 * c0 + p0;
        m0 = mn0;
        a0_0 = a0_0 * c0 + p0 * v0;
        a0_1 = a0_1 * c0 + p0 * v1;
        a0_2 = a0_2 * c0 + p0 * v2;
        a0_3 = a0_3 * c0 + p0 * v3;
        let s1 = dot(q1_0, k0) + dot(q1_1, k1) + dot(q1_2, k2) + dot(q1_3, k3);
        let mn1 = max(m1, s1);
        let c1 = exp(m1 - mn1);
        let p1 = exp(s1 - mn1);
        l1 = l1 * c1 + p1;
        m1 = mn1;
        a1_0 = a1_0 * c1 + p1 * v0;
        a1_1 = a1_1 * c1 + p1 * v1;
        a1_2 = a1_2 * c1 + p1 * v2;
        a1_3 = a1_3 * c1 + p1 * v3;
        let s2 = dot(q2_0, k0) + dot(q2_1, k1) + dot(q2_2, k2) + dot(q2_3, k3);
        let mn2 = max(m2, s2);
        let c2 = exp(m2 - mn2);
        let p2 = exp(s2 - mn2);
        l2 = l2 * c2 + p2;
        m2 = mn2;
        a2_0 = a2_0 * c2 + p2 * v0;
        a2_1 = a2_1 * c2 + p2 * v1;
        a2_2 = a2_2 * c2 + p2 * v2;
        a2_3 = a2_3 * c2 + p2 * v3;
        let s3 = dot(q3_0, k0) + dot(q3_1, k1) + dot(q3_2, k2) + dot(q3_3, k3);
        let mn3 = max(m3, s3);
        let c3 = exp(m3 - mn3);
        let p3 = exp(s3 - mn3);
        l3 = l3 * c3 + p3;
        m3 = mn3;
        a3_0 = a3_0 * c3 + p3 * v0;
        a3_1 = a3_1 * c3 + p3 * v1;
        a3_2 = a3_2 * c3 + p3 * v2;
        a3_3 = a3_3 * c3 + p3 * v3;
        let s4 = dot(q4_0, k0) + dot(q4_1, k1) + dot(q4_2, k2) + dot(q4_3, k3);
        let mn4 = max(m4, s4);
        let c4 = exp(m4 - mn4);
        let p4 = exp(s4 - mn4);
        l4 = l4 * c4 + p4;
        m4 = mn4;
        a4_0 = a4_0 * c4 + p4 * v0;
        a4_1 = a4_1 * c4 + p4 * v1;
        a4_2 = a4_2 * c4 + p4 * v2;
        a4_3 = a4_3 * c4 + p4 * v3;
        let s5 = dot(q5_0, k0) + dot(q5_1, k1) + dot(q5_2, k2) + dot(q5_3, k3);
        let mn5 = max(m5, s5);
        let c5 = exp(m5 - mn5);
        let p5 = exp(s5 - mn5);
        l5 = l5 * c5 + p5;
        m5 = mn5;
        a5_0 = a5_0 * c5 + p5 * v0;
        a5_1 = a5_1 * c5 + p5 * v1;
        a5_2 = a5_2 * c5 + p5 * v2;
        a5_3 = a5_3 * c5 + p5 * v3;
        let s6 = dot(q6_0, k0) + dot(q6_1, k1) + dot(q6_2, k2) + dot(q6_3, k3);
        let mn6 = max(m6, s6);
        let c6 = exp(m6 - mn6);
        let p6 = exp(s6 - mn6);
        l6 = l6 * c6 + p6;
        m6 = mn6;
        a6_0 = a6_0 * c6 + p6 * v0;
        a6_1 = a6_1 * c6 + p6 * v1;
        a6_2 = a6_2 * c6 + p6 * v2;
        a6_3 = a6_3 * c6 + p6 * v3;
        let s7 = dot(q7_0, k0) + dot(q7_1, k1) + dot(q7_2, k2) + dot(q7_3, k3);
        let mn7 = max(m7, s7);
        let c7 = exp(m7 - mn7);
        let p7 = exp(s7 - mn7);
        l7 = l7 * c7 + p7;
        m7 = mn7;
        a7_0 = a7_0 * c7 + p7 * v0;
        a7_1 = a7_1 * c7 + p7 * v1;
        a7_2 = a7_2 * c7 + p7 * v2;
        a7_3 = a7_3 * c7 + p7 * v3;
        let s8 = dot(q8_0, k0) + dot(q8_1, k1) + dot(q8_2, k2) + dot(q8_3, k3);
        let mn8 = max(m8, s8);
        let c8 = exp(m8 - mn8);
        let p8 = exp(s8 - mn8);
        l8 = l8 * c8 + p8;
        m8 = mn8;
        a8_0 = a8_0 * c8 + p8 * v0;
        a8_1 = a8_1 * c8 + p8 * v1;
        a8_2 = a8_2 * c8 + p8 * v2;
        a8_3 = a8_3 * c8 + p8 * v3;
        let s9 = dot(q9_0, k0) + dot(q9_1, k1) + dot(q9_2, k2) + dot(q9_3, k3);
        let mn9 = max(m9, s9);
        let c9 = exp(m9 - mn9);
        let p9 = exp(s9 - mn9);
        l9 = l9 * c9 + p9;
        m9 = mn9;
        a9_0 = a9_0 * c9 + p9 * v0;
        a9_1 = a9_1 * c9 + p9 * v1;
        a9_2 = a9_2 * c9 + p9 * v2;
        a9_3 = a9_3 * c9 + p9 * v3;
        let s10 = dot(q10_0, k0) + dot(q10_1, k1) + dot(q10_2, k2) + dot(q10_3, k3);
        let mn10 = max(m10, s10);
        let c10 = exp(m10 - mn10);
        let p10 = exp(s10 - mn10);
        l10 = l10 * c10 + p10;
        m10 = mn10;
        a10_0 = a10_0 * c10 + p10 * v0;
        a10_1 = a10_1 * c10 + p10 * v1;
        a10_2 = a10_2 * c10 + p10 * v2;
        a10_3 = a10_3 * c10 + p10 * v3;
        let s11 = dot(q11_0, k0) + dot(q11_1, k1) + dot(q11_2, k2) + dot(q11_3, k3);
        let mn11 = max(m11, s11);
        let c11 = exp(m11 - mn11);
        let p11 = exp(s11 - mn11);
        l11 = l11 * c11 + p11;
        m11 = mn11;
        a11_0 = a11_0 * c11 + p11 * v0;
        a11_1 = a11_1 * c11 + p11 * v1;
        a11_2 = a11_2 * c11 + p11 * v2;
        a11_3 = a11_3 * c11 + p11 * v3;
        let s12 = dot(q12_0, k0) + dot(q12_1, k1) + dot(q12_2, k2) + dot(q12_3, k3);
        let mn12 = max(m12, s12);
        let c12 = exp(m12 - mn12);
        let p12 = exp(s12 - mn12);
        l12 = l12 * c12 + p12;
        m12 = mn12;
        a12_0 = a12_0 * c12 + p12 * v0;
        a12_1 = a12_1 * c12 + p12 * v1;
        a12_2 = a12_2 * c12 + p12 * v2;
        a12_3 = a12_3 * c12 + p12 * v3;
        let s13 = dot(q13_0, k0) + dot(q13_1, k1) + dot(q13_2, k2) + dot(q13_3, k3);
        let mn13 = max(m13, s13);
        let c13 = exp(m13 - mn13);
        let p13 = exp(s13 - mn13);
        l13 = l13 * c13 + p13;
        m13 = mn13;
        a13_0 = a13_0 * c13 + p13 * v0;
        a13_1 = a13_1 * c13 + p13 * v1;
        a13_2 = a13_2 * c13 + p13 * v2;
        a13_3 = a13_3 * c13 + p13 * v3;
        let s14 = dot(q14_0, k0) + dot(q14_1, k1) + dot(q14_2, k2) + dot(q14_3, k3);
        let mn14 = max(m14, s14);
        let c14 = exp(m14 - mn14);
        let p14 = exp(s14 - mn14);
        l14 = l14 * c14 + p14;
        m14 = mn14;
        a14_0 = a14_0 * c14 + p14 * v0;
        a14_1 = a14_1 * c14 + p14 * v1;
        a14_2 = a14_2 * c14 + p14 * v2;
        a14_3 = a14_3 * c14 + p14 * v3;
        let s15 = dot(q15_0, k0) + dot(q15_1, k1) + dot(q15_2, k2) + dot(q15_3, k3);
        let mn15 = max(m15, s15);
        let c15 = exp(m15 - mn15);
        let p15 = exp(s15 - mn15);
        l15 = l15 * c15 + p15;
        m15 = mn15;
        a15_0 = a15_0 * c15 + p15 * v0;
        a15_1 = a15_1 * c15 + p15 * v1;
        a15_2 = a15_2 * c15 + p15 * v2;
        a15_3 = a15_3 * c15 + p15 * v3;
    }
    if (i0 + 0u < s) {
        ov[(base + (i0 + 0u) * D) / 4u + 0u] = a0_0 / l0;
        ov[(base + (i0 + 0u) * D) / 4u + 1u] = a0_1 / l0;
        ov[(base + (i0 + 0u) * D) / 4u + 2u] = a0_2 / l0;
        ov[(base + (i0 + 0u) * D) / 4u + 3u] = a0_3 / l0;
        lse[bh * s + i0 + 0u] = m0 + log(l0);
    }
    if (i0 + 1u < s) {
        ov[(base + (i0 + 1u) * D) / 4u + 0u] = a1_0 / l1;
        ov[(base + (i0 + 1u) * D) / 4u + 1u] = a1_1 / l1;
        ov[(base + (i0 + 1u) * D) / 4u + 2u] = a1_2 / l1;
        ov[(base + (i0 + 1u) * D) / 4u + 3u] = a1_3 / l1;
        lse[bh * s + i0 + 1u] = m1 + log(l1);
    }
    if (i0 + 2u < s) {
        ov[(base + (i0 + 2u) * D) / 4u + 0u] = a2_0 / l2;
        ov[(base + (i0 + 2u) * D) / 4u + 1u] = a2_1 / l2;
        ov[(base + (i0 + 2u) * D) / 4u + 2u] = a2_2 / l2;
        ov[(base + (i0 + 2u) * D) / 4u + 3u] = a2_3 / l2;
        lse[bh * s + i0 + 2u] = m2 + log(l2);
    }
    if (i0 + 3u < s) {
        ov[(base + (i0 + 3u) * D) / 4u + 0u] = a3_0 / l3;
        ov[(base + (i0 + 3u) * D) / 4u + 1u] = a3_1 / l3;
        ov[(base + (i0 + 3u) * D) / 4u + 2u] = a3_2 / l3;
        ov[(base + (i0 + 3u) * D) / 4u + 3u] = a3_3 / l3;
        lse[bh * s + i0 + 3u] = m3 + log(l3);
    }
    if (i0 + 4u < s) {
        ov[(base + (i0 + 4u) * D) / 4u + 0u] = a4_0 / l4;
        ov[(base + (i0 + 4u) * D) / 4u + 1u] = a4_1 / l4;
        ov[(base + (i0 + 4u) * D) / 4u + 2u] = a4_2 / l4;
        ov[(base + (i0 + 4u) * D) / 4u + 3u] = a4_3 / l4;
        lse[bh * s + i0 + 4u] = m4 + log(l4);
    }
    if (i0 + 5u < s) {
        ov[(base + (i0 + 5u) * D) / 4u + 0u] = a5_0 / l5;
        ov[(base + (i0 + 5u) * D) / 4u + 1u] = a5_1 / l5;
        ov[(base + (i0 + 5u) * D) / 4u + 2u] = a5_2 / l5;
        ov[(base + (i0 + 5u) * D) / 4u + 3u] = a5_3 / l5;
        lse[bh * s + i0 + 5u] = m5 + log(l5);
    }
    if (i0 + 6u < s) {
        ov[(base + (i0 + 6u) * D) / 4u + 0u] = a6_0 / l6;
        ov[(base + (i0 + 6u) * D) / 4u + 1u] = a6_1 / l6;
        ov[(base + (i0 + 6u) * D) / 4u + 2u] = a6_2 / l6;
        ov[(base + (i0 + 6u) * D) / 4u + 3u] = a6_3 / l6;
        lse[bh * s + i0 + 6u] = m6 + log(l6);
    }
    if (i0 + 7u < s) {
        ov[(base + (i0 + 7u) * D) / 4u + 0u] = a7_0 / l7;
        ov[(base + (i0 + 7u) * D) / 4u + 1u] = a7_1 / l7;
        ov[(base + (i0 + 7u) * D) / 4u + 2u] = a7_2 / l7;
        ov[(base + (i0 + 7u) * D) / 4u + 3u] = a7_3 / l7;
        lse[bh * s + i0 + 7u] = m7 + log(l7);
    }
    if (i0 + 8u < s) {
        ov[(base + (i0 + 8u) * D) / 4u + 0u] = a8_0 / l8;
        ov[(base + (i0 + 8u) * D) / 4u + 1u] = a8_1 / l8;
        ov[(base + (i0 + 8u) * D) / 4u + 2u] = a8_2 / l8;
        ov[(base + (i0 + 8u) * D) / 4u + 3u] = a8_3 / l8;
        lse[bh * s + i0 + 8u] = m8 + log(l8);
    }
    if (i0 + 9u < s) {
        ov[(base + (i0 + 9u) * D) / 4u + 0u] = a9_0 / l9;
        ov[(base + (i0 + 9u) * D) / 4u + 1u] = a9_1 / l9;
        ov[(base + (i0 + 9u) * D) / 4u + 2u] = a9_2 / l9;
        ov[(base + (i0 + 9u) * D) / 4u + 3u] = a9_3 / l9;
        lse[bh * s + i0 + 9u] = m9 + log(l9);
    }
    if (i0 + 10u < s) {
        ov[(base + (i0 + 10u) * D) / 4u + 0u] = a10_0 / l10;
        ov[(base + (i0 + 10u) * D) / 4u + 1u] = a10_1 / l10;
        ov[(base + (i0 + 10u) * D) / 4u + 2u] = a10_2 / l10;
        ov[(base + (i0 + 10u) * D) / 4u + 3u] = a10_3 / l10;
        lse[bh * s + i0 + 10u] = m10 + log(l10);
    }
    if (i0 + 11u < s) {
        ov[(base + (i0 + 11u) * D) / 4u + 0u] = a11_0 / l11;
        ov[(base + (i0 + 11u) * D) / 4u + 1u] = a11_1 / l11;
        ov[(base + (i0 + 11u) * D) / 4u + 2u] = a11_2 / l11;
        ov[(base + (i0 + 11u) * D) / 4u + 3u] = a11_3 / l11;
        lse[bh * s + i0 + 11u] = m11 + log(l11);
    }
    if (i0 + 12u < s) {
        ov[(base + (i0 + 12u) * D) / 4u + 0u] = a12_0 / l12;
        ov[(base + (i0 + 12u) * D) / 4u + 1u] = a12_1 / l12;
        ov[(base + (i0 + 12u) * D) / 4u + 2u] = a12_2 / l12;
        ov[(base + (i0 + 12u) * D) / 4u + 3u] = a12_3 / l12;
        lse[bh * s + i0 + 12u] = m12 + log(l12);
    }
    if (i0 + 13u < s) {
        ov[(base + (i0 + 13u) * D) / 4u + 0u] = a13_0 / l13;
        ov[(base + (i0 + 13u) * D) / 4u + 1u] = a13_1 / l13;
        ov[(base + (i0 + 13u) * D) / 4u + 2u] = a13_2 / l13;
        ov[(base + (i0 + 13u) * D) / 4u + 3u] = a13_3 / l13;
        lse[bh * s + i0 + 13u] = m13 + log(l13);
    }
    if (i0 + 14u < s) {
        ov[(base + (i0 + 14u) * D) / 4u + 0u] = a14_0 / l14;
        ov[(base + (i0 + 14u) * D) / 4u + 1u] = a14_1 / l14;
        ov[(base + (i0 + 14u) * D) / 4u + 2u] = a14_2 / l14;
        ov[(base + (i0 + 14u) * D) / 4u + 3u] = a14_3 / l14;
        lse[bh * s + i0 + 14u] = m14 + log(l14);
    }
    if (i0 + 15u < s) {
        ov[(base + (i0 + 15u) * D) / 4u + 0u] = a15_0 / l15;
        ov[(base + (i0 + 15u) * D) / 4u + 1u] = a15_1 / l15;
        ov[(base + (i0 + 15u) * D) / 4u + 2u] = a15_2 / l15;
        ov[(base + (i0 + 15u) * D) / 4u + 3u] = a15_3 / l15;
        lse[bh * s + i0 + 15u] = m15 + log(l15);
    }
}

