//! U-Net building blocks against the CPU reference: nearest upsample and average pool (forward
//! and backward), group norm with affine and fused SiLU (forward; backward against central finite
//! differences of the f64 reference forward, which also checks the reference).
//! Shader files covered: resample, norm (wgsl).

mod common;

use common::{assert_close, device_profile, f64s, rng};
use mtdiff_engine::KernelProfile;
use mtdiff_engine::{cpu, Tensor};

#[test]
fn upsample_and_avgpool() {
    let dev = device_profile(KernelProfile::Cpu);
    for &(n, c, h, w) in &[
        (1usize, 1usize, 1usize, 1usize),
        (2, 3, 7, 5),
        (3, 2, 14, 14),
        (1, 4, 33, 65),
    ] {
        let planes = n * c;
        let mut r = rng((h * w) as u64);
        let xs = r.vec_range(planes * h * w, -1.0, 1.0);
        let x = Tensor::from_slice(&dev, &xs, &[n, c, h, w])
            .unwrap()
            .with_grad();
        let up = x.upsample2x().unwrap();
        assert_eq!(up.dims(), &[n, c, 2 * h, 2 * w]);
        assert_close(
            "upsample2x",
            &up.to_vec().unwrap(),
            &cpu::upsample2x(&f64s(&xs), planes, h, w),
            0.0,
            0.0,
        );
        let gw = r.vec_range(up.numel(), -1.0, 1.0);
        let g = up
            .mul(&Tensor::from_slice(&dev, &gw, up.dims()).unwrap())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert_close(
            "d upsample2x",
            &g.get(&x).unwrap().to_vec().unwrap(),
            &cpu::upsample2x_backward(&f64s(&gw), planes, h, w),
            1e-6,
            1e-6,
        );

        let pool = x.avgpool2x2().unwrap();
        assert_eq!(pool.dims(), &[n, c, h / 2, w / 2]);
        assert_close(
            "avgpool2x2",
            &pool.to_vec().unwrap(),
            &cpu::avgpool2x2(&f64s(&xs), planes, h, w),
            1e-6,
            1e-7,
        );
        if pool.numel() > 0 {
            let gw = r.vec_range(pool.numel(), -1.0, 1.0);
            let g = pool
                .mul(&Tensor::from_slice(&dev, &gw, pool.dims()).unwrap())
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            assert_close(
                "d avgpool2x2",
                &g.get(&x).unwrap().to_vec().unwrap(),
                &cpu::avgpool2x2_backward(&f64s(&gw), planes, h, w),
                1e-6,
                1e-7,
            );
        }
    }
}

#[test]
fn resample_backward_references_match_finite_differences() {
    let (planes, h, w) = (2usize, 3usize, 5usize);
    let mut r = rng(1);
    let x: Vec<f64> = (0..planes * h * w).map(|_| r.range(-1.0, 1.0)).collect();
    let gu: Vec<f64> = (0..planes * 4 * h * w)
        .map(|_| r.range(-1.0, 1.0))
        .collect();
    let gp: Vec<f64> = (0..planes * (h / 2) * (w / 2))
        .map(|_| r.range(-1.0, 1.0))
        .collect();
    let fd = |f: &dyn Fn(&[f64]) -> Vec<f64>, g: &[f64]| -> Vec<f64> {
        (0..x.len())
            .map(|i| {
                let (mut a, mut b) = (x.clone(), x.clone());
                a[i] += 1e-6;
                b[i] -= 1e-6;
                f(&a)
                    .iter()
                    .zip(f(&b))
                    .zip(g)
                    .map(|((p, m), w)| (p - m) * w)
                    .sum::<f64>()
                    / 2e-6
            })
            .collect()
    };
    let up = fd(&|x| cpu::upsample2x(x, planes, h, w), &gu);
    let pool = fd(&|x| cpu::avgpool2x2(x, planes, h, w), &gp);
    for (a, b) in cpu::upsample2x_backward(&gu, planes, h, w)
        .iter()
        .zip(&up)
        .chain(
            cpu::avgpool2x2_backward(&gp, planes, h, w)
                .iter()
                .zip(&pool),
        )
    {
        assert!((a - b).abs() < 1e-7, "{a} vs {b}");
    }
}

/// Every element of small tensors, an evenly spread sample of large ones.
fn picks(len: usize) -> Vec<usize> {
    if len <= 600 {
        (0..len).collect()
    } else {
        (0..64).map(|k| k * len / 64 + k % 7).collect()
    }
}

