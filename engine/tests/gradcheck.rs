//! The CPU reference's backward of every differentiable op against central finite differences
//! in f64: for L(x) = Σ w·f(x) with random w, dL/dx from the reference must equal
//! (L(x + h·eᵢ) − L(x − h·eᵢ)) / 2h. With h = 1e-6 in f64 the truncation and rounding error is
//! ~1e-9, so 1e-6 relative (plus 1e-7 absolute) is a tight check.

use mtdiff_engine::cpu;
use mtdiff_engine::ops::{BinaryOp, UnaryOp};
use mtdiff_engine::rng::CpuRng;

const H: f64 = 1e-6;

fn rand(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
    let mut r = CpuRng::new(seed);
    (0..n).map(|_| r.range(lo, hi)).collect()
}

/// Checks `analytic` = d/dx Σ w·f(x) against central differences.
#[track_caller]
fn check(what: &str, x: &[f64], w: &[f64], f: impl Fn(&[f64]) -> Vec<f64>, analytic: &[f64]) {
    let loss = |x: &[f64]| f(x).iter().zip(w).map(|(a, b)| a * b).sum::<f64>();
    let mut xp = x.to_vec();
    for i in 0..x.len() {
        xp[i] = x[i] + H;
        let up = loss(&xp);
        xp[i] = x[i] - H;
        let down = loss(&xp);
        xp[i] = x[i];
        let fd = (up - down) / (2.0 * H);
        let err = (fd - analytic[i]).abs();
        assert!(
            err <= 1e-7 + 1e-6 * fd.abs(),
            "{what}: element {i}: analytic {} vs finite difference {fd}",
            analytic[i]
        );
    }
}

#[test]
fn unary_ops() {
    for (k, &op) in UnaryOp::ALL.iter().enumerate() {
        let positive = matches!(op, UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::PowScalar);
        // Away from ReLU's kink at 0.
        let x: Vec<f64> = rand(20, k as u64, if positive { 0.2 } else { -3.0 }, 3.0)
            .into_iter()
            .map(|v| if v.abs() < 0.01 { 0.5 } else { v })
            .collect();
        let w = rand(20, 99, -1.0, 1.0);
        let s = 1.7;
        let analytic: Vec<f64> = x
            .iter()
            .zip(&w)
            .map(|(&x, &w)| w * cpu::unary_grad(op, x, s))
            .collect();
        check(
            &format!("{op:?}"),
            &x,
            &w,
            |x| x.iter().map(|&v| cpu::unary(op, v, s)).collect(),
            &analytic,
        );
    }
}

#[test]
fn binary_ops_with_broadcast() {
    let (sa, sb) = ([3usize, 1, 4], [5usize, 1]);
    for op in [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
    ] {
        let a = rand(12, 1, 0.5, 2.0);
        let b = rand(5, 2, 0.6, 2.1);
        let w = rand(60, 3, -1.0, 1.0);
        let (ga, gb) = cpu::binary_backward(op, &a, &sa, &b, &sb, &w);
        check(
            &format!("{op:?} d/da"),
            &a,
            &w,
            |a| cpu::binary(op, a, &sa, &b, &sb).0,
            &ga,
        );
        check(
            &format!("{op:?} d/db"),
            &b,
            &w,
            |b| cpu::binary(op, &a, &sa, b, &sb).0,
            &gb,
        );
    }
}

#[test]
fn reductions() {
    let shape = [3usize, 4, 5];
    let x = rand(60, 4, -2.0, 2.0);
    for (axes, max) in [
        (vec![1usize], false),
        (vec![0, 2], false),
        (vec![2], true),
        (vec![0, 1, 2], true),
    ] {
        let out_n: usize = shape
            .iter()
            .enumerate()
            .filter(|(i, _)| !axes.contains(i))
            .map(|(_, d)| d)
            .product();
        let w = rand(out_n, 5, -1.0, 1.0);
        let g = cpu::reduce_backward(&x, &shape, &axes, max, &w);
        check(
            &format!("reduce {axes:?} max={max}"),
            &x,
            &w,
            |x| cpu::reduce(x, &shape, &axes, max).0,
            &g,
        );
    }
}

#[test]
fn softmax_and_log_softmax() {
    let x = rand(21, 6, -3.0, 3.0);
    let w = rand(21, 7, -1.0, 1.0);
    for log in [false, true] {
        let g = cpu::softmax_backward(&x, 7, log, &w);
        check(
            &format!("softmax log={log}"),
            &x,
            &w,
            |x| cpu::softmax(x, 7, log),
            &g,
        );
    }
}

#[test]
fn matmul_all_transposes() {
    let (m, n, k) = (3, 4, 5);
    let a = rand(m * k, 8, -1.0, 1.0);
    let b = rand(k * n, 9, -1.0, 1.0);
    let w = rand(m * n, 10, -1.0, 1.0);
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let (da, db) = cpu::matmul_backward(&a, &b, m, n, k, ta, tb, &w);
        check(
            "matmul d/da",
            &a,
            &w,
            |a| cpu::matmul(a, &b, m, n, k, ta, tb),
            &da,
        );
        check(
            "matmul d/db",
            &b,
            &w,
            |b| cpu::matmul(&a, b, m, n, k, ta, tb),
            &db,
        );
    }
}

#[test]
fn layout_ops() {
    let shape = [2usize, 3, 4];
    let x = rand(24, 11, -1.0, 1.0);
    let w = rand(24, 12, -1.0, 1.0);
    let perm = [2usize, 0, 1];
    let g = cpu::permute(&w, &[4, 2, 3], &[1, 2, 0]);
    check("permute", &x, &w, |x| cpu::permute(x, &shape, &perm), &g);

    let ws = rand(16, 13, -1.0, 1.0);
    let mut g = vec![0.0; 24];
    let mut k = 0;
    for (i, gi) in g.iter_mut().enumerate() {
        if (1..3).contains(&((i / 4) % 3)) {
            *gi = ws[k];
            k += 1;
        }
    }
    check("slice", &x, &ws, |x| cpu::slice(x, &shape, 1, 1, 2), &g);

    let idx = [2u32, 0, 2, 5];
    let table = rand(12, 14, -1.0, 1.0);
    let wg = rand(12, 15, -1.0, 1.0);
    check(
        "gather_rows",
        &table,
        &wg,
        |t| cpu::gather_rows(t, 3, &idx),
        &cpu::gather_rows_backward(4, 3, &idx, &wg),
    );
}

#[test]
fn losses() {
    let x = rand(15, 16, -2.0, 2.0);
    let labels = [1u32, 4, 0];
    let g = cpu::cross_entropy_backward(&x, 5, &labels, 1.0);
    check(
        "cross_entropy",
        &x,
        &[1.0],
        |x| vec![cpu::cross_entropy(x, 5, &labels)],
        &g,
    );
    let b = rand(15, 17, -2.0, 2.0);
    check(
        "mse",
        &x,
        &[1.0],
        |x| vec![cpu::mse(x, &b)],
        &cpu::mse_backward(&x, &b, 1.0),
    );
}
