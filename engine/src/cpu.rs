//! Plain-Rust reference of every op, forward and backward, in f64: the ground truth of the GPU
//! kernels' tests, itself checked against finite differences.

use crate::ops::{BinaryOp, UnaryOp};

/// erf to ~1e-15 (series below 3, continued fraction above).
pub fn erf(x: f64) -> f64 {
    let a = x.abs();
    let v = if a < 3.0 {
        let mut term = a;
        let mut sum = a;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -a * a / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // erfc(a) = exp(-a²)/√π · 1/(a + 1/2/(a + 1/(a + 3/2/(a + ...))))
        let mut f = a;
        for k in (1..60).rev() {
            f = a + (k as f64 / 2.0) / f;
        }
        1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * f)
    };
    v.copysign(x)
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// f(x) of a unary op with scalar `s`.
pub fn unary(op: UnaryOp, x: f64, s: f64) -> f64 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Square => x * x,
        UnaryOp::Relu => x.max(0.0),
        UnaryOp::Silu => x * sigmoid(x),
        UnaryOp::Gelu => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => sigmoid(x),
        UnaryOp::AddScalar => x + s,
        UnaryOp::MulScalar => x * s,
        UnaryOp::PowScalar => x.powf(s),
    }
}

/// f'(x) of a unary op with scalar `s`.
pub fn unary_grad(op: UnaryOp, x: f64, s: f64) -> f64 {
    match op {
        UnaryOp::Neg => -1.0,
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => 1.0 / x,
        UnaryOp::Sqrt => 0.5 / x.sqrt(),
        UnaryOp::Square => 2.0 * x,
        UnaryOp::Relu => (x > 0.0) as u8 as f64,
        UnaryOp::Silu => {
            let g = sigmoid(x);
            g * (1.0 + x * (1.0 - g))
        }
        UnaryOp::Gelu => {
            let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2)) + x * pdf
        }
        UnaryOp::Tanh => 1.0 - x.tanh().powi(2),
        UnaryOp::Sigmoid => sigmoid(x) * (1.0 - sigmoid(x)),
        UnaryOp::AddScalar => 1.0,
        UnaryOp::MulScalar => s,
        UnaryOp::PowScalar => s * x.powf(s - 1.0),
    }
}

/// a op b for one pair.
pub fn binary_scalar(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Max => a.max(b),
        BinaryOp::Min => a.min(b),
        BinaryOp::Eq => (a == b) as u8 as f64,
        BinaryOp::Gt => (a > b) as u8 as f64,
    }
}

/// Broadcast shape of two shapes (panics if incompatible: the reference trusts its caller).
pub fn broadcast(a: &[usize], b: &[usize]) -> Vec<usize> {
    let r = a.len().max(b.len());
    (0..r)
        .map(|i| {
            let da = if i + a.len() >= r {
                a[i + a.len() - r]
            } else {
                1
            };
            let db = if i + b.len() >= r {
                b[i + b.len() - r]
            } else {
                1
            };
            assert!(
                da == db || da == 1 || db == 1,
                "shapes {a:?} and {b:?} do not broadcast"
            );
            da.max(db)
        })
        .collect()
}

/// Index into `shape` (right-aligned, broadcast) of the output coordinate `coord`.
fn bindex(shape: &[usize], coord: &[usize]) -> usize {
    let lead = coord.len() - shape.len();
    let mut idx = 0;
    for (i, &d) in shape.iter().enumerate() {
        idx = idx * d + if d == 1 { 0 } else { coord[lead + i] };
    }
    idx
}

fn coords(shape: &[usize]) -> impl Iterator<Item = Vec<usize>> + '_ {
    let n: usize = shape.iter().product();
    (0..n).map(move |mut i| {
        let mut c = vec![0; shape.len()];
        for k in (0..shape.len()).rev() {
            c[k] = i % shape[k];
            i /= shape[k];
        }
        c
    })
}

/// Broadcasting binary op; returns the output and its shape.
pub fn binary(
    op: BinaryOp,
    a: &[f64],
    ash: &[usize],
    b: &[f64],
    bsh: &[usize],
) -> (Vec<f64>, Vec<usize>) {
    let out = broadcast(ash, bsh);
    let v = coords(&out)
        .map(|c| binary_scalar(op, a[bindex(ash, &c)], b[bindex(bsh, &c)]))
        .collect();
    (v, out)
}

