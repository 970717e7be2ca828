// Group norm over NCHW (or N, C, *) with fused affine and optional SiLU, and its backward.
// In NCHW memory the channels of a group are consecutive, so group (n, g) is one contiguous row
// of L = (C/G)·S elements (S = spatial size); stats hold (mean, 1/√(var + eps)) per row.
// γ and β are per channel ([C]) or per sample and channel, sample-major ([N, C]) or
// channel-major ([C, N], AdaGN's scale-shift as a projection W·embᵀ gives it); `affine_at`
// gives (n, c)'s index into them.
// params: [rows, L, S, C, silu, eps, N, affine layout (0 [C], 1 [N, C], 2 [C, N]),
//          γ offset (f32: 1 for packed scale-shift)]

@group(0) @binding(0) var<uniform> P: array<vec4<u32>, 16>;
fn p(i: u32) -> u32 { return P[i >> 2u][i & 3u]; }
fn pf(i: u32) -> f32 { return bitcast<f32>(p(i)); }

var<workgroup> red: array<f32, 256>;

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

// Index into γ/β of sample n, channel c, by the affine layout params[7].
fn affine_at(n: u32, c: u32) -> u32 {
    switch p(7u) {
        case 1u: { return n * p(3u) + c; }
        case 2u: { return c * p(6u) + n; }
        default: { return c; }
    }
}

// Index into γ/β of element i (of sample n = i / (C·S), channel c = (i / S) % C).
fn aidx(i: u32) -> u32 {
    let nc = i / p(2u);
    return affine_at(nc / p(3u), nc % p(3u));
}

// Where the per-(n, c) sums of (n, c) go: n·C + c, or c·N + n with a channel-major affine, so
// that they are its gradient as they lie.
fn nc_slot(n: u32, c: u32) -> u32 {
    return select(n * p(3u) + c, c * p(6u) + n, p(7u) == 2u);
}

// γ as stored plus params[8]: 1 for AdaGN scale-shift, whose stored value is the scale s of
// γ = 1 + s; 0 otherwise.
fn gamma_of(stored: f32) -> f32 { return stored + pf(8u); }

fn sigmoid(x: f32) -> f32 {
    if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
    let e = exp(x);
    return e / (1.0 + e);
}

// ---- statistics: one workgroup per row, two passes (mean, then variance) ----
@group(0) @binding(1) var<storage, read> sx: array<f32>;
@group(0) @binding(2) var<storage, read_write> sstats: array<f32>;

@compute @workgroup_size(256)
fn group_norm_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= p(0u)) { return; }
    let l = p(1u);
    let base = row * l;
    var s = 0.0;
    for (var k = lid; k < l; k += 256u) { s += sx[base + k]; }
    let mean = tree_sum(lid, s) / f32(l);
    var v = 0.0;
    for (var k = lid; k < l; k += 256u) { let d = sx[base + k] - mean; v += d * d; }
    let var_ = tree_sum(lid, v) / f32(l);
    if (lid == 0u) {
        sstats[2u * row] = mean;
        sstats[2u * row + 1u] = inverseSqrt(var_ + pf(5u));
    }
}

// The same statistics with one thread per row (no barriers: cheaper on CPU adapters), in one
// pass: sums of x − x₀ and (x − x₀)² with x₀ the row's first element, a shift that keeps the
// variance from cancelling when |mean| ≫ std.
@compute @workgroup_size(64)
fn group_norm_stats_thread(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = (wid.y * nwg.x + wid.x) * 64u + lid;
    if (row >= p(0u)) { return; }
    let l = p(1u);
    let base = row * l;
    let x0 = sx[base];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var k = 0u; k < l; k++) {
        let d = sx[base + k] - x0;
        s1 += d;
        s2 += d * d;
    }
    let m = s1 / f32(l);
    sstats[2u * row] = x0 + m;
    sstats[2u * row + 1u] = inverseSqrt(max(s2 / f32(l) - m * m, 0.0) + pf(5u));
}

// group_norm_stats_thread on quads (L divisible by 4).
@group(0) @binding(1) var<storage, read> tx: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> tstats: array<f32>;

