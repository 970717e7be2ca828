//! conv2d forward (bias, SiLU) and backward (data, weight, bias) against the f64 CPU reference on
//! shapes that are not tile multiples, strides 1 and 2, padding 0–2, kernels 1×1 to 5×5, the 1×1
//! matmul path; the reference backward against finite differences; a proptest over geometries.
//! Tolerance: sums of Ci·KH·KW (forward), Co·KH·KW (data) or N·OH·OW (weight) f32 products.

mod common;

use common::{assert_close, device, device_profile, device_without_subgroup_kernels, f64s, rng};
use mtdiff_engine::cpu::{self, ConvDims};
use mtdiff_engine::ops::conv::Activation;
use mtdiff_engine::{Device, KernelProfile, Tensor};
use proptest::prelude::*;

fn silu(z: f64) -> f64 {
    z / (1.0 + (-z).exp())
}

/// Checks one geometry on every conv kernel family this adapter runs.
fn check(d: ConvDims, act: Activation, with_bias: bool, seed: u64) {
    for dev in conv_devices() {
        check_on(&dev, d, act, with_bias, seed);
    }
}

/// The default device (subgroup kernels where the adapter allows them), where that differs one
/// with the subgroup kernels off, and one with the GPU kernel profile (1×1 convs as matmuls).
fn conv_devices() -> Vec<Device> {
    let dev = device();
    let gpu = device_profile(KernelProfile::Gpu);
    if dev.subgroup_kernels() {
        vec![dev, device_without_subgroup_kernels(), gpu]
    } else {
        vec![dev, gpu]
    }
}

fn check_on(dev: &Device, d: ConvDims, act: Activation, with_bias: bool, seed: u64) {
    let dev = dev.clone();
    let ConvDims {
        n,
        ci,
        h,
        w,
        co,
        kh,
        kw,
        stride: s,
        pad: p,
    } = d;
    let mut r = rng(seed);
    let xs = r.vec_range(n * ci * h * w, -1.0, 1.0);
    let ws = r.vec_range(co * ci * kh * kw, -0.5, 0.5);
    let bs = r.vec_range(co, -0.5, 0.5);
    let x = Tensor::from_slice(&dev, &xs, &[n, ci, h, w])
        .unwrap()
        .with_grad();
    let wt = Tensor::from_slice(&dev, &ws, &[co, ci, kh, kw])
        .unwrap()
        .with_grad();
    let b = Tensor::from_slice(&dev, &bs, &[co]).unwrap().with_grad();
    let y = x.conv2d(&wt, with_bias.then_some(&b), s, p, act).unwrap();
    let (oh, ow) = d.out_hw();
    assert_eq!(y.dims(), &[n, co, oh, ow]);
    let b64 = f64s(&bs);
    let z = cpu::conv2d(&f64s(&xs), &f64s(&ws), with_bias.then_some(&b64[..]), d);
    let y_ref: Vec<f64> = if act == Activation::Silu {
        z.iter().map(|&v| silu(v)).collect()
    } else {
        z.clone()
    };
    let what = format!(
        "conv2d {d:?} {act:?} bias={with_bias} subgroup={}",
        dev.subgroup_kernels()
    );
    let k = (ci * kh * kw) as f64;
    assert_close(&what, &y.to_vec().unwrap(), &y_ref, 1e-4, 1e-6 * k);

    let gw = r.vec_range(y.numel(), -1.0, 1.0);
    let grads = y
        .mul(&Tensor::from_slice(&dev, &gw, y.dims()).unwrap())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let dz: Vec<f64> = gw
        .iter()
        .zip(&z)
        .map(|(&g, &z)| {
            if act == Activation::Silu {
                let sg = 1.0 / (1.0 + (-z).exp());
                g as f64 * sg * (1.0 + z * (1.0 - sg))
            } else {
                g as f64
            }
        })
        .collect();
    let (dx, dw) = cpu::conv2d_backward(&f64s(&xs), &f64s(&ws), &dz, d);
    assert_close(
        &format!("dx {what}"),
        &grads.get(&x).unwrap().to_vec().unwrap(),
        &dx,
        1e-4,
        1e-6 * (co * kh * kw) as f64,
    );
    assert_close(
        &format!("dW {what}"),
        &grads.get(&wt).unwrap().to_vec().unwrap(),
        &dw,
        1e-4,
        1e-6 * (n * oh * ow) as f64,
    );
    if with_bias {
        let db: Vec<f64> = (0..co)
            .map(|c| {
                dz.iter()
                    .enumerate()
                    .filter(|(i, _)| (i / (oh * ow)) % co == c)
                    .map(|(_, v)| v)
                    .sum()
            })
            .collect();
        assert_close(
            &format!("db {what}"),
            &grads.get(&b).unwrap().to_vec().unwrap(),
            &db,
            1e-4,
            1e-6 * (n * oh * ow) as f64,
        );
    }
}

