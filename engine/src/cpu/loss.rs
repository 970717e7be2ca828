//! Fused losses: softmax cross-entropy and MSE: the f64 reference of `ops::loss`.

use super::reduce::softmax;

/// Mean softmax cross-entropy of `[rows, c]` logits against labels.
pub fn cross_entropy(x: &[f64], c: usize, labels: &[u32]) -> f64 {
    let ls = softmax(x, c, true);
    let rows = labels.len();
    -(0..rows)
        .map(|r| ls[r * c + labels[r] as usize])
        .sum::<f64>()
        / rows as f64
}

/// Gradient of `cross_entropy` for a scalar output gradient `g`.
pub fn cross_entropy_backward(x: &[f64], c: usize, labels: &[u32], g: f64) -> Vec<f64> {
    let p = softmax(x, c, false);
    let rows = labels.len();
    p.iter()
        .enumerate()
        .map(|(i, &pi)| (pi - (labels[i / c] as usize == i % c) as u8 as f64) * g / rows as f64)
        .collect()
}

/// Mean squared error.
pub fn mse(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / a.len() as f64
}

/// Gradient of `mse` with respect to `a` (that of `b` is its negative).
pub fn mse_backward(a: &[f64], b: &[f64], g: f64) -> Vec<f64> {
    a.iter()
        .zip(b)
        .map(|(x, y)| 2.0 * (x - y) * g / a.len() as f64)
        .collect()
}