@compute @workgroup_size(64)
fn group_norm_stats_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = (wid.y * nwg.x + wid.x) * 64u + lid;
    if (row >= p(0u)) { return; }
    let l4 = p(1u) / 4u;
    let base = row * l4;
    let x0 = tx[base].x;
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    for (var k = 0u; k < l4; k++) {
        let d = tx[base + k] - x0;
        s1 += d;
        s2 += d * d;
    }
    let m = (s1.x + s1.y + s1.z + s1.w) / f32(p(1u));
    let v = (s2.x + s2.y + s2.z + s2.w) / f32(p(1u)) - m * m;
    tstats[2u * row] = x0 + m;
    tstats[2u * row + 1u] = inverseSqrt(max(v, 0.0) + pf(5u));
}

// ---- y = act((x − mean)·rstd·γ[a] + β[a]), a = aidx(i); one thread per element ----
@group(0) @binding(1) var<storage, read> ax: array<f32>;
@group(0) @binding(2) var<storage, read> astats: array<f32>;
@group(0) @binding(3) var<storage, read> agamma: array<f32>;
@group(0) @binding(4) var<storage, read> abeta: array<f32>;
@group(0) @binding(5) var<storage, read_write> ay: array<f32>;

@compute @workgroup_size(256)
fn group_norm_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p(0u) * p(1u)) { return; }
    let row = i / p(1u);
    let a = aidx(i);
    let z = (ax[i] - astats[2u * row]) * astats[2u * row + 1u] * gamma_of(agamma[a]) + abeta[a];
    ay[i] = select(z, z * sigmoid(z), p(4u) == 1u);
}

// ---- backward ----
@group(0) @binding(1) var<storage, read> bx: array<f32>;
@group(0) @binding(2) var<storage, read> bdy: array<f32>;
@group(0) @binding(3) var<storage, read> bstats: array<f32>;
@group(0) @binding(4) var<storage, read> bgamma: array<f32>;
@group(0) @binding(5) var<storage, read> bbeta: array<f32>;
@group(0) @binding(6) var<storage, read_write> bout: array<f32>;

// Gradient at the affine output z (through the SiLU when fused); a: the γ/β index.
fn dz_at(i: u32, row: u32, a: u32) -> f32 {
    if (p(4u) == 0u) { return bdy[i]; }
    let z = (bx[i] - bstats[2u * row]) * bstats[2u * row + 1u] * gamma_of(bgamma[a]) + bbeta[a];
    let s = sigmoid(z);
    return bdy[i] * s * (1.0 + z * (1.0 - s));
}

// dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) with dx̂ = dz·γ; one workgroup per row.
@compute @workgroup_size(256)
fn group_norm_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= p(0u)) { return; }
    let l = p(1u);
    let base = row * l;
    let mean = bstats[2u * row];
    let rstd = bstats[2u * row + 1u];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var k = lid; k < l; k += 256u) {
        let i = base + k;
        let a = aidx(i);
        let dxh = dz_at(i, row, a) * gamma_of(bgamma[a]);
        s1 += dxh;
        s2 += dxh * (bx[i] - mean) * rstd;
    }
    let m1 = tree_sum(lid, s1) / f32(l);
    let m2 = tree_sum(lid, s2) / f32(l);
    for (var k = lid; k < l; k += 256u) {
        let i = base + k;
        let a = aidx(i);
        let dxh = dz_at(i, row, a) * gamma_of(bgamma[a]);
        bout[i] = rstd * (dxh - m1 - (bx[i] - mean) * rstd * m2);
    }
}

// dγ[c] = Σ dz·x̂, dβ[c] = Σ dz over the batch and the spatial positions of channel c;
// one workgroup per channel; out = [dγ (C), dβ (C)]. Per-channel γ/β only.
@compute @workgroup_size(256)
fn group_norm_backward_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.x;
    let s = p(2u);
    let cc = p(3u);
    let groups = p(0u) / p(6u);
    let per_group = cc / groups;
    var dg = 0.0;
    var db = 0.0;
    for (var k = lid; k < p(6u) * s; k += 256u) {
        let n = k / s;
        let i = (n * cc + c) * s + k % s;
        let row = n * groups + c / per_group;
        let dz = dz_at(i, row, c);
        dg += dz * (bx[i] - bstats[2u * row]) * bstats[2u * row + 1u];
        db += dz;
    }
    let tg = tree_sum(lid, dg);
    let tb = tree_sum(lid, db);
    if (lid == 0u) {
        bout[c] = tg;
        bout[cc + c] = tb;
    }
}

