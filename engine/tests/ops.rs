//! Every op on the GPU, forward and backward, against the f64 CPU reference on random inputs and
//! odd shapes (1, 7, 33, 65, 129 …: not multiples of any tile).
//! Tolerances: f32 elementwise ~1e-5 relative; reductions and matmuls over up to ~10³ terms
//! accumulate ~√n·ε, so 1e-4 relative with an absolute floor scaled to the data.
//! Shader files covered: elementwise, reduce, layout, loss (wgsl).

mod common;

use common::{assert_close, device, f64s, rng};
use mtdiff_engine::ops::{BinaryOp, UnaryOp};
use mtdiff_engine::{cpu, Device, DeviceOptions, KernelProfile, Tensor};

fn upload(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(&device(), data, shape).unwrap()
}

/// Runs `f` on a leaf `x`, backpropagates Σ w·f(x) with random w, returns (f(x), dx, w).
fn forward_backward(
    x: &Tensor,
    f: impl Fn(&Tensor) -> Tensor,
    seed: u64,
) -> (Vec<f32>, Vec<f32>, Vec<f64>) {
    let x = x.with_grad();
    let y = f(&x);
    let w = rng(seed).vec_range(y.numel(), -1.0, 1.0);
    let wt = upload(&w, y.dims());
    let grads = y.mul(&wt).unwrap().sum_all().unwrap().backward().unwrap();
    (
        y.to_vec().unwrap(),
        grads.get(&x).expect("x has a gradient").to_vec().unwrap(),
        f64s(&w),
    )
}

#[test]
fn unary_ops_forward_and_backward() {
    for (i, &op) in UnaryOp::ALL.iter().enumerate() {
        for &n in &[1usize, 7, 33, 1000, 66_001] {
            let positive = matches!(op, UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::PowScalar);
            let (lo, hi) = if positive { (0.1, 3.0) } else { (-4.0, 4.0) };
            let xs = rng(i as u64 * 1000 + n as u64).vec_range(n, lo, hi);
            let s = 1.7f32;
            let (y, dx, w) = forward_backward(&upload(&xs, &[n]), |x| x.unary(op, s).unwrap(), 7);
            let x64 = f64s(&xs);
            let y_ref: Vec<f64> = x64.iter().map(|&x| cpu::unary(op, x, s as f64)).collect();
            let dx_ref: Vec<f64> = x64
                .iter()
                .zip(&w)
                .map(|(&x, &w)| w * cpu::unary_grad(op, x, s as f64))
                .collect();
            assert_close(&format!("{op:?} forward n={n}"), &y, &y_ref, 2e-5, 2e-6);
            assert_close(&format!("{op:?} backward n={n}"), &dx, &dx_ref, 2e-5, 2e-6);
        }
    }
}

