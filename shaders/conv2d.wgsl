// 2-D convolution (NCHW, weights [Co, Ci, KH, KW], any kernel size, stride, padding) as implicit
// GEMMs: no im2col buffer, the patch is gathered on the fly.
// * forward:     rows = output channels, columns = output pixels (n, oh, ow), reduction over
//                (kh, kw, ci); epilogue adds the bias and applies SiLU (then also stores the
//                pre-activation for the backward).
// * data grad:   rows = input channels, columns = input pixels, reduction over (kh, kw, co);
//                the output pixel a tap reads from is (ih + pad − kh)/stride when that divides.
// * weight grad: rows = output channels, columns = (ci, kh, kw), reduction over output pixels.
// Each thread accumulates an 8 × 8 block (rows × columns) in 16 named vec4 registers (the inner
// loop is unrolled by hand: arrays indexed in loops stay in memory on CPU adapters); out-of-range
// taps read element 0 and are multiplied by 0, so the k loop has no branch.
// params: [N, Ci, H, W, Co, KH, KW, stride, pad, OH, OW, has_bias, silu]

@group(0) @binding(0) var<uniform> P: array<vec4<u32>, 16>;
fn p(i: u32) -> u32 { return P[i >> 2u][i & 3u]; }

@group(0) @binding(1) var<storage, read> src: array<f32>;     // x (forward, weight grad) or dy (data grad)
@group(0) @binding(2) var<storage, read> wsrc: array<f32>;    // weights (forward, data grad) or dy (weight grad)
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;
@group(0) @binding(5) var<storage, read_write> pre: array<f32>; // pre-activation (forward with SiLU)

const TM: u32 = 8u;
const TN: u32 = 8u;

struct Conv { n: u32, ci: u32, h: u32, w: u32, co: u32, kh: u32, kw: u32, s: u32, pad: i32, oh: u32, ow: u32 }

fn conv() -> Conv {
    return Conv(p(0u), p(1u), p(2u), p(3u), p(4u), p(5u), p(6u), p(7u), i32(p(8u)), p(9u), p(10u));
}

fn in_range(v: i32, n: u32) -> bool { return v >= 0 && v < i32(n); }

fn silu(z: f32) -> f32 {
    if (z >= 0.0) { return z / (1.0 + exp(-z)); }
    let e = exp(z);
    return z * e / (1.0 + e);
}

