// 2-D convolution kernels for CPU adapters with 8-lane subgroups (lavapipe on AVX2), the
// subgroup-blocked counterpart of conv2d_regblock.wgsl (same geometry, bindings and parameters; see
// matmul_subgroup.wgsl for why): one subgroup computes 64 pixels × TN channels, each lane 8
// pixels whose inputs it gathers itself, while the TN channels' weights are loaded once by the
// 8 lanes together and passed around with subgroupBroadcast.
// * forward:   pixels = output pixels, channels = output channels, reduction over (kh, kw, ci).
// * data grad: pixels = input pixels, channels = input channels, reduction over (kh, kw, co);
//              the output pixel a tap reads from is (ih + pad − kh)/stride when that divides.
// * weight grad: "pixels" = columns (ci, kh, kw) of dW, channels = output channels, reduction
//              over output pixels, split into chunks: workgroup z writes the partial sums of its
//              chunk to its own slice of dst, and the host sums the slices.
// With TN = 16 one reduction step covers two input (or output) channels, one per half of the
// lanes, so narrow layers do not waste half the FMAs.
// Out-of-range taps read element 0 and are multiplied by 0; no lane returns early (every lane
// must reach every broadcast).
// This file is a template: engine/src/ops/conv_subgroup.rs fills the {{…}} slots with the
// unrolled body and the forward's epilogue.
// Parameters: ConvParams; the weight gradient's KS subgroups share each block, each summing its
// own chunk of output pixels.

struct ConvParams {
    n: u32, ci: u32, h: u32, w: u32, co: u32, kh: u32, kw: u32, stride: u32, pad: u32,
    oh: u32, ow: u32,
    sm: u32,     // subgroup kernels: the workgroup's 8 subgroups form an SM × (8/SM) grid of blocks
    chunk: u32,  // subgroup weight gradient: output pixels per chunk,
    pixels: u32, // in all,
    ks: u32,     // and subgroups sharing each block (an SM × (8/KS/SM) grid), one chunk each
}
@group(0) @binding(0) var<uniform> params: ConvParams;

@group(0) @binding(1) var<storage, read> src: array<f32>;     // x (forward, weight grad) or dy (data grad)
// weights [Co, Ci, KH, KW] (or vec4s of them transposed, see ConvSubgroupVariant::vw), or dy
// (weight grad)
@group(0) @binding(2) var<storage, read> wsrc: array<{{W_ELEM}}>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;
@group(0) @binding(5) var<storage, read_write> pre: array<f32>; // pre-activation (forward with SiLU)

struct Conv { n: u32, ci: u32, h: u32, w: u32, co: u32, kh: u32, kw: u32, s: u32, pad: i32, oh: u32, ow: u32 }

fn conv() -> Conv {
    return Conv(params.n, params.ci, params.h, params.w, params.co, params.kh, params.kw,
                params.stride, i32(params.pad), params.oh, params.ow);
}

fn in_range(v: i32, n: u32) -> bool { return v >= 0 && v < i32(n); }


// Writes one output value z (the bias already added, where the variant has one) of the forward
// pass: SiLU keeping the pre-activation, or z as it is.
fn store_forward(o: u32, z: f32) {
{{STORE_FORWARD}}
}

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let c = conv();
    let hw = c.h * c.w;
    let ohw = c.oh * c.ow;
    let kk = c.kh * c.kw;
    let sm = params.sm;
    // This lane's first pixel and the subgroup's first channel.
    let r0 = ((wg.x * sm + sg % sm) * 8u + lane) * 8u;
    let n0 = (wg.y * (8u / sm) + sg / sm) * {{TN}}u;
    // The lane's share of the weights: channel block wq (4 channels) of reduction channel +kq.
    let kq = lane / {{Q}}u;
    let wq = lane % {{Q}}u;
{{BODY}}
}