// ---- backward, CPU-adapter variants: no workgroup barriers ----
// Row sums of dx̂ and dx̂·x̂ (one thread per row), then dx one thread per element; per-(n, c)
// sums of dz·x̂ and dz (one thread each: also the whole γ/β gradient when they are per sample),
// then a per-channel sum over n.
@group(0) @binding(6) var<storage, read> bsums: array<f32>;
@group(0) @binding(7) var<storage, read_write> bdx: array<f32>;

// bout[2·row] = mean(dx̂), bout[2·row + 1] = mean(dx̂·x̂) over the row.
@compute @workgroup_size(64)
fn group_norm_backward_rowsums_thread(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = (wid.y * nwg.x + wid.x) * 64u + lid;
    if (row >= p(0u)) { return; }
    let l = p(1u);
    let base = row * l;
    let mean = bstats[2u * row];
    let rstd = bstats[2u * row + 1u];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var k = 0u; k < l; k++) {
        let i = base + k;
        let a = aidx(i);
        let dxh = dz_at(i, row, a) * gamma_of(bgamma[a]);
        s1 += dxh;
        s2 += dxh * (bx[i] - mean) * rstd;
    }
    bout[2u * row] = s1 / f32(l);
    bout[2u * row + 1u] = s2 / f32(l);
}

// dx = rstd·(dx̂ − m1 − x̂·m2) with the row sums above in bsums; one thread per element.
@compute @workgroup_size(256)
fn group_norm_backward_input_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p(0u) * p(1u)) { return; }
    let row = i / p(1u);
    let a = aidx(i);
    let mean = bstats[2u * row];
    let rstd = bstats[2u * row + 1u];
    let dxh = dz_at(i, row, a) * gamma_of(bgamma[a]);
    bdx[i] = rstd * (dxh - bsums[2u * row] - (bx[i] - mean) * rstd * bsums[2u * row + 1u]);
}

// bout[n·C + c] = Σ_s dz·x̂, bout[N·C + n·C + c] = Σ_s dz; one thread per (n, c).
@compute @workgroup_size(64)
fn group_norm_backward_nc_thread(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let nc = (wid.y * nwg.x + wid.x) * 64u + lid;
    let s = p(2u);
    let cc = p(3u);
    if (nc >= p(6u) * cc) { return; }
    let n = nc / cc;
    let c = nc % cc;
    let row = n * (p(0u) / p(6u)) + c / (cc / (p(0u) / p(6u)));
    let mean = bstats[2u * row];
    let rstd = bstats[2u * row + 1u];
    let a = affine_at(n, c);
    var dg = 0.0;
    var db = 0.0;
    for (var k = 0u; k < s; k++) {
        let i = nc * s + k;
        let dz = dz_at(i, row, a);
        dg += dz * (bx[i] - mean) * rstd;
        db += dz;
    }
    bout[nc_slot(n, c)] = dg;
    bout[p(6u) * cc + nc_slot(n, c)] = db;
}

// Sums the per-(n, c) sums in bsums over n: bdx[c] = dγ, bdx[C + c] = dβ; one thread per c.
@compute @workgroup_size(64)
fn group_norm_backward_affine_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.x * 64u + lid;
    let cc = p(3u);
    if (c >= cc) { return; }
    var dg = 0.0;
    var db = 0.0;
    let nc = p(6u) * cc;
    for (var n = 0u; n < p(6u); n++) {
        dg += bsums[n * cc + c];
        db += bsums[nc + n * cc + c];
    }
    bdx[c] = dg;
    bdx[cc + c] = db;
}

// Row means m1 = mean(dx̂), m2 = mean(dx̂·x̂) (as group_norm_backward_rowsums_thread) from the
// per-(n, c) sums in bsums: γ is constant over a channel's positions, so Σ_row dx̂ = Σ_c γ·Σ dz
// and Σ_row dx̂·x̂ = Σ_c γ·Σ dz·x̂. One thread per row reads C/G pairs instead of L elements.
@compute @workgroup_size(64)
fn group_norm_backward_rowsums_from_nc(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = (wid.y * nwg.x + wid.x) * 64u + lid;
    if (row >= p(0u)) { return; }
    let cc = p(3u);
    let groups = p(0u) / p(6u);
    let per = cc / groups;
    let total = p(6u) * cc;
    let first = (row / groups) * cc + (row % groups) * per;
    var s1 = 0.0;
    var s2 = 0.0;
    for (var k = 0u; k < per; k++) {
        let nc = first + k;
        let n = nc / cc;
        let c = nc % cc;
        let gm = gamma_of(bgamma[affine_at(n, c)]);
        s1 += gm * bsums[total + nc_slot(n, c)];
        s2 += gm * bsums[nc_slot(n, c)];
    }
    bdx[2u * row] = s1 / f32(p(1u));
    bdx[2u * row + 1u] = s2 / f32(p(1u));
}

