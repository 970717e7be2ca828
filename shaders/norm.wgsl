// Group norm over NCHW (or N, C, *) with fused affine and optional SiLU, and its backward.
// In NCHW memory the channels of a group are consecutive, so group (n, g) is one contiguous row
// of L = (C/G)·S elements (S = spatial size); stats hold (mean, 1/√(var + eps)) per row.
// γ and β are per channel ([C]) or per sample and channel, sample-major ([N, C]) or
// channel-major ([C, N], AdaGN's scale-shift as a projection W·embᵀ gives it); `affine_at`
// gives (n, c)'s index into them.
struct NormParams {
    rows: u32,          // N·G rows (one per sample and group)
    len: u32,           // L = (C/G)·S elements per row
    spatial: u32,       // S
    channels: u32,      // C
    silu: u32,          // 1: SiLU after the affine
    eps: f32,
    batch: u32,         // N
    affine_layout: u32, // γ/β as 0 [C], 1 [N, C] or 2 [C, N]
    gamma_offset: f32,  // added to the stored γ: 1 for packed scale-shift (γ = 1 + s), else 0
}
@group(0) @binding(0) var<uniform> params: NormParams;


// Index into γ/β of sample n, channel c, by the affine layout.
fn affine_at(n: u32, c: u32) -> u32 {
    switch params.affine_layout {
        case 1u: { return n * params.channels + c; }
        case 2u: { return c * params.batch + n; }
        default: { return c; }
    }
}

// Index into γ/β of element i (of sample n = i / (C·S), channel c = (i / S) % C).
fn aidx(i: u32) -> u32 {
    let nc = i / params.spatial;
    return affine_at(nc / params.channels, nc % params.channels);
}

// Where the per-(n, c) sums of (n, c) go: n·C + c, or c·N + n with a channel-major affine, so
// that they are its gradient as they lie.
fn nc_slot(n: u32, c: u32) -> u32 {
    return select(n * params.channels + c, c * params.batch + n, params.affine_layout == 2u);
}

// γ as stored plus the γ offset: 1 for AdaGN scale-shift, whose stored value is the scale s of
// γ = 1 + s; 0 otherwise.
fn gamma_of(stored: f32) -> f32 { return stored + params.gamma_offset; }


// ---- forward: statistics (mean, rstd) and y = act((x − mean)·rstd·γ[a] + β[a]) in one
// dispatch; the statistics are kept for the backward ----
@group(0) @binding(1) var<storage, read> fx: array<f32>;
@group(0) @binding(2) var<storage, read> fgamma: array<f32>;
@group(0) @binding(3) var<storage, read> fbeta: array<f32>;
@group(0) @binding(4) var<storage, read_write> fstats: array<f32>;
@group(0) @binding(5) var<storage, read_write> fy: array<f32>;

fn act(z: f32) -> f32 { return select(z, z * sigmoid(z), params.silu == 1u); }

// GPUs: one workgroup per row; mean, then variance, by tree sums, then y.
@compute @workgroup_size(256)
fn group_norm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= params.rows) { return; }
    let l = params.len;
    let base = row * l;
    var s = 0.0;
    for (var k = lid; k < l; k += 256u) { s += fx[base + k]; }
    let mean = tree_sum(lid, s) / f32(l);
    var v = 0.0;
    for (var k = lid; k < l; k += 256u) { let d = fx[base + k] - mean; v += d * d; }
    let rstd = inverseSqrt(tree_sum(lid, v) / f32(l) + params.eps);
    if (lid == 0u) {
        fstats[2u * row] = mean;
        fstats[2u * row + 1u] = rstd;
    }
    for (var k = lid; k < l; k += 256u) {
        let i = base + k;
        let a = aidx(i);
        fy[i] = act((fx[i] - mean) * (rstd * gamma_of(fgamma[a])) + fbeta[a]);
    }
}

// CPU adapters: one thread per row (no barriers, which cost more there than they save). The
// statistics in one pass: sums of x − x₀ and (x − x₀)² with x₀ the row's first element, a shift
// that keeps the variance from cancelling when |mean| ≫ std. Then y channel by channel of the
// group (n = row / G, channels (row % G)·C/G ..), each channel's γ/β read once.
@compute @workgroup_size(64)
fn group_norm_forward_thread(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = (wid.y * nwg.x + wid.x) * 64u + lid;
    if (row >= params.rows) { return; }
    let l = params.len;
    let base = row * l;
    let x0 = fx[base];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var k = 0u; k < l; k++) {
        let d = fx[base + k] - x0;
        s1 += d;
        s2 += d * d;
    }
    let m = s1 / f32(l);
    let mean = x0 + m;
    let rstd = inverseSqrt(max(s2 / f32(l) - m * m, 0.0) + params.eps);
    fstats[2u * row] = mean;
    fstats[2u * row + 1u] = rstd;
    let groups = params.rows / params.batch;
    let per = params.channels / groups;
    let s = params.spatial;
    for (var j = 0u; j < per; j++) {
        let a = affine_at(row / groups, (row % groups) * per + j);
        let scale = rstd * gamma_of(fgamma[a]);
        let shift = fbeta[a];
        for (var k = 0u; k < s; k++) {
            let i = base + j * s + k;
            fy[i] = act((fx[i] - mean) * scale + shift);
        }
    }
}

