// Register-blocked batched matmul, the variant for CPU adapters (lavapipe): no workgroup memory;
// each thread computes an 8×16 block of C = op(A)·op(B) (+ bias) in 32 vec4 accumulators,
// loading straight from storage buffers with vec4 loads where the layout allows.
// This file is a template: engine/src/ops/matmul.rs fills the {{...}} slots with the fully
// unrolled loads and FMAs of one variant (A/B transposed or not, vec4 or scalar loads).
//
// Element (m, k) of op(A) lives at a_off + m·K + k, or a_off + k·M + m when A is transposed;
// element (k, n) of op(B) at b_off + k·N + n, or b_off + n·K + k when B is transposed.
// Rows and columns past the edge are clamped on load (no branch in the k loop) and skipped on store.

struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    a_batch_stride: u32,
    b_batch_stride: u32,
    c_batch_stride: u32,
    sm: u32, // matmul_subgroup: its 8 subgroups form an SM × (8/SM) grid of blocks; else unused
}
@group(0) @binding(0) var<uniform> params: MatmulParams;
@group(0) @binding(1) var<storage, read> A: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> B: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> BIAS: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;

// Scalar loads of A and B by element index (for the k tail).
fn la(i: u32) -> f32 { return A[i >> 2u][i & 3u]; }
fn lb(i: u32) -> f32 { return B[i >> 2u][i & 3u]; }

// Stores 4 consecutive columns of one row, skipping columns ≥ N.
fn store4(base: u32, col: u32, n: u32, v: vec4<f32>) {
    for (var l = 0u; l < 4u; l++) {
        if (col + l < n) {
            C[base + col + l] = v[l];
        }
    }
}