#[test]
fn binary_ops_broadcast_forward_and_backward() {
    let shapes: &[(&[usize], &[usize])] = &[
        (&[7], &[7]),
        // Same shapes with n divisible by 4: the four-elements-per-thread kernel.
        (&[3, 4, 5], &[3, 4, 5]),
        (&[2, 3, 3, 78], &[2, 3, 3, 78]),
        (&[33, 5], &[5]),
        (&[3, 1, 7], &[4, 1]),
        (&[1], &[2, 3, 65]),
        (&[2, 1, 3, 1, 5], &[1, 4, 1, 6, 1]),
        (&[129, 3], &[129, 1]),
        // One operand full, the other a repeated block (the kernel's division-light paths):
        // a middle block, a trailing block on the left, a leading block on the left, a middle
        // block on the left.
        (&[2, 3, 4, 5], &[3, 1, 1]),
        (&[3, 4], &[2, 3, 4]),
        (&[2, 6, 1, 1], &[2, 6, 3, 4]),
        (&[5, 1], &[3, 5, 2]),
    ];
    for op in [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
    ] {
        for (si, (sa, sb)) in shapes.iter().enumerate() {
            let na: usize = sa.iter().product();
            let nb: usize = sb.iter().product();
            let mut r = rng(si as u64 + 10 * op as u64);
            let av = r.vec_range(na, -2.0, 2.0);
            // Keep divisors away from 0.
            let bv: Vec<f32> = r
                .vec_range(nb, 0.5, 2.0)
                .iter()
                .map(|v| if r.uniform() < 0.5 { -v } else { *v })
                .collect();
            let a = upload(&av, sa).with_grad();
            let b = upload(&bv, sb).with_grad();
            let y = a.binary(&b, op).unwrap();
            let (y_ref, out_shape) = cpu::binary(op, &f64s(&av), sa, &f64s(&bv), sb);
            assert_eq!(y.dims(), &out_shape[..]);
            assert_close(
                &format!("{op:?} {sa:?}·{sb:?}"),
                &y.to_vec().unwrap(),
                &y_ref,
                1e-6,
                1e-6,
            );
            let w = r.vec_range(y.numel(), -1.0, 1.0);
            let g = y
                .mul(&upload(&w, y.dims()))
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let (ga, gb) = cpu::binary_backward(op, &f64s(&av), sa, &f64s(&bv), sb, &f64s(&w));
            assert_close(
                &format!("{op:?} d/da {sa:?}·{sb:?}"),
                &g.get(&a).unwrap().to_vec().unwrap(),
                &ga,
                1e-4,
                1e-5,
            );
            assert_close(
                &format!("{op:?} d/db {sa:?}·{sb:?}"),
                &g.get(&b).unwrap().to_vec().unwrap(),
                &gb,
                1e-4,
                1e-5,
            );
        }
    }
}

#[test]
fn comparisons_and_masking() {
    let a = upload(&[1.0, 2.0, 3.0, 4.0], &[4]);
    let b = upload(&[1.0, 3.0, 2.0, 4.0], &[4]);
    assert_eq!(
        a.binary(&b, BinaryOp::Eq).unwrap().to_vec().unwrap(),
        vec![1.0, 0.0, 0.0, 1.0]
    );
    assert_eq!(
        a.binary(&b, BinaryOp::Gt).unwrap().to_vec().unwrap(),
        vec![0.0, 0.0, 1.0, 0.0]
    );
    let mask = upload(&[1.0, 0.0, 1.0, 0.0], &[4]);
    assert_eq!(
        a.where_mask(&mask, &b).unwrap().to_vec().unwrap(),
        vec![1.0, 3.0, 3.0, 4.0]
    );
}

#[test]
fn reductions_over_axes() {
    let cases: &[(&[usize], &[usize])] = &[
        (&[7], &[0]),
        (&[33, 65], &[1]),
        (&[33, 65], &[0]),
        (&[3, 5, 7], &[0, 2]),
        (&[3, 5, 7], &[1, 2]),
        (&[2, 3, 4, 5], &[0, 1, 2, 3]),
        (&[129, 1, 3], &[1]),
        (&[1000, 70], &[0, 1]),
        // Four elements per load: inner divisible by 4, and rows of a length divisible by 4.
        (&[3, 5, 12], &[1]),
        (&[7, 3, 4], &[0]),
        (&[6, 5, 20], &[2]),
        (&[5, 3, 4, 9], &[2, 3]),
        // Leading and trailing axes together (one dispatch, a workgroup per kept element):
        // scalar and vec4 rows, several strides of the workgroup over (outer, inner).
        (&[65, 3, 33], &[0, 2]),
        (&[6, 7, 20], &[0, 2]),
        (&[2, 3, 5, 8], &[0, 1, 3]),
        (&[64, 16, 256], &[0, 2]),
    ];
    for (ci, (shape, axes)) in cases.iter().enumerate() {
        let n: usize = shape.iter().product();
        let xs = rng(ci as u64).vec_range(n, -3.0, 3.0);
        for (name, max, mean) in [
            ("sum", false, false),
            ("mean", false, true),
            ("max", true, false),
        ] {
            let (y, dx, w) = forward_backward(
                &upload(&xs, shape),
                |x| match name {
                    "sum" => x.sum(axes, false).unwrap(),
                    "mean" => x.mean(axes, false).unwrap(),
                    _ => x.max(axes, true).unwrap(),
                },
                ci as u64 + 100,
            );
            let (mut y_ref, _) = cpu::reduce(&f64s(&xs), shape, axes, max);
            let count: usize = axes.iter().map(|&a| shape[a]).product();
            let scale = if mean { 1.0 / count as f64 } else { 1.0 };
            y_ref.iter_mut().for_each(|v| *v *= scale);
            let gw: Vec<f64> = w.iter().map(|v| v * scale).collect();
            let dx_ref = cpu::reduce_backward(&f64s(&xs), shape, axes, max, &gw);
            let atol = 1e-5 * (count as f64).sqrt() * 3.0;
            assert_close(
                &format!("{name} {shape:?} over {axes:?}"),
                &y,
                &y_ref,
                1e-4,
                atol,
            );
            assert_close(
                &format!("d {name} {shape:?} over {axes:?}"),
                &dx,
                &dx_ref,
                1e-4,
                1e-5,
            );
        }
    }
}

