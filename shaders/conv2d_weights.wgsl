// Both transposed weight layouts of the subgroup conv kernels (ConvSubgroupVariant::vw) in one
// pass over w [Co, Ci, KK]: the forward's [Ci·KK, Co] and the data gradient's [Co, KK, Ci], so a
// training step transposes each conv weight once instead of once per pass.

struct ConvWeightsParams { co: u32, ci: u32, kk: u32 } // output and input channels, KH·KW
@group(0) @binding(0) var<uniform> params: ConvWeightsParams;

@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> w_forward: array<f32>;
@group(0) @binding(3) var<storage, read_write> w_data: array<f32>;

// One thread per weight (co, ci, t) at i = (co·Ci + ci)·KK + t.
@compute @workgroup_size(256)
fn conv2d_weight_layouts(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    let co_n = params.co;
    let ci_n = params.ci;
    let kk = params.kk;
    if (i >= co_n * ci_n * kk) { return; }
    let co = i / (ci_n * kk);
    let r = i % (ci_n * kk); // ci·KK + t
    let v = w[i];
    w_forward[r * co_n + co] = v;
    w_data[(co * kk + r % kk) * ci_n + r / kk] = v;
}
