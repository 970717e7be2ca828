//! Group norm: the f64 reference of `ops::norm`.

/// Group norm of `[n, c, s]` (s = spatial size) with affine and optional SiLU; `gamma` and
/// `beta` hold `c` (per channel) or `n·c` (per sample and channel) values.
#[allow(clippy::too_many_arguments)]
pub fn group_norm(
    x: &[f64],
    n: usize,
    c: usize,
    s: usize,
    groups: usize,
    gamma: &[f64],
    beta: &[f64],
    eps: f64,
    silu: bool,
) -> Vec<f64> {
    let l = c / groups * s;
    let mut y = vec![0.0; x.len()];
    for row in 0..n * groups {
        let xs = &x[row * l..(row + 1) * l];
        let mean = xs.iter().sum::<f64>() / l as f64;
        let var = xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / l as f64;
        for k in 0..l {
            let i = row * l + k;
            let a = if gamma.len() == c { (i / s) % c } else { i / s };
            let z = (x[i] - mean) / (var + eps).sqrt() * gamma[a] + beta[a];
            y[i] = if silu { z / (1.0 + (-z).exp()) } else { z };
        }
    }
    y
}

/// Gradients (x, γ, β) of [`group_norm`] for output gradient `g`; γ's and β's have their shape
/// (`c` or `n·c` values).
#[allow(clippy::too_many_arguments)]
pub fn group_norm_backward(
    x: &[f64],
    n: usize,
    c: usize,
    s: usize,
    groups: usize,
    gamma: &[f64],
    beta: &[f64],
    eps: f64,
    silu: bool,
    g: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let l = c / groups * s;
    let (mut dx, mut dgamma, mut dbeta) = (
        vec![0.0; x.len()],
        vec![0.0; gamma.len()],
        vec![0.0; beta.len()],
    );
    for row in 0..n * groups {
        let xs = &x[row * l..(row + 1) * l];
        let mean = xs.iter().sum::<f64>() / l as f64;
        let var = xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / l as f64;
        let rstd = 1.0 / (var + eps).sqrt();
        // x̂, and ∂L/∂x̂ = ∂L/∂z·γ with z = x̂·γ + β (through SiLU when fused).
        let mut xhat = vec![0.0; l];
        let mut dxhat = vec![0.0; l];
        for k in 0..l {
            let i = row * l + k;
            let a = if gamma.len() == c { (i / s) % c } else { i / s };
            xhat[k] = (x[i] - mean) * rstd;
            let z = xhat[k] * gamma[a] + beta[a];
            let dz = if silu {
                let sg = 1.0 / (1.0 + (-z).exp());
                g[i] * (sg + z * sg * (1.0 - sg))
            } else {
                g[i]
            };
            dgamma[a] += dz * xhat[k];
            dbeta[a] += dz;
            dxhat[k] = dz * gamma[a];
        }
        // ∂L/∂x = (∂L/∂x̂ − mean(∂L/∂x̂) − x̂·mean(∂L/∂x̂·x̂)) / σ over the group.
        let m1 = dxhat.iter().sum::<f64>() / l as f64;
        let m2 = dxhat.iter().zip(&xhat).map(|(d, h)| d * h).sum::<f64>() / l as f64;
        for k in 0..l {
            dx[row * l + k] = (dxhat[k] - m1 - xhat[k] * m2) * rstd;
        }
    }
    (dx, dgamma, dbeta)
}