/// The one-dispatch reduction of leading and trailing axes has a workgroup-tree kernel for GPUs
/// and a thread-per-output one for CPU adapters: both against the reference.
#[test]
fn leading_and_trailing_axes_reduce_in_both_kernel_profiles() {
    for profile in [KernelProfile::Cpu, KernelProfile::Gpu] {
        let dev = common::device_profile(profile);
        for (ci, (shape, axes)) in [
            (&[65usize, 3, 33][..], &[0usize, 2][..]),
            (&[6, 7, 20], &[0, 2]),
            (&[2, 3, 5, 8], &[0, 1, 3]),
            (&[9, 70, 12], &[0, 2]),
        ]
        .into_iter()
        .enumerate()
        {
            let n: usize = shape.iter().product();
            let xs = rng(ci as u64 + 40).vec_range(n, -3.0, 3.0);
            let x = Tensor::from_slice(&dev, &xs, shape).unwrap();
            for max in [false, true] {
                let y = if max {
                    x.max(axes, false).unwrap()
                } else {
                    x.sum(axes, false).unwrap()
                };
                let (y_ref, _) = cpu::reduce(&f64s(&xs), shape, axes, max);
                let count: usize = axes.iter().map(|&a| shape[a]).product();
                assert_close(
                    &format!("{profile:?} max={max} {shape:?} over {axes:?}"),
                    &y.to_vec().unwrap(),
                    &y_ref,
                    1e-4,
                    1e-5 * (count as f64).sqrt() * 3.0,
                );
            }
        }
    }
}

#[test]
fn softmax_and_log_softmax() {
    for &(rows, c) in &[(1usize, 1usize), (7, 33), (3, 1000), (65, 10)] {
        let xs = rng(rows as u64 * c as u64).vec_range(rows * c, -5.0, 5.0);
        for log in [false, true] {
            let (y, dx, w) = forward_backward(
                &upload(&xs, &[rows, c]),
                |x| {
                    if log {
                        x.log_softmax().unwrap()
                    } else {
                        x.softmax().unwrap()
                    }
                },
                3,
            );
            assert_close(
                &format!("softmax log={log} {rows}x{c}"),
                &y,
                &cpu::softmax(&f64s(&xs), c, log),
                1e-5,
                1e-6,
            );
            let dx_ref = cpu::softmax_backward(&f64s(&xs), c, log, &w);
            assert_close(
                &format!("d softmax log={log} {rows}x{c}"),
                &dx,
                &dx_ref,
                1e-4,
                1e-5,
            );
        }
    }
}

