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
@group(0) @binding(2) var<storage, read> wsrc: array<f32>;
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
    dst[o] = z;
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
    let n0 = (wg.y * (8u / sm) + sg / sm) * 16u;
    // The lane's share of the weights: channel block wq (4 channels) of reduction channel +kq.
    let kq = lane / 4u;
    let wq = lane % 4u;
    {
    let ks = params.ks;
    let sgb = sg / ks;
    let r0 = ((wg.x * sm + sgb % sm) * 8u + lane) * 8u;
    let n0 = (wg.y * ((8u / ks) / sm) + sgb / sm) * 16u;
    let zc = wg.z * ks + sg % ks;
    let ncols = c.ci * kk;
    let chunk = params.chunk;
    let total = params.pixels;
    let p0 = zc * chunk;
    let p1 = min(p0 + chunk, total);
    let cc0 = min(r0 + 0u, ncols - 1u);
    let xo0 = (cc0 / kk) * hw;
    let dh0 = i32((cc0 % kk) / c.kw) - c.pad;
    let dw0 = i32((cc0 % kk) % c.kw) - c.pad;
    let cc1 = min(r0 + 1u, ncols - 1u);
    let xo1 = (cc1 / kk) * hw;
    let dh1 = i32((cc1 % kk) / c.kw) - c.pad;
    let dw1 = i32((cc1 % kk) % c.kw) - c.pad;
    let cc2 = min(r0 + 2u, ncols - 1u);
    let xo2 = (cc2 / kk) * hw;
    let dh2 = i32((cc2 % kk) / c.kw) - c.pad;
    let dw2 = i32((cc2 % kk) % c.kw) - c.pad;
    let cc3 = min(r0 + 3u, ncols - 1u);
    let xo3 = (cc3 / kk) * hw;
    let dh3 = i32((cc3 % kk) / c.kw) - c.pad;
    let dw3 = i32((cc3 % kk) % c.kw) - c.pad;
    let cc4 = min(r0 + 4u, ncols - 1u);
    let xo4 = (cc4 / kk) * hw;
    let dh4 = i32((cc4 % kk) / c.kw) - c.pad;
    let dw4 = i32((cc4 % kk) % c.kw) - c.pad;
    let cc5 = min(r0 + 5u, ncols - 1u);
    let xo5 = (cc5 / kk) * hw;
    let dh5 = i32((cc5 % kk) / c.kw) - c.pad;
    let dw5 = i32((cc5 % kk) % c.kw) - c.pad;
    let cc6 = min(r0 + 6u, ncols - 1u);
    let xo6 = (cc6 / kk) * hw;
    let dh6 = i32((cc6 % kk) / c.kw) - c.pad;
    let dw6 = i32((cc6 % kk) % c.kw) - c.pad;
    let cc7 = min(r0 + 7u, ncols - 1u);
    let xo7 = (cc7 / kk) * hw;
    let dh7 = i32((cc7 % kk) / c.kw) - c.pad;
    let dw7 = i32((cc7 % kk) % c.kw) - c.pad;
    let co0 = min(n0 + 4u * wq + 0u, c.co - 1u) * ohw;
    let co1 = min(n0 + 4u * wq + 1u, c.co - 1u) * ohw;
    let co2 = min(n0 + 4u * wq + 2u, c.co - 1u) * ohw;
    let co3 = min(n0 + 4u * wq + 3u, c.co - 1u) * ohw;
    var c0_0 = vec4<f32>(0.0);
    var c0_1 = vec4<f32>(0.0);
    var c0_2 = vec4<f32>(0.0);
    var c0_3 = vec4<f32>(0.0);
    var c1_0 = vec4<f32>(0.0);
    var c1_1 = vec4<f32>(0.0);
    var c1_2 = vec4<f32>(0.0);
    var c1_3 = vec4<f32>(0.0);
    var c2_0 = vec4<f32>(0.0);
    var c2_1 = vec4<f32>(0.0);
    var c2_2 = vec4<f32>(0.0);
    var c2_3 = vec4<f32>(0.0);
    var c3_0 = vec4<f32>(0.0);
    var c3_1 = vec4<f32>(0.0);
    var c3_2 = vec4<f32>(0.0);
    var c3_3 = vec4<f32>(0.0);
    var c4_0 = vec4<f32>(0.0);
    var c4_1 = vec4<f32>(0.0);
    var c4_2 = vec4<f32>(0.0);
    var c4_3 = vec4<f32>(0.0);
    var c5_0 = vec4<f32>(0.0);
    var c5_1 = vec4<f32>(0.0);
    var c5_2 = vec4<f32>(0.0);
    var c5_3 = vec4<f32>(0.0);
    var c6_0 = vec4<f32>(0.0);
    var c6_1 = vec4<f32>(0.0);
    var c6_2 = vec4<f32>(0.0);
    var c6_3 = vec4<f32>(0.0);
    var c7_0 = vec4<f32>(0.0);
    var c7_1 = vec4<f32>(0.0);
    var c7_2 = vec4<f32>(0.0);
    var c7_3 = vec4<f32>(0.0);
    var pn = p0 / ohw;
    var py = (p0 % ohw) / c.ow;
    var px = (p0 % ohw) % c.ow;
    for (var pp = p0; pp < p1; pp += 2u) {
        let ok0 = select(0.0, 1.0, pp + 0u < p1);
        let pix0 = min(pn, c.n - 1u) * ohw + py * c.ow + px;
        let xb0 = min(pn, c.n - 1u) * c.ci * hw;
        let y0_0 = i32(py * c.s) + dh0;
        let x0_0 = i32(px * c.s) + dw0;
        let in0_0 = in_range(y0_0, c.h) && in_range(x0_0, c.w);
        let v0_0 = src[select(0u, xb0 + xo0 + u32(y0_0) * c.w + u32(x0_0), in0_0)] * select(0.0, ok0, in0_0);
        let y1_0 = i32(py * c.s) + dh1;
        let x1_0 = i32(px * c.s) + dw1;
        let in1_0 = in_range(y1_0, c.h) && in_range(x1_0, c.w);
        let v1_0 = src[select(0u, xb0 + xo1 + u32(y1_0) * c.w + u32(x1_0), in1_0)] * select(0.0, ok0, in1_0);
        let y2_0 = i32(py * c.s) + dh2;
        let x2_0 = i32(px * c.s) + dw2;
        let in2_0 = in_range(y2_0, c.h) && in_range(x2_0, c.w);
        let v2_0 = src[select(0u, xb0 + xo2 + u32(y2_0) * c.w + u32(x2_0), in2_0)] * select(0.0, ok0, in2_0);
        let y3_0 = i32(py * c.s) + dh3;
        let x3_0 = i32(px * c.s) + dw3;
        let in3_0 = in_range(y3_0, c.h) && in_range(x3_0, c.w);
        let v3_0 = src[select(0u, xb0 + xo3 + u32(y3_0) * c.w + u32(x3_0), in3_0)] * select(0.0, ok0, in3_0);
        let y4_0 = i32(py * c.s) + dh4;
        let x4_0 = i32(px * c.s) + dw4;
        let in4_0 = in_range(y4_0, c.h) && in_range(x4_0, c.w);
        let v4_0 = src[select(0u, xb0 + xo4 + u32(y4_0) * c.w + u32(x4_0), in4_0)] * select(0.0, ok0, in4_0);
        let y5_0 = i32(py * c.s) + dh5;
        let x5_0 = i32(px * c.s) + dw5;
        let in5_0 = in_range(y5_0, c.h) && in_range(x5_0, c.w);
        let v5_0 = src[select(0u, xb0 + xo5 + u32(y5_0) * c.w + u32(x5_0), in5_0)] * select(0.0, ok0, in5_0);
        let y6_0 = i32(py * c.s) + dh6;
        let x6_0 = i32(px * c.s) + dw6;
        let in6_0 = in_range(y6_0, c.h) && in_range(x6_0, c.w);
        let v6_0 = src[select(0u, xb0 + xo6 + u32(y6_0) * c.w + u32(x6_0), in6_0)] * select(0.0, ok0, in6_0);
        let y7_0 = i32(py * c.s) + dh7;
        let x7_0 = i32(px * c.s) + dw7;
        let in7_0 = in_range(y7_0, c.h) && in_range(x7_0, c.w);
        let v7_0 = src[select(0u, xb0 + xo7 + u32(y7_0) * c.w + u32(x7_0), in7_0)] * select(0.0, ok0, in7_0);
        let dy0 = min(pn, c.n - 1u) * c.co * ohw + py * c.ow + px;
        px += 1u;
        if (px == c.ow) { px = 0u; py += 1u; if (py == c.oh) { py = 0u; pn += 1u; } }
        let ok1 = select(0.0, 1.0, pp + 1u < p1);
        let pix1 = min(pn, c.n - 1u) * ohw + py * c.ow + px;
        let xb1 = min(pn, c.n - 1u) * c.ci * hw;
        let y0_1 = i32(py * c.s) + dh0;
        let x0_1 = i32(px * c.s) + dw0;
        let in0_1 = in_range(y0_1, c.h) && in_range(x0_1, c.w);
        let v0_1 = src[select(0u, xb1 + xo0 + u32(y0_1) * c.w + u32(x0_1), in0_1)] * select(0.0, ok1, in0_1);
        let y1_1 = i32(py * c.s) + dh1;
        let x1_1 = i32(px * c.s) + dw1;
        let in1_1 = in_range(y1_1, c.h) && in_range(x1_1, c.w);
        let v1_1 = src[select(0u, xb1 + xo1 + u32(y1_1) * c.w + u32(x1_1), in1_1)] * select(0.0, ok1, in1_1);
        let y2_1 = i32(py * c.s) + dh2;
        let x2_1 = i32(px * c.s) + dw2;
        let in2_1 = in_range(y2_1, c.h) && in_range(x2_1, c.w);
        let v2_1 = src[select(0u, xb1 + xo2 + u32(y2_1) * c.w + u32(x2_1), in2_1)] * select(0.0, ok1, in2_1);
        let y3_1 = i32(py * c.s) + dh3;
        let x3_1 = i32(px * c.s) + dw3;
        let in3_1 = in_range(y3_1, c.h) && in_range(x3_1, c.w);
        let v3_1 = src[select(0u, xb1 + xo3 + u32(y3_1) * c.w + u32(x3_1), in3_1)] * select(0.0, ok1, in3_1);
        let y4_1 = i32(py * c.s) + dh4;
        let x4_1 = i32(px * c.s) + dw4;
        let in4_1 = in_range(y4_1, c.h) && in_range(x4_1, c.w);
        let v4_1 = src[select(0u, xb1 + xo4 + u32(y4_1) * c.w + u32(x4_1), in4_1)] * select(0.0, ok1, in4_1);
        let y5_1 = i32(py * c.s) + dh5;
        let x5_1 = i32(px * c.s) + dw5;
        let in5_1 = in_range(y5_1, c.h) && in_range(x5_1, c.w);
        let v5_1 = src[select(0u, xb1 + xo5 + u32(y5_1) * c.w + u32(x5_1), in5_1)] * select(0.0, ok1, in5_1);
        let y6_1 = i32(py * c.s) + dh6;
        let x6_1 = i32(px * c.s) + dw6;
        let in6_1 = in_range(y6_1, c.h) && in_range(x6_1, c.w);
        let v6_1 = src[select(0u, xb1 + xo6 + u32(y6_1) * c.w + u32(x6_1), in6_1)] * select(0.0, ok1, in6_1);
        let y7_1 = i32(py * c.s) + dh7;
        let x7_1 = i32(px * c.s) + dw7;
        let in7_1 = in_range(y7_1, c.h) && in_range(x7_1, c.w);
        let v7_1 = src[select(0u, xb1 + xo7 + u32(y7_1) * c.w + u32(x7_1), in7_1)] * select(0.0, ok1, in7_1);
        let dy1 = min(pn, c.n - 1u) * c.co * ohw + py * c.ow + px;
        px += 1u;
        if (px == c.ow) { px = 0u; py += 1u; if (py == c.oh) { py = 0u; pn += 1u; } }
        let db = select(dy0, dy1, kq == 1u);
        let bl = vec4<f32>(wsrc[db + co0], wsrc[db + co1], wsrc[db + co2], wsrc[db + co3]);
        let b0_0 = subgroupBroadcast(bl, 0u);
        c0_0 = fma(vec4<f32>(v0_0), b0_0, c0_0);
        c1_0 = fma(vec4<f32>(v1_0), b0_0, c1_0);
        c2_0 = fma(vec4<f32>(v2_0), b0_0, c2_0);
        c3_0 = fma(vec4<f32>(v3_0), b0_0, c3_0);
        c4_0 = fma(vec4<f32>(v4_0), b0_0, c4_0);
        c5_0 = fma(vec4<f32>(v5_0), b0_0, c5_0);
        c6_0 = fma(vec4<f32>(v6_0), b0_0, c6_0);
        c7_0 = fma(vec4<f32>(v7_0), b0_0, c7_0);
        let b0_1 = subgroupBroadcast(bl, 1u);
        c0_1 = fma(vec4<f32>(v0_0), b0_1, c0_1);
        c1_1 = fma(vec4<f32>(v1_0), b0_1, c1_1);
        c2_1 = fma(vec4<f32>(v2_0), b0_1, c2_1);
        c3_1 = fma(vec4<f32>(v3_0), b0_1, c3_1);
        c4_1 = fma(vec4<f32>(v4_0), b0_1, c4_1);
        c5_1 = fma(vec4<f32>(v5_0), b0_1, c5_1);
        c6_1 = fma(vec4<f32>(v6_0), b0_1, c6_1);
        c7_1 = fma(vec4<f32>(v7_0), b0_1, c7_1);
        let b0_2 = subgroupBroadcast(bl, 2u);
        c0_2 = fma(vec4<f32>(v0_0), b0_2, c0_2);
        c1_2 = fma(vec4<f32>(v1_0), b0_2, c1_2);
        c2_2 = fma(vec4<f32>(v2_0), b0_2, c2_2);
        c3_2 = fma(vec4<f32>(v3_0), b0_2, c3_2);
        c4_2 = fma(vec4<f32>(v4_0), b0_2, c4_2);
        c5_2 = fma(vec4<f32>(v5_0), b0_2, c5_2);
        c6_2 = fma(vec4<f32>(v6_0), b0_2, c6_2);
        c7_2 = fma(vec4<f32>(v7_0), b0_2, c7_2);
        let b0_3 = subgroupBroadcast(bl, 3u);
        c0_3 = fma(vec4<f32>(v0_0), b0_3, c0_3);
        c1_3 = fma(vec4<f32>(v1_0), b0_3, c1_3);
        c2_3 = fma(vec4<f32>(v2_0), b0_3, c2_3);
        c3_3 = fma(vec4<f32>(v3_0), b0_3, c3_3);
        c4_3 = fma(vec4<f32>(v4_0), b0_3, c4_3);
        c5_3 = fma(vec4<f32>(v5_0), b0_3, c5_3);
        c6_3 = fma(vec4<f32>(v6_0), b0_3, c6_3);
        c7_3 = fma(vec4<f32>(v7_0), b0_3, c7_3);
        let b1_0 = subgroupBroadcast(bl, 4u);
        c0_0 = fma(vec4<f32>(v0_1), b1_0, c0_0);
        c1_0 = fma(vec4<f32>(v1_1), b1_0, c1_0);
        c2_0 = fma(vec4<f32>(v2_1), b1_0, c2_0);
        c3_0 = fma(vec4<f32>(v3_1), b1_0, c3_0);
        c4_0 = fma(vec4<f32>(v4_1), b1_0, c4_0);
        c5_0 = fma(vec4<f32>(v5_1), b1_0, c5_0);
        c6_0 = fma(vec4<f32>(v6_1), b1_0, c6_0);
        c7_0 = fma(vec4<f32>(v7_1), b1_0, c7_0);
        let b1_1 = subgroupBroadcast(bl, 5u);
        c0_1 = fma(vec4<f32>(v0_1), b1_1, c0_1);
        c1_1 = fma(vec4<f32>(v1_1), b1_1, c1_1);
        c2_1 = fma(vec4<f32>(v2_1), b1_1, c2_1);
        c3_1 = fma(vec4<f32>(v3_1), b1_1, c3_1);
        c4_1 = fma(vec4<f32>(v4_1), b1_1, c4_1);
        c5_1 = fma(vec4<f32>(v5_1), b1_1, c5_1);
        c6_1 = fma(vec4<f32>(v6_1), b1_1, c6_1);
        c7_1 = fma(vec4<f32>(v7_1), b1_1, c7_1);
        let b1_2 = subgroupBroadcast(bl, 6u);
        c0_2 = fma(vec4<f32>(v0_1), b1_2, c0_2);
        c1_2 = fma(vec4<f32>(v1_1), b1_2, c1_2);
        c2_2 = fma(vec4<f32>(v2_1), b1_2, c2_2);
        c3_2 = fma(vec4<f32>(v3_1), b1_2, c3_2);
        c4_2 = fma(vec4<f32>(v4_1), b1_2, c4_2);
        c5_2 = fma(vec4<f32>(v5_1), b1_2, c5_2);
        c6_2 = fma(vec4<f32>(v6_1), b1_2, c6_2);
        c7_2 = fma(vec4<f32>(v7_1), b1_2, c7_2);
        let b1_3 = subgroupBroadcast(bl, 7u);
        c0_3 = fma(vec4<f32>(v0_1), b1_3, c0_3);
        c1_3 = fma(vec4<f32>(v1_1), b1_3, c1_3);
        c2_3 = fma(vec4<f32>(v2_1), b1_3, c2_3);
        c3_3 = fma(vec4<f32>(v3_1), b1_3, c3_3);
        c4_3 = fma(vec4<f32>(v4_1), b1_3, c4_3);
        c5_3 = fma(vec4<f32>(v5_1), b1_3, c5_3);
        c6_3 = fma(vec4<f32>(v6_1), b1_3, c6_3);
        c7_3 = fma(vec4<f32>(v7_1), b1_3, c7_3);
    }
    let part = zc * c.co * ncols;
    if (r0 + 0u < ncols) {
        if (n0 + 0u < c.co) { dst[part + (n0 + 0u) * ncols + r0 + 0u] = c0_0.x; }
        if (n0 + 1u < c.co) { dst[part + (n0 + 1u) * ncols + r0 + 0u] = c0_0.y; }
        if (n0 + 2u < c.co) { dst[part + (n0 + 2u) * ncols + r0 + 0u] = c0_0.z; }
        if (n0 + 3u < c.co) { dst[part + (n0 + 3u) * ncols + r0 + 0u] = c0_0.w; }
        if (n0 + 4u < c.co) { dst[part + (n0 + 4u) * ncols + r0 + 0u] = c0_1.x; }
        if (n0 + 5u < c.co) { dst[part + (n0 + 5u) * ncols + r0 + 0u] = c0_1.y; }
        if (n0 + 6u < c.co) { dst[part + (n0 + 6u) * ncols + r0 + 0u] = c0_1.z; }
        if (n0 + 7u < c.co) { dst[part + (n0 + 7u) * ncols + r0 + 0u] = c0_1.w; }
        if (n0 + 8u < c.co) { dst[part + (n0 + 8u) * ncols + r0 + 0u] = c0_2.x; }
        if (n0 + 9u < c.co) { dst[part + (n0 + 9u) * ncols + r0 + 0u] = c0_2.y; }
        if (n0 + 10u < c.co) { dst[part + (n0 + 10u) * ncols + r0 + 0u] = c0_2.z; }
        if (n0 + 11u < c.co) { dst[part + (n0 + 11u) * ncols + r0 + 0u] = c0_2.w; }
        if (n0 + 12u < c.co) { dst[part + (n0 + 12u) * ncols + r0 + 0u] = c0_3.x; }
        if (n0 + 13u < c.co) { dst[part + (n0 + 13u) * ncols + r0 + 0u] = c0_3.y; }
        if (n0 + 14u < c.co) { dst[part + (n0 + 14u) * ncols + r0 + 0u] = c0_3.z; }
        if (n0 + 15u < c.co) { dst[part + (n0 + 15u) * ncols + r0 + 0u] = c0_3.w; }
    }
    if (r0 + 1u < ncols) {
        if (n0 + 0u < c.co) { dst[part + (n0 + 0u) * ncols + r0 + 1u] = c1_0.x; }
        if (n0 + 1u < c.co) { dst[part + (n0 + 1u) * ncols + r0 + 1u] = c1_0.y; }
        if (n0 + 2u < c.co) { dst[part + (n0 + 2u) * ncols + r0 + 1u] = c1_0.z; }
        if (n0 + 3u < c.co) { dst[part + (n0 + 3u) * ncols + r0 + 1u] = c1_0.w; }
        if (n0 + 4u < c.co) { dst[part + (n0 + 4u) * ncols + r0 + 1u] = c1_1.x; }
        if (n0 + 5u < c.co) { dst[part + (n0 + 5u) * ncols + r0 + 1u] = c1_1.y; }
        if (n0 + 6u < c.co) { dst[part + (n0 + 6u) * ncols + r0 + 1u] = c1_1.z; }
        if (n0 + 7u < c.co) { dst[part + (n0 + 7u) * ncols + r0 + 1u] = c1_1.w; }
        if (n0 + 8u < c.co) { dst[part + (n0 + 8u) * ncols + r0 + 1u] = c1_2.x; }
        if (n0 + 9u < c.co) { dst[part + (n0 + 9u) * ncols + r0 + 1u] = c1_2.y; }
        if (n0 + 10u < c.co) { dst[part + (n0 + 10u) * ncols + r0 + 1u] = c1_2.z; }
        if (n0 + 11u < c.co) { dst[part + (n0 + 11u) * ncols + r0 + 1u] = c1_2.w; }
        if (n0 + 12u < c.co) { dst[part + (n0 + 12u) * ncols + r0 + 1u] = c1_3.x; }
        if (n0 + 13u < c.co) { dst[part + (n0 + 13u) * ncols + r0 + 1u] = c1_3.y; }
        if (n0 + 14u < c.co) { dst[part + (n0 + 14u) * ncols + r0 + 1u] = c1_3.z; }
        if (n0 + 15u < c.co) { dst[part + (n0 + 15u) * ncols + r0 + 1u] = c1_3.w; }
    }
    if (r0 + 2u < ncols) {
        if (n0 + 0u < c.co) { dst[part + (n0 + 0u) * ncols + r0 + 2u] = c2_0.x; }
        if (n0 + 1u < c.co) { dst[part + (n0 + 1u) * ncols + r0 + 2u] = c2_0.y; }
        if (n0 + 2u < c.co) { dst[part + (n0 + 2u) * ncols + r0 + 2u] = c2_0.z; }
        if (n0 + 3u < c.co) { dst[part + (n0 + 3u) * ncols + r0 + 2u] = c2_0.w; }
        if (n0 + 4u < c.co) { dst[part + (n0 + 4u) * ncols + r0 + 2u] = c2_1.x; }
        if (n0 + 5u < c.co) { dst[part + (n0 + 5u) * ncols + r0 + 2u] = c2_1.y; }
        if (n0 + 6u < c.co) { dst[part + (n0 + 6u) * ncols + r0 + 2u] = c2_1.z; }
        if (n0 + 7u < c.co) { dst[part + (n0 + 7u) * ncols + r0 + 2u] = c2_1.w; }
        if (n0 + 8u < c.co) { dst[part + (n0 + 8u) * ncols + r0 + 2u] = c2_2.x; }
        if (n0 + 9u < c.co) { dst[part + (n0 + 9u) * ncols + r0 + 2u] = c2_2.y; }
        if (n0 + 10u < c.co) { dst[part + (n0 + 10u) * ncols + r0 + 2u] = c2_2.z; }
        if (n0 + 11u < c.co) { dst[part + (n0 + 11u) * ncols + r0 + 2u] = c2_2.w; }
        if (n0 + 12u < c.co) { dst[part + (n0 + 12u) * ncols + r0 + 2u] = c2_3.x; }
        if (n0 + 13u < c.co) { dst[part + (n0 + 13u) * ncols + r0 + 2u] = c2_3.y; }
        if (n0 + 14u < c.co) { dst[part + (n0 + 14u) * ncols + r0 + 2u] = c2_3.z; }
        if (n0 + 15u < c.co) { dst[part + (n0 + 15u) * ncols + r0 + 2u] = c2_3.w; }
    }
    if (r0 + 3u < ncols) {
        if (n0 + 0u < c.co) { dst[part + (n0 + 0u) * ncols + r0 + 3u] = c3_0.x; }
        if (n0 + 1u < c.co) { dst[part + (n0 + 1u) * ncols + r0 + 3u] = c3_0.y; }
        if (n0 + 2u < c.co) { dst[part + (n0 + 2u) * ncols + r0 + 3u] = c3_0.z; }
        if (n0 + 3u < c.co) { dst[part + (n0 + 3u) * ncols + r0 + 3u] = c3_0.w; }
        if (n0 + 4u < c.co) { dst[part + (n0 + 4u) * ncols + r0 + 3u] = c3_1.x; }
        if (n0 + 5u < c.co) { dst[part + (n0 + 5u) * ncols + r0 + 3u] = c3_1.y; }
        if (n0 + 6u < c.co) { dst[part + (n0 + 6u) * ncols + r0 + 3u] = c3_1.z; }
        if (n0 + 7u < c.co) { dst[part + (n0 + 7u) * ncols + r0 + 3u] = c3_1.w; }
        if (n0 + 8u < c.co) { dst[part + (n0 + 8u) * ncols + r0 + 3u] = c3_2.x; }
        if (n0 + 9u < c.co) { dst[part + (n0 + 9u) * ncols + r0 + 3u] = c3_2.y; }
        if (n0 + 10u < c.co) { dst[part + (n0 + 10u) * ncols + r0 + 3u] = c3_2.z; }
        if (n0 + 11u < c.co) { dst[part + (n0 + 11u) * ncols + r0 + 3u] = c3_2.w; }
        if (n0 + 12u < c.co) { dst[part + (n0 + 12u) * ncols + r0 + 3u] = c3_3.x; }
        if (n0 + 13u < c.co) { dst[part + (n0 + 13u) * ncols + r0 + 3u] = c3_3.y; }
        if (n0 + 14u < c.co) { dst[part + (n0 + 14u) * ncols + r0 + 3u] = c3_3.z; }
        if (n0 + 15u < c.co) { dst[part + (n0 + 15u) * ncols + r0 + 3u] = c3_3.w; }
    }
    if (r0 + 4u < ncols) {
        if (n0 + 0u < c.co) { dst[part + (n0 + 0u) * ncols + r0 + 4u] = c4_0.x; }
        if (n0 + 1u < c.co) { dst[part + (n0 + 1u) * ncols + r0 + 4u] = c4_0.y; }
        if (n0 + 2u < c.co) { dst[part + (n0 + 2u) * ncols + r0 + 4u] = c4_0.z; }
        if (n0 + 3u < c.co) { dst[part + (n0 + 3u) * ncols + r0 + 4u] = c4_0.w; }
        if (n0 + 4u < c.co) { dst[part + (n0 + 4u) * ncols + r0 + 4u] = c4_1.x; }
        if (n0 + 5u < c.co) { dst[part + (n0 + 5u) * ncols + r0 + 4u] = c4_1.y; }
        if (n0 + 6u < c.co) { dst[part + (n0 + 6u) * ncols + r0 + 4u] = c4_1.z; }
        if (n0 + 7u < c.co) { dst[part + (n0 + 7u) * ncols + r0 + 4u] = c4_1.w; }
        if (n0 + 8u < c.co) { dst[part + (n0 + 8u) * ncols + r0 + 4u] = c4_2.x; }
        if (n0 + 9u < c.co) { dst[part + (n0 + 9u) * ncols + r0 + 4u] = c4_2.y; }
        if (n0 + 10u < c.co) { dst[part + (n0 + 10u) * ncols + r0 + 4u] = c4_2.z; }
        if (n0 + 11u < c.co) { dst[part + (n0 + 11u) * ncols + r0 + 4u] = c4_2.w; }
        if (n0 + 12u < c.co) { dst[part + (n0 + 12u) * ncols + r0 + 4u] = c4_3.x; }
        if (n0 + 13u < c.co) { dst[part + (n0 + 13u) * ncols + r0 + 4u] = c4_3.y; }
        if (n0 + 14u < c.co) { dst[part + (n0 + 14u) * ncols + r0 + 4u] = c4_3.z; }
        if (n0 + 15u < c.co) { dst[part + (n0 + 15u) * ncols + r0 + 4u] = c4_3.w; }
    }
    if (r0 + 5u < ncols) {
        if (n0 + 0u < c.co) { dst[part + (n0 + 0u) * ncols + r0 + 5u] = c5_0.x; }
        if (n0 + 1u < c.co) { dst[part + (n0 + 1u) * ncols + r0 + 5u] = c5_0.y; }
        if (n0 + 2u < c.co) { dst[part + (n0 + 2u) * ncols + r0 + 5u] = c5_0.z; }
        if (n0 + 3u < c.co) { dst[part + (n0 + 3u) * ncols + r0 + 5u] = c5_0.w; }
        if (n0 + 4u < c.co) { dst[part + (n0 + 4u) * ncols + r0 + 5u] = c5_1.x; }
        if (n0 + 5u < c.co) { dst[part + (n0 + 5u) * ncols + r0 + 5u] = c5_1.y; }
        if (n0 + 6u < c.co) { dst[part + (n0 + 6u) * ncols + r0 + 5u] = c5_1.z; }
        if (n0 + 7u < c.co) { dst[part + (n0 + 7u) * ncols + r0 + 5u] = c5_1.w; }
        if (n0 + 8u < c.co) { dst[part + (n0 + 8u) * ncols + r0 + 5u] = c5_2.x; }
        if (n0 + 9u < c.co) { dst[part + (n0 + 9u) * ncols + r0 + 5u] = c5_2.y; }
        if (n0 + 10u < c.co) { dst[part + (n0 + 10u) * ncols + r0 + 5u] = c5_2.z; }
        if (n0 + 11u < c.co) { dst[part + (n0 + 11u) * ncols + r0 + 5u] = c5_2.w; }
        if (n0 + 12u < c.co) { dst[part + (n0 + 12u) * ncols + r0 + 5u] = c5_3.x; }
        if (n0 + 13u < c.co) { dst[part + (n0 + 13u) * ncols + r0 + 5u] = c5_3.y; }
        if (n0 + 14u < c.co) { dst[part + (n0 + 14u) * ncols + r0 + 5u] = c5_3.z; }
        if (n0 + 15u < c.co) { dst[part + (n0 + 15u) * ncols + r0 + 5u] = c5_3.w; }
    }
    if (r0 + 6u < ncols) {
        if (n0 + 0u < c.co) { dst[part + (n0 + 0u) * ncols + r0 + 6u] = c6_0.x; }
        if (n0 + 1u < c.co) { dst[part + (n0 + 1u) * ncols + r0 + 6u] = c6_0.y; }
        if (n0 + 2u < c.co) { dst[part + (n0 + 2u) * ncols + r0 + 6u] = c6_0.z; }
        if (n0 + 3u < c.co) { dst[part + (n0 + 3u) * ncols + r0 + 6u] = c6_0.w; }
        if (n0 + 4u < c.co) { dst[part + (n0 + 4u) * ncols + r0 + 6u] = c6_1.x; }
        if (n0 + 5u < c.co) { dst[part + (n0 + 5u) * ncols + r0 + 6u] = c6_1.y; }
        if (n0 + 6u < c.co) { dst[part + (n0 + 6u) * ncols + r0 + 6u] = c6_1.z; }
        if (n0 + 7u < c.co) { dst[part + (n0 + 7u) * ncols + r0 + 6u] = c6_1.w; }
        if (n0 + 8u < c.co) { dst[part + (n0 + 8u) * ncols + r0 + 6u] = c6_2.x; }
        if (n0 + 9u < c.co) { dst[part + (n0 + 9u) * ncols + r0 + 6u] = c6_2.y; }
        if (n0 + 10u < c.co) { dst[part + (n0 + 10u) * ncols + r0 + 6u] = c6_2.z; }
        if (n0 + 11u < c.co) { dst[part + (n0 + 11u) * ncols + r0 + 6u] = c6_2.w; }
        if (n0 + 12u < c.co) { dst[part + (n0 + 12u) * ncols + r0 + 6u] = c6_3.x; }
        if (n0 + 13u < c.co) { dst[part + (n0 + 13u) * ncols + r0 + 6u] = c6_3.y; }
        if (n0 + 14u < c.co) { dst[part + (n0 + 14u) * ncols + r0 + 6u] = c6_3.z; }
        if (n0 + 15u < c.co) { dst[part + (n0 + 15u) * ncols + r0 + 6u] = c6_3.w; }
    }
    if (r0 + 7u < ncols) {
        if (n0 + 0u < c.co) { dst[part + (n0 + 0u) * ncols + r0 + 7u] = c7_0.x; }
        if (n0 + 1u < c.co) { dst[part + (n0 + 1u) * ncols + r0 + 7u] = c7_0.y; }
        if (n0 + 2u < c.co) { dst[part + (n0 + 2u) * ncols + r0 + 7u] = c7_0.z; }
        if (n0 + 3u < c.co) { dst[part + (n0 + 3u) * ncols + r0 + 7u] = c7_0.w; }
        if (n0 + 4u < c.co) { dst[part + (n0 + 4u) * ncols + r0 + 7u] = c7_1.x; }
        if (n0 + 5u < c.co) { dst[part + (n0 + 5u) * ncols + r0 + 7u] = c7_1.y; }
        if (n0 + 6u < c.co) { dst[part + (n0 + 6u) * ncols + r0 + 7u] = c7_1.z; }
        if (n0 + 7u < c.co) { dst[part + (n0 + 7u) * ncols + r0 + 7u] = c7_1.w; }
        if (n0 + 8u < c.co) { dst[part + (n0 + 8u) * ncols + r0 + 7u] = c7_2.x; }
        if (n0 + 9u < c.co) { dst[part + (n0 + 9u) * ncols + r0 + 7u] = c7_2.y; }
        if (n0 + 10u < c.co) { dst[part + (n0 + 10u) * ncols + r0 + 7u] = c7_2.z; }
        if (n0 + 11u < c.co) { dst[part + (n0 + 11u) * ncols + r0 + 7u] = c7_2.w; }
        if (n0 + 12u < c.co) { dst[part + (n0 + 12u) * ncols + r0 + 7u] = c7_3.x; }
        if (n0 + 13u < c.co) { dst[part + (n0 + 13u) * ncols + r0 + 7u] = c7_3.y; }
        if (n0 + 14u < c.co) { dst[part + (n0 + 14u) * ncols + r0 + 7u] = c7_3.z; }
        if (n0 + 15u < c.co) { dst[part + (n0 + 15u) * ncols + r0 + 7u] = c7_3.w; }
    }
    }

}