@compute @workgroup_size(8, 8, 1)
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
    var base: array<u32, 8>;
    var ih0: array<i32, 8>;
    var iw0: array<i32, 8>;
    for (var j = 0u; j < TN; j++) {
        let pc = min(col0 + j, npix - 1u);
        let r = pc % ohw;
        base[j] = (pc / ohw) * c.ci * hw;
        ih0[j] = i32((r / c.ow) * c.s) - c.pad;
        iw0[j] = i32((r % c.ow) * c.s) - c.pad;
    }
    var wrow: array<u32, 8>;
    for (var i = 0u; i < TM; i++) { wrow[i] = min(row0 + i, c.co - 1u) * c.ci * kk; }
    var a0l = vec4<f32>(0.0);
    var a0r = vec4<f32>(0.0);
    var a1l = vec4<f32>(0.0);
    var a1r = vec4<f32>(0.0);
    var a2l = vec4<f32>(0.0);
    var a2r = vec4<f32>(0.0);
    var a3l = vec4<f32>(0.0);
    var a3r = vec4<f32>(0.0);
    var a4l = vec4<f32>(0.0);
    var a4r = vec4<f32>(0.0);
    var a5l = vec4<f32>(0.0);
    var a5r = vec4<f32>(0.0);
    var a6l = vec4<f32>(0.0);
    var a6r = vec4<f32>(0.0);
    var a7l = vec4<f32>(0.0);
    var a7r = vec4<f32>(0.0);
    for (var kh = 0u; kh < c.kh; kh++) {
        for (var kw = 0u; kw < c.kw; kw++) {
            var off: array<u32, 8>;
            var m: array<f32, 8>;
            for (var j = 0u; j < TN; j++) {
                let ih = ih0[j] + i32(kh);
                let iw = iw0[j] + i32(kw);
                let inb = in_range(ih, c.h) && in_range(iw, c.w);
                off[j] = select(0u, base[j] + u32(ih) * c.w + u32(iw), inb);
                m[j] = select(0.0, 1.0, inb);
            }
            let m0 = vec4<f32>(m[0], m[1], m[2], m[3]);
            let m1 = vec4<f32>(m[4], m[5], m[6], m[7]);
            let tap = kh * c.kw + kw;
            for (var ci = 0u; ci < c.ci; ci++) {
                let xo = ci * hw;
                let x0 = vec4<f32>(src[off[0] + xo], src[off[1] + xo], src[off[2] + xo], src[off[3] + xo]) * m0;
                let x1 = vec4<f32>(src[off[4] + xo], src[off[5] + xo], src[off[6] + xo], src[off[7] + xo]) * m1;
                let wo = ci * kk + tap;
                let w0 = wsrc[wrow[0] + wo];
                let w1 = wsrc[wrow[1] + wo];
                let w2 = wsrc[wrow[2] + wo];
                let w3 = wsrc[wrow[3] + wo];
                let w4 = wsrc[wrow[4] + wo];
                let w5 = wsrc[wrow[5] + wo];
                let w6 = wsrc[wrow[6] + wo];
                let w7 = wsrc[wrow[7] + wo];
                a0l += w0 * x0;
                a0r += w0 * x1;
                a1l += w1 * x0;
                a1r += w1 * x1;
                a2l += w2 * x0;
                a2r += w2 * x1;
                a3l += w3 * x0;
                a3r += w3 * x1;
                a4l += w4 * x0;
                a4r += w4 * x1;
                a5l += w5 * x0;
                a5r += w5 * x1;
                a6l += w6 * x0;
                a6r += w6 * x1;
                a7l += w7 * x0;
                a7r += w7 * x1;
            }
        }
    }
    // The epilogue indexes the block: gather the named accumulators into an array once.
    var acc: array<vec4<f32>, 16>;
    acc[0] = a0l;
    acc[1] = a0r;
    acc[2] = a1l;
    acc[3] = a1r;
    acc[4] = a2l;
    acc[5] = a2r;
    acc[6] = a3l;
    acc[7] = a3r;
    acc[8] = a4l;
    acc[9] = a4r;
    acc[10] = a5l;
    acc[11] = a5r;
    acc[12] = a6l;
    acc[13] = a6r;
    acc[14] = a7l;
    acc[15] = a7r;
    for (var i = 0u; i < TM; i++) {
        let co = row0 + i;
        if (co >= c.co) { break; }
        let b = select(0.0, bias[co], p(11u) == 1u);
        for (var j = 0u; j < TN; j++) {
            let pix = col0 + j;
            if (pix >= npix) { break; }
            let z = acc[2u * i + j / 4u][j % 4u] + b;
            let o = ((pix / ohw) * c.co + co) * ohw + pix % ohw;
            if (p(12u) == 1u) {
                pre[o] = z;
                dst[o] = silu(z);
            } else {
                dst[o] = z;
            }
        }
    }
}