#[test]
fn permute_transpose_broadcast() {
    let shape = [3usize, 5, 7, 2];
    let xs = rng(1).vec_range(210, -1.0, 1.0);
    for perm in [[0usize, 1, 2, 3], [3, 2, 1, 0], [1, 0, 3, 2], [2, 0, 3, 1]] {
        let (y, dx, w) = forward_backward(&upload(&xs, &shape), |x| x.permute(&perm).unwrap(), 5);
        assert_close(
            &format!("permute {perm:?}"),
            &y,
            &cpu::permute(&f64s(&xs), &shape, &perm),
            0.0,
            0.0,
        );
        let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        let mut inv = [0usize; 4];
        for (i, &p) in perm.iter().enumerate() {
            inv[p] = i;
        }
        assert_close(
            &format!("d permute {perm:?}"),
            &dx,
            &cpu::permute(&w, &out_shape, &inv),
            0.0,
            0.0,
        );
    }
    let xs = rng(2).vec_range(7, -1.0, 1.0);
    let (y, dx, w) = forward_backward(
        &upload(&xs, &[7, 1]),
        |x| x.broadcast_to(&[3, 7, 5]).unwrap(),
        9,
    );
    let y_ref: Vec<f64> = (0..105).map(|i| xs[(i / 5) % 7] as f64).collect();
    assert_close("broadcast_to", &y, &y_ref, 0.0, 0.0);
    let dx_ref: Vec<f64> = (0..7)
        .map(|r| {
            (0..3)
                .flat_map(|b| (0..5).map(move |c| b * 35 + r * 5 + c))
                .map(|i| w[i])
                .sum()
        })
        .collect();
    assert_close("d broadcast_to", &dx, &dx_ref, 1e-6, 1e-6);
}

/// `cat` along an axis with only size-1 axes before it: contiguous blocks joined by buffer
/// copies (no dispatch), the gradients the output gradient's blocks; with misaligned block
/// offsets (odd row lengths) too. On a device of its own: other tests dispatch concurrently.
#[test]
fn cat_of_contiguous_blocks_is_copies() {
    let dev = Device::new(DeviceOptions::default()).unwrap();
    let upload = |v: &[f32], s: &[usize]| Tensor::from_slice(&dev, v, s).unwrap();
    let mut r = rng(41);
    let cases: [(usize, [&[usize]; 3]); 3] = [
        (0, [&[2, 5], &[3, 5], &[1, 5]]),
        (1, [&[1, 3, 7], &[1, 1, 7], &[1, 4, 7]]),
        (0, [&[64, 3], &[0, 3], &[32, 3]]),
    ];
    for (axis, shapes) in cases {
        let vals: Vec<Vec<f32>> = shapes
            .iter()
            .map(|s| r.vec_range(s.iter().product(), -1.0, 1.0))
            .collect();
        let ts: Vec<Tensor> = vals
            .iter()
            .zip(shapes)
            .map(|(v, s)| upload(v, s).with_grad())
            .collect();
        let refs: Vec<&Tensor> = ts.iter().collect();
        let before = dev.dispatch_stats().dispatches;
        let y = Tensor::cat(&refs, axis).unwrap();
        assert_eq!(dev.dispatch_stats().dispatches, before, "no dispatch");
        let parts: Vec<(Vec<f64>, Vec<usize>)> = vals
            .iter()
            .zip(shapes)
            .map(|(v, s)| (f64s(v), s.to_vec()))
            .collect();
        let parts_ref: Vec<(&[f64], &[usize])> =
            parts.iter().map(|(v, s)| (&v[..], &s[..])).collect();
        let y_ref = cpu::cat(&parts_ref, axis);
        assert_close("cat blocks", &y.to_vec().unwrap(), &y_ref, 0.0, 0.0);
        let w = r.vec_range(y.numel(), -1.0, 1.0);
        let g = y
            .mul(&upload(&w, y.dims()))
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let mut start = 0;
        for (t, s) in ts.iter().zip(shapes) {
            let len = s[axis];
            let want = cpu::slice(&f64s(&w), y.dims(), axis, start, len);
            if t.numel() > 0 {
                let got = g.get(t).unwrap().to_vec().unwrap();
                assert_close("d cat block", &got, &want, 0.0, 0.0);
            }
            start += len;
        }
    }
}

