// Layout kernels: strided copy (permute, broadcast-expand), block copy along one axis
// (concat, slice and their backward), row gather (embedding) and its backward.

@group(0) @binding(0) var<uniform> P: array<vec4<u32>, 16>;
fn p(i: u32) -> u32 { return P[i >> 2u][i & 3u]; }
fn gid(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return (wid.y * nwg.x + wid.x) * 256u + lid; }

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// y[i] = x[Σ_k coord_k(i) · stride_k]: output coordinates of the contiguous output, read through
// arbitrary input strides (a permutation, or 0 for a broadcast axis).
// params: [n, _, _, _, out_dims[6] @4, in_strides[6] @10], right-aligned to rank 6.
@compute @workgroup_size(256)
fn strided_copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i >= p(0u)) { return; }
    var rem = i;
    var src = 0u;
    for (var d = 5; d >= 0; d--) {
        let k = u32(d);
        src += (rem % p(4u + k)) * p(10u + k);
        rem = rem / p(4u + k);
    }
    y[i] = x[src];
}

// Copies a block along the middle axis of (outer, len, inner) views:
// y[(o·dst_len + dst_start + j)·inner + t] = x[(o·src_len + src_start + j)·inner + t], j < count.
// params: [outer, inner, count, src_len, src_start, dst_len, dst_start]
@compute @workgroup_size(256)
fn axis_copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    let inner = p(1u);
    let count = p(2u);
    if (i >= p(0u) * count * inner) { return; }
    let t = i % inner;
    let j = (i / inner) % count;
    let o = i / (inner * count);
    y[(o * p(5u) + p(6u) + j) * inner + t] = x[(o * p(3u) + p(4u) + j) * inner + t];
}

// axis_copy with inner divisible by 4, in units of four elements (params hold inner / 4): one
// vec4 load and store per thread (CPU adapters pay per lane access).
@group(0) @binding(1) var<storage, read> qx: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> qy: array<vec4<f32>>;

@compute @workgroup_size(256)
fn axis_copy_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    let inner = p(1u);
    let count = p(2u);
    if (i >= p(0u) * count * inner) { return; }
    let t = i % inner;
    let j = (i / inner) % count;
    let o = i / (inner * count);
    qy[(o * p(5u) + p(6u) + j) * inner + t] = qx[(o * p(3u) + p(4u) + j) * inner + t];
}

// ---- gather rows: out[n, :] = table[idx[n], :] (zeros for an index out of range) ----
// params: [n_idx, dim, rows]
@group(0) @binding(1) var<storage, read> gtable: array<f32>;
@group(0) @binding(2) var<storage, read> gidx: array<u32>;
@group(0) @binding(3) var<storage, read_write> gout: array<f32>;

@compute @workgroup_size(256)
fn gather_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    let dim = p(1u);
    if (i >= p(0u) * dim) { return; }
    let row = gidx[i / dim];
    gout[i] = select(0.0, gtable[row * dim + i % dim], row < p(2u));
}

// Backward: dtable[v, d] = Σ_{n: idx[n] = v} dout[n, d]. One thread per (v, d) looping over the
// indices (no float atomics in WGSL; the index count is a batch, so the loop is short).
// params: [n_idx, dim, rows]
@group(0) @binding(1) var<storage, read> sdout: array<f32>;
@group(0) @binding(2) var<storage, read> sidx: array<u32>;
@group(0) @binding(3) var<storage, read_write> sdtable: array<f32>;

@compute @workgroup_size(256)
fn gather_rows_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    let dim = p(1u);
    if (i >= p(2u) * dim) { return; }
    let v = i / dim;
    let d = i % dim;
    var acc = 0.0;
    for (var n = 0u; n < p(0u); n++) {
        if (sidx[n] == v) { acc += sdout[n * dim + d]; }
    }
    sdtable[i] = acc;
}
