//! Reductions over axes and softmax: the f64 reference of `ops::reduce`.

use super::elementwise::{bindex, coords};

/// Sum (or max) over `axes`, keeping them as size-1 axes.
pub fn reduce(x: &[f64], shape: &[usize], axes: &[usize], max: bool) -> (Vec<f64>, Vec<usize>) {
    let out_shape: Vec<usize> = shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect();
    let mut out = vec![if max { f64::NEG_INFINITY } else { 0.0 }; out_shape.iter().product()];
    for (i, c) in coords(shape).enumerate() {
        let o = bindex(&out_shape, &c);
        out[o] = if max { out[o].max(x[i]) } else { out[o] + x[i] };
    }
    (out, out_shape)
}

/// Gradient of a sum (or max, shared among ties) over `axes`, `g` of the kept shape.
pub fn reduce_backward(
    x: &[f64],
    shape: &[usize],
    axes: &[usize],
    max: bool,
    g: &[f64],
) -> Vec<f64> {
    let (y, out_shape) = reduce(x, shape, axes, max);
    let mut count = vec![0.0; y.len()];
    if max {
        for (i, c) in coords(shape).enumerate() {
            let o = bindex(&out_shape, &c);
            count[o] += (x[i] == y[o]) as u8 as f64;
        }
    }
    coords(shape)
        .enumerate()
        .map(|(i, c)| {
            let o = bindex(&out_shape, &c);
            if max {
                if x[i] == y[o] {
                    g[o] / count[o]
                } else {
                    0.0
                }
            } else {
                g[o]
            }
        })
        .collect()
}

/// Softmax (or log-softmax) over rows of length `c`.
pub fn softmax(x: &[f64], c: usize, log: bool) -> Vec<f64> {
    x.chunks(c)
        .flat_map(|row| {
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
            row.iter()
                .map(move |v| {
                    if log {
                        v - m - s.ln()
                    } else {
                        (v - m).exp() / s
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Gradient of softmax (or log-softmax) over rows of length `c`.
pub fn softmax_backward(x: &[f64], c: usize, log: bool, g: &[f64]) -> Vec<f64> {
    let y = softmax(x, c, log);
    let mut dx = vec![0.0; x.len()];
    for r in 0..x.len() / c {
        let (ys, gs) = (&y[r * c..(r + 1) * c], &g[r * c..(r + 1) * c]);
        if log {
            let s: f64 = gs.iter().sum();
            for j in 0..c {
                dx[r * c + j] = gs[j] - ys[j].exp() * s;
            }
        } else {
            let s: f64 = gs.iter().zip(ys).map(|(a, b)| a * b).sum();
            for j in 0..c {
                dx[r * c + j] = ys[j] * (gs[j] - s);
            }
        }
    }
    dx
}
