// Layout kernels: strided copy (permute, broadcast-expand), block copy along one axis
// (concat, slice and their backward), row gather (embedding) and its backward.


@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// y[i] = x[Σ_k coord_k(i) · stride_k]: output coordinates of the contiguous output, read through
// arbitrary input strides (a permutation, or 0 for a broadcast axis). Dims and strides are
// right-aligned to rank 6, four to a vec4 (uniform arrays have a 16-byte stride): axis k is
// [k >> 2][k & 3].
struct StridedCopyParams {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    out_dims: array<vec4<u32>, 2>,
    in_strides: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<uniform> sc: StridedCopyParams;
@compute @workgroup_size(256)
fn strided_copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i >= sc.n) { return; }
    var rem = i;
    var src = 0u;
    for (var d = 5; d >= 0; d--) {
        let k = u32(d);
        let dim = sc.out_dims[k >> 2u][k & 3u];
        src += (rem % dim) * sc.in_strides[k >> 2u][k & 3u];
        rem = rem / dim;
    }
    y[i] = x[src];
}

// Copies a block along the middle axis of (outer, len, inner) views:
// y[(o·dst_len + dst_start + j)·inner + t] = x[(o·src_len + src_start + j)·inner + t], j < count.
struct AxisCopyParams {
    outer: u32,
    inner: u32,
    count: u32,
    src_len: u32,
    src_start: u32,
    dst_len: u32,
    dst_start: u32,
}
@group(0) @binding(0) var<uniform> ac: AxisCopyParams;
@compute @workgroup_size(256)
fn axis_copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    let inner = ac.inner;
    let count = ac.count;
    if (i >= ac.outer * count * inner) { return; }
    let t = i % inner;
    let j = (i / inner) % count;
    let o = i / (inner * count);
    y[(o * ac.dst_len + ac.dst_start + j) * inner + t] = x[(o * ac.src_len + ac.src_start + j) * inner + t];
}

// axis_copy with inner divisible by 4, in units of four elements (`inner` holds inner / 4): one
// vec4 load and store per thread (CPU adapters pay per lane access).
@group(0) @binding(1) var<storage, read> qx: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> qy: array<vec4<f32>>;

@compute @workgroup_size(256)
fn axis_copy_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    let inner = ac.inner;
    let count = ac.count;
    if (i >= ac.outer * count * inner) { return; }
    let t = i % inner;
    let j = (i / inner) % count;
    let o = i / (inner * count);
    qy[(o * ac.dst_len + ac.dst_start + j) * inner + t] = qx[(o * ac.src_len + ac.src_start + j) * inner + t];
}

// ---- gather rows: out[n, :] = table[idx[n], :] (zeros for an index out of range) ----
// `indices` rows of length `dim` from a table of `rows` rows.
struct GatherParams { indices: u32, dim: u32, rows: u32 }
@group(0) @binding(0) var<uniform> ga: GatherParams;
@group(0) @binding(1) var<storage, read> gtable: array<f32>;
@group(0) @binding(2) var<storage, read> gidx: array<u32>;
@group(0) @binding(3) var<storage, read_write> gout: array<f32>;

@compute @workgroup_size(256)
fn gather_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    let dim = ga.dim;
    if (i >= ga.indices * dim) { return; }
    let row = gidx[i / dim];
    gout[i] = select(0.0, gtable[row * dim + i % dim], row < ga.rows);
}

// Backward: dtable[v, d] = Σ_{n: idx[n] = v} dout[n, d]. One thread per (v, d) looping over the
// indices (no float atomics in WGSL; the index count is a batch, so the loop is short).
@group(0) @binding(1) var<storage, read> sdout: array<f32>;
@group(0) @binding(2) var<storage, read> sidx: array<u32>;
@group(0) @binding(3) var<storage, read_write> sdtable: array<f32>;

@compute @workgroup_size(256)
fn gather_rows_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    let dim = ga.dim;
    if (i >= ga.rows * dim) { return; }
    let v = i / dim;
    let d = i % dim;
    var acc = 0.0;
    for (var n = 0u; n < ga.indices; n++) {
        if (sidx[n] == v) { acc += sdout[n * dim + d]; }
    }
    sdtable[i] = acc;
}