// group_norm_forward_thread on quads (S divisible by 4, so a quad lies in one channel).
@group(0) @binding(1) var<storage, read> qx: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> qy: array<vec4<f32>>;

@compute @workgroup_size(64)
fn group_norm_forward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = (wid.y * nwg.x + wid.x) * 64u + lid;
    if (row >= params.rows) { return; }
    let l4 = params.len / 4u;
    let base = row * l4;
    let x0 = qx[base].x;
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    for (var k = 0u; k < l4; k++) {
        let d = qx[base + k] - x0;
        s1 += d;
        s2 += d * d;
    }
    let m = (s1.x + s1.y + s1.z + s1.w) / f32(params.len);
    let v = (s2.x + s2.y + s2.z + s2.w) / f32(params.len) - m * m;
    let mean = x0 + m;
    let rstd = inverseSqrt(max(v, 0.0) + params.eps);
    fstats[2u * row] = mean;
    fstats[2u * row + 1u] = rstd;
    let groups = params.rows / params.batch;
    let per = params.channels / groups;
    let s4 = params.spatial / 4u;
    for (var j = 0u; j < per; j++) {
        let a = affine_at(row / groups, (row % groups) * per + j);
        let scale = rstd * gamma_of(fgamma[a]);
        let shift = fbeta[a];
        for (var k = 0u; k < s4; k++) {
            let q = base + j * s4 + k;
            let z = (qx[q] - mean) * scale + shift;
            qy[q] = select(z, z * sigmoid4(z), params.silu == 1u);
        }
    }
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
    if (params.silu == 0u) { return bdy[i]; }
    let z = (bx[i] - bstats[2u * row]) * bstats[2u * row + 1u] * gamma_of(bgamma[a]) + bbeta[a];
    let s = sigmoid(z);
    return bdy[i] * s * (1.0 + z * (1.0 - s));
}

// dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) with dx̂ = dz·γ; one workgroup per row.
@compute @workgroup_size(256)
fn group_norm_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= params.rows) { return; }
    let l = params.len;
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
    let s = params.spatial;
    let cc = params.channels;
    let groups = params.rows / params.batch;
    let per_group = cc / groups;
    var dg = 0.0;
    var db = 0.0;
    for (var k = lid; k < params.batch * s; k += 256u) {
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
// One thread per row does the whole backward of its row: the per-(n, c) sums of dz·x̂ and dz of
// its channels (the γ/β gradient when they are per sample, else summed over n by
// group_norm_backward_affine_reduce), the row means of dx̂ = dz·γ and dx̂·x̂ from them (γ is
// constant over a channel's positions, so Σ_row dx̂ = Σ_c γ·Σ dz and Σ_row dx̂·x̂ = Σ_c γ·Σ dz·x̂),
// then dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)). Without dx, one thread per (n, c) does the
// sums alone (group_norm_backward_nc_*).
@group(0) @binding(6) var<storage, read> bsums: array<f32>;
@group(0) @binding(7) var<storage, read_write> bdx: array<f32>;

// bout[n·C + c] = Σ_s dz·x̂, bout[N·C + n·C + c] = Σ_s dz; one thread per (n, c).
@compute @workgroup_size(64)
fn group_norm_backward_nc_thread(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let nc = (wid.y * nwg.x + wid.x) * 64u + lid;
    let s = params.spatial;
    let cc = params.channels;
    if (nc >= params.batch * cc) { return; }
    let n = nc / cc;
    let c = nc % cc;
    let row = n * (params.rows / params.batch) + c / (cc / (params.rows / params.batch));
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
    bout[params.batch * cc + nc_slot(n, c)] = db;
}

// The row's whole backward (see above): nc sums to bout, dx to bdx.
@compute @workgroup_size(64)
fn group_norm_backward_row(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = (wid.y * nwg.x + wid.x) * 64u + lid;
    if (row >= params.rows) { return; }
    let s = params.spatial;
    let cc = params.channels;
    let groups = params.rows / params.batch;
    let per = cc / groups;
    let n = row / groups;
    let c0 = (row % groups) * per;
    let mean = bstats[2u * row];
    let rstd = bstats[2u * row + 1u];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var j = 0u; j < per; j++) {
        let c = c0 + j;
        let a = affine_at(n, c);
        let base = (n * cc + c) * s;
        var dg = 0.0;
        var db = 0.0;
        for (var k = 0u; k < s; k++) {
            let dz = dz_at(base + k, row, a);
            dg += dz * (bx[base + k] - mean) * rstd;
            db += dz;
        }
        bout[nc_slot(n, c)] = dg;
        bout[params.batch * cc + nc_slot(n, c)] = db;
        let gm = gamma_of(bgamma[a]);
        s1 += gm * db;
        s2 += gm * dg;
    }
    let m1 = s1 / f32(params.len);
    let m2 = s2 / f32(params.len);
    for (var j = 0u; j < per; j++) {
        let c = c0 + j;
        let a = affine_at(n, c);
        let gm = gamma_of(bgamma[a]);
        let base = (n * cc + c) * s;
        for (var k = 0u; k < s; k++) {
            let i = base + k;
            let dxh = dz_at(i, row, a) * gm;
            bdx[i] = rstd * (dxh - m1 - (bx[i] - mean) * rstd * m2);
        }
    }
}

