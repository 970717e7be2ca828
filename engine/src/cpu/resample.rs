//! Resampling: nearest ×2 upsample and 2×2 average pool: the f64 reference of `ops::resample`.

/// Nearest ×2 upsample of `planes` planes of h×w.
pub fn upsample2x(x: &[f64], planes: usize, h: usize, w: usize) -> Vec<f64> {
    let mut y = vec![0.0; planes * 4 * h * w];
    for q in 0..planes {
        for i in 0..2 * h {
            for j in 0..2 * w {
                y[(q * 2 * h + i) * 2 * w + j] = x[(q * h + i / 2) * w + j / 2];
            }
        }
    }
    y
}

/// Gradient of `upsample2x` (`g` of the upsampled size).
pub fn upsample2x_backward(g: &[f64], planes: usize, h: usize, w: usize) -> Vec<f64> {
    let mut dx = vec![0.0; planes * h * w];
    for q in 0..planes {
        for i in 0..2 * h {
            for j in 0..2 * w {
                dx[(q * h + i / 2) * w + j / 2] += g[(q * 2 * h + i) * 2 * w + j];
            }
        }
    }
    dx
}

/// 2×2 average pool (floor) of `planes` planes of h×w.
pub fn avgpool2x2(x: &[f64], planes: usize, h: usize, w: usize) -> Vec<f64> {
    let (ho, wo) = (h / 2, w / 2);
    let mut y = vec![0.0; planes * ho * wo];
    for q in 0..planes {
        for i in 0..ho {
            for j in 0..wo {
                let at = |a: usize, b: usize| x[(q * h + 2 * i + a) * w + 2 * j + b];
                y[(q * ho + i) * wo + j] = 0.25 * (at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1));
            }
        }
    }
    y
}

/// Gradient of `avgpool2x2` (`g` of the pooled size).
pub fn avgpool2x2_backward(g: &[f64], planes: usize, h: usize, w: usize) -> Vec<f64> {
    let (ho, wo) = (h / 2, w / 2);
    let mut dx = vec![0.0; planes * h * w];
    for q in 0..planes {
        for i in 0..2 * ho {
            for j in 0..2 * wo {
                dx[(q * h + i) * w + j] = 0.25 * g[(q * ho + i / 2) * wo + j / 2];
            }
        }
    }
    dx
}
