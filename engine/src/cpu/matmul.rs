//! Matrix products: the f64 reference of `ops::matmul`.

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