/// Gradients of a broadcasting binary op for output gradient `g`.
pub fn binary_backward(
    op: BinaryOp,
    a: &[f64],
    ash: &[usize],
    b: &[f64],
    bsh: &[usize],
    g: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let out = broadcast(ash, bsh);
    let mut ga = vec![0.0; a.len()];
    let mut gb = vec![0.0; b.len()];
    for (i, c) in coords(&out).enumerate() {
        let (ia, ib) = (bindex(ash, &c), bindex(bsh, &c));
        let (x, y) = (a[ia], b[ib]);
        let (da, db) = match op {
            BinaryOp::Add => (1.0, 1.0),
            BinaryOp::Sub => (1.0, -1.0),
            BinaryOp::Mul => (y, x),
            BinaryOp::Div => (1.0 / y, -x / (y * y)),
            BinaryOp::Max => {
                if x >= y {
                    (1.0, 0.0)
                } else {
                    (0.0, 1.0)
                }
            }
            BinaryOp::Min => {
                if x <= y {
                    (1.0, 0.0)
                } else {
                    (0.0, 1.0)
                }
            }
            BinaryOp::Eq | BinaryOp::Gt => (0.0, 0.0),
        };
        ga[ia] += g[i] * da;
        gb[ib] += g[i] * db;
    }
    (ga, gb)
}

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

/// C[M,N] = op(A)·op(B) for one matrix; A is [K,M] when `ta`, B is [N,K] when `tb`.
pub fn matmul(a: &[f64], b: &[f64], m: usize, n: usize, k: usize, ta: bool, tb: bool) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0;
            for p in 0..k {
                let av = if ta { a[p * m + i] } else { a[i * k + p] };
                let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                s += av * bv;
            }
            c[i * n + j] = s;
        }
    }
    c
}

/// Gradients (dA in A's stored layout, dB in B's) of `matmul` for output gradient `g`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward(
    a: &[f64],
    b: &[f64],
    m: usize,
    n: usize,
    k: usize,
    ta: bool,
    tb: bool,
    g: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let mut da = vec![0.0; a.len()];
    let mut db = vec![0.0; b.len()];
    for i in 0..m {
        for j in 0..n {
            for p in 0..k {
                let ia = if ta { p * m + i } else { i * k + p };
                let ib = if tb { j * k + p } else { p * n + j };
                da[ia] += g[i * n + j] * b[ib];
                db[ib] += g[i * n + j] * a[ia];
            }
        }
    }
    (da, db)
}

/// Axis permutation: output axis i is input axis `perm[i]`.
pub fn permute(x: &[f64], shape: &[usize], perm: &[usize]) -> Vec<f64> {
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    coords(&out_shape)
        .map(|c| {
            x[c.iter()
                .zip(perm)
                .map(|(ci, &p)| ci * strides[p])
                .sum::<usize>()]
        })
        .collect()
}

/// Elements `start..start+len` along `axis`.
pub fn slice(x: &[f64], shape: &[usize], axis: usize, start: usize, len: usize) -> Vec<f64> {
    coords(shape)
        .zip(x)
        .filter(|(c, _)| c[axis] >= start && c[axis] < start + len)
        .map(|(_, v)| *v)
        .collect()
}

/// Concatenation along `axis`.
pub fn cat(parts: &[(&[f64], &[usize])], axis: usize) -> Vec<f64> {
    let outer: usize = parts[0].1[..axis].iter().product();
    let mut out = Vec::new();
    for o in 0..outer {
        for (x, sh) in parts {
            let block: usize = sh[axis..].iter().product();
            out.extend_from_slice(&x[o * block..(o + 1) * block]);
        }
    }
    out
}

/// Rows of a `[rows, dim]` table picked by `idx` (zero rows for indices out of range).
pub fn gather_rows(table: &[f64], dim: usize, idx: &[u32]) -> Vec<f64> {
    let rows = table.len() / dim;
    idx.iter()
        .flat_map(|&i| {
            let i = i as usize;
            if i < rows {
                table[i * dim..(i + 1) * dim].to_vec()
            } else {
                vec![0.0; dim]
            }
        })
        .collect()
}

/// Gradient of `gather_rows` with respect to the table.
pub fn gather_rows_backward(rows: usize, dim: usize, idx: &[u32], g: &[f64]) -> Vec<f64> {
    let mut dt = vec![0.0; rows * dim];
    for (n, &i) in idx.iter().enumerate() {
        if (i as usize) < rows {
            for d in 0..dim {
                dt[i as usize * dim + d] += g[n * dim + d];
            }
        }
    }
    dt
}

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

/// Philox4x32-10 (Salmon et al. 2011), the counter-based generator of the GPU's `randn`.
pub fn philox(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (counter, key);
    for _ in 0..10 {
        let p0 = 0xD251_1F53u64 * c[0] as u64;
        let p1 = 0xCD9E_8D57u64 * c[2] as u64;
        c = [
            ((p1 >> 32) as u32) ^ c[1] ^ k[0],
            p1 as u32,
            ((p0 >> 32) as u32) ^ c[3] ^ k[1],
            p0 as u32,
        ];
        k = [
            k[0].wrapping_add(0x9E37_79B9),
            k[1].wrapping_add(0xBB67_AE85),
        ];
    }
    c
}