#[test]
fn u32_tensors_cat_along_their_first_axis_only() {
    let dev = device();
    let a = Tensor::from_u32(&dev, &[3, 1, 4], &[3]).unwrap();
    let b = Tensor::from_u32(&dev, &[u32::MAX, 0], &[2]).unwrap();
    let y = Tensor::cat(&[&a, &b], 0).unwrap();
    assert_eq!(y.to_vec_u32().unwrap(), vec![3, 1, 4, u32::MAX, 0]);
    let m = Tensor::from_u32(&dev, &[1, 2, 3, 4], &[2, 2]).unwrap();
    let err = Tensor::cat(&[&m, &m], 1).unwrap_err().to_string();
    assert!(err.contains("cat"), "{err}");
    let f = Tensor::from_slice(&dev, &[1.0], &[1]).unwrap();
    assert!(
        Tensor::cat(&[&a, &f], 0).is_err(),
        "mixed dtypes are refused"
    );
}

#[test]
fn cat_slice_narrow() {
    let mut r = rng(4);
    // inner 8: the four-elements-per-thread copy.
    for inner in [8usize, 5] {
        let (sa, sb): ([usize; 3], [usize; 3]) = ([3, 2, inner], [3, 7, inner]);
        let av = r.vec_range(6 * inner, -1.0, 1.0);
        let bv = r.vec_range(21 * inner, -1.0, 1.0);
        let a = upload(&av, &sa).with_grad();
        let b = upload(&bv, &sb).with_grad();
        let y = Tensor::cat(&[&a, &b], 1).unwrap();
        assert_eq!(y.dims(), &[3, 9, inner]);
        let y_ref = cpu::cat(&[(&f64s(&av), &sa), (&f64s(&bv), &sb)], 1);
        assert_close("cat", &y.to_vec().unwrap(), &y_ref, 0.0, 0.0);
        let w = r.vec_range(27 * inner, -1.0, 1.0);
        let g = y
            .mul(&upload(&w, y.dims()))
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert_close(
            "d cat a",
            &g.get(&a).unwrap().to_vec().unwrap(),
            &cpu::slice(&f64s(&w), &[3, 9, inner], 1, 0, 2),
            0.0,
            0.0,
        );
        assert_close(
            "d cat b",
            &g.get(&b).unwrap().to_vec().unwrap(),
            &cpu::slice(&f64s(&w), &[3, 9, inner], 1, 2, 7),
            0.0,
            0.0,
        );
    }
    let sb = [3usize, 7, 5];
    let bv = r.vec_range(105, -1.0, 1.0);

    let (y, dx, w) = forward_backward(&upload(&bv, &sb), |x| x.slice(2, 1, 3).unwrap(), 11);
    assert_close("slice", &y, &cpu::slice(&f64s(&bv), &sb, 2, 1, 3), 0.0, 0.0);
    let mut dx_ref = vec![0.0; 105];
    let mut k = 0;
    for (i, d) in dx_ref.iter_mut().enumerate() {
        if (1..4).contains(&(i % 5)) {
            *d = w[k];
            k += 1;
        }
    }
    assert_close("d slice", &dx, &dx_ref, 0.0, 0.0);

    // narrow: an aligned view and a misaligned copy; both differentiable.
    for (start, len) in [(0usize, 2usize), (1, 2), (2, 1)] {
        let (y, dx, w) = forward_backward(
            &upload(&bv, &sb),
            |x| x.narrow(start, len).unwrap().mul_scalar(2.0).unwrap(),
            13,
        );
        let y_ref: Vec<f64> = bv[start * 35..(start + len) * 35]
            .iter()
            .map(|&v| 2.0 * v as f64)
            .collect();
        assert_close("narrow", &y, &y_ref, 1e-7, 0.0);
        let mut dx_ref = vec![0.0; 105];
        for (i, v) in w.iter().enumerate() {
            dx_ref[start * 35 + i] = 2.0 * v;
        }
        assert_close("d narrow", &dx, &dx_ref, 1e-7, 0.0);
    }
}

