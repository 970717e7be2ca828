//! 2-D convolution: the f64 reference of `ops::conv`.

/// The geometry of a convolution for the reference: (n, ci, h, w, co, kh, kw, stride, pad).
pub type ConvDims = (
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
);

fn conv_out(d: ConvDims) -> (usize, usize) {
    let (_, _, h, w, _, kh, kw, s, p) = d;
    ((h + 2 * p - kh) / s + 1, (w + 2 * p - kw) / s + 1)
}

/// Calls `f(n, co, oy, ox, input index, weight index)` for every in-range tap of a convolution.
fn conv_taps(d: ConvDims, mut f: impl FnMut(usize, usize, usize, usize, usize, usize)) {
    let (n, ci, h, w, co, kh, kw, s, p) = d;
    let (oh, ow) = conv_out(d);
    for b in 0..n {
        for o in 0..co {
            for y in 0..oh {
                for x in 0..ow {
                    for c in 0..ci {
                        for i in 0..kh {
                            for j in 0..kw {
                                let (iy, ix) = (
                                    (y * s + i) as isize - p as isize,
                                    (x * s + j) as isize - p as isize,
                                );
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                    let xi = ((b * ci + c) * h + iy as usize) * w + ix as usize;
                                    f(b, o, y, x, xi, ((o * ci + c) * kh + i) * kw + j);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Convolution (NCHW, weights [Co, Ci, KH, KW]) plus bias.
pub fn conv2d(x: &[f64], wt: &[f64], bias: Option<&[f64]>, d: ConvDims) -> Vec<f64> {
    let (n, _, _, _, co, ..) = d;
    let (oh, ow) = conv_out(d);
    let mut y = vec![0.0; n * co * oh * ow];
    conv_taps(d, |b, o, oy, ox, xi, wi| {
        y[((b * co + o) * oh + oy) * ow + ox] += x[xi] * wt[wi]
    });
    if let Some(bias) = bias {
        y.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v += bias[(i / (oh * ow)) % co]);
    }
    y
}

/// Gradients (input, weight) of `conv2d` for output gradient `g`.
pub fn conv2d_backward(x: &[f64], wt: &[f64], g: &[f64], d: ConvDims) -> (Vec<f64>, Vec<f64>) {
    let (_, _, _, _, co, ..) = d;
    let (oh, ow) = conv_out(d);
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; wt.len()];
    conv_taps(d, |b, o, oy, ox, xi, wi| {
        let gy = g[((b * co + o) * oh + oy) * ow + ox];
        dx[xi] += gy * wt[wi];
        dw[wi] += gy * x[xi];
    });
    (dx, dw)
}
