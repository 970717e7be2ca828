//! Fused multi-head attention: the f64 reference of `ops::attention`.

use super::reduce::softmax;

/// `softmax(q·kᵀ·scale)·v` for `bh` independent (S, D) problems.
pub fn attention(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    bh: usize,
    s: usize,
    d: usize,
    scale: f64,
) -> Vec<f64> {
    let mut out = vec![0.0; q.len()];
    for b in 0..bh {
        let at = |t: &[f64], i: usize| t[(b * s + i) * d..(b * s + i + 1) * d].to_vec();
        for i in 0..s {
            let qi = at(q, i);
            let scores: Vec<f64> = (0..s)
                .map(|j| qi.iter().zip(at(k, j)).map(|(a, b)| a * b).sum::<f64>() * scale)
                .collect();
            let p = softmax(&scores, s, false);
            for (j, pj) in p.iter().enumerate() {
                for (e, vje) in at(v, j).iter().enumerate() {
                    out[(b * s + i) * d + e] += pj * vje;
                }
            }
        }
    }
    out
}

/// Gradients (q, k, v) of [`attention`] for output gradient `g`.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    bh: usize,
    s: usize,
    d: usize,
    scale: f64,
    g: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut dq, mut dk, mut dv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    for b in 0..bh {
        let row = |i: usize| (b * s + i) * d..(b * s + i + 1) * d;
        for i in 0..s {
            let scores: Vec<f64> = (0..s)
                .map(|j| dot(&q[row(i)], &k[row(j)]) * scale)
                .collect();
            let p = softmax(&scores, s, false);
            // ∂L/∂p_j = g_i·v_j; through the softmax, ∂L/∂score_j = p_j (∂L/∂p_j − Σ p ∂L/∂p).
            let dp: Vec<f64> = (0..s).map(|j| dot(&g[row(i)], &v[row(j)])).collect();
            let mean = dot(&p, &dp);
            for j in 0..s {
                let ds = p[j] * (dp[j] - mean) * scale;
                for e in 0..d {
                    let (qi, kj) = (row(i).start + e, row(j).start + e);
                    dv[kj] += p[j] * g[qi];
                    dq[qi] += ds * k[kj];
                    dk[kj] += ds * q[qi];
                }
            }
        }
    }
    (dq, dk, dv)
}