#[test]
fn gather_rows_embedding() {
    let dev = device();
    let (rows, dim) = (10usize, 33usize);
    let table = rng(5).vec_range(rows * dim, -1.0, 1.0);
    let idx: Vec<u32> = vec![3, 0, 9, 3, 3, 7, 12];
    let it = Tensor::from_u32(&dev, &idx, &[7]).unwrap();
    let (y, dx, w) = forward_backward(
        &upload(&table, &[rows, dim]),
        |t| t.gather_rows(&it).unwrap(),
        17,
    );
    assert_close(
        "gather_rows",
        &y,
        &cpu::gather_rows(&f64s(&table), dim, &idx),
        0.0,
        0.0,
    );
    assert_close(
        "d gather_rows",
        &dx,
        &cpu::gather_rows_backward(rows, dim, &idx, &w),
        1e-6,
        1e-6,
    );
}

#[test]
fn fused_losses() {
    let dev = device();
    for &(rows, c) in &[(1usize, 2usize), (7, 10), (65, 33), (3, 300)] {
        let mut r = rng(rows as u64 + c as u64);
        let xs = r.vec_range(rows * c, -4.0, 4.0);
        let labels: Vec<u32> = (0..rows).map(|_| r.below(c) as u32).collect();
        let lt = Tensor::from_u32(&dev, &labels, &[rows]).unwrap();
        let x = upload(&xs, &[rows, c]).with_grad();
        let loss = x.cross_entropy(&lt).unwrap();
        let l_ref = cpu::cross_entropy(&f64s(&xs), c, &labels);
        assert_close(
            "cross_entropy",
            &[loss.to_scalar().unwrap()],
            &[l_ref],
            1e-5,
            1e-6,
        );
        let g = loss.mul_scalar(3.0).unwrap().backward().unwrap();
        let dx_ref = cpu::cross_entropy_backward(&f64s(&xs), c, &labels, 3.0);
        assert_close(
            "d cross_entropy",
            &g.get(&x).unwrap().to_vec().unwrap(),
            &dx_ref,
            1e-4,
            1e-6,
        );
    }
    for &n in &[1usize, 7, 4097, 300_000] {
        let mut r = rng(n as u64);
        let (av, bv) = (r.vec_range(n, -2.0, 2.0), r.vec_range(n, -2.0, 2.0));
        let a = upload(&av, &[n]).with_grad();
        let b = upload(&bv, &[n]).with_grad();
        let loss = a.mse(&b).unwrap();
        assert_close(
            "mse",
            &[loss.to_scalar().unwrap()],
            &[cpu::mse(&f64s(&av), &f64s(&bv))],
            1e-5,
            1e-6,
        );
        let g = loss.mul_scalar(0.5).unwrap().backward().unwrap();
        let da = cpu::mse_backward(&f64s(&av), &f64s(&bv), 0.5);
        assert_close(
            "d mse a",
            &g.get(&a).unwrap().to_vec().unwrap(),
            &da,
            1e-4,
            1e-9,
        );
        let db: Vec<f64> = da.iter().map(|v| -v).collect();
        assert_close(
            "d mse b",
            &g.get(&b).unwrap().to_vec().unwrap(),
            &db,
            1e-4,
            1e-9,
        );
    }
}

#[test]
fn out_of_range_label_gives_nan_not_garbage() {
    let dev = device();
    let x = upload(&[0.0, 1.0, 2.0, 0.5, 0.5, 0.5], &[2, 3]);
    let lt = Tensor::from_u32(&dev, &[1, 3], &[2]).unwrap();
    assert!(x.cross_entropy(&lt).unwrap().to_scalar().unwrap().is_nan());
}