/// Central differences (step 1e-5) of `loss` in the elements `at` of `v`.
fn central_differences(v: &[f64], at: &[usize], loss: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    at.iter()
        .map(|&i| {
            let (mut a, mut m) = (v.to_vec(), v.to_vec());
            a[i] += 1e-5;
            m[i] -= 1e-5;
            (loss(&a) - loss(&m)) / 2e-5
        })
        .collect()
}

#[test]
fn group_norm_forward_and_backward() {
    for profile in [KernelProfile::Cpu, KernelProfile::Gpu] {
        group_norm_case(device_profile(profile));
    }
}

fn group_norm_case(dev: mtdiff_engine::Device) {
    // per_sample: γ and β of [N, C] (AdaGN's scale-shift) instead of [C].
    for &(n, c, s, groups, silu, per_sample) in &[
        (2usize, 4usize, 7usize, 2usize, false, false),
        (3, 6, 33, 3, true, false),
        (1, 8, 1, 8, true, false),
        (2, 32, 196, 8, true, false),
        (3, 6, 33, 3, true, true),
        (2, 4, 7, 2, false, true),
        (5, 8, 9, 4, true, true),
        // S divisible by 4: the four-elements-per-thread kernels.
        (2, 6, 12, 3, true, true),
        (3, 4, 16, 2, false, true),
        (2, 8, 4, 4, false, false),
    ] {
        let mut r = rng((c * s) as u64);
        let xs = r.vec_range(n * c * s, -2.0, 3.0);
        let adims = if per_sample { vec![n, c] } else { vec![c] };
        let na: usize = adims.iter().product();
        let (gs, bs) = (r.vec_range(na, 0.5, 1.5), r.vec_range(na, -0.5, 0.5));
        let x = Tensor::from_slice(&dev, &xs, &[n, c, s])
            .unwrap()
            .with_grad();
        let gamma = Tensor::from_slice(&dev, &gs, &adims).unwrap().with_grad();
        let beta = Tensor::from_slice(&dev, &bs, &adims).unwrap().with_grad();
        let eps = 1e-5;
        let y = x
            .group_norm(groups, &gamma, &beta, eps as f32, silu)
            .unwrap();
        let (x64, g64, b64) = (f64s(&xs), f64s(&gs), f64s(&bs));
        let f =
            |x: &[f64], g: &[f64], b: &[f64]| cpu::group_norm(x, n, c, s, groups, g, b, eps, silu);
        let what =
            format!("group_norm n={n} c={c} s={s} g={groups} silu={silu} per_sample={per_sample}");
        assert_close(
            &what,
            &y.to_vec().unwrap(),
            &f(&x64, &g64, &b64),
            1e-4,
            1e-4,
        );

        let w = r.vec_range(y.numel(), -1.0, 1.0);
        let w64 = f64s(&w);
        let grads = y
            .mul(&Tensor::from_slice(&dev, &w, y.dims()).unwrap())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let loss = |x: &[f64], g: &[f64], b: &[f64]| {
            f(x, g, b).iter().zip(&w64).map(|(a, b)| a * b).sum::<f64>()
        };
        let fd = |v: &[f64], which: usize| -> Vec<f64> {
            central_differences(v, &picks(v.len()), |t| match which {
                0 => loss(t, &g64, &b64),
                1 => loss(&x64, t, &b64),
                _ => loss(&x64, &g64, t),
            })
        };
        let scale = (n * c * s) as f64;
        // The GPU backward against the reference backward on every element; the reference
        // backward against finite differences of the reference forward.
        let (rdx, rdg, rdb) =
            cpu::group_norm_backward(&x64, n, c, s, groups, &g64, &b64, eps, silu, &w64);
        let dx = grads.get(&x).unwrap().to_vec().unwrap();
        assert_close(
            &format!("d/dx GPU vs reference {what}"),
            &dx,
            &rdx,
            1e-3,
            1e-4,
        );
        let dg = grads.get(&gamma).unwrap().to_vec().unwrap();
        assert_close(
            &format!("d/dγ GPU vs reference {what}"),
            &dg,
            &rdg,
            1e-3,
            1e-6 * scale,
        );
        let db = grads.get(&beta).unwrap().to_vec().unwrap();
        assert_close(
            &format!("d/dβ GPU vs reference {what}"),
            &db,
            &rdb,
            1e-3,
            1e-6 * scale,
        );
        let at =
            |v: &[f64]| -> Vec<f32> { picks(v.len()).into_iter().map(|i| v[i] as f32).collect() };
        assert_close(
            &format!("d/dx reference {what}"),
            &at(&rdx),
            &fd(&x64, 0),
            1e-4,
            1e-5,
        );
        let all = |v: &[f64]| -> Vec<f32> { v.iter().map(|&e| e as f32).collect() };
        assert_close(
            &format!("d/dγ reference {what}"),
            &all(&rdg),
            &fd(&g64, 1),
            1e-4,
            1e-5,
        );
        assert_close(
            &format!("d/dβ reference {what}"),
            &all(&rdb),
            &fd(&b64, 2),
            1e-4,
            1e-5,
        );
    }
    // γ and β must agree, and per-sample ones must match the batch.
    let x = Tensor::from_slice(&dev, &[0.5; 24], &[2, 4, 3]).unwrap();
    let per_sample = Tensor::from_slice(&dev, &[1.0; 8], &[2, 4]).unwrap();
    let per_channel = Tensor::from_slice(&dev, &[1.0; 4], &[4]).unwrap();
    let wrong_batch = Tensor::from_slice(&dev, &[1.0; 12], &[3, 4]).unwrap();
    assert!(x
        .group_norm(2, &per_sample, &per_channel, 1e-5, false)
        .is_err());
    assert!(x
        .group_norm(2, &wrong_batch, &wrong_batch, 1e-5, false)
        .is_err());
}

