// 2-D convolution (NCHW, weights [Co, Ci, KH, KW], any kernel size, stride, padding) as implicit
// GEMMs: no im2col buffer, the patch is gathered on the fly.
// * forward:     rows = output channels, columns = output pixels (n, oh, ow), reduction over
//                (kh, kw, ci); epilogue adds the bias and applies SiLU (then also stores the
//                pre-activation for the backward).
// * data grad:   rows = input channels, columns = input pixels, reduction over (kh, kw, co);
//                the output pixel a tap reads from is (ih + pad − kh)/stride when that divides.
// * weight grad: rows = output channels, columns = (ci, kh, kw), reduction over output pixels.
// Each thread accumulates a 16 × 16 block (rows × columns) in 64 named vec4 registers, the inner
// loop unrolled (arrays indexed in loops stay in memory on CPU adapters); out-of-range taps read
// element 0 and are multiplied by 0, so the k loop has no branch.
// This file is a template: engine/src/ops/conv_regblock.rs fills the {{…}} slots with the
// unrolled blocks and the forward's epilogue (bias or not, SiLU or not: a variant each, so the
// forward binds only what it reads and writes).

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
@group(0) @binding(2) var<storage, read> wsrc: array<f32>;    // weights (forward, data grad) or dy (weight grad)
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;
@group(0) @binding(5) var<storage, read_write> pre: array<f32>; // pre-activation (forward with SiLU)


struct Conv { n: u32, ci: u32, h: u32, w: u32, co: u32, kh: u32, kw: u32, s: u32, pad: i32, oh: u32, ow: u32 }

fn conv() -> Conv {
    return Conv(params.n, params.ci, params.h, params.w, params.co, params.kh, params.kw,
                params.stride, i32(params.pad), params.oh, params.ow);
}

fn in_range(v: i32, n: u32) -> bool { return v >= 0 && v < i32(n); }


// Every kernel carries a 16 × 16 output block per thread (TM × TN): each value loaded serves
// 16 FMAs, since on CPU adapters loads are the cost.
const TM: u32 = 16u;
const TN: u32 = 16u;

