// Kernel-lab variant (engine/examples/conv_lab.rs, LAB_X=f16): the row-blocked 16-channel subgroup
// conv forward (engine/tests/snapshots/kernels/conv2d_subgroup.Forward.bias1.silu0.tn16.vw1.row1.wgsl)
// with x read as f16 pairs: each kernel row's 10 values of a channel come from 6 32-bit loads
// (unpack2x16float) instead of 10, shifted by one element when the row starts at an odd index.
// docs/experiments.md, "Packed f16 loads on lavapipe".
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

@group(0) @binding(1) var<storage, read> src: array<u32>; // f16 pairs     // x (forward, weight grad) or dy (data grad)
// weights [Co, Ci, KH, KW] (or vec4s of them transposed, see ConvSubgroupVariant::vw), or dy
// (weight grad)
@group(0) @binding(2) var<storage, read> wsrc: array<vec4<f32>>;
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
    let npix = c.n * ohw;
    let rb = min(r0, npix - 8u);
    let base = (rb / ohw) * c.ci * hw;
    let rr = rb % ohw;
    let py = i32(rr / c.ow) - c.pad;
    let col = i32(rr % c.ow) - c.pad;
    let rr0 = rr + 0u;
    let rr1 = rr + 1u;
    let rr2 = rr + 2u;
    let rr3 = rr + 3u;
    let rr4 = rr + 4u;
    let rr5 = rr + 5u;
    let rr6 = rr + 6u;
    let rr7 = rr + 7u;
    let cq = min(n0 / 4u + wq, c.co / 4u - 1u);
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
    for (var kh = 0u; kh < c.kh; kh++) {
        let y = py + i32(kh);
        let row_in = in_range(y, c.h);
        let ro = base + u32(max(y, 0)) * c.w;
        let in0 = row_in && in_range(col + 0, c.w);
        let o0 = select(0u, ro + u32(col + 0), in0);
        let m0 = select(0.0, 1.0, in0);
        let in1 = row_in && in_range(col + 1, c.w);
        let o1 = select(0u, ro + u32(col + 1), in1);
        let m1 = select(0.0, 1.0, in1);
        let in2 = row_in && in_range(col + 2, c.w);
        let o2 = select(0u, ro + u32(col + 2), in2);
        let m2 = select(0.0, 1.0, in2);
        let in3 = row_in && in_range(col + 3, c.w);
        let o3 = select(0u, ro + u32(col + 3), in3);
        let m3 = select(0.0, 1.0, in3);
        let in4 = row_in && in_range(col + 4, c.w);
        let o4 = select(0u, ro + u32(col + 4), in4);
        let m4 = select(0.0, 1.0, in4);
        let in5 = row_in && in_range(col + 5, c.w);
        let o5 = select(0u, ro + u32(col + 5), in5);
        let m5 = select(0.0, 1.0, in5);
        let in6 = row_in && in_range(col + 6, c.w);
        let o6 = select(0u, ro + u32(col + 6), in6);
        let m6 = select(0.0, 1.0, in6);
        let in7 = row_in && in_range(col + 7, c.w);
        let o7 = select(0u, ro + u32(col + 7), in7);
        let m7 = select(0.0, 1.0, in7);
        let in8 = row_in && in_range(col + 8, c.w);
        let o8 = select(0u, ro + u32(col + 8), in8);
        let m8 = select(0.0, 1.0, in8);
        let in9 = row_in && in_range(col + 9, c.w);
        let o9 = select(0u, ro + u32(col + 9), in9);
        let m9 = select(0.0, 1.0, in9);
        for (var r = 0u; r < c.ci; r += 2u) {
            let bl0 = wsrc[(min(r + 0u + kq, c.ci - 1u) * kk + kh * 3u + 0u) * (c.co / 4u) + cq];
            let bl1 = wsrc[(min(r + 0u + kq, c.ci - 1u) * kk + kh * 3u + 1u) * (c.co / 4u) + cq];
            let bl2 = wsrc[(min(r + 0u + kq, c.ci - 1u) * kk + kh * 3u + 2u) * (c.co / 4u) + cq];
            let so0 = r * hw;
            let e_0 = i32(ro + so0) + col;
            let od_0 = (e_0 & 1) != 0;
            let fw_0 = (e_0 - select(0, 1, od_0)) / 2;
            let w0_0 = unpack2x16float(src[u32(max(fw_0 + 0, 0))]);
            let w1_0 = unpack2x16float(src[u32(max(fw_0 + 1, 0))]);
            let w2_0 = unpack2x16float(src[u32(max(fw_0 + 2, 0))]);
            let w3_0 = unpack2x16float(src[u32(max(fw_0 + 3, 0))]);
            let w4_0 = unpack2x16float(src[u32(max(fw_0 + 4, 0))]);
            let w5_0 = unpack2x16float(src[u32(max(fw_0 + 5, 0))]);
            let x0_0 = select(w0_0.x, w0_0.y, od_0) * m0;
            let x1_0 = select(w0_0.y, w1_0.x, od_0) * m1;
            let x2_0 = select(w1_0.x, w1_0.y, od_0) * m2;
            let x3_0 = select(w1_0.y, w2_0.x, od_0) * m3;
            let x4_0 = select(w2_0.x, w2_0.y, od_0) * m4;
            let x5_0 = select(w2_0.y, w3_0.x, od_0) * m5;
            let x6_0 = select(w3_0.x, w3_0.y, od_0) * m6;
            let x7_0 = select(w3_0.y, w4_0.x, od_0) * m7;
            let x8_0 = select(w4_0.x, w4_0.y, od_0) * m8;
            let x9_0 = select(w4_0.y, w5_0.x, od_0) * m9;
            let b0_0_0 = subgroupBroadcast(bl0, 0u);
            c0_0 = fma(vec4<f32>(x0_0), b0_0_0, c0_0);
            c1_0 = fma(vec4<f32>(x1_0), b0_0_0, c1_0);
            c2_0 = fma(vec4<f32>(x2_0), b0_0_0, c2_0);
            c3_0 = fma(vec4<f32>(x3_0), b0_0_0, c3_0);
            c4_0 = fma(vec4<f32>(x4_0), b0_0_0, c4_0);
            c5_0 = fma(vec4<f32>(x5_0), b0_0_0, c5_0);
            c6_0 = fma(vec4<f32>(x6_0), b0_0_0, c6_0);
            c7_0 = fma(vec4<f32>(x7_0), b0_0_0, c7_0);
            let b0_0_1 = subgroupBroadcast(bl0, 1u);
            c0_1 = fma(vec4<f32>(x0_0), b0_0_1, c0_1);
            c1_1 = fma(vec4<f32>(x1_0), b0_0_1, c1_1);
            c2_1 = fma(vec4<f32>(x2_0), b0_0_1, c2_1);
            c3_1 = fma(vec4<f32>(x3_0), b0_0_1, c3_1);
            c4_1 = fma(vec4<f32>(x4_0), b0_0_1, c4_1);
            c5_1 = fma(vec4<f32>(x5_0), b0_0_1, c5_1);
            c6_1 = fma(vec4<f32>(x6_0), b0_0_1, c6_1);
            c7_1 = fma(vec4<f32>(x7_0), b0_0_1, c7_1);
            let b0_0_2 = subgroupBroadcast(bl0, 2u);
            c0_2 = fma(vec4<f32>(x0_0), b0_0_2, c0_2);
            c1_2 = fma(vec4<f32>(x1_0), b0_0_2, c1_2);
            c2_2 = fma(vec4<f32>(x2_0), b0_0_2, c2_2);
            c3_2 = fma(vec4<f32>(x3_0), b0_0_2, c3_2);
            c4_2 = fma(vec4<f32>(x4_0), b0_0_2, c4_2);
            c5_2 = fma(vec4<f32>(x5_0), b0_0_2, c5_2);
            c6_2 = fma(vec4<f32>(x6_0), b0_0_2, c6_2);
            c7_2 = fma(vec4<f32>(x7_0), b0_0_2, c7_2);
            let b0_0_3 = subgroupBroadcast(bl0, 3u);
            c0_3 = fma(vec4<f32>(x0_0), b0_0_3, c0_3);
            c1_3 = fma(vec4<f32>(x1_0), b0_0_3, c1_3);
            c2_3 = fma(vec4<f32>(x2_0), b0_0_3, c2_3);
            c3_3 = fma(vec4<f32>(x3_0), b0_0_3, c3_3);
            c4_3 = fma(vec4<f32>(x4_0), b0_0_3, c4_3);
            c5_3 = fma(vec4<f32>(x5_0), b0_0_3, c5_3);
            c6_3 = fma(vec4<f32>(x6_0), b0_0_3, c6_3);
            c7_3 = fma(vec4<f32>(x7_0), b0_0_3, c7_3);
            let b0_1_0 = subgroupBroadcast(bl1, 0u);
            c0_0 = fma(vec4<f32>(x1_0), b0_1_0, c0_0);
            c1_0 = fma(vec4<f32>(x2_0), b0_1_0, c1_0);
            c2_0 = fma(vec4<f32>(x3_0), b0_1_0, c2_0);
            c3_0 = fma(vec4<f32>(x4_0), b0_1_0, c3_0);
            c4_0 = fma(vec4<f32>(x5_0), b0_1_0, c4_0);
            c5_0 = fma(vec4<f32>(x6_0), b0_1_0, c5_0);
            c6_0 = fma(vec4<f32>(x7_0), b0_1_0, c6_0);
            c7_0 = fma(vec4<f32>(x8_0), b0_1_0, c7_0);
            let b0_1_1 = subgroupBroadcast(bl1, 1u);
            c0_1 = fma(vec4<f32>(x1_0), b0_1_1, c0_1);
            c1_1 = fma(vec4<f32>(x2_0), b0_1_1, c1_1);
            c2_1 = fma(vec4<f32>(x3_0), b0_1_1, c2_1);
            c3_1 = fma(vec4<f32>(x4_0), b0_1_1, c3_1);
            c4_1 = fma(vec4<f32>(x5_0), b0_1_1, c4_1);
            c5_1 = fma(vec4<f32>(x6_0), b0_1_1, c5_1);
            c6_1 = fma(vec4<f32>(x7_0), b0_1_1, c6_1);
            c7_1 = fma(vec4<f32>(x8_0), b0_1_1, c7_1);
            let b0_1_2 = subgroupBroadcast(bl1, 2u);
            c0_2 = fma(vec4<f32>(x1_0), b0_1_2, c0_2);
            c1_2 = fma(vec4<f32>(x2_0), b0_1_2, c1_2);
            c2_2 = fma(vec4<f32>(x3_0), b0_1_2, c2_2);
            c3_2 = fma(vec4<f32>(x4_0), b0_1_2, c3_2);
            c4_2 = fma(vec4<f32>(x5_0), b0_1_2, c4_2);
            c5_2 = fma(vec4<f32>(x6_0), b0_1_2, c5_2);
            c6_2 = fma(vec4<f32>(x7_0), b0_1_2, c6_2);
            c7_2 = fma(vec4<f32>(x8_0), b0_1_2, c7_2);
            let b0_1_3 = subgroupBroadcast(bl1, 3u);
            c0_3 = fma(vec4<f32>(x1_0), b0_1_3, c0_3);
            c1_3 = fma(vec4<f32>(x2_0), b0_1_3, c1_3);
            c2_3 = fma(vec4<f32>(x3_0), b0_1_3, c2_3);
            c3_3 = fma(vec4<f32>(x4_0), b0_1_3, c3_3);
            c4_3 = fma(vec4<f32>(x5_0), b0_1_3, c4_3);
            c5_3 = fma(vec4<f32>(x6_0), b0_1_3, c5_3);
            c6_3 = fma(vec4<f32>(x7_0), b0_1_3, c6_3);
            c7_3 = fma(vec4<f32>(x8_0), b0_1_3, c7_3);
            let b0_2_0 = subgroupBroadcast(bl2, 0u);
            c0_0 = fma(vec4<f32>(x2_0), b0_2_0, c0_0);
            c1_0 = fma(vec4<f32>(x3_0), b0_2_0, c1_0);
            c2_0 = fma(vec4<f32>(x4_0), b0_2_0, c2_0);
            c3_0 = fma(vec4<f32>(x5_0), b0_2_0, c3_0);
            c4_0 = fma(vec4<f32>(x6_0), b0_2_0, c4_0);
            c5_0 = fma(vec4<f32>(x7_0), b0_2_0, c5_0);
            c6_0 = fma(vec4<f32>(x8_0), b0_2_0, c6_0);
            c7_0 = fma(vec4<f32>(x9_0), b0_2_0, c7_0);
            let b0_2_1 = subgroupBroadcast(bl2, 1u);
            c0_1 = fma(vec4<f32>(x2_0), b0_2_1, c0_1);
            c1_1 = fma(vec4<f32>(x3_0), b0_2_1, c1_1);
            c2_1 = fma(vec4<f32>(x4_0), b0_2_1, c2_1);
            c3_1 = fma(vec4<f32>(x5_0), b0_2_1, c3_1);
            c4_1 = fma(vec4<f32>(x6_0), b0_2_1, c4_1);
            c5_1 = fma(vec4<f32>(x7_0), b0_2_1, c5_1);
            c6_1 = fma(vec4<f32>(x8_0), b0_2_1, c6_1);
            c7_1 = fma(vec4<f32>(x9_0), b0_2_1, c7_1);
            let b0_2_2 = subgroupBroadcast(bl2, 2u);
            c0_2 = fma(vec4<f32>(x2_0), b0_2_2, c0_2);
            c1_2 = fma(vec4<f32>(x3_0), b0_2_2, c1_2);
            c2_2 = fma(vec4<f32>(x4_0), b0_2_2, c2_2);
            c3_2 = fma(vec4<f32>(x5_0), b0_2_2, c3_2);
            c4_2 = fma(vec4<f32>(x6_0), b0_2_2, c4_2);
            c5_2 = fma(vec4<f32>(x7_0), b0_2_2, c5_2);
            c6_2 = fma(vec4<f32>(x8_0), b0_2_2, c6_2);
            c7_2 = fma(vec4<f32>(x9_0), b0_2_2, c7_2);
            let b0_2_3 = subgroupBroadcast(bl2, 3u);
            c0_3 = fma(vec4<f32>(x2_0), b0_2_3, c0_3);
            c1_3 = fma(vec4<f32>(x3_0), b0_2_3, c1_3);
            c2_3 = fma(vec4<f32>(x4_0), b0_2_3, c2_3);
            c3_3 = fma(vec4<f32>(x5_0), b0_2_3, c3_3);
            c4_3 = fma(vec4<f32>(x6_0), b0_2_3, c4_3);
            c5_3 = fma(vec4<f32>(x7_0), b0_2_3, c5_3);
            c6_3 = fma(vec4<f32>(x8_0), b0_2_3, c6_3);
            c7_3 = fma(vec4<f32>(x9_0), b0_2_3, c7_3);
            let so1 = min(r + 1u, c.ci - 1u) * hw;
            let ok1 = select(0.0, 1.0, r + 1u < c.ci);
            let e_1 = i32(ro + so1) + col;
            let od_1 = (e_1 & 1) != 0;
            let fw_1 = (e_1 - select(0, 1, od_1)) / 2;
            let w0_1 = unpack2x16float(src[u32(max(fw_1 + 0, 0))]);
            let w1_1 = unpack2x16float(src[u32(max(fw_1 + 1, 0))]);
            let w2_1 = unpack2x16float(src[u32(max(fw_1 + 2, 0))]);
            let w3_1 = unpack2x16float(src[u32(max(fw_1 + 3, 0))]);
            let w4_1 = unpack2x16float(src[u32(max(fw_1 + 4, 0))]);
            let w5_1 = unpack2x16float(src[u32(max(fw_1 + 5, 0))]);
            let x0_1 = select(w0_1.x, w0_1.y, od_1) * m0 * ok1;
            let x1_1 = select(w0_1.y, w1_1.x, od_1) * m1 * ok1;
            let x2_1 = select(w1_1.x, w1_1.y, od_1) * m2 * ok1;
            let x3_1 = select(w1_1.y, w2_1.x, od_1) * m3 * ok1;
            let x4_1 = select(w2_1.x, w2_1.y, od_1) * m4 * ok1;
            let x5_1 = select(w2_1.y, w3_1.x, od_1) * m5 * ok1;
            let x6_1 = select(w3_1.x, w3_1.y, od_1) * m6 * ok1;
            let x7_1 = select(w3_1.y, w4_1.x, od_1) * m7 * ok1;
            let x8_1 = select(w4_1.x, w4_1.y, od_1) * m8 * ok1;
            let x9_1 = select(w4_1.y, w5_1.x, od_1) * m9 * ok1;
            let b1_0_0 = subgroupBroadcast(bl0, 4u);
            c0_0 = fma(vec4<f32>(x0_1), b1_0_0, c0_0);
            c1_0 = fma(vec4<f32>(x1_1), b1_0_0, c1_0);
            c2_0 = fma(vec4<f32>(x2_1), b1_0_0, c2_0);
            c3_0 = fma(vec4<f32>(x3_1), b1_0_0, c3_0);
            c4_0 = fma(vec4<f32>(x4_1), b1_0_0, c4_0);
            c5_0 = fma(vec4<f32>(x5_1), b1_0_0, c5_0);
            c6_0 = fma(vec4<f32>(x6_1), b1_0_0, c6_0);
            c7_0 = fma(vec4<f32>(x7_1), b1_0_0, c7_0);
            let b1_0_1 = subgroupBroadcast(bl0, 5u);
            c0_1 = fma(vec4<f32>(x0_1), b1_0_1, c0_1);
            c1_1 = fma(vec4<f32>(x1_1), b1_0_1, c1_1);
            c2_1 = fma(vec4<f32>(x2_1), b1_0_1, c2_1);
            c3_1 = fma(vec4<f32>(x3_1), b1_0_1, c3_1);
            c4_1 = fma(vec4<f32>(x4_1), b1_0_1, c4_1);
            c5_1 = fma(vec4<f32>(x5_1), b1_0_1, c5_1);
            c6_1 = fma(vec4<f32>(x6_1), b1_0_1, c6_1);
            c7_1 = fma(vec4<f32>(x7_1), b1_0_1, c7_1);
            let b1_0_2 = subgroupBroadcast(bl0, 6u);
            c0_2 = fma(vec4<f32>(x0_1), b1_0_2, c0_2);
            c1_2 = fma(vec4<f32>(x1_1), b1_0_2, c1_2);
            c2_2 = fma(vec4<f32>(x2_1), b1_0_2, c2_2);
            c3_2 = fma(vec4<f32>(x3_1), b1_0_2, c3_2);
            c4_2 = fma(vec4<f32>(x4_1), b1_0_2, c4_2);
            c5_2 = fma(vec4<f32>(x5_1), b1_0_2, c5_2);
            c6_2 = fma(vec4<f32>(x6_1), b1_0_2, c6_2);
            c7_2 = fma(vec4<f32>(x7_1), b1_0_2, c7_2);
            let b1_0_3 = subgroupBroadcast(bl0, 7u);
            c0_3 = fma(vec4<f32>(x0_1), b1_0_3, c0_3);
            c1_3 = fma(vec4<f32>(x1_1), b1_0_3, c1_3);
            c2_3 = fma(vec4<f32>(x2_1), b1_0_3, c2_3);
            c3_3 = fma(vec4<f32>(x3_1), b1_0_3, c3_3);
            c4_3 = fma(vec4<f32>(x4_1), b1_0_3, c4_3);
            c5_3 = fma(vec4<f32>(x5_1), b1_0_3, c5_3);
            c6_3 = fma(vec4<f32>(x6_1), b1_0_3, c6_3);
            c7_3 = fma(vec4<f32>(x7_1), b1_0_3, c7_3);
            let b1_1_0 = subgroupBroadcast(bl1, 4u);
            c0_0 = fma(vec4<f32>(x1_1), b1_1_0, c0_0);
            c1_0 = fma(vec4<f32>(x2_1), b1_1_0, c1_0);
            c2_0 = fma(vec4<f32>(x3_1), b1_1_0, c2_0);
            c3_0 = fma(vec4<f32>(x4_1), b1_1_0, c3_0);
            c4_0 = fma(vec4<f32>(x5_1), b1_1_0, c4_0);
            c5_0 = fma(vec4<f32>(x6_1), b1_1_0, c5_0);
            c6_0 = fma(vec4<f32>(x7_1), b1_1_0, c6_0);
            c7_0 = fma(vec4<f32>(x8_1), b1_1_0, c7_0);
            let b1_1_1 = subgroupBroadcast(bl1, 5u);
            c0_1 = fma(vec4<f32>(x1_1), b1_1_1, c0_1);
            c1_1 = fma(vec4<f32>(x2_1), b1_1_1, c1_1);
            c2_1 = fma(vec4<f32>(x3_1), b1_1_1, c2_1);
            c3_1 = fma(vec4<f32>(x4_1), b1_1_1, c3_1);
            c4_1 = fma(vec4<f32>(x5_1), b1_1_1, c4_1);
            c5_1 = fma(vec4<f32>(x6_1), b1_1_1, c5_1);
            c6_1 = fma(vec4<f32>(x7_1), b1_1_1, c6_1);
            c7_1 = fma(vec4<f32>(x8_1), b1_1_1, c7_1);
            let b1_1_2 = subgroupBroadcast(bl1, 6u);
            c0_2 = fma(vec4<f32>(x1_1), b1_1_2, c0_2);
            c1_2 = fma(vec4<f32>(x2_1), b1_1_2, c1_2);
            c2_2 = fma(vec4<f32>(x3_1), b1_1_2, c2_2);
            c3_2 = fma(vec4<f32>(x4_1), b1_1_2, c3_2);
            c4_2 = fma(vec4<f32>(x5_1), b1_1_2, c4_2);
            c5_2 = fma(vec4<f32>(x6_1), b1_1_2, c5_2);
            c6_2 = fma(vec4<f32>(x7_1), b1_1_2, c6_2);
            c7_2 = fma(vec4<f32>(x8_1), b1_1_2, c7_2);
            let b1_1_3 = subgroupBroadcast(bl1, 7u);
            c0_3 = fma(vec4<f32>(x1_1), b1_1_3, c0_3);
            c1_3 = fma(vec4<f32>(x2_1), b1_1_3, c1_3);
            c2_3 = fma(vec4<f32>(x3_1), b1_1_3, c2_3);
            c3_3 = fma(vec4<f32>(x4_1), b1_1_3, c3_3);
            c4_3 = fma(vec4<f32>(x5_1), b1_1_3, c4_3);
            c5_3 = fma(vec4<f32>(x6_1), b1_1_3, c5_3);
            c6_3 = fma(vec4<f32>(x7_1), b1_1_3, c6_3);
            c7_3 = fma(vec4<f32>(x8_1), b1_1_3, c7_3);
            let b1_2_0 = subgroupBroadcast(bl2, 4u);
            c0_0 = fma(vec4<f32>(x2_1), b1_2_0, c0_0);
            c1_0 = fma(vec4<f32>(x3_1), b1_2_0, c1_0);
            c2_0 = fma(vec4<f32>(x4_1), b1_2_0, c2_0);
            c3_0 = fma(vec4<f32>(x5_1), b1_2_0, c3_0);
            c4_0 = fma(vec4<f32>(x6_1), b1_2_0, c4_0);
            c5_0 = fma(vec4<f32>(x7_1), b1_2_0, c5_0);
            c6_0 = fma(vec4<f32>(x8_1), b1_2_0, c6_0);
            c7_0 = fma(vec4<f32>(x9_1), b1_2_0, c7_0);
            let b1_2_1 = subgroupBroadcast(bl2, 5u);
            c0_1 = fma(vec4<f32>(x2_1), b1_2_1, c0_1);
            c1_1 = fma(vec4<f32>(x3_1), b1_2_1, c1_1);
            c2_1 = fma(vec4<f32>(x4_1), b1_2_1, c2_1);
            c3_1 = fma(vec4<f32>(x5_1), b1_2_1, c3_1);
            c4_1 = fma(vec4<f32>(x6_1), b1_2_1, c4_1);
            c5_1 = fma(vec4<f32>(x7_1), b1_2_1, c5_1);
            c6_1 = fma(vec4<f32>(x8_1), b1_2_1, c6_1);
            c7_1 = fma(vec4<f32>(x9_1), b1_2_1, c7_1);
            let b1_2_2 = subgroupBroadcast(bl2, 6u);
            c0_2 = fma(vec4<f32>(x2_1), b1_2_2, c0_2);
            c1_2 = fma(vec4<f32>(x3_1), b1_2_2, c1_2);
            c2_2 = fma(vec4<f32>(x4_1), b1_2_2, c2_2);
            c3_2 = fma(vec4<f32>(x5_1), b1_2_2, c3_2);
            c4_2 = fma(vec4<f32>(x6_1), b1_2_2, c4_2);
            c5_2 = fma(vec4<f32>(x7_1), b1_2_2, c5_2);
            c6_2 = fma(vec4<f32>(x8_1), b1_2_2, c6_2);
            c7_2 = fma(vec4<f32>(x9_1), b1_2_2, c7_2);
            let b1_2_3 = subgroupBroadcast(bl2, 7u);
            c0_3 = fma(vec4<f32>(x2_1), b1_2_3, c0_3);
            c1_3 = fma(vec4<f32>(x3_1), b1_2_3, c1_3);
            c2_3 = fma(vec4<f32>(x4_1), b1_2_3, c2_3);
            c3_3 = fma(vec4<f32>(x5_1), b1_2_3, c3_3);
            c4_3 = fma(vec4<f32>(x6_1), b1_2_3, c4_3);
            c5_3 = fma(vec4<f32>(x7_1), b1_2_3, c5_3);
            c6_3 = fma(vec4<f32>(x8_1), b1_2_3, c6_3);
            c7_3 = fma(vec4<f32>(x9_1), b1_2_3, c7_3);
        }
    }
    let bias0 = vec4<f32>(bias[min(n0 + 0u, c.co - 1u)], bias[min(n0 + 1u, c.co - 1u)], bias[min(n0 + 2u, c.co - 1u)], bias[min(n0 + 3u, c.co - 1u)]);
    let bias1 = vec4<f32>(bias[min(n0 + 4u, c.co - 1u)], bias[min(n0 + 5u, c.co - 1u)], bias[min(n0 + 6u, c.co - 1u)], bias[min(n0 + 7u, c.co - 1u)]);
    let bias2 = vec4<f32>(bias[min(n0 + 8u, c.co - 1u)], bias[min(n0 + 9u, c.co - 1u)], bias[min(n0 + 10u, c.co - 1u)], bias[min(n0 + 11u, c.co - 1u)]);
    let bias3 = vec4<f32>(bias[min(n0 + 12u, c.co - 1u)], bias[min(n0 + 13u, c.co - 1u)], bias[min(n0 + 14u, c.co - 1u)], bias[min(n0 + 15u, c.co - 1u)]);
    if (r0 + 0u < npix) {
        let img0 = (r0 + 0u) / ohw;
        if (n0 + 0u < c.co) {
            store_forward((img0 * c.co + n0 + 0u) * ohw + rr0, c0_0.x + bias0.x);
        }
        if (n0 + 1u < c.co) {
            store_forward((img0 * c.co + n0 + 1u) * ohw + rr0, c0_0.y + bias0.y);
        }
        if (n0 + 2u < c.co) {
            store_forward((img0 * c.co + n0 + 2u) * ohw + rr0, c0_0.z + bias0.z);
        }
        if (n0 + 3u < c.co) {
            store_forward((img0 * c.co + n0 + 3u) * ohw + rr0, c0_0.w + bias0.w);
        }
        if (n0 + 4u < c.co) {
            store_forward((img0 * c.co + n0 + 4u) * ohw + rr0, c0_1.x + bias1.x);
        }
        if (n0 + 5u < c.co) {
            store_forward((img0 * c.co + n0 + 5u) * ohw + rr0, c0_1.y + bias1.y);
        }
        if (n0 + 6u < c.co) {
            store_forward((img0 * c.co + n0 + 6u) * ohw + rr0, c0_1.z + bias1.z);
        }
        if (n0 + 7u < c.co) {
            store_forward((img0 * c.co + n0 + 7u) * ohw + rr0, c0_1.w + bias1.w);
        }
        if (n0 + 8u < c.co) {
            store_forward((img0 * c.co + n0 + 8u) * ohw + rr0, c0_2.x + bias2.x);
        }
        if (n0 + 9u < c.co) {
            store_forward((img0 * c.co + n0 + 9u) * ohw + rr0, c0_2.y + bias2.y);
        }
        if (n0 + 10u < c.co) {
            store_forward((img0 * c.co + n0 + 10u) * ohw + rr0, c0_2.z + bias2.z);
        }
        if (n0 + 11u < c.co) {
            store_forward((img0 * c.co + n0 + 11u) * ohw + rr0, c0_2.w + bias2.w);
        }
        if (n0 + 12u < c.co) {
            store_forward((img0 * c.co + n0 + 12u) * ohw + rr0, c0_3.x + bias3.x);
        }
        if (n0 + 13u < c.co) {
            store_forward((img0 * c.co + n0 + 13u) * ohw + rr0, c0_3.y + bias3.y);
        }
        if (n0 + 14u < c.co) {
            store_forward((img0 * c.co + n0 + 14u) * ohw + rr0, c0_3.z + bias3.z);
        }
        if (n0 + 15u < c.co) {
            store_forward((img0 * c.co + n0 + 15u) * ohw + rr0, c0_3.w + bias3.w);
        }
    }
    if (r0 + 1u < npix) {
        let img1 = (r0 + 1u) / ohw;
        if (n0 + 0u < c.co) {
            store_forward((img1 * c.co + n0 + 0u) * ohw + rr1, c1_0.x + bias0.x);
        }
        if (n0 + 1u < c.co) {
            store_forward((img1 * c.co + n0 + 1u) * ohw + rr1, c1_0.y + bias0.y);
        }
        if (n0 + 2u < c.co) {
            store_forward((img1 * c.co + n0 + 2u) * ohw + rr1, c1_0.z + bias0.z);
        }
        if (n0 + 3u < c.co) {
            store_forward((img1 * c.co + n0 + 3u) * ohw + rr1, c1_0.w + bias0.w);
        }
        if (n0 + 4u < c.co) {
            store_forward((img1 * c.co + n0 + 4u) * ohw + rr1, c1_1.x + bias1.x);
        }
        if (n0 + 5u < c.co) {
            store_forward((img1 * c.co + n0 + 5u) * ohw + rr1, c1_1.y + bias1.y);
        }
        if (n0 + 6u < c.co) {
            store_forward((img1 * c.co + n0 + 6u) * ohw + rr1, c1_1.z + bias1.z);
        }
        if (n0 + 7u < c.co) {
            store_forward((img1 * c.co + n0 + 7u) * ohw + rr1, c1_1.w + bias1.w);
        }
        if (n0 + 8u < c.co) {
            store_forward((img1 * c.co + n0 + 8u) * ohw + rr1, c1_2.x + bias2.x);
        }
        if (n0 + 9u < c.co) {
            store_forward((img1 * c.co + n0 + 9u) * ohw + rr1, c1_2.y + bias2.y);
        }
        if (n0 + 10u < c.co) {
            store_forward((img1 * c.co + n0 + 10u) * ohw + rr1, c1_2.z + bias2.z);
        }
        if (n0 + 11u < c.co) {
            store_forward((img1 * c.co + n0 + 11u) * ohw + rr1, c1_2.w + bias2.w);
        }
        if (n0 + 12u < c.co) {
            store_forward((img1 * c.co + n0 + 12u) * ohw + rr1, c1_3.x + bias3.x);
        }
        if (n0 + 13u < c.co) {
            store_forward((img1 * c.co + n0 + 13u) * ohw + rr1, c1_3.y + bias3.y);
        }
        if (n0 + 14u < c.co) {
            store_forward((img1 * c.co + n0 + 14u) * ohw + rr1, c1_3.z + bias3.z);
        }
        if (n0 + 15u < c.co) {
            store_forward((img1 * c.co + n0 + 15u) * ohw + rr1, c1_3.w + bias3.w);
        }
    }
    if (r0 + 2u < npix) {
        let img2 = (r0 + 2u) / ohw;
        if (n0 + 0u < c.co) {
            store_forward((img2 * c.co + n0 + 0u) * ohw + rr2, c2_0.x + bias0.x);
        }
        if (n0 + 1u < c.co) {
            store_forward((img2 * c.co + n0 + 1u) * ohw + rr2, c2_0.y + bias0.y);
        }
        if (n0 + 2u < c.co) {
            store_forward((img2 * c.co + n0 + 2u) * ohw + rr2, c2_0.z + bias0.z);
        }
        if (n0 + 3u < c.co) {
            store_forward((img2 * c.co + n0 + 3u) * ohw + rr2, c2_0.w + bias0.w);
        }
        if (n0 + 4u < c.co) {
            store_forward((img2 * c.co + n0 + 4u) * ohw + rr2, c2_1.x + bias1.x);
        }
        if (n0 + 5u < c.co) {
            store_forward((img2 * c.co + n0 + 5u) * ohw + rr2, c2_1.y + bias1.y);
        }
        if (n0 + 6u < c.co) {
            store_forward((img2 * c.co + n0 + 6u) * ohw + rr2, c2_1.z + bias1.z);
        }
        if (n0 + 7u < c.co) {
            store_forward((img2 * c.co + n0 + 7u) * ohw + rr2, c2_1.w + bias1.w);
        }
        if (n0 + 8u < c.co) {
            store_forward((img2 * c.co + n0 + 8u) * ohw + rr2, c2_2.x + bias2.x);
        }
        if (n0 + 9u < c.co) {
            store_forward((img2 * c.co + n0 + 9u) * ohw + rr2, c2_2.y + bias2.y);
        }
        if (n0 + 10u < c.co) {
            store_forward((img2 * c.co + n0 + 10u) * ohw + rr2, c2_2.z + bias2.z);
        }
        if (n0 + 11u < c.co) {
            store_forward((img2 * c.co + n0 + 11u) * ohw + rr2, c2_2.w + bias2.w);
        }
        if (n0 + 12u < c.co) {
            store_forward((img2 * c.co + n0 + 12u) * ohw + rr2, c2_3.x + bias3.x);
        }
        if (n0 + 13u < c.co) {
            store_forward((img2 * c.co + n0 + 13u) * ohw + rr2, c2_3.y + bias3.y);
        }
        if (n0 + 14u < c.co) {
            store_forward((img2 * c.co + n0 + 14u) * ohw + rr2, c2_3.z + bias3.z);
        }
        if (n0 + 15u < c.co) {
            store_forward((img2 * c.co + n0 + 15u) * ohw + rr2, c2_3.w + bias3.w);
        }
    }
    if (r0 + 3u < npix) {
        let img3 = (r0 + 3u) / ohw;
        if (n0 + 0u < c.co) {
            store_forward((img3 * c.co + n0 + 0u) * ohw + rr3, c3_0.x + bias0.x);
        }
        if (n0 + 1u < c.co) {
            store_forward((img3 * c.co + n0 + 1u) * ohw + rr3, c3_0.y + bias0.y);
        }
        if (n0 + 2u < c.co) {
            store_forward((img3 * c.co + n0 + 2u) * ohw + rr3, c3_0.z + bias0.z);
        }
        if (n0 + 3u < c.co) {
            store_forward((img3 * c.co + n0 + 3u) * ohw + rr3, c3_0.w + bias0.w);
        }
        if (n0 + 4u < c.co) {
            store_forward((img3 * c.co + n0 + 4u) * ohw + rr3, c3_1.x + bias1.x);
        }
        if (n0 + 5u < c.co) {
            store_forward((img3 * c.co + n0 + 5u) * ohw + rr3, c3_1.y + bias1.y);
        }
        if (n0 + 6u < c.co) {
            store_forward((img3 * c.co + n0 + 6u) * ohw + rr3, c3_1.z + bias1.z);
        }
        if (n0 + 7u < c.co) {
            store_forward((img3 * c.co + n0 + 7u) * ohw + rr3, c3_1.w + bias1.w);
        }
        if (n0 + 8u < c.co) {
            store_forward((img3 * c.co + n0 + 8u) * ohw + rr3, c3_2.x + bias2.x);
        }
        if (n0 + 9u < c.co) {
            store_forward((img3 * c.co + n0 + 9u) * ohw + rr3, c3_2.y + bias2.y);
        }
        if (n0 + 10u < c.co) {
            store_forward((img3 * c.co + n0 + 10u) * ohw + rr3, c3_2.z + bias2.z);
        }
        if (n0 + 11u < c.co) {
            store_forward((img3 * c.co + n0 + 11u) * ohw + rr3, c3_2.w + bias2.w);
        }
        if (n0 + 12u < c.co) {
            store_forward((img3 * c.co + n0 + 12u) * ohw + rr3, c3_3.x + bias3.x);
        }
        if (n0 + 13u < c.co) {
            store_forward((img3 * c.co + n0 + 13u) * ohw + rr3, c3_3.y + bias3.y);
        }
        if (n0 + 14u < c.co) {
            store_forward((img3 * c.co + n0 + 14u) * ohw + rr3, c3_3.z + bias3.z);
        }
        if (n0 + 15u < c.co) {
            store_forward((img3 * c.co + n0 + 15u) * ohw + rr3, c3_3.w + bias3.w);
        }
    }
    if (r0 + 4u < npix) {
        let img4 = (r0 + 4u) / ohw;
        if (n0 + 0u < c.co) {
            store_forward((img4 * c.co + n0 + 0u) * ohw + rr4, c4_0.x + bias0.x);
        }
        if (n0 + 1u < c.co) {
            store_forward((img4 * c.co + n0 + 1u) * ohw + rr4, c4_0.y + bias0.y);
        }
        if (n0 + 2u < c.co) {
            store_forward((img4 * c.co + n0 + 2u) * ohw + rr4, c4_0.z + bias0.z);
        }
        if (n0 + 3u < c.co) {
            store_forward((img4 * c.co + n0 + 3u) * ohw + rr4, c4_0.w + bias0.w);
        }
        if (n0 + 4u < c.co) {
            store_forward((img4 * c.co + n0 + 4u) * ohw + rr4, c4_1.x + bias1.x);
        }
        if (n0 + 5u < c.co) {
            store_forward((img4 * c.co + n0 + 5u) * ohw + rr4, c4_1.y + bias1.y);
        }
        if (n0 + 6u < c.co) {
            store_forward((img4 * c.co + n0 + 6u) * ohw + rr4, c4_1.z + bias1.z);
        }
        if (n0 + 7u < c.co) {
            store_forward((img4 * c.co + n0 + 7u) * ohw + rr4, c4_1.w + bias1.w);
        }
        if (n0 + 8u < c.co) {
            store_forward((img4 * c.co + n0 + 8u) * ohw + rr4, c4_2.x + bias2.x);
        }
        if (n0 + 9u < c.co) {
            store_forward((img4 * c.co + n0 + 9u) * ohw + rr4, c4_2.y + bias2.y);
        }
        if (n0 + 10u < c.co) {
            store_forward((img4 * c.co + n0 + 10u) * ohw + rr4, c4_2.z + bias2.z);
        }
        if (n0 + 11u < c.co) {
            store_forward((img4 * c.co + n0 + 11u) * ohw + rr4, c4_2.w + bias2.w);
        }
        if (n0 + 12u < c.co) {
            store_forward((img4 * c.co + n0 + 12u) * ohw + rr4, c4_3.x + bias3.x);
        }
        if (n0 + 13u < c.co) {
            store_forward((img4 * c.co + n0 + 13u) * ohw + rr4, c4_3.y + bias3.y);
        }
        if (n0 + 14u < c.co) {
            store_forward((img4 * c.co + n0 + 14u) * ohw + rr4, c4_3.z + bias3.z);
        }
        if (n0 + 15u < c.co) {
            store_forward((img4 * c.co + n0 + 15u) * ohw + rr4, c4_3.w + bias3.w);
        }
    }
    if (r0 + 5u < npix) {
        let img5 = (r0 + 5u) / ohw;
        if (n0 + 0u < c.co) {
            store_forward((img5 * c.co + n0 + 0u) * ohw + rr5, c5_0.x + bias0.x);
        }
        if (n0 + 1u < c.co) {
            store_forward((img5 * c.co + n0 + 1u) * ohw + rr5, c5_0.y + bias0.y);
        }
        if (n0 + 2u < c.co) {
            store_forward((img5 * c.co + n0 + 2u) * ohw + rr5, c5_0.z + bias0.z);
        }
        if (n0 + 3u < c.co) {
            store_forward((img5 * c.co + n0 + 3u) * ohw + rr5, c5_0.w + bias0.w);
        }
        if (n0 + 4u < c.co) {
            store_forward((img5 * c.co + n0 + 4u) * ohw + rr5, c5_1.x + bias1.x);
        }
        if (n0 + 5u < c.co) {
            store_forward((img5 * c.co + n0 + 5u) * ohw + rr5, c5_1.y + bias1.y);
        }
        if (n0 + 6u < c.co) {
            store_forward((img5 * c.co + n0 + 6u) * ohw + rr5, c5_1.z + bias1.z);
        }
        if (n0 + 7u < c.co) {
            store_forward((img5 * c.co + n0 + 7u) * ohw + rr5, c5_1.w + bias1.w);
        }
        if (n0 + 8u < c.co) {
            store_forward((img5 * c.co + n0 + 8u) * ohw + rr5, c5_2.x + bias2.x);
        }
        if (n0 + 9u < c.co) {
            store_forward((img5 * c.co + n0 + 9u) * ohw + rr5, c5_2.y + bias2.y);
        }
        if (n0 + 10u < c.co) {
            store_forward((img5 * c.co + n0 + 10u) * ohw + rr5, c5_2.z + bias2.z);
        }
        if (n0 + 11u < c.co) {
            store_forward((img5 * c.co + n0 + 11u) * ohw + rr5, c5_2.w + bias2.w);
        }
        if (n0 + 12u < c.co) {
            store_forward((img5 * c.co + n0 + 12u) * ohw + rr5, c5_3.x + bias3.x);
        }
        if (n0 + 13u < c.co) {
            store_forward((img5 * c.co + n0 + 13u) * ohw + rr5, c5_3.y + bias3.y);
        }
        if (n0 + 14u < c.co) {
            store_forward((img5 * c.co + n0 + 14u) * ohw + rr5, c5_3.z + bias3.z);
        }
        if (n0 + 15u < c.co) {
            store_forward((img5 * c.co + n0 + 15u) * ohw + rr5, c5_3.w + bias3.w);
        }
    }
    if (r0 + 6u < npix) {
        let img6 = (r0 + 6u) / ohw;
        if (n0 + 0u < c.co) {
            store_forward((img6 * c.co + n0 + 0u) * ohw + rr6, c6_0.x + bias0.x);
        }
        if (n0 + 1u < c.co) {
            store_forward((img6 * c.co + n0 + 1u) * ohw + rr6, c6_0.y + bias0.y);
        }
        if (n0 + 2u < c.co) {
            store_forward((img6 * c.co + n0 + 2u) * ohw + rr6, c6_0.z + bias0.z);
        }
        if (n0 + 3u < c.co) {
            store_forward((img6 * c.co + n0 + 3u) * ohw + rr6, c6_0.w + bias0.w);
        }
        if (n0 + 4u < c.co) {
            store_forward((img6 * c.co + n0 + 4u) * ohw + rr6, c6_1.x + bias1.x);
        }
        if (n0 + 5u < c.co) {
            store_forward((img6 * c.co + n0 + 5u) * ohw + rr6, c6_1.y + bias1.y);
        }
        if (n0 + 6u < c.co) {
            store_forward((img6 * c.co + n0 + 6u) * ohw + rr6, c6_1.z + bias1.z);
        }
        if (n0 + 7u < c.co) {
            store_forward((img6 * c.co + n0 + 7u) * ohw + rr6, c6_1.w + bias1.w);
        }
        if (n0 + 8u < c.co) {
            store_forward((img6 * c.co + n0 + 8u) * ohw + rr6, c6_2.x + bias2.x);
        }
        if (n0 + 9u < c.co) {
            store_forward((img6 * c.co + n0 + 9u) * ohw + rr6, c6_2.y + bias2.y);
        }
        if (n0 + 10u < c.co) {
            store_forward((img6 * c.co + n0 + 10u) * ohw + rr6, c6_2.z + bias2.z);
        }
        if (n0 + 11u < c.co) {
            store_forward((img6 * c.co + n0 + 11u) * ohw + rr6, c6_2.w + bias2.w);
        }
        if (n0 + 12u < c.co) {
            store_forward((img6 * c.co + n0 + 12u) * ohw + rr6, c6_3.x + bias3.x);
        }
        if (n0 + 13u < c.co) {
            store_forward((img6 * c.co + n0 + 13u) * ohw + rr6, c6_3.y + bias3.y);
        }
        if (n0 + 14u < c.co) {
            store_forward((img6 * c.co + n0 + 14u) * ohw + rr6, c6_3.z + bias3.z);
        }
        if (n0 + 15u < c.co) {
            store_forward((img6 * c.co + n0 + 15u) * ohw + rr6, c6_3.w + bias3.w);
        }
    }
    if (r0 + 7u < npix) {
        let img7 = (r0 + 7u) / ohw;
        if (n0 + 0u < c.co) {
            store_forward((img7 * c.co + n0 + 0u) * ohw + rr7, c7_0.x + bias0.x);
        }
        if (n0 + 1u < c.co) {
            store_forward((img7 * c.co + n0 + 1u) * ohw + rr7, c7_0.y + bias0.y);
        }
        if (n0 + 2u < c.co) {
            store_forward((img7 * c.co + n0 + 2u) * ohw + rr7, c7_0.z + bias0.z);
        }
        if (n0 + 3u < c.co) {
            store_forward((img7 * c.co + n0 + 3u) * ohw + rr7, c7_0.w + bias0.w);
        }
        if (n0 + 4u < c.co) {
            store_forward((img7 * c.co + n0 + 4u) * ohw + rr7, c7_1.x + bias1.x);
        }
        if (n0 + 5u < c.co) {
            store_forward((img7 * c.co + n0 + 5u) * ohw + rr7, c7_1.y + bias1.y);
        }
        if (n0 + 6u < c.co) {
            store_forward((img7 * c.co + n0 + 6u) * ohw + rr7, c7_1.z + bias1.z);
        }
        if (n0 + 7u < c.co) {
            store_forward((img7 * c.co + n0 + 7u) * ohw + rr7, c7_1.w + bias1.w);
        }
        if (n0 + 8u < c.co) {
            store_forward((img7 * c.co + n0 + 8u) * ohw + rr7, c7_2.x + bias2.x);
        }
        if (n0 + 9u < c.co) {
            store_forward((img7 * c.co + n0 + 9u) * ohw + rr7, c7_2.y + bias2.y);
        }
        if (n0 + 10u < c.co) {
            store_forward((img7 * c.co + n0 + 10u) * ohw + rr7, c7_2.z + bias2.z);
        }
        if (n0 + 11u < c.co) {
            store_forward((img7 * c.co + n0 + 11u) * ohw + rr7, c7_2.w + bias2.w);
        }
        if (n0 + 12u < c.co) {
            store_forward((img7 * c.co + n0 + 12u) * ohw + rr7, c7_3.x + bias3.x);
        }
        if (n0 + 13u < c.co) {
            store_forward((img7 * c.co + n0 + 13u) * ohw + rr7, c7_3.y + bias3.y);
        }
        if (n0 + 14u < c.co) {
            store_forward((img7 * c.co + n0 + 14u) * ohw + rr7, c7_3.z + bias3.z);
        }
        if (n0 + 15u < c.co) {
            store_forward((img7 * c.co + n0 + 15u) * ohw + rr7, c7_3.w + bias3.w);
        }
    }

}
