// Subgroup-blocked batched matmul C = op(A)·op(B) (+ bias), the variant for CPU adapters whose
// subgroups are their SIMD lanes (lavapipe: 8 lanes of a 256-bit vector). There every storage
// load runs as a loop over the lanes, while FMAs are cheap and a subgroupBroadcast is a register
// move. So one subgroup computes a (8·TM)×TN block of C: each lane owns TM rows and loads its own
// A values, and the TN columns of B, which all 8 lanes need, are loaded once, one share per
// lane, and passed around with subgroupBroadcast. Loads per FMA drop about 3× against the
// register-blocked kernel (docs/experiments.md, "Kernels on lavapipe").
// This file is a template: engine/src/ops/matmul_subgroup.rs fills the {{...}} slots with the
// fully unrolled loads, broadcasts and FMAs of one variant (A/B transposed or not, vec4 or scalar).
//
// Element (m, k) of op(A) lives at a_off + m·K + k, or a_off + k·M + m when A is transposed;
// element (k, n) of op(B) at b_off + k·N + n, or b_off + n·K + k when B is transposed.
// No early return: every lane must reach every broadcast. Lanes past the edge load clamped
// indices and store nothing.
// The workgroup's 8 subgroups form an SM × (8/SM) grid of blocks (SM ∈ {1, 2, 4, 8}, chosen by the
// host so that few blocks fall past the edge of C).

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
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> BIAS: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;

// Scalar loads of A and B by element index.
fn la(i: u32) -> f32 { return A[i]; }
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