@compute @workgroup_size(8, 8, 1)
fn conv2d_backward_data(@builtin(global_invocation_id) g: vec3<u32>) {
    let c = conv();
    let hw = c.h * c.w;
    let npix = c.n * hw;
    let row0 = g.y * TM;
    let col0 = g.x * TN;
    if (row0 >= c.ci || col0 >= npix) { return; }
    let ohw = c.oh * c.ow;
    let kk = c.kh * c.kw;
    var base: array<u32, 8>;
    var ih: array<i32, 8>;
    var iw: array<i32, 8>;
    for (var j = 0u; j < TN; j++) {
        let pc = min(col0 + j, npix - 1u);
        let r = pc % hw;
        base[j] = (pc / hw) * c.co * ohw;
        ih[j] = i32(r / c.w) + c.pad;
        iw[j] = i32(r % c.w) + c.pad;
    }
    var wrow: array<u32, 8>;
    for (var i = 0u; i < TM; i++) { wrow[i] = min(row0 + i, c.ci - 1u); }
    var a0l = vec4<f32>(0.0);
    var a0r = vec4<f32>(0.0);
    var a1l = vec4<f32>(0.0);
    var a1r = vec4<f32>(0.0);
    var a2l = vec4<f32>(0.0);
    var a2r = vec4<f32>(0.0);
    var a3l = vec4<f32>(0.0);
    var a3r = vec4<f32>(0.0);
    var a4l = vec4<f32>(0.0);
    var a4r = vec4<f32>(0.0);
    var a5l = vec4<f32>(0.0);
    var a5r = vec4<f32>(0.0);
    var a6l = vec4<f32>(0.0);
    var a6r = vec4<f32>(0.0);
    var a7l = vec4<f32>(0.0);
    var a7r = vec4<f32>(0.0);
    for (var kh = 0u; kh < c.kh; kh++) {
        for (var kw = 0u; kw < c.kw; kw++) {
            var off: array<u32, 8>;
            var m: array<f32, 8>;
            for (var j = 0u; j < TN; j++) {
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
            let tap = kh * c.kw + kw;
            for (var co = 0u; co < c.co; co++) {
                let yo = co * ohw;
                let y0 = vec4<f32>(src[off[0] + yo], src[off[1] + yo], src[off[2] + yo], src[off[3] + yo]) * m0;
                let y1 = vec4<f32>(src[off[4] + yo], src[off[5] + yo], src[off[6] + yo], src[off[7] + yo]) * m1;
                let wb = co * c.ci;
                let w0 = wsrc[(wb + wrow[0]) * kk + tap];
                let w1 = wsrc[(wb + wrow[1]) * kk + tap];
                let w2 = wsrc[(wb + wrow[2]) * kk + tap];
                let w3 = wsrc[(wb + wrow[3]) * kk + tap];
                let w4 = wsrc[(wb + wrow[4]) * kk + tap];
                let w5 = wsrc[(wb + wrow[5]) * kk + tap];
                let w6 = wsrc[(wb + wrow[6]) * kk + tap];
                let w7 = wsrc[(wb + wrow[7]) * kk + tap];
                a0l += w0 * y0;
                a0r += w0 * y1;
                a1l += w1 * y0;
                a1r += w1 * y1;
                a2l += w2 * y0;
                a2r += w2 * y1;
                a3l += w3 * y0;
                a3r += w3 * y1;
                a4l += w4 * y0;
                a4r += w4 * y1;
                a5l += w5 * y0;
                a5r += w5 * y1;
                a6l += w6 * y0;
                a6r += w6 * y1;
                a7l += w7 * y0;
                a7r += w7 * y1;
            }
        }
    }
    // The epilogue indexes the block: gather the named accumulators into an array once.
    var acc: array<vec4<f32>, 16>;
    acc[0] = a0l;
    acc[1] = a0r;
    acc[2] = a1l;
    acc[3] = a1r;
    acc[4] = a2l;
    acc[5] = a2r;
    acc[6] = a3l;
    acc[7] = a3r;
    acc[8] = a4l;
    acc[9] = a4r;
    acc[10] = a5l;
    acc[11] = a5r;
    acc[12] = a6l;
    acc[13] = a6r;
    acc[14] = a7l;
    acc[15] = a7r;
    for (var i = 0u; i < TM; i++) {
        let ci = row0 + i;
        if (ci >= c.ci) { break; }
        for (var j = 0u; j < TN; j++) {
            let pix = col0 + j;
            if (pix >= npix) { break; }
            dst[((pix / hw) * c.ci + ci) * hw + pix % hw] = acc[2u * i + j / 4u][j % 4u];
        }
    }
}

@compute @workgroup_size(8, 8, 1)
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
    var xoff: array<u32, 8>;
    var dh: array<i32, 8>;
    var dw: array<i32, 8>;
    for (var j = 0u; j < TN; j++) {
        let col = min(col0 + j, ncols - 1u);
        let t = col % kk;
        xoff[j] = (col / kk) * hw;
        dh[j] = i32(t / c.kw) - c.pad;
        dw[j] = i32(t % c.kw) - c.pad;
    }
    var wrow: array<u32, 8>;
    for (var i = 0u; i < TM; i++) { wrow[i] = min(row0 + i, c.co - 1u) * ohw; }
    var a0l = vec4<f32>(0.0);
    var a0r = vec4<f32>(0.0);
    var a1l = vec4<f32>(0.0);
    var a1r = vec4<f32>(0.0);
    var a2l = vec4<f32>(0.0);
    var a2r = vec4<f32>(0.0);
    var a3l = vec4<f32>(0.0);
    var a3r = vec4<f32>(0.0);
    var a4l = vec4<f32>(0.0);
    var a4r = vec4<f32>(0.0);
    var a5l = vec4<f32>(0.0);
    var a5r = vec4<f32>(0.0);
    var a6l = vec4<f32>(0.0);
    var a6r = vec4<f32>(0.0);
    var a7l = vec4<f32>(0.0);
    var a7r = vec4<f32>(0.0);
    for (var pix = 0u; pix < c.n * ohw; pix++) {
        let n = pix / ohw;
        let r = pix % ohw;
        let oh = i32((r / c.ow) * c.s);
        let ow = i32((r % c.ow) * c.s);
        var xv: array<f32, 8>;
        for (var j = 0u; j < TN; j++) {
            let ih = oh + dh[j];
            let iw = ow + dw[j];
            let inb = in_range(ih, c.h) && in_range(iw, c.w);
            let idx = select(0u, n * c.ci * hw + xoff[j] + u32(ih) * c.w + u32(iw), inb);
            xv[j] = src[idx] * select(0.0, 1.0, inb);
        }
        let x0 = vec4<f32>(xv[0], xv[1], xv[2], xv[3]);
        let x1 = vec4<f32>(xv[4], xv[5], xv[6], xv[7]);
        let ybase = n * c.co * ohw + r;
        let w0 = wsrc[ybase + wrow[0]];
        let w1 = wsrc[ybase + wrow[1]];
        let w2 = wsrc[ybase + wrow[2]];
        let w3 = wsrc[ybase + wrow[3]];
        let w4 = wsrc[ybase + wrow[4]];
        let w5 = wsrc[ybase + wrow[5]];
        let w6 = wsrc[ybase + wrow[6]];
        let w7 = wsrc[ybase + wrow[7]];
        a0l += w0 * x0;
        a0r += w0 * x1;
        a1l += w1 * x0;
        a1r += w1 * x1;
        a2l += w2 * x0;
        a2r += w2 * x1;
        a3l += w3 * x0;
        a3r += w3 * x1;
        a4l += w4 * x0;
        a4r += w4 * x1;
        a5l += w5 * x0;
        a5r += w5 * x1;
        a6l += w6 * x0;
        a6r += w6 * x1;
        a7l += w7 * x0;
        a7r += w7 * x1;
    }
    // The epilogue indexes the block: gather the named accumulators into an array once.
    var acc: array<vec4<f32>, 16>;
    acc[0] = a0l;
    acc[1] = a0r;
    acc[2] = a1l;
    acc[3] = a1r;
    acc[4] = a2l;
    acc[5] = a2r;
    acc[6] = a3l;
    acc[7] = a3r;
    acc[8] = a4l;
    acc[9] = a4r;
    acc[10] = a5l;
    acc[11] = a5r;
    acc[12] = a6l;
    acc[13] = a6r;
    acc[14] = a7l;
    acc[15] = a7r;
    for (var i = 0u; i < TM; i++) {
        let co = row0 + i;
        if (co >= c.co) { break; }
        for (var j = 0u; j < TN; j++) {
            let col = col0 + j;
            if (col >= ncols) { break; }
            dst[co * ncols + col] = acc[2u * i + j / 4u][j % 4u];
        }
    }
}