/// AdaGN's packed, channel-major scale-shift `[2, C, N]` (γ = 1 + row 0, β = row 1) against the reference group
/// norm with those γ and β, forward and backward (the gradient of the packed tensor by central
/// finite differences of the reference), on both kernel profiles, including sizes whose β row
/// cannot be bound as a view (N·C·4 bytes not a multiple of the offset alignment).
#[test]
fn group_norm_with_packed_scale_shift() {
    for profile in [KernelProfile::Cpu, KernelProfile::Gpu] {
        let dev = device_profile(profile);
        for &(n, c, s, groups, silu) in &[
            (3usize, 6usize, 33usize, 3usize, true),
            (2, 8, 12, 4, false),
            (64, 16, 16, 8, true),
        ] {
            let mut r = rng((n * c * s) as u64 + 9);
            let xs = r.vec_range(n * c * s, -2.0, 3.0);
            let ss = r.vec_range(2 * n * c, -0.5, 0.5);
            let x = Tensor::from_slice(&dev, &xs, &[n, c, s])
                .unwrap()
                .with_grad();
            let t = Tensor::from_slice(&dev, &ss, &[2, c, n])
                .unwrap()
                .with_grad();
            let eps = 1e-5;
            let y = x
                .group_norm_scale_shift(groups, &t, eps as f32, silu)
                .unwrap();
            // The reference takes per-sample γ and β sample-major, [N, C].
            let f = |x: &[f64], t: &[f64]| {
                let at = |row: usize, i: usize| t[row * n * c + (i % c) * n + i / c];
                let gamma: Vec<f64> = (0..n * c).map(|i| 1.0 + at(0, i)).collect();
                let beta: Vec<f64> = (0..n * c).map(|i| at(1, i)).collect();
                cpu::group_norm(x, n, c, s, groups, &gamma, &beta, eps, silu)
            };
            let (x64, t64) = (f64s(&xs), f64s(&ss));
            let what = format!("{profile:?} packed scale-shift n={n} c={c} s={s} silu={silu}");
            assert_close(&what, &y.to_vec().unwrap(), &f(&x64, &t64), 1e-4, 1e-4);
            let w = r.vec_range(y.numel(), -1.0, 1.0);
            let w64 = f64s(&w);
            let grads = y
                .mul(&Tensor::from_slice(&dev, &w, y.dims()).unwrap())
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let loss = |x: &[f64], t: &[f64]| -> f64 {
                f(x, t).iter().zip(&w64).map(|(a, b)| a * b).sum()
            };
            let picks_t = picks(t64.len());
            let fd_t = central_differences(&t64, &picks_t, |t| loss(&x64, t));
            let dt = grads
                .get(&t)
                .expect("scale_shift has a gradient")
                .to_vec()
                .unwrap();
            let dt: Vec<f32> = picks_t.iter().map(|&i| dt[i]).collect();
            let scale = (n * c * s) as f64;
            assert_close(&format!("d/dt {what}"), &dt, &fd_t, 1e-3, 1e-6 * scale);
            let picks_x = picks(x64.len());
            let fd_x = central_differences(&x64, &picks_x, |x| loss(x, &t64));
            let dx = grads.get(&x).unwrap().to_vec().unwrap();
            let dx: Vec<f32> = picks_x.iter().map(|&i| dx[i]).collect();
            assert_close(&format!("d/dx {what}"), &dx, &fd_x, 1e-3, 1e-4);
        }
        // The packed tensor must be [2, C, N] (here [2, 4, 2]; sample-major [2, 2, 4] is wrong).
        let x = Tensor::from_slice(&dev, &[0.5; 24], &[2, 4, 3]).unwrap();
        let bad = Tensor::from_slice(&dev, &[0.0; 16], &[2, 2, 4]).unwrap();
        let err = x.group_norm_scale_shift(2, &bad, 1e-5, false).unwrap_err();
        assert!(err.to_string().contains("[2, C, N]"), "{err}");
    }
}

