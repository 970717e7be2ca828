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