// ---- CPU-adapter variants that take four elements per thread (S divisible by 4, so the four
// share their row and γ/β index): one vec4 access per operand instead of four lane accesses ----
fn sigmoid4(z: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(sigmoid(z.x), sigmoid(z.y), sigmoid(z.z), sigmoid(z.w));
}

@group(0) @binding(1) var<storage, read> qx: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> qstats: array<f32>;
@group(0) @binding(3) var<storage, read> qgamma: array<f32>;
@group(0) @binding(4) var<storage, read> qbeta: array<f32>;
@group(0) @binding(5) var<storage, read_write> qy: array<vec4<f32>>;

// group_norm_apply on quads: thread q writes elements 4q .. 4q + 3.
@compute @workgroup_size(256)
fn group_norm_apply_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let q = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (q >= p(0u) * (p(1u) / 4u)) { return; }
    let row = (4u * q) / p(1u);
    let a = aidx(4u * q);
    let scale = qstats[2u * row + 1u] * gamma_of(qgamma[a]);
    let z = (qx[q] - qstats[2u * row]) * scale + qbeta[a];
    qy[q] = select(z, z * sigmoid4(z), p(4u) == 1u);
}

@group(0) @binding(1) var<storage, read> wx: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> wdy: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> wstats: array<f32>;
@group(0) @binding(4) var<storage, read> wgamma: array<f32>;
@group(0) @binding(5) var<storage, read> wbeta: array<f32>;
@group(0) @binding(6) var<storage, read> wsums: array<f32>;
@group(0) @binding(7) var<storage, read_write> wout: array<vec4<f32>>;

// dz on a quad whose elements share row and γ/β index a.
fn dz4(q: u32, row: u32, a: u32) -> vec4<f32> {
    if (p(4u) == 0u) { return wdy[q]; }
    let z = (wx[q] - wstats[2u * row]) * wstats[2u * row + 1u] * gamma_of(wgamma[a]) + wbeta[a];
    let s = sigmoid4(z);
    return wdy[q] * s * (1.0 + z * (1.0 - s));
}

// group_norm_backward_nc_thread with quads: one thread per (n, c) sums its S/4 quads; the same
// planar output [Σ dz·x̂ (N·C), Σ dz (N·C)], at binding 6 like that kernel's.
@group(0) @binding(6) var<storage, read_write> wnc: array<f32>;

@compute @workgroup_size(64)
fn group_norm_backward_nc_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let nc = (wid.y * nwg.x + wid.x) * 64u + lid;
    let s4 = p(2u) / 4u;
    let cc = p(3u);
    if (nc >= p(6u) * cc) { return; }
    let c = nc % cc;
    let groups = p(0u) / p(6u);
    let row = (nc / cc) * groups + c / (cc / groups);
    let mean = wstats[2u * row];
    let rstd = wstats[2u * row + 1u];
    let a = affine_at(nc / cc, c);
    var dg = vec4<f32>(0.0);
    var db = vec4<f32>(0.0);
    for (var k = 0u; k < s4; k++) {
        let q = nc * s4 + k;
        let dz = dz4(q, row, a);
        dg += dz * (wx[q] - mean) * rstd;
        db += dz;
    }
    wnc[nc_slot(nc / cc, c)] = dg.x + dg.y + dg.z + dg.w;
    wnc[p(6u) * cc + nc_slot(nc / cc, c)] = db.x + db.y + db.z + db.w;
}

// dx on quads with the row means (m1, m2) in wsums.
@compute @workgroup_size(256)
fn group_norm_backward_input_apply_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let q = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (q >= p(0u) * (p(1u) / 4u)) { return; }
    let row = (4u * q) / p(1u);
    let a = aidx(4u * q);
    let mean = wstats[2u * row];
    let rstd = wstats[2u * row + 1u];
    let dxh = dz4(q, row, a) * gamma_of(wgamma[a]);
    wout[q] = rstd * (dxh - wsums[2u * row] - (wx[q] - mean) * rstd * wsums[2u * row + 1u]);
}
