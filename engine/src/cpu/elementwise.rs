//! Elementwise ops: unary functions and their derivatives, broadcasting binary ops: the f64
//! reference of `ops::elementwise`.

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
pub(super) fn bindex(shape: &[usize], coord: &[usize]) -> usize {
    let lead = coord.len() - shape.len();
    let mut idx = 0;
    for (i, &d) in shape.iter().enumerate() {
        idx = idx * d + if d == 1 { 0 } else { coord[lead + i] };
    }
    idx
}

pub(super) fn coords(shape: &[usize]) -> impl Iterator<Item = Vec<usize>> + '_ {
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
