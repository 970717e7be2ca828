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
@group(0) @binding(1) var<storage, read> A: array<{{A_ELEM}}>;
@group(0) @binding(2) var<storage, read> B: array<{{B_ELEM}}>;
@group(0) @binding(3) var<storage, read> BIAS: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;

// Scalar loads of A and B by element index (for the k tail).
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