// The variants with a bias load it here, once per column of the block (BIAS is unbound in the
// others): lbias(i, N) is BIAS[i], clamped past the last column.
fn lbias(i: u32, n: u32) -> f32 { return BIAS[min(i, n - 1u)]; }

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    let M = params.m;
    let N = params.n;
    let K = params.k;
    let a_off = params.a_batch_stride * g.z;
    let b_off = params.b_batch_stride * g.z;
    let c_off = params.c_batch_stride * g.z;
    let m0 = g.x * 8u;
    let n0 = g.y * 16u;
    if (m0 >= M || n0 >= N) { return; }
        let am0 = a_off + min(m0 + 0u, M - 1u);
        let am1 = a_off + min(m0 + 1u, M - 1u);
        let am2 = a_off + min(m0 + 2u, M - 1u);
        let am3 = a_off + min(m0 + 3u, M - 1u);
        let am4 = a_off + min(m0 + 4u, M - 1u);
        let am5 = a_off + min(m0 + 5u, M - 1u);
        let am6 = a_off + min(m0 + 6u, M - 1u);
        let am7 = a_off + min(m0 + 7u, M - 1u);
        let bn0 = b_off + min(n0 + 0u, N - 1u) * K;
        let bn1 = b_off + min(n0 + 1u, N - 1u) * K;
        let bn2 = b_off + min(n0 + 2u, N - 1u) * K;
        let bn3 = b_off + min(n0 + 3u, N - 1u) * K;
        let bn4 = b_off + min(n0 + 4u, N - 1u) * K;
        let bn5 = b_off + min(n0 + 5u, N - 1u) * K;
        let bn6 = b_off + min(n0 + 6u, N - 1u) * K;
        let bn7 = b_off + min(n0 + 7u, N - 1u) * K;
        let bn8 = b_off + min(n0 + 8u, N - 1u) * K;
        let bn9 = b_off + min(n0 + 9u, N - 1u) * K;
        let bn10 = b_off + min(n0 + 10u, N - 1u) * K;
        let bn11 = b_off + min(n0 + 11u, N - 1u) * K;
        let bn12 = b_off + min(n0 + 12u, N - 1u) * K;
        let bn13 = b_off + min(n0 + 13u, N - 1u) * K;
        let bn14 = b_off + min(n0 + 14u, N - 1u) * K;
        let bn15 = b_off + min(n0 + 15u, N - 1u) * K;
        let av0 = a_off / 4u + min(m0 / 4u, M / 4u - 1u);
        let av1 = a_off / 4u + min(m0 / 4u + 1u, M / 4u - 1u);

    var acc0_0 = vec4<f32>(0.0);
    var acc0_1 = vec4<f32>(0.0);
    var acc0_2 = vec4<f32>(0.0);
    var acc0_3 = vec4<f32>(0.0);
    var acc1_0 = vec4<f32>(0.0);
    var acc1_1 = vec4<f32>(0.0);
    var acc1_2 = vec4<f32>(0.0);
    var acc1_3 = vec4<f32>(0.0);
    var acc2_0 = vec4<f32>(0.0);
    var acc2_1 = vec4<f32>(0.0);
    var acc2_2 = vec4<f32>(0.0);
    var acc2_3 = vec4<f32>(0.0);
    var acc3_0 = vec4<f32>(0.0);
    var acc3_1 = vec4<f32>(0.0);
    var acc3_2 = vec4<f32>(0.0);
    var acc3_3 = vec4<f32>(0.0);
    var acc4_0 = vec4<f32>(0.0);
    var acc4_1 = vec4<f32>(0.0);
    var acc4_2 = vec4<f32>(0.0);
    var acc4_3 = vec4<f32>(0.0);
    var acc5_0 = vec4<f32>(0.0);
    var acc5_1 = vec4<f32>(0.0);
    var acc5_2 = vec4<f32>(0.0);
    var acc5_3 = vec4<f32>(0.0);
    var acc6_0 = vec4<f32>(0.0);
    var acc6_1 = vec4<f32>(0.0);
    var acc6_2 = vec4<f32>(0.0);
    var acc6_3 = vec4<f32>(0.0);
    var acc7_0 = vec4<f32>(0.0);
    var acc7_1 = vec4<f32>(0.0);
    var acc7_2 = vec4<f32>(0.0);
    var acc7_3 = vec4<f32>(0.0);

    let k4 = K / 4u;
    for (var kc = 0u; kc < k4; kc++) {
        let k = kc * 4u;
        let at0_0 = A[(k + 0u) * (M / 4u) + av0];
        let at1_0 = A[(k + 1u) * (M / 4u) + av0];
        let at2_0 = A[(k + 2u) * (M / 4u) + av0];
        let at3_0 = A[(k + 3u) * (M / 4u) + av0];
        let a0 = vec4<f32>(at0_0.x, at1_0.x, at2_0.x, at3_0.x);
        let a1 = vec4<f32>(at0_0.y, at1_0.y, at2_0.y, at3_0.y);
        let a2 = vec4<f32>(at0_0.z, at1_0.z, at2_0.z, at3_0.z);
        let a3 = vec4<f32>(at0_0.w, at1_0.w, at2_0.w, at3_0.w);
        let at0_1 = A[(k + 0u) * (M / 4u) + av1];
        let at1_1 = A[(k + 1u) * (M / 4u) + av1];
        let at2_1 = A[(k + 2u) * (M / 4u) + av1];
        let at3_1 = A[(k + 3u) * (M / 4u) + av1];
        let a4 = vec4<f32>(at0_1.x, at1_1.x, at2_1.x, at3_1.x);
        let a5 = vec4<f32>(at0_1.y, at1_1.y, at2_1.y, at3_1.y);
        let a6 = vec4<f32>(at0_1.z, at1_1.z, at2_1.z, at3_1.z);
        let a7 = vec4<f32>(at0_1.w, at1_1.w, at2_1.w, at3_1.w);
        let bt0 = B[bn0 / 4u + kc];
        let bt1 = B[bn1 / 4u + kc];
        let bt2 = B[bn2 / 4u + kc];
        let bt3 = B[bn3 / 4u + kc];
        let bt4 = B[bn4 / 4u + kc];
        let bt5 = B[bn5 / 4u + kc];
        let bt6 = B[bn6 / 4u + kc];
        let bt7 = B[bn7 / 4u + kc];
        let bt8 = B[bn8 / 4u + kc];
        let bt9 = B[bn9 / 4u + kc];
        let bt10 = B[bn10 / 4u + kc];
        let bt11 = B[bn11 / 4u + kc];
        let bt12 = B[bn12 / 4u + kc];
        let bt13 = B[bn13 / 4u + kc];
        let bt14 = B[bn14 / 4u + kc];
        let bt15 = B[bn15 / 4u + kc];
        let b0_0 = vec4<f32>(bt0.x, bt1.x, bt2.x, bt3.x);
        let b0_1 = vec4<f32>(bt4.x, bt5.x, bt6.x, bt7.x);
        let b0_2 = vec4<f32>(bt8.x, bt9.x, bt10.x, bt11.x);
        let b0_3 = vec4<f32>(bt12.x, bt13.x, bt14.x, bt15.x);
        let b1_0 = vec4<f32>(bt0.y, bt1.y, bt2.y, bt3.y);
        let b1_1 = vec4<f32>(bt4.y, bt5.y, bt6.y, bt7.y);
        let b1_2 = vec4<f32>(bt8.y, bt9.y, bt10.y, bt11.y);
        let b1_3 = vec4<f32>(bt12.y, bt13.y, bt14.y, bt15.y);
        let b2_0 = vec4<f32>(bt0.z, bt1.z, bt2.z, bt3.z);
        let b2_1 = vec4<f32>(bt4.z, bt5.z, bt6.z, bt7.z);
        let b2_2 = vec4<f32>(bt8.z, bt9.z, bt10.z, bt11.z);
        let b2_3 = vec4<f32>(bt12.z, bt13.z, bt14.z, bt15.z);
        let b3_0 = vec4<f32>(bt0.w, bt1.w, bt2.w, bt3.w);
        let b3_1 = vec4<f32>(bt4.w, bt5.w, bt6.w, bt7.w);
        let b3_2 = vec4<f32>(bt8.w, bt9.w, bt10.w, bt11.w);
        let b3_3 = vec4<f32>(bt12.w, bt13.w, bt14.w, bt15.w);
        acc0_0 += a0.x * b0_0 + a0.y * b1_0 + a0.z * b2_0 + a0.w * b3_0;
        acc0_1 += a0.x * b0_1 + a0.y * b1_1 + a0.z * b2_1 + a0.w * b3_1;
        acc0_2 += a0.x * b0_2 + a0.y * b1_2 + a0.z * b2_2 + a0.w * b3_2;
        acc0_3 += a0.x * b0_3 + a0.y * b1_3 + a0.z * b2_3 + a0.w * b3_3;
        acc1_0 += a1.x * b0_0 + a1.y * b1_0 + a1.z * b2_0 + a1.w * b3_0;
        acc1_1 += a1.x * b0_1 + a1.y * b1_1 + a1.z * b2_1 + a1.w * b3_1;
        acc1_2 += a1.x * b0_2 + a1.y * b1_2 + a1.z * b2_2 + a1.w * b3_2;
        acc1_3 += a1.x * b0_3 + a1.y * b1_3 + a1.z * b2_3 + a1.w * b3_3;
        acc2_0 += a2.x * b0_0 + a2.y * b1_0 + a2.z * b2_0 + a2.w * b3_0;
        acc2_1 += a2.x * b0_1 + a2.y * b1_1 + a2.z * b2_1 + a2.w * b3_1;
        acc2_2 += a2.x * b0_2 + a2.y * b1_2 + a2.z * b2_2 + a2.w * b3_2;
        acc2_3 += a2.x * b0_3 + a2.y * b1_3 + a2.z * b2_3 + a2.w * b3_3;
        acc3_0 += a3.x * b0_0 + a3.y * b1_0 + a3.z * b2_0 + a3.w * b3_0;
        acc3_1 += a3.x * b0_1 + a3.y * b1_1 + a3.z * b2_1 + a3.w * b3_1;
        acc3_2 += a3.x * b0_2 + a3.y * b1_2 + a3.z * b2_2 + a3.w * b3_2;
        acc3_3 += a3.x * b0_3 + a3.y * b1_3 + a3.z * b2_3 + a3.w * b3_3;
        acc4_0 += a4.x * b0_0 + a4.y * b1_0 + a4.z * b2_0 + a4.w * b3_0;
        acc4_1 += a4.x * b0_1 + a4.y * b1_1 + a4.z * b2_1 + a4.w * b3_1;
        acc4_2 += a4.x * b0_2 + a4.y * b1_2 + a4.z * b2_2 + a4.w * b3_2;
        acc4_3 += a4.x * b0_3 + a4.y * b1_3 + a4.z * b2_3 + a4.w * b3_3;
        acc5_0 += a5.x * b0_0 + a5.y * b1_0 + a5.z * b2_0 + a5.w * b3_0;
        acc5_1 += a5.x * b0_1 + a5.y * b1_1 + a5.z * b2_1 + a5.w * b3_1;
        acc5_2 += a5.x * b0_2 + a5.y * b1_2 + a5.z * b2_2 + a5.w * b3_2;
        acc5_3 += a5.x * b0_3 + a5.y * b1_3 + a5.z * b2_3 + a5.w * b3_3;
        acc6_0 += a6.x * b0_0 + a6.y * b1_0 + a6.z * b2_0 + a6.w * b3_0;
        acc6_1 += a6.x * b0_1 + a6.y * b1_1 + a6.z * b2_1 + a6.w * b3_1;
        acc6_2 += a6.x * b0_2 + a6.y * b1_2 + a6.z * b2_2 + a6.w * b3_2;
        acc6_3 += a6.x * b0_3 + a6.y * b1_3 + a6.z * b2_3 + a6.w * b3_3;
        acc7_0 += a7.x * b0_0 + a7.y * b1_0 + a7.z * b2_0 + a7.w * b3_0;
        acc7_1 += a7.x * b0_1 + a7.y * b1_1 + a7.z * b2_1 + a7.w * b3_1;
        acc7_2 += a7.x * b0_2 + a7.y * b1_2 + a7.z * b2_2 + a7.w * b3_2;
        acc7_3 += a7.x * b0_3 + a7.y * b1_3 + a7.z * b2_3 + a7.w * b3_3;

    }
    for (var k = k4 * 4u; k < K; k++) {
        let s0 = la(k * M + am0);
        let s1 = la(k * M + am1);
        let s2 = la(k * M + am2);
        let s3 = la(k * M + am3);
        let s4 = la(k * M + am4);
        let s5 = la(k * M + am5);
        let s6 = la(k * M + am6);
        let s7 = la(k * M + am7);
        let t0 = vec4<f32>(lb(bn0 + k), lb(bn1 + k), lb(bn2 + k), lb(bn3 + k));
        let t1 = vec4<f32>(lb(bn4 + k), lb(bn5 + k), lb(bn6 + k), lb(bn7 + k));
        let t2 = vec4<f32>(lb(bn8 + k), lb(bn9 + k), lb(bn10 + k), lb(bn11 + k));
        let t3 = vec4<f32>(lb(bn12 + k), lb(bn13 + k), lb(bn14 + k), lb(bn15 + k));
        acc0_0 = fma(vec4<f32>(s0), t0, acc0_0);
        acc0_1 = fma(vec4<f32>(s0), t1, acc0_1);
        acc0_2 = fma(vec4<f32>(s0), t2, acc0_2);
        acc0_3 = fma(vec4<f32>(s0), t3, acc0_3);
        acc1_0 = fma(vec4<f32>(s1), t0, acc1_0);
        acc1_1 = fma(vec4<f32>(s1), t1, acc1_1);
        acc1_2 = fma(vec4<f32>(s1), t2, acc1_2);
        acc1_3 = fma(vec4<f32>(s1), t3, acc1_3);
        acc2_0 = fma(vec4<f32>(s2), t0, acc2_0);
        acc2_1 = fma(vec4<f32>(s2), t1, acc2_1);
        acc2_2 = fma(vec4<f32>(s2), t2, acc2_2);
        acc2_3 = fma(vec4<f32>(s2), t3, acc2_3);
        acc3_0 = fma(vec4<f32>(s3), t0, acc3_0);
        acc3_1 = fma(vec4<f32>(s3), t1, acc3_1);
        acc3_2 = fma(vec4<f32>(s3), t2, acc3_2);
        acc3_3 = fma(vec4<f32>(s3), t3, acc3_3);
        acc4_0 = fma(vec4<f32>(s4), t0, acc4_0);
        acc4_1 = fma(vec4<f32>(s4), t1, acc4_1);
        acc4_2 = fma(vec4<f32>(s4), t2, acc4_2);
        acc4_3 = fma(vec4<f32>(s4), t3, acc4_3);
        acc5_0 = fma(vec4<f32>(s5), t0, acc5_0);
        acc5_1 = fma(vec4<f32>(s5), t1, acc5_1);
        acc5_2 = fma(vec4<f32>(s5), t2, acc5_2);
        acc5_3 = fma(vec4<f32>(s5), t3, acc5_3);
        acc6_0 = fma(vec4<f32>(s6), t0, acc6_0);
        acc6_1 = fma(vec4<f32>(s6), t1, acc6_1);
        acc6_2 = fma(vec4<f32>(s6), t2, acc6_2);
        acc6_3 = fma(vec4<f32>(s6), t3, acc6_3);
        acc7_0 = fma(vec4<f32>(s7), t0, acc7_0);
        acc7_1 = fma(vec4<f32>(s7), t1, acc7_1);
        acc7_2 = fma(vec4<f32>(s7), t2, acc7_2);
        acc7_3 = fma(vec4<f32>(s7), t3, acc7_3);

    }
    let bias0 = vec4<f32>(lbias(n0 + 0u, N), lbias(n0 + 1u, N), lbias(n0 + 2u, N), lbias(n0 + 3u, N));
    let bias1 = vec4<f32>(lbias(n0 + 4u, N), lbias(n0 + 5u, N), lbias(n0 + 6u, N), lbias(n0 + 7u, N));
    let bias2 = vec4<f32>(lbias(n0 + 8u, N), lbias(n0 + 9u, N), lbias(n0 + 10u, N), lbias(n0 + 11u, N));
    let bias3 = vec4<f32>(lbias(n0 + 12u, N), lbias(n0 + 13u, N), lbias(n0 + 14u, N), lbias(n0 + 15u, N));
    if (m0 + 0u < M) {
        store4(c_off + (m0 + 0u) * N, n0 + 0u, N, acc0_0 + bias0);
        store4(c_off + (m0 + 0u) * N, n0 + 4u, N, acc0_1 + bias1);
        store4(c_off + (m0 + 0u) * N, n0 + 8u, N, acc0_2 + bias2);
        store4(c_off + (m0 + 0u) * N, n0 + 12u, N, acc0_3 + bias3);
    }
    if (m0 + 1u < M) {
        store4(c_off + (m0 + 1u) * N, n0 + 0u, N, acc1_0 + bias0);
        store4(c_off + (m0 + 1u) * N, n0 + 4u, N, acc1_1 + bias1);
        store4(c_off + (m0 + 1u) * N, n0 + 8u, N, acc1_2 + bias2);
        store4(c_off + (m0 + 1u) * N, n0 + 12u, N, acc1_3 + bias3);
    }
    if (m0 + 2u < M) {
        store4(c_off + (m0 + 2u) * N, n0 + 0u, N, acc2_0 + bias0);
        store4(c_off + (m0 + 2u) * N, n0 + 4u, N, acc2_1 + bias1);
        store4(c_off + (m0 + 2u) * N, n0 + 8u, N, acc2_2 + bias2);
        store4(c_off + (m0 + 2u) * N, n0 + 12u, N, acc2_3 + bias3);
    }
    if (m0 + 3u < M) {
        store4(c_off + (m0 + 3u) * N, n0 + 0u, N, acc3_0 + bias0);
        store4(c_off + (m0 + 3u) * N, n0 + 4u, N, acc3_1 + bias1);
        store4(c_off + (m0 + 3u) * N, n0 + 8u, N, acc3_2 + bias2);
        store4(c_off + (m0 + 3u) * N, n0 + 12u, N, acc3_3 + bias3);
    }
    if (m0 + 4u < M) {
        store4(c_off + (m0 + 4u) * N, n0 + 0u, N, acc4_0 + bias0);
        store4(c_off + (m0 + 4u) * N, n0 + 4u, N, acc4_1 + bias1);
        store4(c_off + (m0 + 4u) * N, n0 + 8u, N, acc4_2 + bias2);
        store4(c_off + (m0 + 4u) * N, n0 + 12u, N, acc4_3 + bias3);
    }
    if (m0 + 5u < M) {
        store4(c_off + (m0 + 5u) * N, n0 + 0u, N, acc5_0 + bias0);
        store4(c_off + (m0 + 5u) * N, n0 + 4u, N, acc5_1 + bias1);
        store4(c_off + (m0 + 5u) * N, n0 + 8u, N, acc5_2 + bias2);
        store4(c_off + (m0 + 5u) * N, n0 + 12u, N, acc5_3 + bias3);
    }
    if (m0 + 6u < M) {
        store4(c_off + (m0 + 6u) * N, n0 + 0u, N, acc6_0 + bias0);
        store4(c_off + (m0 + 6u) * N, n0 + 4u, N, acc6_1 + bias1);
        store4(c_off + (m0 + 6u) * N, n0 + 8u, N, acc6_2 + bias2);
        store4(c_off + (m0 + 6u) * N, n0 + 12u, N, acc6_3 + bias3);
    }
    if (m0 + 7u < M) {
        store4(c_off + (m0 + 7u) * N, n0 + 0u, N, acc7_0 + bias0);
        store4(c_off + (m0 + 7u) * N, n0 + 4u, N, acc7_1 + bias1);
        store4(c_off + (m0 + 7u) * N, n0 + 8u, N, acc7_2 + bias2);
        store4(c_off + (m0 + 7u) * N, n0 + 12u, N, acc7_3 + bias3);
    }

}