/// Group norm of an input that needs no gradient (only γ and β do: the backward's sums-only
/// path) and of inputs whose mean is large against their spread (the forward's statistics must
/// not cancel), on both kernel profiles, against the reference and its finite differences.
#[test]
fn group_norm_without_input_gradient_and_with_a_large_mean() {
    for profile in [KernelProfile::Cpu, KernelProfile::Gpu] {
        let dev = device_profile(profile);
        for &(n, c, s, groups, offset, x_grad) in &[
            (2usize, 6usize, 33usize, 3usize, 0.0f32, false),
            (3, 8, 16, 4, 0.0, false),
            (2, 6, 33, 3, 300.0, true),
            (2, 8, 16, 4, -500.0, true),
        ] {
            let mut r = rng((n * c * s) as u64 + 17);
            let xs: Vec<f32> = r
                .vec_range(n * c * s, -1.0, 1.0)
                .into_iter()
                .map(|v| v + offset)
                .collect();
            let (gs, bs) = (r.vec_range(c, 0.5, 1.5), r.vec_range(c, -0.5, 0.5));
            let x = Tensor::from_slice(&dev, &xs, &[n, c, s]).unwrap();
            let x = if x_grad { x.with_grad() } else { x };
            let gamma = Tensor::from_slice(&dev, &gs, &[c]).unwrap().with_grad();
            let beta = Tensor::from_slice(&dev, &bs, &[c]).unwrap().with_grad();
            let eps = 1e-5;
            let y = x
                .group_norm(groups, &gamma, &beta, eps as f32, true)
                .unwrap();
            let (x64, g64, b64) = (f64s(&xs), f64s(&gs), f64s(&bs));
            let f = |x: &[f64], g: &[f64], b: &[f64]| {
                cpu::group_norm(x, n, c, s, groups, g, b, eps, true)
            };
            let what = format!("{profile:?} n={n} c={c} s={s} offset={offset} x_grad={x_grad}");
            // A mean of 500 leaves f32 inputs ~3e-5 of resolution: the statistics must not
            // lose more than that.
            assert_close(
                &what,
                &y.to_vec().unwrap(),
                &f(&x64, &g64, &b64),
                2e-3,
                2e-3,
            );
            let w = r.vec_range(y.numel(), -1.0, 1.0);
            let w64 = f64s(&w);
            let grads = y
                .mul(&Tensor::from_slice(&dev, &w, y.dims()).unwrap())
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let loss = |x: &[f64], g: &[f64], b: &[f64]| -> f64 {
                f(x, g, b).iter().zip(&w64).map(|(a, b)| a * b).sum()
            };
            assert_eq!(grads.get(&x).is_some(), x_grad, "{what}: dx present");
            let scale = (n * c * s) as f64;
            let fd_g = central_differences(&g64, &picks(c), |g| loss(&x64, g, &b64));
            let fd_b = central_differences(&b64, &picks(c), |b| loss(&x64, &g64, b));
            let dg = grads.get(&gamma).unwrap().to_vec().unwrap();
            let db = grads.get(&beta).unwrap().to_vec().unwrap();
            assert_close(&format!("d/dγ {what}"), &dg, &fd_g, 2e-3, 1e-6 * scale);
            assert_close(&format!("d/dβ {what}"), &db, &fd_b, 2e-3, 1e-6 * scale);
            if x_grad {
                let picks_x = picks(x64.len());
                let fd_x = central_differences(&x64, &picks_x, |x| loss(x, &g64, &b64));
                let dx = grads.get(&x).unwrap().to_vec().unwrap();
                let dx: Vec<f32> = picks_x.iter().map(|&i| dx[i]).collect();
                assert_close(&format!("d/dx {what}"), &dx, &fd_x, 2e-3, 1e-3);
            }
        }
    }
}