// 16 × 4 threads: a workgroup covers 64 channels × 256 pixels.
@compute @workgroup_size(16, 4, 1)
fn conv2d_forward(@builtin(global_invocation_id) g: vec3<u32>) {
    let c = conv();
    let ohw = c.oh * c.ow;
    let npix = c.n * ohw;
    let row0 = g.y * TM;
    let col0 = g.x * TN;
    if (row0 >= c.co || col0 >= npix) { return; }
    let hw = c.h * c.w;
    let kk = c.kh * c.kw;
    // Per column (output pixel): image base and top-left input coordinate.
    var base: array<u32, 16>;
    var ih0: array<i32, 16>;
    var iw0: array<i32, 16>;
    for (var j = 0u; j < TN; j++) {
        let pc = min(col0 + j, npix - 1u);
        let r = pc % ohw;
        base[j] = (pc / ohw) * c.ci * hw;
        ih0[j] = i32((r / c.ow) * c.s) - c.pad;
        iw0[j] = i32((r % c.ow) * c.s) - c.pad;
    }
    var wrow: array<u32, 16>;
    for (var i = 0u; i < TM; i++) { wrow[i] = min(row0 + i, c.co - 1u) * c.ci * kk; }
    var a0_0 = vec4<f32>(0.0); var a0_1 = vec4<f32>(0.0); var a0_2 = vec4<f32>(0.0); var a0_3 = vec4<f32>(0.0);
    var a1_0 = vec4<f32>(0.0); var a1_1 = vec4<f32>(0.0); var a1_2 = vec4<f32>(0.0); var a1_3 = vec4<f32>(0.0);
    var a2_0 = vec4<f32>(0.0); var a2_1 = vec4<f32>(0.0); var a2_2 = vec4<f32>(0.0); var a2_3 = vec4<f32>(0.0);
    var a3_0 = vec4<f32>(0.0); var a3_1 = vec4<f32>(0.0); var a3_2 = vec4<f32>(0.0); var a3_3 = vec4<f32>(0.0);
    var a4_0 = vec4<f32>(0.0); var a4_1 = vec4<f32>(0.0); var a4_2 = vec4<f32>(0.0); var a4_3 = vec4<f32>(0.0);
    var a5_0 = vec4<f32>(0.0); var a5_1 = vec4<f32>(0.0); var a5_2 = vec4<f32>(0.0); var a5_3 = vec4<f32>(0.0);
    var a6_0 = vec4<f32>(0.0); var a6_1 = vec4<f32>(0.0); var a6_2 = vec4<f32>(0.0); var a6_3 = vec4<f32>(0.0);
    var a7_0 = vec4<f32>(0.0); var a7_1 = vec4<f32>(0.0); var a7_2 = vec4<f32>(0.0); var a7_3 = vec4<f32>(0.0);
    var a8_0 = vec4<f32>(0.0); var a8_1 = vec4<f32>(0.0); var a8_2 = vec4<f32>(0.0); var a8_3 = vec4<f32>(0.0);
    var a9_0 = vec4<f32>(0.0); var a9_1 = vec4<f32>(0.0); var a9_2 = vec4<f32>(0.0); var a9_3 = vec4<f32>(0.0);
    var a10_0 = vec4<f32>(0.0); var a10_1 = vec4<f32>(0.0); var a10_2 = vec4<f32>(0.0); var a10_3 = vec4<f32>(0.0);
    var a11_0 = vec4<f32>(0.0); var a11_1 = vec4<f32>(0.0); var a11_2 = vec4<f32>(0.0); var a11_3 = vec4<f32>(0.0);
    var a12_0 = vec4<f32>(0.0); var a12_1 = vec4<f32>(0.0); var a12_2 = vec4<f32>(0.0); var a12_3 = vec4<f32>(0.0);
    var a13_0 = vec4<f32>(0.0); var a13_1 = vec4<f32>(0.0); var a13_2 = vec4<f32>(0.0); var a13_3 = vec4<f32>(0.0);
    var a14_0 = vec4<f32>(0.0); var a14_1 = vec4<f32>(0.0); var a14_2 = vec4<f32>(0.0); var a14_3 = vec4<f32>(0.0);
    var a15_0 = vec4<f32>(0.0); var a15_1 = vec4<f32>(0.0); var a15_2 = vec4<f32>(0.0); var a15_3 = vec4<f32>(0.0);
    for (var kh = 0u; kh < c.kh; kh++) {
        for (var kw = 0u; kw < c.kw; kw++) {
            var off: array<u32, 16>;
            var m: array<f32, 16>;
            for (var j = 0u; j < TN; j++) {
                let ih = ih0[j] + i32(kh);
                let iw = iw0[j] + i32(kw);
                let inb = in_range(ih, c.h) && in_range(iw, c.w);
                off[j] = select(0u, base[j] + u32(ih) * c.w + u32(iw), inb);
                m[j] = select(0.0, 1.0, inb);
            }
            let m0 = vec4<f32>(m[0], m[1], m[2], m[3]);
            let m1 = vec4<f32>(m[4], m[5], m[6], m[7]);
            let m2 = vec4<f32>(m[8], m[9], m[10], m[11]);
            let m3 = vec4<f32>(m[12], m[13], m[14], m[15]);
            let tap = kh * c.kw + kw;
            for (var ci = 0u; ci < c.ci; ci++) {
                let xo = ci * hw;
                let x0 = vec4<f32>(src[off[0] + xo], src[off[1] + xo], src[off[2] + xo], src[off[3] + xo]) * m0;
                let x1 = vec4<f32>(src[off[4] + xo], src[off[5] + xo], src[off[6] + xo], src[off[7] + xo]) * m1;
                let x2 = vec4<f32>(src[off[8] + xo], src[off[9] + xo], src[off[10] + xo], src[off[11] + xo]) * m2;
                let x3 = vec4<f32>(src[off[12] + xo], src[off[13] + xo], src[off[14] + xo], src[off[15] + xo]) * m3;
                let wo = ci * kk + tap;
                let w0 = wsrc[wrow[0] + wo];
                let w1 = wsrc[wrow[1] + wo];
                let w2 = wsrc[wrow[2] + wo];
                let w3 = wsrc[wrow[3] + wo];
                let w4 = wsrc[wrow[4] + wo];
                let w5 = wsrc[wrow[5] + wo];
                let w6 = wsrc[wrow[6] + wo];
                let w7 = wsrc[wrow[7] + wo];
                let w8 = wsrc[wrow[8] + wo];
                let w9 = wsrc[wrow[9] + wo];
                let w10 = wsrc[wrow[10] + wo];
                let w11 = wsrc[wrow[11] + wo];
                let w12 = wsrc[wrow[12] + wo];
                let w13 = wsrc[wrow[13] + wo];
                let w14 = wsrc[wrow[14] + wo];
                let w15 = wsrc[wrow[15] + wo];
                a0_0 += w0 * x0; a0_1 += w0 * x1; a0_2 += w0 * x2; a0_3 += w0 * x3;
                a1_0 += w1 * x0; a1_1 += w1 * x1; a1_2 += w1 * x2; a1_3 += w1 * x3;
                a2_0 += w2 * x0; a2_1 += w2 * x1; a2_2 += w2 * x2; a2_3 += w2 * x3;
                a3_0 += w3 * x0; a3_1 += w3 * x1; a3_2 += w3 * x2; a3_3 += w3 * x3;
                a4_0 += w4 * x0; a4_1 += w4 * x1; a4_2 += w4 * x2; a4_3 += w4 * x3;
                a5_0 += w5 * x0; a5_1 += w5 * x1; a5_2 += w5 * x2; a5_3 += w5 * x3;
                a6_0 += w6 * x0; a6_1 += w6 * x1; a6_2 += w6 * x2; a6_3 += w6 * x3;
                a7_0 += w7 * x0; a7_1 += w7 * x1; a7_2 += w7 * x2; a7_3 += w7 * x3;
                a8_0 += w8 * x0; a8_1 += w8 * x1; a8_2 += w8 * x2; a8_3 += w8 * x3;
                a9_0 += w9 * x0; a9_1 += w9 * x1; a9_2 += w9 * x2; a9_3 += w9 * x3;
                a10_0 += w10 * x0; a10_1 += w10 * x1; a10_2 += w10 * x2; a10_3 += w10 * x3;
                a11_0 += w11 * x0; a11_1 += w11 * x1; a11_2 += w11 * x2; a11_3 += w11 * x3;
                a12_0 += w12 * x0; a12_1 += w12 * x1; a12_2 += w12 * x2; a12_3 += w12 * x3;
                a13_0 += w13 * x0; a13_1 += w13 * x1; a13_2 += w13 * x2; a13_3 += w13 * x3;
                a14_0 += w14 * x0; a14_1 += w14 * x1; a14_2 += w14 * x2; a14_3 += w14 * x3;
                a15_0 += w15 * x0; a15_1 += w15 * x1; a15_2 += w15 * x2; a15_3 += w15 * x3;
            }
        }
    }
    // The epilogue indexes the block: gather the named accumulators into an array once.
    var acc: array<vec4<f32>, 64>;
    acc[0] = a0_0; acc[1] = a0_1; acc[2] = a0_2; acc[3] = a0_3;
    acc[4] = a1_0; acc[5] = a1_1; acc[6] = a1_2; acc[7] = a1_3;
    acc[8] = a2_0; acc[9] = a2_1; acc[10] = a2_2; acc[11] = a2_3;
    acc[12] = a3_0; acc[13] = a3_1; acc[14] = a3_2; acc[15] = a3_3;
    acc[16] = a4_0; acc[17] = a4_1; acc[18] = a4_2; acc[19] = a4_3;
    acc[20] = a5_0; acc[21] = a5_1; acc[22] = a5_2; acc[23] = a5_3;
    acc[24] = a6_0; acc[25] = a6_1; acc[26] = a6_2; acc[27] = a6_3;
    acc[28] = a7_0; acc[29] = a7_1; acc[30] = a7_2; acc[31] = a7_3;
    acc[32] = a8_0; acc[33] = a8_1; acc[34] = a8_2; acc[35] = a8_3;
    acc[36] = a9_0; acc[37] = a9_1; acc[38] = a9_2; acc[39] = a9_3;
    acc[40] = a10_0; acc[41] = a10_1; acc[42] = a10_2; acc[43] = a10_3;
    acc[44] = a11_0; acc[45] = a11_1; acc[46] = a11_2; acc[47] = a11_3;
    acc[48] = a12_0; acc[49] = a12_1; acc[50] = a12_2; acc[51] = a12_3;
    acc[52] = a13_0; acc[53] = a13_1; acc[54] = a13_2; acc[55] = a13_3;
    acc[56] = a14_0; acc[57] = a14_1; acc[58] = a14_2; acc[59] = a14_3;
    acc[60] = a15_0; acc[61] = a15_1; acc[62] = a15_2; acc[63] = a15_3;
    for (var i = 0u; i < TM; i++) {
        let co = row0 + i;
        if (co >= c.co) { break; }
        let b = 0.0;
        for (var j = 0u; j < TN; j++) {
            let pix = col0 + j;
            if (pix >= npix) { break; }
            let z = acc[4u * i + j / 4u][j % 4u] + b;
            let o = ((pix / ohw) * c.co + co) * ohw + pix % ohw;
            dst[o] = z;
        }
    }
}