/// The i-th standard normal of (seed, stream), exactly as the GPU computes it (Box–Muller on a
/// Philox block; uniforms in (0, 1] with 24 bits).
pub fn normal_at(i: u64, seed: u64, stream: u64) -> f64 {
    let r = philox(
        [(i / 4) as u32, stream as u32, (stream >> 32) as u32, 0],
        [seed as u32, (seed >> 32) as u32],
    );
    let unit = |u: u32| ((u >> 8) as f64 + 1.0) / 16_777_216.0;
    let pair = ((i & 3) >> 1) as usize;
    let (u1, u2) = (unit(r[2 * pair]), unit(r[2 * pair + 1]));
    let a = 2.0 * std::f64::consts::PI * u2;
    (-2.0 * u1.ln()).sqrt() * if i & 1 == 1 { a.sin() } else { a.cos() }
}

/// `√ᾱ[t_b]·x0 + √(1−ᾱ[t_b])·ε + scale_b·agg`, table rows `(√ᾱ, √(1−ᾱ))`.
pub fn q_sample(
    x0: &[f64],
    eps: &[f64],
    t: &[u32],
    table: &[f64],
    agg: Option<(&[f64], &[f64])>,
) -> Vec<f64> {
    let per = x0.len() / t.len();
    (0..x0.len())
        .map(|i| {
            let (b, row) = (i / per, t[i / per] as usize * 2);
            table[row] * x0[i] + table[row + 1] * eps[i] + agg.map_or(0.0, |(s, a)| s[b] * a[i])
        })
        .collect()
}

/// One DDPM step, x̂_0 form; table rows `(√ᾱ, √(1−ᾱ), c_x0, c_xt, σ)`; noise `z`. Returns (x_prev, x̂_0).
pub fn ddpm_step(
    x: &[f64],
    eps: &[f64],
    z: &[f64],
    t: &[u32],
    table: &[f64],
    agg: Option<(&[f64], &[f64])>,
    clip: f64,
) -> (Vec<f64>, Vec<f64>) {
    let per = x.len() / t.len();
    let mut out = vec![0.0; x.len()];
    let mut x0s = vec![0.0; x.len()];
    for i in 0..x.len() {
        let (b, r) = (i / per, t[i / per] as usize * 5);
        let mut x0 = (x[i] - table[r + 1] * eps[i]) / table[r];
        if clip > 0.0 {
            x0 = x0.clamp(-clip, clip);
        }
        x0s[i] = x0;
        out[i] = table[r + 2] * x0 + table[r + 3] * x[i] - agg.map_or(0.0, |(s, a)| s[b] * a[i])
            + table[r + 4] * z[i];
    }
    (out, x0s)
}

/// One DDIM step; table rows `(ᾱ_t, ᾱ_t', σ)`, aggregate scales `[B, 2]`. Returns (x_prev, x̂_0).
pub fn ddim_step(
    x: &[f64],
    eps: &[f64],
    z: &[f64],
    t: &[u32],
    table: &[f64],
    agg: Option<(&[f64], &[f64])>,
    clip: f64,
) -> (Vec<f64>, Vec<f64>) {
    let per = x.len() / t.len();
    let mut out = vec![0.0; x.len()];
    let mut x0s = vec![0.0; x.len()];
    for i in 0..x.len() {
        let (b, r) = (i / per, t[i / per] as usize * 3);
        let (ab, ab_prev, sigma) = (table[r], table[r + 1], table[r + 2]);
        let (c_t, c_prev) = agg.map_or((0.0, 0.0), |(s, a)| (s[2 * b] * a[i], s[2 * b + 1] * a[i]));
        let mut x0 = (x[i] - c_t - (1.0 - ab).sqrt() * eps[i]) / ab.sqrt();
        if clip > 0.0 {
            x0 = x0.clamp(-clip, clip);
        }
        x0s[i] = x0;
        out[i] = ab_prev.sqrt() * x0
            + c_prev
            + (1.0 - ab_prev - sigma * sigma).max(0.0).sqrt() * eps[i]
            + sigma * z[i];
    }
    (out, x0s)
}

/// Sinusoidal timestep embedding `[B] → [B, dim]` (see `ops::diffusion::timestep_embedding`).
pub fn timestep_embedding(
    t: &[u32],
    dim: usize,
    max_period: f64,
    shift: f64,
    flip: bool,
) -> Vec<f64> {
    let half = dim / 2;
    let mut out = vec![0.0; t.len() * dim];
    for (b, &tb) in t.iter().enumerate() {
        for j in 0..2 * half {
            let k = j % half;
            let arg = tb as f64 * (-(max_period.ln()) * k as f64 / (half as f64 - shift)).exp();
            out[b * dim + j] = if (j < half) != flip {
                arg.sin()
            } else {
                arg.cos()
            };
        }
    }
    out
}

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
