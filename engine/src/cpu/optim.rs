//! Optimizer updates: the f64 reference of the optimizers (`optim`).

/// One AdamW update of `p` in place (moments `m`, `v`; step `t` ≥ 1; gradient scaled by `gscale`).
#[allow(clippy::too_many_arguments)]
pub fn adamw_step(
    p: &mut [f64],
    g: &[f64],
    m: &mut [f64],
    v: &mut [f64],
    lr: f64,
    b1: f64,
    b2: f64,
    eps: f64,
    wd: f64,
    t: i32,
    gscale: f64,
) {
    let (bc1, bc2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
    for i in 0..p.len() {
        let gi = g[i] * gscale;
        m[i] = b1 * m[i] + (1.0 - b1) * gi;
        v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
        p[i] = p[i] * (1.0 - lr * wd) - lr * (m[i] / bc1) / ((v[i] / bc2).sqrt() + eps);
    }
}
