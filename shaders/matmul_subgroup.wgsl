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
@group(0) @binding(1) var<storage, read> A: array<{{A_ELEM}}>;
@group(0) @binding(2) var<storage, read> B: array<{{B_ELEM}}>;
@group(0) @binding(3) var<storage, read> BIAS: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;

// Scalar loads of A and B by element index.
fn la(i: u32) -> f32 { {{LA}} }
fn lb(i: u32) -> f32 { {{LB}} }

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
{{BIAS}}

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
    let m0 = ((wg.x * sm + sg % sm) * 8u + lane) * {{TM}}u;
    let n0 = (wg.y * (8u / sm) + sg / sm) * {{TN}}u;
{{SETUP}}
{{ACC}}
    let k4 = K / 4u;
    for (var kc = 0u; kc < k4; kc++) {
        let k = kc * 4u;
{{BODY}}
    }
    for (var k = k4 * 4u; k < K; k++) {
{{TAIL}}
    }
{{STORE}}
}
