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
{{ACC}}
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
{{FORWARD_X}}
                let wo = ci * kk + tap;
{{FORWARD_W}}
{{FORWARD_FMA}}
            }
        }
    }
    // The epilogue indexes the block: gather the named accumulators into an array once.
    var acc: array<vec4<f32>, 64>;
{{GATHER}}
    for (var i = 0u; i < TM; i++) {
        let co = row0 + i;
        if (co >= c.co) { break; }
{{BIAS}}
        for (var j = 0u; j < TN; j++) {
            let pix = col0 + j;
            if (pix >= npix) { break; }
            let z = acc[4u * i + j / 4u][j % 4u] + b;
            let o = ((pix / ohw) * c.co + co) * ohw + pix % ohw;
{{STORE}}
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
{{ACC}}
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
{{DATA_Y}}
                let wb = co * c.ci;
{{DATA_W}}
{{DATA_FMA}}
            }
        }
    }
    // The epilogue indexes the block: gather the named accumulators into an array once.
    var acc: array<vec4<f32>, 64>;
{{GATHER}}
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
{{ACC}}
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
{{WEIGHT_W}}
{{WEIGHT_FMA}}
    }
    // The epilogue indexes the block: gather the named accumulators into an array once.
    var acc: array<vec4<f32>, 64>;
{{GATHER}}
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