// Data gradient: a 16-channel × 16-pixel block per thread, 16 × 4 threads (64 × 256 per group).
@compute @workgroup_size(16, 4, 1)
fn conv2d_backward_data(@builtin(global_invocation_id) g: vec3<u32>) {
    let c = conv();
    let hw = c.h * c.w;
    let npix = c.n * hw;
    let row0 = g.y * TM;
    let col0 = g.x * TN;
    if (row0 >= c.ci || col0 >= npix) { return; }
    let ohw = c.oh * c.ow;
    let kk = c.kh * c.kw;
    var base: array<u32, 16>;
    var ih: array<i32, 16>;
    var iw: array<i32, 16>;
    for (var j = 0u; j < 16u; j++) {
        let pc = min(col0 + j, npix - 1u);
        let r = pc % hw;
        base[j] = (pc / hw) * c.co * ohw;
        ih[j] = i32(r / c.w) + c.pad;
        iw[j] = i32(r % c.w) + c.pad;
    }
    var wrow: array<u32, 16>;
    for (var i = 0u; i < 16u; i++) { wrow[i] = min(row0 + i, c.ci - 1u); }
    var a0_0 = vec4<f32>(0.0); var a0_1 = vec4<f32>(0.0); var a0_2 = vec4<f32>(0.0); var a0_3 = vec4<f32>(0.0);
    var a1_0 = vec4<f32>(0.0); var a1_1 = vec4<f32>(0.0); var a1_2 = vec4<f32>(0.0); var a1_3 = vec4<f32>(0.0);
    var a2_0 = vec4<f32>(0.0); var a2_1 = vec4<f32>(0.0); var a2_2 = vec4<f32>(0.0); var a2_3 = vec4<f32>(0.0);
    var a3_0 = vec4<f32>(0.0); var a3_1 = vec4<f32>(0.0); var a3_2 = vec4<f32>(0.0); var a3_3 = vec4<f32>(0.0);
    var a4_0 = vec4<f32>(0.0); var a4_1 = vec4<f32>(0.0); var a4_2 = vec4<f32>(0.0); var a4_3 = vec4<f32>(0.0);
    var a5_0 = vec4<f32>(0.0); var a5_1 = vec4<f32>(0.0); var a5_2 = vec4<f32>(0.0); var a5_3 = vec4<f32>(0.0);
    var a6_0 = vec4<f32>(0.0); var a6_1 = vec4<f32>(0.0); var a6_2 = vec4<f32>(0.0); var a6_3 = vec4<f32>(0.0);
    var a7_0 = vec4<f32>(0.0); var a7_1 = vec4<f32>(0.0); var a7_2 = vec4<f32>(0.0); var a7_3 = vec4<f32>(0.0);
    var a8_0 = vec4<f32>(0.0); var a8_1 = vec4<f32>(0.0); var a8_2 = vec4<f32>(0.0); var a8_3 = vec4<f32>(0.0);
    var a9_0 = vec4<f32>(0.0); var a9_1 = vec4<f32>(0.0); var a9_2 = vec4<f32>(0.0); var a9_3 = vec4<f32>(0.0);
    var a10_0 = vec4<f32>(0.0); var a10_1 = vec4<f32>(0.0); var a10_2 = vec4<f32>(0.0); var a10_3 = vec4<f32>(0.0);
    var a11_0 = vec4<f32>(0.0); var a11_1 = vec4<f32>(0.0); var a11_2 = vec4<f32>(0.0); var a11_3 = vec4<f32>(0.0);
    var a12_0 = vec4<f32>(0.0); var a12_1 = vec4<f32>(0.0); var a12_2 = vec4<f32>(0.0); var a12_3 = vec4<f32>(0.0);
    var a13_0 = vec4<f32>(0.0); var a13_1 = vec4<f32>(0.0); var a13_2 = vec4<f32>(0.0); var a13_3 = vec4<f32>(0.0);
    var a14_0 = vec4<f32>(0.0); var a14_1 = vec4<f32>(0.0); var a14_2 = vec4<f32>(0.0); var a14_3 = vec4<f32>(0.0);
    var a15_0 = vec4<f32>(0.0); var a15_1 = vec4<f32>(0.0); var a15_2 = vec4<f32>(0.0); var a15_3 = vec4<f32>(0.0);
    for (var kh = 0u; kh < c.kh; kh++) {
        for (var kw = 0u; kw < c.kw; kw++) {
            var off: array<u32, 16>;
            var m: array<f32, 16>;
            for (var j = 0u; j < 16u; j++) {
                // Output pixel (oh, ow) whose tap (kh, kw) lands on this input pixel.
                let th = ih[j] - i32(kh);
                let tw = iw[j] - i32(kw);
                let s = i32(c.s);
                let ok = th >= 0 && tw >= 0 && th % s == 0 && tw % s == 0 && in_range(th / s, c.oh) && in_range(tw / s, c.ow);
                off[j] = select(0u, base[j] + u32(th / s) * c.ow + u32(tw / s), ok);
                m[j] = select(0.0, 1.0, ok);
            }
            let m0 = vec4<f32>(m[0], m[1], m[2], m[3]);
            let m1 = vec4<f32>(m[4], m[5], m[6], m[7]);
            let m2 = vec4<f32>(m[8], m[9], m[10], m[11]);
            let m3 = vec4<f32>(m[12], m[13], m[14], m[15]);
            let tap = kh * c.kw + kw;
            for (var co = 0u; co < c.co; co++) {
                let yo = co * ohw;
                let y0 = vec4<f32>(src[off[0] + yo], src[off[1] + yo], src[off[2] + yo], src[off[3] + yo]) * m0;
                let y1 = vec4<f32>(src[off[4] + yo], src[off[5] + yo], src[off[6] + yo], src[off[7] + yo]) * m1;
                let y2 = vec4<f32>(src[off[8] + yo], src[off[9] + yo], src[off[10] + yo], src[off[11] + yo]) * m2;
                let y3 = vec4<f32>(src[off[12] + yo], src[off[13] + yo], src[off[14] + yo], src[off[15] + yo]) * m3;
                let wb = co * c.ci;
                let w0 = wsrc[(wb + wrow[0]) * kk + tap];
                let w1 = wsrc[(wb + wrow[1]) * kk + tap];
                let w2 = wsrc[(wb + wrow[2]) * kk + tap];
                let w3 = wsrc[(wb + wrow[3]) * kk + tap];
                let w4 = wsrc[(wb + wrow[4]) * kk + tap];
                let w5 = wsrc[(wb + wrow[5]) * kk + tap];
                let w6 = wsrc[(wb + wrow[6]) * kk + tap];
                let w7 = wsrc[(wb + wrow[7]) * kk + tap];
                let w8 = wsrc[(wb + wrow[8]) * kk + tap];
                let w9 = wsrc[(wb + wrow[9]) * kk + tap];
                let w10 = wsrc[(wb + wrow[10]) * kk + tap];
                let w11 = wsrc[(wb + wrow[11]) * kk + tap];
                let w12 = wsrc[(wb + wrow[12]) * kk + tap];
                let w13 = wsrc[(wb + wrow[13]) * kk + tap];
                let w14 = wsrc[(wb + wrow[14]) * kk + tap];
                let w15 = wsrc[(wb + wrow[15]) * kk + tap];
                a0_0 += w0 * y0; a0_1 += w0 * y1; a0_2 += w0 * y2; a0_3 += w0 * y3;
                a1_0 += w1 * y0; a1_1 += w1 * y1; a1_2 += w1 * y2; a1_3 += w1 * y3;
                a2_0 += w2 * y0; a2_1 += w2 * y1; a2_2 += w2 * y2; a2_3 += w2 * y3;
                a3_0 += w3 * y0; a3_1 += w3 * y1; a3_2 += w3 * y2; a3_3 += w3 * y3;
                a4_0 += w4 * y0; a4_1 += w4 * y1; a4_2 += w4 * y2; a4_3 += w4 * y3;
                a5_0 += w5 * y0; a5_1 += w5 * y1; a5_2 += w5 * y2; a5_3 += w5 * y3;
                a6_0 += w6 * y0; a6_1 += w6 * y1; a6_2 += w6 * y2; a6_3 += w6 * y3;
                a7_0 += w7 * y0; a7_1 += w7 * y1; a7_2 += w7 * y2; a7_3 += w7 * y3;
                a8_0 += w8 * y0; a8_1 += w8 * y1; a8_2 += w8 * y2; a8_3 += w8 * y3;
                a9_0 += w9 * y0; a9_1 += w9 * y1; a9_2 += w9 * y2; a9_3 += w9 * y3;
                a10_0 += w10 * y0; a10_1 += w10 * y1; a10_2 += w10 * y2; a10_3 += w10 * y3;
                a11_0 += w11 * y0; a11_1 += w11 * y1; a11_2 += w11 * y2; a11_3 += w11 * y3;
                a12_0 += w12 * y0; a12_1 += w12 * y1; a12_2 += w12 * y2; a12_3 += w12 * y3;
                a13_0 += w13 * y0; a13_1 += w13 * y1; a13_2 += w13 * y2; a13_3 += w13 * y3;
                a14_0 += w14 * y0; a14_1 += w14 * y1; a14_2 += w14 * y2; a14_3 += w14 * y3;
                a15_0 += w15 * y0; a15_1 += w15 * y1; a15_2 += w15 * y2; a15_3 += w15 * y3;
            }
        }
    }
    // The epilogue indexes the block: gather the named accumulators into an array once.
    var acc: array<vec4<f32>, 64>;
    acc[0] = a0_0; acc[1] = a0_1; acc[2] = a0_2; acc[3] = a0_3;
    acc[4] = a1_0; acc[5] = a1_1; acc[6] = a1_2; acc[7] = a1_3;
    acc[8] = a2_0; acc[9] = a2_1; acc[10] = a2_2; acc[11] = a2_3;
    acc[12] = a3_0; acc[13] = a3_1; acc[14] = a3_2; acc[15] = a3_3;
    acc[16] = a4_0; acc[17] = a4_1; acc[18] = a4_2; acc[19] = a4_3;
    acc[20] = a5_0; acc[21] = a5_1; acc[22] = a5_2; acc[23] = a5_3;
    acc[24] = a6_0; acc[25] = a6_1; acc[26] = a6_2; acc[27] = a6_3;
    acc[28] = a7_0; acc[29] = a7_1; acc[30] = a7_2; acc[31] = a7_3;
    acc[32] = a8_0; acc[33] = a8_1; acc[34] = a8_2; acc[35] = a8_3;
    acc[36] = a9_0; acc[37] = a9_1; acc[38] = a9_2; acc[39] = a9_3;
    acc[40] = a10_0; acc[41] = a10_1; acc[42] = a10_2; acc[43] = a10_3;
    acc[44] = a11_0; acc[45] = a11_1; acc[46] = a11_2; acc[47] = a11_3;
    acc[48] = a12_0; acc[49] = a12_1; acc[50] = a12_2; acc[51] = a12_3;
    acc[52] = a13_0; acc[53] = a13_1; acc[54] = a13_2; acc[55] = a13_3;
    acc[56] = a14_0; acc[57] = a14_1; acc[58] = a14_2; acc[59] = a14_3;
    acc[60] = a15_0; acc[61] = a15_1; acc[62] = a15_2; acc[63] = a15_3;
    for (var i = 0u; i < 16u; i++) {
        let ci = row0 + i;
        if (ci >= c.ci) { break; }
        for (var j = 0u; j < 16u; j++) {
            let pix = col0 + j;
            if (pix >= npix) { break; }
            dst[((pix / hw) * c.ci + ci) * hw + pix % hw] = acc[4u * i + j / 4u][j % 4u];
        }
    }
}

