// The prelude: helpers shared by the engine's kernels. The pipeline loader puts it in front of
// every kernel source (static file or generated variant), so kernels use these without declaring
// them; `mtdiff kernels --dump DIR` writes the sources as compiled, prelude included.

// The flat index of a thread of a 256-wide workgroup in a 2-D grid (x up to 65535 workgroups).
fn gid(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return (wid.y * nwg.x + wid.x) * 256u + lid; }

// Logistic sigmoid without overflow for large |x|.
fn sigmoid(x: f32) -> f32 {
    if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
    let e = exp(x);
    return e / (1.0 + e);
}

// SiLU z·σ(z) without overflow for large |z|.
fn silu(z: f32) -> f32 {
    if (z >= 0.0) { return z / (1.0 + exp(-z)); }
    let e = exp(z);
    return z * e / (1.0 + e);
}

// One value per invocation of a 256-invocation workgroup, for the tree reductions below.
var<workgroup> red: array<f32, 256>;

// Combines red[0..256] into one value (sum, or max when `is_max`); every invocation of the
// workgroup must call it.
fn tree(lid: u32, is_max: bool) -> f32 {
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] = select(red[lid] + red[lid + s], max(red[lid], red[lid + s]), is_max);
        }
        workgroupBarrier();
    }
    let v = red[0];
    workgroupBarrier();
    return v;
}

// The workgroup's sum of each invocation's `v`; every invocation must call it.
fn tree_sum(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) { red[lid] += red[lid + s]; }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

// f32 → f16 bits, as Tensor::to_f16 rounds (shaders/precision.wgsl, and every kernel with f16
// outputs, ops::template::with_f16_outputs).
// pack2x16float leaves out-of-range values indeterminate: give them the IEEE round-to-nearest
// results explicitly. |x| ≥ 65520 becomes ±inf, 65504 ≤ |x| < 65520 rounds to ±65504 (the
// largest f16), NaN stays NaN.
fn in_f16_range(x: f32) -> f32 {
    return clamp(x, -65504.0, 65504.0);
}
// Classified on the bits: compilers may assume floats are never NaN or infinite.
fn f16_bits(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    let magnitude = b & 0x7fffffffu;
    let sign = (b >> 16u) & 0x8000u;
    if (magnitude > 0x7f800000u) { return sign | 0x7e00u; } // NaN
    if (magnitude >= 0x477ff000u) { return sign | 0x7c00u; } // |x| ≥ 65520, inf included
    return pack2x16float(vec2<f32>(in_f16_range(x), 0.0)) & 0xffffu;
}

// Two f32 values as one word of f16 pairs (the first in the low half).
fn f16_pair(v: vec2<f32>) -> u32 { return f16_bits(v.x) | (f16_bits(v.y) << 16u); }

// Four f32 values as two words of f16 pairs.
fn f16x4(v: vec4<f32>) -> vec2<u32> { return vec2<u32>(f16_pair(v.xy), f16_pair(v.zw)); }