#[test]
fn conv2d_geometries() {
    #[rustfmt::skip]
    let cases: &[ConvDims] = &[
        ConvDims { n: 1, ci: 1, h: 1, w: 1, co: 1, kh: 1, kw: 1, stride: 1, pad: 0 },
        ConvDims { n: 2, ci: 3, h: 7, w: 5, co: 5, kh: 3, kw: 3, stride: 1, pad: 1 },
        ConvDims { n: 1, ci: 2, h: 9, w: 9, co: 9, kh: 3, kw: 3, stride: 2, pad: 1 },
        ConvDims { n: 3, ci: 4, h: 6, w: 7, co: 3, kh: 5, kw: 5, stride: 1, pad: 2 },
        ConvDims { n: 2, ci: 5, h: 8, w: 6, co: 7, kh: 2, kw: 3, stride: 2, pad: 0 },
        ConvDims { n: 2, ci: 3, h: 5, w: 5, co: 4, kh: 1, kw: 1, stride: 1, pad: 0 },
        ConvDims { n: 1, ci: 3, h: 5, w: 5, co: 4, kh: 1, kw: 1, stride: 2, pad: 1 },
        ConvDims { n: 2, ci: 17, h: 14, w: 14, co: 9, kh: 3, kw: 3, stride: 1, pad: 1 },
        // More than 16 channels each way: the 32-channel subgroup kernels, and a ragged tail.
        ConvDims { n: 2, ci: 21, h: 6, w: 5, co: 37, kh: 3, kw: 3, stride: 1, pad: 1 },
        ConvDims { n: 1, ci: 33, h: 7, w: 6, co: 18, kh: 3, kw: 3, stride: 2, pad: 1 },
        // Channels multiples of 4: the subgroup kernels read transposed weights as vec4s.
        ConvDims { n: 2, ci: 16, h: 6, w: 7, co: 32, kh: 3, kw: 3, stride: 1, pad: 1 },
        ConvDims { n: 1, ci: 8, h: 9, w: 8, co: 12, kh: 3, kw: 3, stride: 2, pad: 1 },
        // Wide layers (over 32 channels, multiples of 4 or not).
        ConvDims { n: 1, ci: 36, h: 5, w: 6, co: 64, kh: 3, kw: 3, stride: 1, pad: 1 },
        ConvDims { n: 2, ci: 40, h: 6, w: 6, co: 68, kh: 3, kw: 3, stride: 2, pad: 1 },
        // Rows a multiple of 8 with stride 1 and 3 taps wide: the row-blocked subgroup kernels
        // (forward when the output rows are, data gradient when the input rows are).
        ConvDims { n: 2, ci: 5, h: 6, w: 8, co: 7, kh: 3, kw: 3, stride: 1, pad: 1 },
        ConvDims { n: 1, ci: 17, h: 5, w: 16, co: 36, kh: 3, kw: 3, stride: 1, pad: 1 },
        ConvDims { n: 3, ci: 3, h: 4, w: 8, co: 16, kh: 3, kw: 3, stride: 1, pad: 1 },
        ConvDims { n: 2, ci: 3, h: 5, w: 10, co: 4, kh: 3, kw: 3, stride: 1, pad: 0 },
        ConvDims { n: 1, ci: 6, h: 4, w: 8, co: 9, kh: 3, kw: 3, stride: 1, pad: 2 },
        ConvDims { n: 1, ci: 4, h: 3, w: 8, co: 20, kh: 1, kw: 3, stride: 1, pad: 1 },
        // The main job's 16-channel layer (its weight gradient over many chunks of pixels),
        // and a kernel one row high.
        ConvDims { n: 4, ci: 16, h: 16, w: 16, co: 16, kh: 3, kw: 3, stride: 1, pad: 1 },
        ConvDims { n: 2, ci: 5, h: 3, w: 16, co: 3, kh: 1, kw: 3, stride: 1, pad: 1 },
    ];
    for (i, &d) in cases.iter().enumerate() {
        for act in [Activation::Identity, Activation::Silu] {
            check(d, act, i % 2 == 0, i as u64);
        }
        check(d, Activation::Identity, i % 2 == 1, 100 + i as u64);
    }
}