// Sums the per-(n, c) sums in bsums over n: bdx[c] = dγ, bdx[C + c] = dβ; one thread per c.
@compute @workgroup_size(64)
fn group_norm_backward_affine_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.x * 64u + lid;
    let cc = params.channels;
    if (c >= cc) { return; }
    var dg = 0.0;
    var db = 0.0;
    let nc = params.batch * cc;
    for (var n = 0u; n < params.batch; n++) {
        dg += bsums[n * cc + c];
        db += bsums[nc + n * cc + c];
    }
    bdx[c] = dg;
    bdx[cc + c] = db;
}

// ---- CPU-adapter variants that take four elements per thread (S divisible by 4, so the four
// share their row and γ/β index): one vec4 access per operand instead of four lane accesses ----
fn sigmoid4(z: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(sigmoid(z.x), sigmoid(z.y), sigmoid(z.z), sigmoid(z.w));
}

@group(0) @binding(1) var<storage, read> wx: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> wdy: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> wstats: array<f32>;
@group(0) @binding(4) var<storage, read> wgamma: array<f32>;
@group(0) @binding(5) var<storage, read> wbeta: array<f32>;
@group(0) @binding(7) var<storage, read_write> wout: array<vec4<f32>>;

// dz on a quad whose elements share row and γ/β index a.
fn dz4(q: u32, row: u32, a: u32) -> vec4<f32> {
    if (params.silu == 0u) { return wdy[q]; }
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
    let s4 = params.spatial / 4u;
    let cc = params.channels;
    if (nc >= params.batch * cc) { return; }
    let c = nc % cc;
    let groups = params.rows / params.batch;
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
    wnc[params.batch * cc + nc_slot(nc / cc, c)] = db.x + db.y + db.z + db.w;
}

// group_norm_backward_row on quads: nc sums to wnc, dx to wout.
@compute @workgroup_size(64)
fn group_norm_backward_row_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = (wid.y * nwg.x + wid.x) * 64u + lid;
    if (row >= params.rows) { return; }
    let s4 = params.spatial / 4u;
    let cc = params.channels;
    let groups = params.rows / params.batch;
    let per = cc / groups;
    let n = row / groups;
    let c0 = (row % groups) * per;
    let mean = wstats[2u * row];
    let rstd = wstats[2u * row + 1u];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var j = 0u; j < per; j++) {
        let c = c0 + j;
        let a = affine_at(n, c);
        let base = (n * cc + c) * s4;
        var dg = vec4<f32>(0.0);
        var db = vec4<f32>(0.0);
        for (var k = 0u; k < s4; k++) {
            let dz = dz4(base + k, row, a);
            dg += dz * (wx[base + k] - mean) * rstd;
            db += dz;
        }
        let g = dg.x + dg.y + dg.z + dg.w;
        let b = db.x + db.y + db.z + db.w;
        wnc[nc_slot(n, c)] = g;
        wnc[params.batch * cc + nc_slot(n, c)] = b;
        let gm = gamma_of(wgamma[a]);
        s1 += gm * b;
        s2 += gm * g;
    }
    let m1 = s1 / f32(params.len);
    let m2 = s2 / f32(params.len);
    for (var j = 0u; j < per; j++) {
        let c = c0 + j;
        let a = affine_at(n, c);
        let gm = gamma_of(wgamma[a]);
        let base = (n * cc + c) * s4;
        for (var k = 0u; k < s4; k++) {
            let q = base + k;
            let dxh = dz4(q, row, a) * gm;
            wout[q] = rstd * (dxh - m1 - (wx[q] - mean) * rstd * m2);
        }
    }
}
