// Elementwise kernels: unary maps (forward and backward), broadcasting binary maps, fill.
// Threads are laid out over a 2D grid of 256-wide workgroups (x up to 65535), flattened by `gid`.


// The op of a unary or binary kernel, set per pipeline.
override OP: u32 = 0u;

// ---- numerically safe building blocks ----
fn tanh_safe(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - e) / (1.0 + e);
}
// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
fn erf(x: f32) -> f32 {
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
    return sign(x) * y;
}

// Unary ops: 0 neg, 1 exp, 2 log, 3 sqrt, 4 square, 5 relu, 6 silu, 7 gelu (erf form), 8 tanh,
// 9 sigmoid, 10 add scalar s, 11 mul scalar s, 12 pow scalar s.
fn unary_f(x: f32, s: f32) -> f32 {
    switch OP {
        case 0u: { return -x; }
        case 1u: { return exp(x); }
        case 2u: { return log(x); }
        case 3u: { return sqrt(x); }
        case 4u: { return x * x; }
        case 5u: { return max(x, 0.0); }
        case 6u: { return x * sigmoid(x); }
        case 7u: { return 0.5 * x * (1.0 + erf(x * 0.70710678118654752)); }
        case 8u: { return tanh_safe(x); }
        case 9u: { return sigmoid(x); }
        case 10u: { return x + s; }
        case 11u: { return x * s; }
        default: { return pow(x, s); }
    }
}

// d unary_f / dx, given the input x and the forward output y.
fn unary_df(x: f32, y: f32, s: f32) -> f32 {
    switch OP {
        case 0u: { return -1.0; }
        case 1u: { return y; }
        case 2u: { return 1.0 / x; }
        case 3u: { return 0.5 / y; }
        case 4u: { return 2.0 * x; }
        case 5u: { return select(0.0, 1.0, x > 0.0); }
        case 6u: { let g = sigmoid(x); return g * (1.0 + x * (1.0 - g)); }
        case 7u: { return 0.5 * (1.0 + erf(x * 0.70710678118654752)) + x * 0.3989422804014327 * exp(-0.5 * x * x); }
        case 8u: { return 1.0 - y * y; }
        case 9u: { return y * (1.0 - y); }
        case 10u: { return 1.0; }
        case 11u: { return s; }
        default: { return s * pow(x, s - 1.0); }
    }
}

// ---- unary: Y = f(X), s the op's scalar (e.g. the exponent of pow) ----
struct UnaryParams { n: u32, s: f32 }
@group(0) @binding(0) var<uniform> un: UnaryParams;
@group(0) @binding(1) var<storage, read> ux: array<f32>;
@group(0) @binding(2) var<storage, read_write> uy: array<f32>;

@compute @workgroup_size(256)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i >= un.n) { return; }
    uy[i] = unary_f(ux[i], un.s);
}

// ---- unary backward: DX = DY * f'(X, Y) ----
@group(0) @binding(1) var<storage, read> bx: array<f32>;
@group(0) @binding(2) var<storage, read> by: array<f32>;
@group(0) @binding(3) var<storage, read> bdy: array<f32>;
@group(0) @binding(4) var<storage, read_write> bdx: array<f32>;

@compute @workgroup_size(256)
fn unary_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i >= un.n) { return; }
    bdx[i] = bdy[i] * unary_df(bx[i], by[i], un.s);
}

// ---- binary with broadcasting: C = A op B ----
// ops: 0 add, 1 sub, 2 mul, 3 div, 4 max, 5 min, 6 eq, 7 gt (comparisons give 1.0 or 0.0).
// Shapes are right-aligned to rank 6 with leading 1s, four axes to a vec4 (axis k at
// [k >> 2][k & 3]); a broadcast axis has stride 0.
// BIDX (per pipeline) picks the indexing: 0 the general one (one division and one modulo per
// axis: integer division is scalar on CPU adapters, so it is the cost of this kernel); 1–3: A is
// the full output shape and B one contiguous block of its axes repeated, so B's index is
// (i / inner) % mid (1), i % mid (2) or i / inner (3); 4–6 the same with A and B swapped.
override BIDX: u32 = 0u;

struct BinaryParams {
    n: u32,          // output elements (quads for binary_vec4)
    same_shape: u32, // 1: A, B and C have one shape
    inner: u32,      // block operand's index: (i / inner) % mid (BIDX kinds above)
    mid: u32,
    dims: array<vec4<u32>, 2>,
    a_strides: array<vec4<u32>, 2>,
    b_strides: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<uniform> bin: BinaryParams;

@group(0) @binding(1) var<storage, read> ba: array<f32>;
@group(0) @binding(2) var<storage, read> bb: array<f32>;
@group(0) @binding(3) var<storage, read_write> bc: array<f32>;

fn binary_f(a: f32, b: f32) -> f32 {
    switch OP {
        case 0u: { return a + b; }
        case 1u: { return a - b; }
        case 2u: { return a * b; }
        case 3u: { return a / b; }
        case 4u: { return max(a, b); }
        case 5u: { return min(a, b); }
        case 6u: { return select(0.0, 1.0, a == b); }
        default: { return select(0.0, 1.0, a > b); }
    }
}

// The index of element i of the output in a repeated block operand (BIDX kinds above).
fn block_index(i: u32) -> u32 {
    switch (BIDX - 1u) % 3u {
        case 0u: { return (i / bin.inner) % bin.mid; }
        case 1u: { return i % bin.mid; }
        default: { return i / bin.inner; }
    }
}

@compute @workgroup_size(256)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i >= bin.n) { return; }
    if (BIDX >= 4u) {
        bc[i] = binary_f(ba[block_index(i)], bb[i]);
        return;
    }
    if (BIDX >= 1u) {
        bc[i] = binary_f(ba[i], bb[block_index(i)]);
        return;
    }
    if (bin.same_shape == 1u) {
        bc[i] = binary_f(ba[i], bb[i]);
        return;
    }
    var rem = i;
    var ia = 0u;
    var ib = 0u;
    for (var d = 5; d >= 0; d--) {
        let k = u32(d);
        let dim = bin.dims[k >> 2u][k & 3u];
        let c = rem % dim;
        rem = rem / dim;
        ia += c * bin.a_strides[k >> 2u][k & 3u];
        ib += c * bin.b_strides[k >> 2u][k & 3u];
    }
    bc[i] = binary_f(ba[ia], bb[ib]);
}

// ---- binary of same-shape operands, four elements per thread (n divisible by 4) ----
// On CPU adapters every storage access costs per SIMD lane, so one vec4 access for four
// elements is most of the speed-up of this variant. `n` counts quads.
@group(0) @binding(1) var<storage, read> va: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> vb: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> vc: array<vec4<f32>>;

@compute @workgroup_size(256)
fn binary_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i >= bin.n) { return; }
    let a = va[i];
    let b = vb[i];
    vc[i] = vec4<f32>(binary_f(a.x, b.x), binary_f(a.y, b.y), binary_f(a.z, b.z), binary_f(a.w, b.w));
}

// ---- fill: Y = value ----
struct FillParams { n: u32, value: f32 }
@group(0) @binding(0) var<uniform> fl: FillParams;
@group(0) @binding(1) var<storage, read_write> fy: array<f32>;

@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i >= fl.n) { return; }
    fy[i] = fl.value;
}