#[test]
fn conv2d_reference_backward_matches_finite_differences() {
    let d = ConvDims {
        n: 2,
        ci: 2,
        h: 5,
        w: 4,
        co: 3,
        kh: 3,
        kw: 2,
        stride: 2,
        pad: 1,
    };
    let ConvDims {
        n,
        ci,
        h,
        w,
        co,
        kh,
        kw,
        ..
    } = d;
    let mut r = rng(3);
    let x: Vec<f64> = (0..n * ci * h * w).map(|_| r.range(-1.0, 1.0)).collect();
    let wt: Vec<f64> = (0..co * ci * kh * kw).map(|_| r.range(-1.0, 1.0)).collect();
    let out = cpu::conv2d(&x, &wt, None, d).len();
    let g: Vec<f64> = (0..out).map(|_| r.range(-1.0, 1.0)).collect();
    let (dx, dw) = cpu::conv2d_backward(&x, &wt, &g, d);
    let loss = |x: &[f64], wt: &[f64]| {
        cpu::conv2d(x, wt, None, d)
            .iter()
            .zip(&g)
            .map(|(a, b)| a * b)
            .sum::<f64>()
    };
    for i in 0..x.len() {
        let (mut a, mut b) = (x.clone(), x.clone());
        a[i] += 1e-6;
        b[i] -= 1e-6;
        let fd = (loss(&a, &wt) - loss(&b, &wt)) / 2e-6;
        assert!(
            (fd - dx[i]).abs() < 1e-7 + 1e-6 * fd.abs(),
            "dx[{i}]: {} vs {fd}",
            dx[i]
        );
    }
    for i in 0..wt.len() {
        let (mut a, mut b) = (wt.clone(), wt.clone());
        a[i] += 1e-6;
        b[i] -= 1e-6;
        let fd = (loss(&x, &a) - loss(&x, &b)) / 2e-6;
        assert!(
            (fd - dw[i]).abs() < 1e-7 + 1e-6 * fd.abs(),
            "dw[{i}]: {} vs {fd}",
            dw[i]
        );
    }
}

#[test]
fn conv2d_rejects_bad_shapes_with_names() {
    let dev = device();
    let x = Tensor::zeros(&dev, &[1, 3, 5, 5]).unwrap();
    let w = Tensor::zeros(&dev, &[4, 2, 3, 3]).unwrap();
    let msg = x
        .conv2d(&w, None, 1, 1, Activation::Identity)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("conv2d") && msg.contains("3 input channels"),
        "{msg}"
    );
    let w = Tensor::zeros(&dev, &[4, 3, 7, 7]).unwrap();
    assert!(x.conv2d(&w, None, 1, 0, Activation::Identity).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    fn conv2d_random_geometry(n in 1usize..3, ci in 1usize..40, co in 1usize..40, h in 3usize..12, w in 3usize..12, k in 1usize..4, s in 1usize..3, p in 0usize..2, silu: bool, seed: u64) {
        let act = if silu { Activation::Silu } else { Activation::Identity };
        let d = ConvDims { n, ci, h, w, co, kh: k, kw: k, stride: s, pad: p };
        check(d, act, true, seed);
    }
}
