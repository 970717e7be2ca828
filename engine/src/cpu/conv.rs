//! 2-D convolution: the f64 reference of `ops::conv`.

/// The geometry of a convolution for the reference (NCHW input, [Co, Ci, KH, KW] weights).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvDims {
    /// Batch.
    pub n: usize,
    /// Input channels.
    pub ci: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub co: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride (both axes).
    pub stride: usize,
    /// Zero padding (both axes, both sides).
    pub pad: usize,
}

impl ConvDims {
    /// The output's (height, width).
    pub fn out_hw(&self) -> (usize, usize) {
        let (s, p) = (self.stride, self.pad);
        (
            (self.h + 2 * p - self.kh) / s + 1,
            (self.w + 2 * p - self.kw) / s + 1,
        )
    }
}

/// Calls `f(n, co, oy, ox, input index, weight index)` for every in-range tap of a convolution.
fn conv_taps(d: ConvDims, mut f: impl FnMut(usize, usize, usize, usize, usize, usize)) {
    let ConvDims {
        n,
        ci,
        h,
        w,
        co,
        kh,
        kw,
        stride: s,
        pad: p,
    } = d;
    let (oh, ow) = d.out_hw();
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
    let (n, co) = (d.n, d.co);
    let (oh, ow) = d.out_hw();
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
    let co = d.co;
    let (oh, ow) = d.out_hw();
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; wt.len()];
    conv_taps(d, |b, o, oy, ox, xi, wi| {
        let gy = g[((b * co + o) * oh + oy) * ow + ox];
        dx[xi] += gy * wt[wi];
        dw[wi] += gy * x[xi];
    });
    (dx, dw)
}
