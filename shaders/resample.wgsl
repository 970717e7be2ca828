// Resampling of NCHW planes: nearest ×2 upsample and 2×2 average pool (floor for odd sizes), each
// with its backward. A plane index q = n·C + c.

struct ResampleParams { planes: u32, height: u32, width: u32 } // the input side's planes and size
@group(0) @binding(0) var<uniform> params: ResampleParams;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// y[q, i, j] = x[q, i/2, j/2]; one thread per output.
@compute @workgroup_size(256)
fn upsample2x(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let o = gid(wid, nwg, lid);
    let h = params.height; let w = params.width;
    if (o >= params.planes * 4u * h * w) { return; }
    let j = o % (2u * w);
    let i = (o / (2u * w)) % (2u * h);
    let q = o / (4u * h * w);
    y[o] = x[(q * h + i / 2u) * w + j / 2u];
}

// dx[q, i, j] = Σ of the 2×2 block of dy above it; one thread per input.
@compute @workgroup_size(256)
fn upsample2x_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let o = gid(wid, nwg, lid);
    let h = params.height; let w = params.width;
    if (o >= params.planes * h * w) { return; }
    let j = o % w;
    let i = (o / w) % h;
    let q = o / (h * w);
    let base = (q * 2u * h + 2u * i) * 2u * w + 2u * j;
    y[o] = x[base] + x[base + 1u] + x[base + 2u * w] + x[base + 2u * w + 1u];
}

// y[q, i, j] = mean of x[q, 2i..2i+2, 2j..2j+2]; output H/2 × W/2 (floor).
@compute @workgroup_size(256)
fn avgpool2x2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let o = gid(wid, nwg, lid);
    let h = params.height; let w = params.width;
    let ho = h / 2u; let wo = w / 2u;
    if (o >= params.planes * ho * wo) { return; }
    let j = o % wo;
    let i = (o / wo) % ho;
    let q = o / (ho * wo);
    let base = (q * h + 2u * i) * w + 2u * j;
    y[o] = 0.25 * (x[base] + x[base + 1u] + x[base + w] + x[base + w + 1u]);
}

// dx[q, i, j] = dy[q, i/2, j/2] / 4 inside the pooled area, 0 in a dropped odd row or column;
// one thread per input element.
@compute @workgroup_size(256)
fn avgpool2x2_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let o = gid(wid, nwg, lid);
    let h = params.height; let w = params.width;
    if (o >= params.planes * h * w) { return; }
    let ho = h / 2u; let wo = w / 2u;
    let j = o % w;
    let i = (o / w) % h;
    let q = o / (h * w);
    let inside = i / 2u < ho && j / 2u < wo;
    y[o] = select(0.0, 0.25 * x[(q * ho + min(i / 2u, ho - 1u)) * wo + min(j / 2u, wo - 1u)], inside);
}
