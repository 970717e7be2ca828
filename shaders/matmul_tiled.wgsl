// Workgroup-memory tiled batched matmul, the variant for real GPUs: a 16×16 workgroup computes a
// 64×64 tile of C = op(A)·op(B) (+ bias), staging 16-deep slices of A and B in workgroup memory;
// each thread accumulates a 4×4 block. Out-of-range elements load as 0.
// This file is a template: engine/src/ops/matmul.rs fills the BIAS slot with BIAS[n] in the variant
// with a bias, else 0.0 (BIAS unbound); the layouts are the override constants TA and TB.

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
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read> BIAS: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;

// A is stored [K, M] (read as its transpose) / B is stored [N, K].
override TA: bool = false;
override TB: bool = false;

const T: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> As: array<f32, 1024>; // [TK][T]: As[k * T + m]
var<workgroup> Bs: array<f32, 1024>; // [TK][T]: Bs[k * T + n]

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let M = params.m;
    let N = params.n;
    let K = params.k;
    let a_off = params.a_batch_stride * wid.z;
    let b_off = params.b_batch_stride * wid.z;
    let c_off = params.c_batch_stride * wid.z;
    let m_base = wid.y * T;
    let n_base = wid.x * T;
    var acc: array<array<f32, 4>, 4>;
    for (var k0 = 0u; k0 < K; k0 += TK) {
        // 256 threads load 1024 elements of each tile; the index order follows memory order.
        for (var q = 0u; q < 4u; q++) {
            let e = lid + q * 256u;
            var kk: u32; var mm: u32;
            if (TA) { kk = e / T; mm = e % T; } else { mm = e / TK; kk = e % TK; }
            let m = m_base + mm;
            let k = k0 + kk;
            var va = 0.0;
            if (m < M && k < K) { va = A[a_off + select(m * K + k, k * M + m, TA)]; }
            As[kk * T + mm] = va;
            var nn: u32;
            if (TB) { nn = e / TK; kk = e % TK; } else { kk = e / T; nn = e % T; }
            let n = n_base + nn;
            let k2 = k0 + kk;
            var vb = 0.0;
            if (n < N && k2 < K) { vb = B[b_off + select(k2 * N + n, n * K + k2, TB)]; }
            Bs[kk * T + nn] = vb;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                a[i] = As[kk * T + l.y * 4u + i];
                b[i] = Bs[kk * T + l.x * 4u + i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i][j] = fma(a[i], b[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let m = m_base + l.y * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let n = n_base + l.x * 4u + j;
            if (m < M && n < N) {
                C[c_off + m * N + n] = acc[i][j] + {{BIAS}};
            }
        }
    }
}