// Weight gradient: a 16-output-channel × 16-(ci, kh, kw) block per thread, 16 × 4 threads.
@compute @workgroup_size(16, 4, 1)
fn conv2d_backward_weight(@builtin(global_invocation_id) g: vec3<u32>) {
    let c = conv();
    let kk = c.kh * c.kw;
    let ncols = c.ci * kk;
    let row0 = g.y * TM;
    let col0 = g.x * TN;
    if (row0 >= c.co || col0 >= ncols) { return; }
    let hw = c.h * c.w;
    let ohw = c.oh * c.ow;
    // Per column (ci, kh, kw): channel offset and tap displacement.
    var xoff: array<u32, 16>;
    var dh: array<i32, 16>;
    var dw: array<i32, 16>;
    for (var j = 0u; j < 16u; j++) {
        let col = min(col0 + j, ncols - 1u);
        let t = col % kk;
        xoff[j] = (col / kk) * hw;
        dh[j] = i32(t / c.kw) - c.pad;
        dw[j] = i32(t % c.kw) - c.pad;
    }
    var wrow: array<u32, 16>;
    for (var i = 0u; i < 16u; i++) { wrow[i] = min(row0 + i, c.co - 1u) * ohw; }
    var a0_0 = vec4<f32>(0.0); var a0_1 = vec4<f32>(0.0); var a0_2 = vec4<f32>(0.0); var a0_3 = vec4<f32>(0.0);
    var a1_0 = vec4<f32>(0.0); var a1_1 = vec4<f32>(0.0); var a1_2 = vec4<f32>(0.0); var a1_3 = vec4<f32>(0.0);
    var a2_0 = vec4<f32>(0.0); var a2_1 = vec4<f32>(0.0); var a2_2 = vec4<f32>(0.0); var a2_3 = vec4<f32>(0.0);
    var a3_0 = vec4<f32>(0.0); var a3_1 = vec4<f32>(0.0); var a3_2 = vec4<f32>(0.0); var a3_3 = vec4<f32>(0.0);
    var a4_0 = vec4<f32>(0.0); var a4_1 = vec4<f32>(0.0); var a4_2 = vec4<f32>(0.0); var a4_3 = vec4<f32>(0.0);
    var a5_0 = vec4<f32>(0.0); var a5_1 = vec4<f32>(0.0); var a5_2 = vec4<f32>(0.0); var a5_3 = vec4<f32>(0.0);
    var a6_0 = vec4<f32>(0.0); var a6_1 = vec4<f32>(0.0); var a6_2 = vec4<f32>(0.0); var a6_3 = vec4<f32>(0.0);
    var a7_0 = vec4<f32>(0.0); var a7_1 = vec4<f32>(0.0); var a7_2 = vec4<f32>(0.0); var a7_3 = vec4<f32>(0.0);
    var a8_0 = vec4<f32>(0.0); var a8_1 = vec4<f32>(0.0); var a8_2 = vec4<f32>(0.0); var a8_3 = vec4<f32>(0.0);
    var a9_0 = vec4<f32>(0.0); var a9_1 = vec4<f32>(0.0); var a9_2 = vec4<f32>(0.0); var a9_3 = vec4<f32>(0.0);
    var a10_0 = vec4<f32>(0.0); var a10_1 = vec4<f32>(0.0); var a10_2 = vec4<f32>(0.0); var a10_3 = vec4<f32>(0.0);
    var a11_0 = vec4<f32>(0.0); var a11_1 = vec4<f32>(0.0); var a11_2 = vec4<f32>(0.0); var a11_3 = vec4<f32>(0.0);
    var a12_0 = vec4<f32>(0.0); var a12_1 = vec4<f32>(0.0); var a12_2 = vec4<f32>(0.0); var a12_3 = vec4<f32>(0.0);
    var a13_0 = vec4<f32>(0.0); var a13_1 = vec4<f32>(0.0); var a13_2 = vec4<f32>(0.0); var a13_3 = vec4<f32>(0.0);
    var a14_0 = vec4<f32>(0.0); var a14_1 = vec4<f32>(0.0); var a14_2 = vec4<f32>(0.0); var a14_3 = vec4<f32>(0.0);
    var a15_0 = vec4<f32>(0.0); var a15_1 = vec4<f32>(0.0); var a15_2 = vec4<f32>(0.0); var a15_3 = vec4<f32>(0.0);
    for (var pix = 0u; pix < c.n * ohw; pix++) {
        let n = pix / ohw;
        let r = pix % ohw;
        let oh = i32((r / c.ow) * c.s);
        let ow = i32((r % c.ow) * c.s);
        let xbase = n * c.ci * hw;
        var xv: array<f32, 16>;
        for (var j = 0u; j < 16u; j++) {
            let ih = oh + dh[j];
            let iw = ow + dw[j];
            let inb = in_range(ih, c.h) && in_range(iw, c.w);
            let idx = select(0u, xbase + xoff[j] + u32(ih) * c.w + u32(iw), inb);
            xv[j] = src[idx] * select(0.0, 1.0, inb);
        }
        let x0 = vec4<f32>(xv[0], xv[1], xv[2], xv[3]);
        let x1 = vec4<f32>(xv[4], xv[5], xv[6], xv[7]);
        let x2 = vec4<f32>(xv[8], xv[9], xv[10], xv[11]);
        let x3 = vec4<f32>(xv[12], xv[13], xv[14], xv[15]);
        let ybase = n * c.co * ohw + r;
        let w0 = wsrc[ybase + wrow[0]];
        let w1 = wsrc[ybase + wrow[1]];
        let w2 = wsrc[ybase + wrow[2]];
        let w3 = wsrc[ybase + wrow[3]];
        let w4 = wsrc[ybase + wrow[4]];
        let w5 = wsrc[ybase + wrow[5]];
        let w6 = wsrc[ybase + wrow[6]];
        let w7 = wsrc[ybase + wrow[7]];
        let w8 = wsrc[ybase + wrow[8]];
        let w9 = wsrc[ybase + wrow[9]];
        let w10 = wsrc[ybase + wrow[10]];
        let w11 = wsrc[ybase + wrow[11]];
        let w12 = wsrc[ybase + wrow[12]];
        let w13 = wsrc[ybase + wrow[13]];
        let w14 = wsrc[ybase + wrow[14]];
        let w15 = wsrc[ybase + wrow[15]];
        a0_0 += w0 * x0; a0_1 += w0 * x1; a0_2 += w0 * x2; a0_3 += w0 * x3;
        a1_0 += w1 * x0; a1_1 += w1 * x1; a1_2 += w1 * x2; a1_3 += w1 * x3;
        a2_0 += w2 * x0; a2_1 += w2 * x1; a2_2 += w2 * x2; a2_3 += w2 * x3;
        a3_0 += w3 * x0; a3_1 += w3 * x1; a3_2 += w3 * x2; a3_3 += w3 * x3;
        a4_0 += w4 * x0; a4_1 += w4 * x1; a4_2 += w4 * x2; a4_3 += w4 * x3;
        a5_0 += w5 * x0; a5_1 += w5 * x1; a5_2 += w5 * x2; a5_3 += w5 * x3;
        a6_0 += w6 * x0; a6_1 += w6 * x1; a6_2 += w6 * x2; a6_3 += w6 * x3;
        a7_0 += w7 * x0; a7_1 += w7 * x1; a7_2 += w7 * x2; a7_3 += w7 * x3;
        a8_0 += w8 * x0; a8_1 += w8 * x1; a8_2 += w8 * x2; a8_3 += w8 * x3;
        a9_0 += w9 * x0; a9_1 += w9 * x1; a9_2 += w9 * x2; a9_3 += w9 * x3;
        a10_0 += w10 * x0; a10_1 += w10 * x1; a10_2 += w10 * x2; a10_3 += w10 * x3;
        a11_0 += w11 * x0; a11_1 += w11 * x1; a11_2 += w11 * x2; a11_3 += w11 * x3;
        a12_0 += w12 * x0; a12_1 += w12 * x1; a12_2 += w12 * x2; a12_3 += w12 * x3;
        a13_0 += w13 * x0; a13_1 += w13 * x1; a13_2 += w13 * x2; a13_3 += w13 * x3;
        a14_0 += w14 * x0; a14_1 += w14 * x1; a14_2 += w14 * x2; a14_3 += w14 * x3;
        a15_0 += w15 * x0; a15_1 += w15 * x1; a15_2 += w15 * x2; a15_3 += w15 * x3;
    }
    // The epilogue indexes the block: gather the named accumulators into an array once.
    var acc: array<vec4<f32>, 64>;
    acc[0] = a0_0; acc[1] = a0_1; acc[2] = a0_2; acc[3] = a0_3;
    acc[4] = a1_0; acc[5] = a1_1; acc[6] = a1_2; acc[7] = a1_3;
    acc[8] = a2_0; acc[9] = a2_1; acc[10] = a2_2; acc[11] = a2_3;
    acc[12] = a3_0; acc[13] = a3_1; acc[14] = a3_2; acc[15] = a3_3;
    acc[16] = a4_0; acc[17] = a4_1; acc[18] = a4_2; acc[19] = a4_3;
    acc[20] = a5_0; acc[21] = a5_1; acc[22] = a5_2; acc[23] = a5_3;
    acc[24] = a6_0; acc[25] = a6_1; acc[26] = a6_2; acc[27] = a6_3;
    acc[28] = a7_0; acc[29] = a7_1; acc[30] = a7_2; acc[31] = a7_3;
    acc[32] = a8_0; acc[33] = a8_1; acc[34] = a8_2; acc[35] = a8_3;
    acc[36] = a9_0; acc[37] = a9_1; acc[38] = a9_2; acc[39] = a9_3;
    acc[40] = a10_0; acc[41] = a10_1; acc[42] = a10_2; acc[43] = a10_3;
    acc[44] = a11_0; acc[45] = a11_1; acc[46] = a11_2; acc[47] = a11_3;
    acc[48] = a12_0; acc[49] = a12_1; acc[50] = a12_2; acc[51] = a12_3;
    acc[52] = a13_0; acc[53] = a13_1; acc[54] = a13_2; acc[55] = a13_3;
    acc[56] = a14_0; acc[57] = a14_1; acc[58] = a14_2; acc[59] = a14_3;
    acc[60] = a15_0; acc[61] = a15_1; acc[62] = a15_2; acc[63] = a15_3;
    for (var i = 0u; i < 16u; i++) {
        let co = row0 + i;
        if (co >= c.co) { break; }
        for (var j = 0u; j < 16u; j++) {
            let col = col0 + j;
            if (col >= ncols) { break; }
            dst[co * ncols + col] = acc[4u * i + j / 4u][j % 4u];
        }
    }
}