// 64 invocations = 8 subgroups of 8 lanes; subgroup s of workgroup (x, y) owns rows
// ((x·SM + s % SM)·8 + lane)·TM .. +TM and columns (y·(8/SM) + s / SM)·TN .. +TN.
@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let M = params.m;
    let N = params.n;
    let K = params.k;
    let a_off = params.a_batch_stride * wg.z;
    let b_off = params.b_batch_stride * wg.z;
    let c_off = params.c_batch_stride * wg.z;
    let sm = params.sm;
    let m0 = ((wg.x * sm + sg % sm) * 8u + lane) * 8u;
    let n0 = (wg.y * (8u / sm) + sg / sm) * 32u;
        let am0 = a_off + min(m0 + 0u, M - 1u) * K;
        let am1 = a_off + min(m0 + 1u, M - 1u) * K;
        let am2 = a_off + min(m0 + 2u, M - 1u) * K;
        let am3 = a_off + min(m0 + 3u, M - 1u) * K;
        let am4 = a_off + min(m0 + 4u, M - 1u) * K;
        let am5 = a_off + min(m0 + 5u, M - 1u) * K;
        let am6 = a_off + min(m0 + 6u, M - 1u) * K;
        let am7 = a_off + min(m0 + 7u, M - 1u) * K;
        let bn0 = b_off + min(n0 + 4u * lane + 0u, N - 1u) * K;
        let bn1 = b_off + min(n0 + 4u * lane + 1u, N - 1u) * K;
        let bn2 = b_off + min(n0 + 4u * lane + 2u, N - 1u) * K;
        let bn3 = b_off + min(n0 + 4u * lane + 3u, N - 1u) * K;

    var c0_0 = vec4<f32>(0.0);
    var c0_1 = vec4<f32>(0.0);
    var c0_2 = vec4<f32>(0.0);
    var c0_3 = vec4<f32>(0.0);
    var c0_4 = vec4<f32>(0.0);
    var c0_5 = vec4<f32>(0.0);
    var c0_6 = vec4<f32>(0.0);
    var c0_7 = vec4<f32>(0.0);
    var c1_0 = vec4<f32>(0.0);
    var c1_1 = vec4<f32>(0.0);
    var c1_2 = vec4<f32>(0.0);
    var c1_3 = vec4<f32>(0.0);
    var c1_4 = vec4<f32>(0.0);
    var c1_5 = vec4<f32>(0.0);
    var c1_6 = vec4<f32>(0.0);
    var c1_7 = vec4<f32>(0.0);
    var c2_0 = vec4<f32>(0.0);
    var c2_1 = vec4<f32>(0.0);
    var c2_2 = vec4<f32>(0.0);
    var c2_3 = vec4<f32>(0.0);
    var c2_4 = vec4<f32>(0.0);
    var c2_5 = vec4<f32>(0.0);
    var c2_6 = vec4<f32>(0.0);
    var c2_7 = vec4<f32>(0.0);
    var c3_0 = vec4<f32>(0.0);
    var c3_1 = vec4<f32>(0.0);
    var c3_2 = vec4<f32>(0.0);
    var c3_3 = vec4<f32>(0.0);
    var c3_4 = vec4<f32>(0.0);
    var c3_5 = vec4<f32>(0.0);
    var c3_6 = vec4<f32>(0.0);
    var c3_7 = vec4<f32>(0.0);
    var c4_0 = vec4<f32>(0.0);
    var c4_1 = vec4<f32>(0.0);
    var c4_2 = vec4<f32>(0.0);
    var c4_3 = vec4<f32>(0.0);
    var c4_4 = vec4<f32>(0.0);
    var c4_5 = vec4<f32>(0.0);
    var c4_6 = vec4<f32>(0.0);
    var c4_7 = vec4<f32>(0.0);
    var c5_0 = vec4<f32>(0.0);
    var c5_1 = vec4<f32>(0.0);
    var c5_2 = vec4<f32>(0.0);
    var c5_3 = vec4<f32>(0.0);
    var c5_4 = vec4<f32>(0.0);
    var c5_5 = vec4<f32>(0.0);
    var c5_6 = vec4<f32>(0.0);
    var c5_7 = vec4<f32>(0.0);
    var c6_0 = vec4<f32>(0.0);
    var c6_1 = vec4<f32>(0.0);
    var c6_2 = vec4<f32>(0.0);
    var c6_3 = vec4<f32>(0.0);
    var c6_4 = vec4<f32>(0.0);
    var c6_5 = vec4<f32>(0.0);
    var c6_6 = vec4<f32>(0.0);
    var c6_7 = vec4<f32>(0.0);
    var c7_0 = vec4<f32>(0.0);
    var c7_1 = vec4<f32>(0.0);
    var c7_2 = vec4<f32>(0.0);
    var c7_3 = vec4<f32>(0.0);
    var c7_4 = vec4<f32>(0.0);
    var c7_5 = vec4<f32>(0.0);
    var c7_6 = vec4<f32>(0.0);
    var c7_7 = vec4<f32>(0.0);

    let k4 = K / 4u;
    for (var kc = 0u; kc < k4; kc++) {
        let k = kc * 4u;
        let a0 = vec4<f32>(A[am0 + k], A[am0 + k + 1u], A[am0 + k + 2u], A[am0 + k + 3u]);
        let a1 = vec4<f32>(A[am1 + k], A[am1 + k + 1u], A[am1 + k + 2u], A[am1 + k + 3u]);
        let a2 = vec4<f32>(A[am2 + k], A[am2 + k + 1u], A[am2 + k + 2u], A[am2 + k + 3u]);
        let a3 = vec4<f32>(A[am3 + k], A[am3 + k + 1u], A[am3 + k + 2u], A[am3 + k + 3u]);
        let a4 = vec4<f32>(A[am4 + k], A[am4 + k + 1u], A[am4 + k + 2u], A[am4 + k + 3u]);
        let a5 = vec4<f32>(A[am5 + k], A[am5 + k + 1u], A[am5 + k + 2u], A[am5 + k + 3u]);
        let a6 = vec4<f32>(A[am6 + k], A[am6 + k + 1u], A[am6 + k + 2u], A[am6 + k + 3u]);
        let a7 = vec4<f32>(A[am7 + k], A[am7 + k + 1u], A[am7 + k + 2u], A[am7 + k + 3u]);
        let bt0 = B[bn0 / 4u + kc];
        let bt1 = B[bn1 / 4u + kc];
        let bt2 = B[bn2 / 4u + kc];
        let bt3 = B[bn3 / 4u + kc];
        let bl0 = vec4<f32>(bt0.x, bt1.x, bt2.x, bt3.x);
        let bl1 = vec4<f32>(bt0.y, bt1.y, bt2.y, bt3.y);
        let bl2 = vec4<f32>(bt0.z, bt1.z, bt2.z, bt3.z);
        let bl3 = vec4<f32>(bt0.w, bt1.w, bt2.w, bt3.w);
        let b0_0 = subgroupBroadcast(bl0, 0u);
        let b0_1 = subgroupBroadcast(bl1, 0u);
        let b0_2 = subgroupBroadcast(bl2, 0u);
        let b0_3 = subgroupBroadcast(bl3, 0u);
        c0_0 = fma(vec4<f32>(a0.x), b0_0, c0_0);
        c0_0 = fma(vec4<f32>(a0.y), b0_1, c0_0);
        c0_0 = fma(vec4<f32>(a0.z), b0_2, c0_0);
        c0_0 = fma(vec4<f32>(a0.w), b0_3, c0_0);
        c1_0 = fma(vec4<f32>(a1.x), b0_0, c1_0);
        c1_0 = fma(vec4<f32>(a1.y), b0_1, c1_0);
        c1_0 = fma(vec4<f32>(a1.z), b0_2, c1_0);
        c1_0 = fma(vec4<f32>(a1.w), b0_3, c1_0);
        c2_0 = fma(vec4<f32>(a2.x), b0_0, c2_0);
        c2_0 = fma(vec4<f32>(a2.y), b0_1, c2_0);
        c2_0 = fma(vec4<f32>(a2.z), b0_2, c2_0);
        c2_0 = fma(vec4<f32>(a2.w), b0_3, c2_0);
        c3_0 = fma(vec4<f32>(a3.x), b0_0, c3_0);
        c3_0 = fma(vec4<f32>(a3.y), b0_1, c3_0);
        c3_0 = fma(vec4<f32>(a3.z), b0_2, c3_0);
        c3_0 = fma(vec4<f32>(a3.w), b0_3, c3_0);
        c4_0 = fma(vec4<f32>(a4.x), b0_0, c4_0);
        c4_0 = fma(vec4<f32>(a4.y), b0_1, c4_0);
        c4_0 = fma(vec4<f32>(a4.z), b0_2, c4_0);
        c4_0 = fma(vec4<f32>(a4.w), b0_3, c4_0);
        c5_0 = fma(vec4<f32>(a5.x), b0_0, c5_0);
        c5_0 = fma(vec4<f32>(a5.y), b0_1, c5_0);
        c5_0 = fma(vec4<f32>(a5.z), b0_2, c5_0);
        c5_0 = fma(vec4<f32>(a5.w), b0_3, c5_0);
        c6_0 = fma(vec4<f32>(a6.x), b0_0, c6_0);
        c6_0 = fma(vec4<f32>(a6.y), b0_1, c6_0);
        c6_0 = fma(vec4<f32>(a6.z), b0_2, c6_0);
        c6_0 = fma(vec4<f32>(a6.w), b0_3, c6_0);
        c7_0 = fma(vec4<f32>(a7.x), b0_0, c7_0);
        c7_0 = fma(vec4<f32>(a7.y), b0_1, c7_0);
        c7_0 = fma(vec4<f32>(a7.z), b0_2, c7_0);
        c7_0 = fma(vec4<f32>(a7.w), b0_3, c7_0);
        let b1_0 = subgroupBroadcast(bl0, 1u);
        let b1_1 = subgroupBroadcast(bl1, 1u);
        let b1_2 = subgroupBroadcast(bl2, 1u);
        let b1_3 = subgroupBroadcast(bl3, 1u);
        c0_1 = fma(vec4<f32>(a0.x), b1_0, c0_1);
        c0_1 = fma(vec4<f32>(a0.y), b1_1, c0_1);
        c0_1 = fma(vec4<f32>(a0.z), b1_2, c0_1);
        c0_1 = fma(vec4<f32>(a0.w), b1_3, c0_1);
        c1_1 = fma(vec4<f32>(a1.x), b1_0, c1_1);
        c1_1 = fma(vec4<f32>(a1.y), b1_1, c1_1);
        c1_1 = fma(vec4<f32>(a1.z), b1_2, c1_1);
        c1_1 = fma(vec4<f32>(a1.w), b1_3, c1_1);
        c2_1 = fma(vec4<f32>(a2.x), b1_0, c2_1);
        c2_1 = fma(vec4<f32>(a2.y), b1_1, c2_1);
        c2_1 = fma(vec4<f32>(a2.z), b1_2, c2_1);
        c2_1 = fma(vec4<f32>(a2.w), b1_3, c2_1);
        c3_1 = fma(vec4<f32>(a3.x), b1_0, c3_1);
        c3_1 = fma(vec4<f32>(a3.y), b1_1, c3_1);
        c3_1 = fma(vec4<f32>(a3.z), b1_2, c3_1);
        c3_1 = fma(vec4<f32>(a3.w), b1_3, c3_1);
        c4_1 = fma(vec4<f32>(a4.x), b1_0, c4_1);
        c4_1 = fma(vec4<f32>(a4.y), b1_1, c4_1);
        c4_1 = fma(vec4<f32>(a4.z), b1_2, c4_1);
        c4_1 = fma(vec4<f32>(a4.w), b1_3, c4_1);
        c5_1 = fma(vec4<f32>(a5.x), b1_0, c5_1);
        c5_1 = fma(vec4<f32>(a5.y), b1_1, c5_1);
        c5_1 = fma(vec4<f32>(a5.z), b1_2, c5_1);
        c5_1 = fma(vec4<f32>(a5.w), b1_3, c5_1);
        c6_1 = fma(vec4<f32>(a6.x), b1_0, c6_1);
        c6_1 = fma(vec4<f32>(a6.y), b1_1, c6_1);
        c6_1 = fma(vec4<f32>(a6.z), b1_2, c6_1);
        c6_1 = fma(vec4<f32>(a6.w), b1_3, c6_1);
        c7_1 = fma(vec4<f32>(a7.x), b1_0, c7_1);
        c7_1 = fma(vec4<f32>(a7.y), b1_1, c7_1);
        c7_1 = fma(vec4<f32>(a7.z), b1_2, c7_1);
        c7_1 = fma(vec4<f32>(a7.w), b1_3, c7_1);
        let b2_0 = subgroupBroadcast(bl0, 2u);
        let b2_1 = subgroupBroadcast(bl1, 2u);
        let b2_2 = subgroupBroadcast(bl2, 2u);
        let b2_3 = subgroupBroadcast(bl3, 2u);
        c0_2 = fma(vec4<f32>(a0.x), b2_0, c0_2);
        c0_2 = fma(vec4<f32>(a0.y), b2_1, c0_2);
        c0_2 = fma(vec4<f32>(a0.z), b2_2, c0_2);
        c0_2 = fma(vec4<f32>(a0.w), b2_3, c0_2);
        c1_2 = fma(vec4<f32>(a1.x), b2_0, c1_2);
        c1_2 = fma(vec4<f32>(a1.y), b2_1, c1_2);
        c1_2 = fma(vec4<f32>(a1.z), b2_2, c1_2);
        c1_2 = fma(vec4<f32>(a1.w), b2_3, c1_2);
        c2_2 = fma(vec4<f32>(a2.x), b2_0, c2_2);
        c2_2 = fma(vec4<f32>(a2.y), b2_1, c2_2);
        c2_2 = fma(vec4<f32>(a2.z), b2_2, c2_2);
        c2_2 = fma(vec4<f32>(a2.w), b2_3, c2_2);
        c3_2 = fma(vec4<f32>(a3.x), b2_0, c3_2);
        c3_2 = fma(vec4<f32>(a3.y), b2_1, c3_2);
        c3_2 = fma(vec4<f32>(a3.z), b2_2, c3_2);
        c3_2 = fma(vec4<f32>(a3.w), b2_3, c3_2);
        c4_2 = fma(vec4<f32>(a4.x), b2_0, c4_2);
        c4_2 = fma(vec4<f32>(a4.y), b2_1, c4_2);
        c4_2 = fma(vec4<f32>(a4.z), b2_2, c4_2);
        c4_2 = fma(vec4<f32>(a4.w), b2_3, c4_2);
        c5_2 = fma(vec4<f32>(a5.x), b2_0, c5_2);
        c5_2 = fma(vec4<f32>(a5.y), b2_1, c5_2);
        c5_2 = fma(vec4<f32>(a5.z), b2_2, c5_2);
        c5_2 = fma(vec4<f32>(a5.w), b2_3, c5_2);
        c6_2 = fma(vec4<f32>(a6.x), b2_0, c6_2);
        c6_2 = fma(vec4<f32>(a6.y), b2_1, c6_2);
        c6_2 = fma(vec4<f32>(a6.z), b2_2, c6_2);
        c6_2 = fma(vec4<f32>(a6.w), b2_3, c6_2);
        c7_2 = fma(vec4<f32>(a7.x), b2_0, c7_2);
        c7_2 = fma(vec4<f32>(a7.y), b2_1, c7_2);
        c7_2 = fma(vec4<f32>(a7.z), b2_2, c7_2);
        c7_2 = fma(vec4<f32>(a7.w), b2_3, c7_2);
        let b3_0 = subgroupBroadcast(bl0, 3u);
        let b3_1 = subgroupBroadcast(bl1, 3u);
        let b3_2 = subgroupBroadcast(bl2, 3u);
        let b3_3 = subgroupBroadcast(bl3, 3u);
        c0_3 = fma(vec4<f32>(a0.x), b3_0, c0_3);
        c0_3 = fma(vec4<f32>(a0.y), b3_1, c0_3);
        c0_3 = fma(vec4<f32>(a0.z), b3_2, c0_3);
        c0_3 = fma(vec4<f32>(a0.w), b3_3, c0_3);
        c1_3 = fma(vec4<f32>(a1.x), b3_0, c1_3);
        c1_3 = fma(vec4<f32>(a1.y), b3_1, c1_3);
        c1_3 = fma(vec4<f32>(a1.z), b3_2, c1_3);
        c1_3 = fma(vec4<f32>(a1.w), b3_3, c1_3);
        c2_3 = fma(vec4<f32>(a2.x), b3_0, c2_3);
        c2_3 = fma(vec4<f32>(a2.y), b3_1, c2_3);
        c2_3 = fma(vec4<f32>(a2.z), b3_2, c2_3);
        c2_3 = fma(vec4<f32>(a2.w), b3_3, c2_3);
        c3_3 = fma(vec4<f32>(a3.x), b3_0, c3_3);
        c3_3 = fma(vec4<f32>(a3.y), b3_1, c3_3);
        c3_3 = fma(vec4<f32>(a3.z), b3_2, c3_3);
        c3_3 = fma(vec4<f32>(a3.w), b3_3, c3_3);
        c4_3 = fma(vec4<f32>(a4.x), b3_0, c4_3);
        c4_3 = fma(vec4<f32>(a4.y), b3_1, c4_3);
        c4_3 = fma(vec4<f32>(a4.z), b3_2, c4_3);
        c4_3 = fma(vec4<f32>(a4.w), b3_3, c4_3);
        c5_3 = fma(vec4<f32>(a5.x), b3_0, c5_3);
        c5_3 = fma(vec4<f32>(a5.y), b3_1, c5_3);
        c5_3 = fma(vec4<f32>(a5.z), b3_2, c5_3);
        c5_3 = fma(vec4<f32>(a5.w), b3_3, c5_3);
        c6_3 = fma(vec4<f32>(a6.x), b3_0, c6_3);
        c6_3 = fma(vec4<f32>(a6.y), b3_1, c6_3);
        c6_3 = fma(vec4<f32>(a6.z), b3_2, c6_3);
        c6_3 = fma(vec4<f32>(a6.w), b3_3, c6_3);
        c7_3 = fma(vec4<f32>(a7.x), b3_0, c7_3);
        c7_3 = fma(vec4<f32>(a7.y), b3_1, c7_3);
        c7_3 = fma(vec4<f32>(a7.z), b3_2, c7_3);
        c7_3 = fma(vec4<f32>(a7.w), b3_3, c7_3);
        let b4_0 = subgroupBroadcast(bl0, 4u);
        let b4_1 = subgroupBroadcast(bl1, 4u);
        let b4_2 = subgroupBroadcast(bl2, 4u);
        let b4_3 = subgroupBroadcast(bl3, 4u);
        c0_4 = fma(vec4<f32>(a0.x), b4_0, c0_4);
        c0_4 = fma(vec4<f32>(a0.y), b4_1, c0_4);
        c0_4 = fma(vec4<f32>(a0.z), b4_2, c0_4);
        c0_4 = fma(vec4<f32>(a0.w), b4_3, c0_4);
        c1_4 = fma(vec4<f32>(a1.x), b4_0, c1_4);
        c1_4 = fma(vec4<f32>(a1.y), b4_1, c1_4);
        c1_4 = fma(vec4<f32>(a1.z), b4_2, c1_4);
        c1_4 = fma(vec4<f32>(a1.w), b4_3, c1_4);
        c2_4 = fma(vec4<f32>(a2.x), b4_0, c2_4);
        c2_4 = fma(vec4<f32>(a2.y), b4_1, c2_4);
        c2_4 = fma(vec4<f32>(a2.z), b4_2, c2_4);
        c2_4 = fma(vec4<f32>(a2.w), b4_3, c2_4);
        c3_4 = fma(vec4<f32>(a3.x), b4_0, c3_4);
        c3_4 = fma(vec4<f32>(a3.y), b4_1, c3_4);
        c3_4 = fma(vec4<f32>(a3.z), b4_2, c3_4);
        c3_4 = fma(vec4<f32>(a3.w), b4_3, c3_4);
        c4_4 = fma(vec4<f32>(a4.x), b4_0, c4_4);
        c4_4 = fma(vec4<f32>(a4.y), b4_1, c4_4);
        c4_4 = fma(vec4<f32>(a4.z), b4_2, c4_4);
        c4_4 = fma(vec4<f32>(a4.w), b4_3, c4_4);
        c5_4 = fma(vec4<f32>(a5.x), b4_0, c5_4);
        c5_4 = fma(vec4<f32>(a5.y), b4_1, c5_4);
        c5_4 = fma(vec4<f32>(a5.z), b4_2, c5_4);
        c5_4 = fma(vec4<f32>(a5.w), b4_3, c5_4);
        c6_4 = fma(vec4<f32>(a6.x), b4_0, c6_4);
        c6_4 = fma(vec4<f32>(a6.y), b4_1, c6_4);
        c6_4 = fma(vec4<f32>(a6.z), b4_2, c6_4);
        c6_4 = fma(vec4<f32>(a6.w), b4_3, c6_4);
        c7_4 = fma(vec4<f32>(a7.x), b4_0, c7_4);
        c7_4 = fma(vec4<f32>(a7.y), b4_1, c7_4);
        c7_4 = fma(vec4<f32>(a7.z), b4_2, c7_4);
        c7_4 = fma(vec4<f32>(a7.w), b4_3, c7_4);
        let b5_0 = subgroupBroadcast(bl0, 5u);
        let b5_1 = subgroupBroadcast(bl1, 5u);
        let b5_2 = subgroupBroadcast(bl2, 5u);
        let b5_3 = subgroupBroadcast(bl3, 5u);
        c0_5 = fma(vec4<f32>(a0.x), b5_0, c0_5);
        c0_5 = fma(vec4<f32>(a0.y), b5_1, c0_5);
        c0_5 = fma(vec4<f32>(a0.z), b5_2, c0_5);
        c0_5 = fma(vec4<f32>(a0.w), b5_3, c0_5);
        c1_5 = fma(vec4<f32>(a1.x), b5_0, c1_5);
        c1_5 = fma(vec4<f32>(a1.y), b5_1, c1_5);
        c1_5 = fma(vec4<f32>(a1.z), b5_2, c1_5);
        c1_5 = fma(vec4<f32>(a1.w), b5_3, c1_5);
        c2_5 = fma(vec4<f32>(a2.x), b5_0, c2_5);
        c2_5 = fma(vec4<f32>(a2.y), b5_1, c2_5);
        c2_5 = fma(vec4<f32>(a2.z), b5_2, c2_5);
        c2_5 = fma(vec4<f32>(a2.w), b5_3, c2_5);
        c3_5 = fma(vec4<f32>(a3.x), b5_0, c3_5);
        c3_5 = fma(vec4<f32>(a3.y), b5_1, c3_5);
        c3_5 = fma(vec4<f32>(a3.z), b5_2, c3_5);
        c3_5 = fma(vec4<f32>(a3.w), b5_3, c3_5);
        c4_5 = fma(vec4<f32>(a4.x), b5_0, c4_5);
        c4_5 = fma(vec4<f32>(a4.y), b5_1, c4_5);
        c4_5 = fma(vec4<f32>(a4.z), b5_2, c4_5);
        c4_5 = fma(vec4<f32>(a4.w), b5_3, c4_5);
        c5_5 = fma(vec4<f32>(a5.x), b5_0, c5_5);
        c5_5 = fma(vec4<f32>(a5.y), b5_1, c5_5);
        c5_5 = fma(vec4<f32>(a5.z), b5_2, c5_5);
        c5_5 = fma(vec4<f32>(a5.w), b5_3, c5_5);
        c6_5 = fma(vec4<f32>(a6.x), b5_0, c6_5);
        c6_5 = fma(vec4<f32>(a6.y), b5_1, c6_5);
        c6_5 = fma(vec4<f32>(a6.z), b5_2, c6_5);
        c6_5 = fma(vec4<f32>(a6.w), b5_3, c6_5);
        c7_5 = fma(vec4<f32>(a7.x), b5_0, c7_5);
        c7_5 = fma(vec4<f32>(a7.y), b5_1, c7_5);
        c7_5 = fma(vec4<f32>(a7.z), b5_2, c7_5);
        c7_5 = fma(vec4<f32>(a7.w), b5_3, c7_5);
        let b6_0 = subgroupBroadcast(bl0, 6u);
        let b6_1 = subgroupBroadcast(bl1, 6u);
        let b6_2 = subgroupBroadcast(bl2, 6u);
        let b6_3 = subgroupBroadcast(bl3, 6u);
        c0_6 = fma(vec4<f32>(a0.x), b6_0, c0_6);
        c0_6 = fma(vec4<f32>(a0.y), b6_1, c0_6);
        c0_6 = fma(vec4<f32>(a0.z), b6_2, c0_6);
        c0_6 = fma(vec4<f32>(a0.w), b6_3, c0_6);
        c1_6 = fma(vec4<f32>(a1.x), b6_0, c1_6);
        c1_6 = fma(vec4<f32>(a1.y), b6_1, c1_6);
        c1_6 = fma(vec4<f32>(a1.z), b6_2, c1_6);
        c1_6 = fma(vec4<f32>(a1.w), b6_3, c1_6);
        c2_6 = fma(vec4<f32>(a2.x), b6_0, c2_6);
        c2_6 = fma(vec4<f32>(a2.y), b6_1, c2_6);
        c2_6 = fma(vec4<f32>(a2.z), b6_2, c2_6);
        c2_6 = fma(vec4<f32>(a2.w), b6_3, c2_6);
        c3_6 = fma(vec4<f32>(a3.x), b6_0, c3_6);
        c3_6 = fma(vec4<f32>(a3.y), b6_1, c3_6);
        c3_6 = fma(vec4<f32>(a3.z), b6_2, c3_6);
        c3_6 = fma(vec4<f32>(a3.w), b6_3, c3_6);
        c4_6 = fma(vec4<f32>(a4.x), b6_0, c4_6);
        c4_6 = fma(vec4<f32>(a4.y), b6_1, c4_6);
        c4_6 = fma(vec4<f32>(a4.z), b6_2, c4_6);
        c4_6 = fma(vec4<f32>(a4.w), b6_3, c4_6);
        c5_6 = fma(vec4<f32>(a5.x), b6_0, c5_6);
        c5_6 = fma(vec4<f32>(a5.y), b6_1, c5_6);
        c5_6 = fma(vec4<f32>(a5.z), b6_2, c5_6);
        c5_6 = fma(vec4<f32>(a5.w), b6_3, c5_6);
        c6_6 = fma(vec4<f32>(a6.x), b6_0, c6_6);
        c6_6 = fma(vec4<f32>(a6.y), b6_1, c6_6);
        c6_6 = fma(vec4<f32>(a6.z), b6_2, c6_6);
        c6_6 = fma(vec4<f32>(a6.w), b6_3, c6_6);
        c7_6 = fma(vec4<f32>(a7.x), b6_0, c7_6);
        c7_6 = fma(vec4<f32>(a7.y), b6_1, c7_6);
        c7_6 = fma(vec4<f32>(a7.z), b6_2, c7_6);
        c7_6 = fma(vec4<f32>(a7.w), b6_3, c7_6);
        let b7_0 = subgroupBroadcast(bl0, 7u);
        let b7_1 = subgroupBroadcast(bl1, 7u);
        let b7_2 = subgroupBroadcast(bl2, 7u);
        let b7_3 = subgroupBroadcast(bl3, 7u);
        c0_7 = fma(vec4<f32>(a0.x), b7_0, c0_7);
        c0_7 = fma(vec4<f32>(a0.y), b7_1, c0_7);
        c0_7 = fma(vec4<f32>(a0.z), b7_2, c0_7);
        c0_7 = fma(vec4<f32>(a0.w), b7_3, c0_7);
        c1_7 = fma(vec4<f32>(a1.x), b7_0, c1_7);
        c1_7 = fma(vec4<f32>(a1.y), b7_1, c1_7);
        c1_7 = fma(vec4<f32>(a1.z), b7_2, c1_7);
        c1_7 = fma(vec4<f32>(a1.w), b7_3, c1_7);
        c2_7 = fma(vec4<f32>(a2.x), b7_0, c2_7);
        c2_7 = fma(vec4<f32>(a2.y), b7_1, c2_7);
        c2_7 = fma(vec4<f32>(a2.z), b7_2, c2_7);
        c2_7 = fma(vec4<f32>(a2.w), b7_3, c2_7);
        c3_7 = fma(vec4<f32>(a3.x), b7_0, c3_7);
        c3_7 = fma(vec4<f32>(a3.y), b7_1, c3_7);
        c3_7 = fma(vec4<f32>(a3.z), b7_2, c3_7);
        c3_7 = fma(vec4<f32>(a3.w), b7_3, c3_7);
        c4_7 = fma(vec4<f32>(a4.x), b7_0, c4_7);
        c4_7 = fma(vec4<f32>(a4.y), b7_1, c4_7);
        c4_7 = fma(vec4<f32>(a4.z), b7_2, c4_7);
        c4_7 = fma(vec4<f32>(a4.w), b7_3, c4_7);
        c5_7 = fma(vec4<f32>(a5.x), b7_0, c5_7);
        c5_7 = fma(vec4<f32>(a5.y), b7_1, c5_7);
        c5_7 = fma(vec4<f32>(a5.z), b7_2, c5_7);
        c5_7 = fma(vec4<f32>(a5.w), b7_3, c5_7);
        c6_7 = fma(vec4<f32>(a6.x), b7_0, c6_7);
        c6_7 = fma(vec4<f32>(a6.y), b7_1, c6_7);
        c6_7 = fma(vec4<f32>(a6.z), b7_2, c6_7);
        c6_7 = fma(vec4<f32>(a6.w), b7_3, c6_7);
        c7_7 = fma(vec4<f32>(a7.x), b7_0, c7_7);
        c7_7 = fma(vec4<f32>(a7.y), b7_1, c7_7);
        c7_7 = fma(vec4<f32>(a7.z), b7_2, c7_7);
        c7_7 = fma(vec4<f32>(a7.w), b7_3, c7_7);

    }
    for (var k = k4 * 4u; k < K; k++) {
        let s0 = la(am0 + k);
        let s1 = la(am1 + k);
        let s2 = la(am2 + k);
        let s3 = la(am3 + k);
        let s4 = la(am4 + k);
        let s5 = la(am5 + k);
        let s6 = la(am6 + k);
        let s7 = la(am7 + k);
        let bl = vec4<f32>(lb(bn0 + k), lb(bn1 + k), lb(bn2 + k), lb(bn3 + k));
        let b0 = subgroupBroadcast(bl, 0u);
        c0_0 = fma(vec4<f32>(s0), b0, c0_0);
        c1_0 = fma(vec4<f32>(s1), b0, c1_0);
        c2_0 = fma(vec4<f32>(s2), b0, c2_0);
        c3_0 = fma(vec4<f32>(s3), b0, c3_0);
        c4_0 = fma(vec4<f32>(s4), b0, c4_0);
        c5_0 = fma(vec4<f32>(s5), b0, c5_0);
        c6_0 = fma(vec4<f32>(s6), b0, c6_0);
        c7_0 = fma(vec4<f32>(s7), b0, c7_0);
        let b1 = subgroupBroadcast(bl, 1u);
        c0_1 = fma(vec4<f32>(s0), b1, c0_1);
        c1_1 = fma(vec4<f32>(s1), b1, c1_1);
        c2_1 = fma(vec4<f32>(s2), b1, c2_1);
        c3_1 = fma(vec4<f32>(s3), b1, c3_1);
        c4_1 = fma(vec4<f32>(s4), b1, c4_1);
        c5_1 = fma(vec4<f32>(s5), b1, c5_1);
        c6_1 = fma(vec4<f32>(s6), b1, c6_1);
        c7_1 = fma(vec4<f32>(s7), b1, c7_1);
        let b2 = subgroupBroadcast(bl, 2u);
        c0_2 = fma(vec4<f32>(s0), b2, c0_2);
        c1_2 = fma(vec4<f32>(s1), b2, c1_2);
        c2_2 = fma(vec4<f32>(s2), b2, c2_2);
        c3_2 = fma(vec4<f32>(s3), b2, c3_2);
        c4_2 = fma(vec4<f32>(s4), b2, c4_2);
        c5_2 = fma(vec4<f32>(s5), b2, c5_2);
        c6_2 = fma(vec4<f32>(s6), b2, c6_2);
        c7_2 = fma(vec4<f32>(s7), b2, c7_2);
        let b3 = subgroupBroadcast(bl, 3u);
        c0_3 = fma(vec4<f32>(s0), b3, c0_3);
        c1_3 = fma(vec4<f32>(s1), b3, c1_3);
        c2_3 = fma(vec4<f32>(s2), b3, c2_3);
        c3_3 = fma(vec4<f32>(s3), b3, c3_3);
        c4_3 = fma(vec4<f32>(s4), b3, c4_3);
        c5_3 = fma(vec4<f32>(s5), b3, c5_3);
        c6_3 = fma(vec4<f32>(s6), b3, c6_3);
        c7_3 = fma(vec4<f32>(s7), b3, c7_3);
        let b4 = subgroupBroadcast(bl, 4u);
        c0_4 = fma(vec4<f32>(s0), b4, c0_4);
        c1_4 = fma(vec4<f32>(s1), b4, c1_4);
        c2_4 = fma(vec4<f32>(s2), b4, c2_4);
        c3_4 = fma(vec4<f32>(s3), b4, c3_4);
        c4_4 = fma(vec4<f32>(s4), b4, c4_4);
        c5_4 = fma(vec4<f32>(s5), b4, c5_4);
        c6_4 = fma(vec4<f32>(s6), b4, c6_4);
        c7_4 = fma(vec4<f32>(s7), b4, c7_4);
        let b5 = subgroupBroadcast(bl, 5u);
        c0_5 = fma(vec4<f32>(s0), b5, c0_5);
        c1_5 = fma(vec4<f32>(s1), b5, c1_5);
        c2_5 = fma(vec4<f32>(s2), b5, c2_5);
        c3_5 = fma(vec4<f32>(s3), b5, c3_5);
        c4_5 = fma(vec4<f32>(s4), b5, c4_5);
        c5_5 = fma(vec4<f32>(s5), b5, c5_5);
        c6_5 = fma(vec4<f32>(s6), b5, c6_5);
        c7_5 = fma(vec4<f32>(s7), b5, c7_5);
        let b6 = subgroupBroadcast(bl, 6u);
        c0_6 = fma(vec4<f32>(s0), b6, c0_6);
        c1_6 = fma(vec4<f32>(s1), b6, c1_6);
        c2_6 = fma(vec4<f32>(s2), b6, c2_6);
        c3_6 = fma(vec4<f32>(s3), b6, c3_6);
        c4_6 = fma(vec4<f32>(s4), b6, c4_6);
        c5_6 = fma(vec4<f32>(s5), b6, c5_6);
        c6_6 = fma(vec4<f32>(s6), b6, c6_6);
        c7_6 = fma(vec4<f32>(s7), b6, c7_6);
        let b7 = subgroupBroadcast(bl, 7u);
        c0_7 = fma(vec4<f32>(s0), b7, c0_7);
        c1_7 = fma(vec4<f32>(s1), b7, c1_7);
        c2_7 = fma(vec4<f32>(s2), b7, c2_7);
        c3_7 = fma(vec4<f32>(s3), b7, c3_7);
        c4_7 = fma(vec4<f32>(s4), b7, c4_7);
        c5_7 = fma(vec4<f32>(s5), b7, c5_7);
        c6_7 = fma(vec4<f32>(s6), b7, c6_7);
        c7_7 = fma(vec4<f32>(s7), b7, c7_7);

    }
    let bias0 = vec4<f32>(lbias(n0 + 0u, N), lbias(n0 + 1u, N), lbias(n0 + 2u, N), lbias(n0 + 3u, N));
    let bias1 = vec4<f32>(lbias(n0 + 4u, N), lbias(n0 + 5u, N), lbias(n0 + 6u, N), lbias(n0 + 7u, N));
    let bias2 = vec4<f32>(lbias(n0 + 8u, N), lbias(n0 + 9u, N), lbias(n0 + 10u, N), lbias(n0 + 11u, N));
    let bias3 = vec4<f32>(lbias(n0 + 12u, N), lbias(n0 + 13u, N), lbias(n0 + 14u, N), lbias(n0 + 15u, N));
    let bias4 = vec4<f32>(lbias(n0 + 16u, N), lbias(n0 + 17u, N), lbias(n0 + 18u, N), lbias(n0 + 19u, N));
    let bias5 = vec4<f32>(lbias(n0 + 20u, N), lbias(n0 + 21u, N), lbias(n0 + 22u, N), lbias(n0 + 23u, N));
    let bias6 = vec4<f32>(lbias(n0 + 24u, N), lbias(n0 + 25u, N), lbias(n0 + 26u, N), lbias(n0 + 27u, N));
    let bias7 = vec4<f32>(lbias(n0 + 28u, N), lbias(n0 + 29u, N), lbias(n0 + 30u, N), lbias(n0 + 31u, N));
    if (m0 + 0u < M) {
        store4(c_off + (m0 + 0u) * N, n0 + 0u, N, c0_0 + bias0);
        store4(c_off + (m0 + 0u) * N, n0 + 4u, N, c0_1 + bias1);
        store4(c_off + (m0 + 0u) * N, n0 + 8u, N, c0_2 + bias2);
        store4(c_off + (m0 + 0u) * N, n0 + 12u, N, c0_3 + bias3);
        store4(c_off + (m0 + 0u) * N, n0 + 16u, N, c0_4 + bias4);
        store4(c_off + (m0 + 0u) * N, n0 + 20u, N, c0_5 + bias5);
        store4(c_off + (m0 + 0u) * N, n0 + 24u, N, c0_6 + bias6);
        store4(c_off + (m0 + 0u) * N, n0 + 28u, N, c0_7 + bias7);
    }
    if (m0 + 1u < M) {
        store4(c_off + (m0 + 1u) * N, n0 + 0u, N, c1_0 + bias0);
        store4(c_off + (m0 + 1u) * N, n0 + 4u, N, c1_1 + bias1);
        store4(c_off + (m0 + 1u) * N, n0 + 8u, N, c1_2 + bias2);
        store4(c_off + (m0 + 1u) * N, n0 + 12u, N, c1_3 + bias3);
        store4(c_off + (m0 + 1u) * N, n0 + 16u, N, c1_4 + bias4);
        store4(c_off + (m0 + 1u) * N, n0 + 20u, N, c1_5 + bias5);
        store4(c_off + (m0 + 1u) * N, n0 + 24u, N, c1_6 + bias6);
        store4(c_off + (m0 + 1u) * N, n0 + 28u, N, c1_7 + bias7);
    }
    if (m0 + 2u < M) {
        store4(c_off + (m0 + 2u) * N, n0 + 0u, N, c2_0 + bias0);
        store4(c_off + (m0 + 2u) * N, n0 + 4u, N, c2_1 + bias1);
        store4(c_off + (m0 + 2u) * N, n0 + 8u, N, c2_2 + bias2);
        store4(c_off + (m0 + 2u) * N, n0 + 12u, N, c2_3 + bias3);
        store4(c_off + (m0 + 2u) * N, n0 + 16u, N, c2_4 + bias4);
        store4(c_off + (m0 + 2u) * N, n0 + 20u, N, c2_5 + bias5);
        store4(c_off + (m0 + 2u) * N, n0 + 24u, N, c2_6 + bias6);
        store4(c_off + (m0 + 2u) * N, n0 + 28u, N, c2_7 + bias7);
    }
    if (m0 + 3u < M) {
        store4(c_off + (m0 + 3u) * N, n0 + 0u, N, c3_0 + bias0);
        store4(c_off + (m0 + 3u) * N, n0 + 4u, N, c3_1 + bias1);
        store4(c_off + (m0 + 3u) * N, n0 + 8u, N, c3_2 + bias2);
        store4(c_off + (m0 + 3u) * N, n0 + 12u, N, c3_3 + bias3);
        store4(c_off + (m0 + 3u) * N, n0 + 16u, N, c3_4 + bias4);
        store4(c_off + (m0 + 3u) * N, n0 + 20u, N, c3_5 + bias5);
        store4(c_off + (m0 + 3u) * N, n0 + 24u, N, c3_6 + bias6);
        store4(c_off + (m0 + 3u) * N, n0 + 28u, N, c3_7 + bias7);
    }
    if (m0 + 4u < M) {
        store4(c_off + (m0 + 4u) * N, n0 + 0u, N, c4_0 + bias0);
        store4(c_off + (m0 + 4u) * N, n0 + 4u, N, c4_1 + bias1);
        store4(c_off + (m0 + 4u) * N, n0 + 8u, N, c4_2 + bias2);
        store4(c_off + (m0 + 4u) * N, n0 + 12u, N, c4_3 + bias3);
        store4(c_off + (m0 + 4u) * N, n0 + 16u, N, c4_4 + bias4);
        store4(c_off + (m0 + 4u) * N, n0 + 20u, N, c4_5 + bias5);
        store4(c_off + (m0 + 4u) * N, n0 + 24u, N, c4_6 + bias6);
        store4(c_off + (m0 + 4u) * N, n0 + 28u, N, c4_7 + bias7);
    }
    if (m0 + 5u < M) {
        store4(c_off + (m0 + 5u) * N, n0 + 0u, N, c5_0 + bias0);
        store4(c_off + (m0 + 5u) * N, n0 + 4u, N, c5_1 + bias1);
        store4(c_off + (m0 + 5u) * N, n0 + 8u, N, c5_2 + bias2);
        store4(c_off + (m0 + 5u) * N, n0 + 12u, N, c5_3 + bias3);
        store4(c_off + (m0 + 5u) * N, n0 + 16u, N, c5_4 + bias4);
        store4(c_off + (m0 + 5u) * N, n0 + 20u, N, c5_5 + bias5);
        store4(c_off + (m0 + 5u) * N, n0 + 24u, N, c5_6 + bias6);
        store4(c_off + (m0 + 5u) * N, n0 + 28u, N, c5_7 + bias7);
    }
    if (m0 + 6u < M) {
        store4(c_off + (m0 + 6u) * N, n0 + 0u, N, c6_0 + bias0);
        store4(c_off + (m0 + 6u) * N, n0 + 4u, N, c6_1 + bias1);
        store4(c_off + (m0 + 6u) * N, n0 + 8u, N, c6_2 + bias2);
        store4(c_off + (m0 + 6u) * N, n0 + 12u, N, c6_3 + bias3);
        store4(c_off + (m0 + 6u) * N, n0 + 16u, N, c6_4 + bias4);
        store4(c_off + (m0 + 6u) * N, n0 + 20u, N, c6_5 + bias5);
        store4(c_off + (m0 + 6u) * N, n0 + 24u, N, c6_6 + bias6);
        store4(c_off + (m0 + 6u) * N, n0 + 28u, N, c6_7 + bias7);
    }
    if (m0 + 7u < M) {
        store4(c_off + (m0 + 7u) * N, n0 + 0u, N, c7_0 + bias0);
        store4(c_off + (m0 + 7u) * N, n0 + 4u, N, c7_1 + bias1);
        store4(c_off + (m0 + 7u) * N, n0 + 8u, N, c7_2 + bias2);
        store4(c_off + (m0 + 7u) * N, n0 + 12u, N, c7_3 + bias3);
        store4(c_off + (m0 + 7u) * N, n0 + 16u, N, c7_4 + bias4);
        store4(c_off + (m0 + 7u) * N, n0 + 20u, N, c7_5 + bias5);
        store4(c_off + (m0 + 7u) * N, n0 + 24u, N, c7_6 + bias6);
        store4(c_off + (m0 + 7u) * N, n0 + 28u, N, c7_7 + bias7);
    }

}
