//! Kernels with f16 inputs (`ops::template::with_f16_inputs`): conv2d with an f16 input x and
//! matmul with either or both operands f16, forward and backward, in every kernel family this
//! adapter runs and both kernel profiles, against the f64 CPU reference, on shapes that are not
//! tile multiples.
//!
//! Tolerances. The kernels read each f16 value exactly and sum in f32, so against the reference
//! computed on the f16-rounded inputs they owe the f32 kernels' tolerance (`tests/conv.rs`,
//! `tests/matmul.rs`), gradients included (an f16 input's gradient is f32). Against the
//! unrounded inputs, rounding each input by at most 2⁻¹¹ relative moves a sum of products by at
//! most 2⁻¹¹·Σ|a·b|: that bound is checked too, as what f16 inputs cost a user.

mod common;

use common::{
    assert_close, device, device_profile, device_with, device_without_subgroup_kernels, f64s, rng,
    strategies,
};
use half::f16;
use mtdiff_engine::cpu::{self, ConvDims};
use mtdiff_engine::ops::conv::Activation;
use mtdiff_engine::{DType, Device, KernelProfile, Tensor};

/// Half an f16 ulp, relative.
const HALF_ULP: f64 = 1.0 / 2048.0;

fn halves(v: &[f32]) -> Vec<f16> {
    v.iter().map(|&x| f16::from_f32(x)).collect()
}

fn widened(v: &[f16]) -> Vec<f32> {
    v.iter().map(|h| h.to_f32()).collect()
}

/// |got − want| ≤ slack[i] + f32 tolerance, elementwise: the cost of rounding the inputs.
#[track_caller]
fn assert_within_rounding(what: &str, got: &[f32], want: &[f64], slack: &[f64], atol: f64) {
    for (i, ((&g, &w), &s)) in got.iter().zip(want).zip(slack).enumerate() {
        let err = (g as f64 - w).abs();
        assert!(
            err <= HALF_ULP * s + atol + 1e-4 * w.abs(),
            "{what}: element {i}: {g} vs {w} (|err| {err:.3e}, Σ|a·b| {s:.3e})"
        );
    }
}

/// The conv families: subgroup kernels (where the adapter runs them), register-blocked, and the
/// GPU profile (1×1 convs as matmuls with an f16 right operand).
fn conv_devices() -> Vec<Device> {
    let dev = device();
    let gpu = device_profile(KernelProfile::Gpu);
    if dev.subgroup_kernels() {
        vec![dev, device_without_subgroup_kernels(), gpu]
    } else {
        vec![dev, gpu]
    }
}

fn check_conv(dev: &Device, d: ConvDims, act: Activation, seed: u64) {
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
    let mut r = rng(seed);
    let xs = r.vec_range(n * ci * h * w, -1.0, 1.0);
    let ws = r.vec_range(co * ci * kh * kw, -0.5, 0.5);
    let bs = r.vec_range(co, -0.5, 0.5);
    let xh = halves(&xs);
    let x16 = widened(&xh);
    let x = Tensor::from_f16(dev, &xh, &[n, ci, h, w])
        .unwrap()
        .with_grad();
    let wt = Tensor::from_slice(dev, &ws, &[co, ci, kh, kw])
        .unwrap()
        .with_grad();
    let b = Tensor::from_slice(dev, &bs, &[co]).unwrap().with_grad();
    let y = x.conv2d(&wt, Some(&b), d.stride, d.pad, act).unwrap();
    assert_eq!(y.dtype(), DType::F32);
    let what = format!(
        "f16 x conv2d {d:?} {act:?} subgroup={} profile={:?}",
        dev.subgroup_kernels(),
        dev.kernel_profile()
    );
    let b64 = f64s(&bs);
    let silu = |z: f64| z / (1.0 + (-z).exp());
    let act_of = |z: Vec<f64>| -> Vec<f64> {
        match act {
            Activation::Silu => z.iter().map(|&v| silu(v)).collect(),
            Activation::Identity => z,
        }
    };
    let z = cpu::conv2d(&f64s(&x16), &f64s(&ws), Some(&b64[..]), d);
    let k = (ci * kh * kw) as f64;
    let got = y.to_vec().unwrap();
    assert_close(&what, &got, &act_of(z.clone()), 1e-4, 1e-6 * k);
    // Against the unrounded input: within 2⁻¹¹·Σ|w·x| (SiLU's slope is below 1.1).
    let abs = |v: &[f32]| -> Vec<f64> { v.iter().map(|&a| a.abs() as f64).collect() };
    let slack: Vec<f64> = cpu::conv2d(&abs(&xs), &abs(&ws), None, d)
        .iter()
        .map(|s| 1.1 * s)
        .collect();
    let exact = act_of(cpu::conv2d(&f64s(&xs), &f64s(&ws), Some(&b64[..]), d));
    assert_within_rounding(
        &format!("{what} against unrounded x"),
        &got,
        &exact,
        &slack,
        1e-6 * k,
    );

    let gw = r.vec_range(y.numel(), -1.0, 1.0);
    let grads = y
        .mul(&Tensor::from_slice(dev, &gw, y.dims()).unwrap())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let dz: Vec<f64> = gw
        .iter()
        .zip(&z)
        .map(|(&g, &z)| match act {
            Activation::Silu => {
                let sg = 1.0 / (1.0 + (-z).exp());
                g as f64 * sg * (1.0 + z * (1.0 - sg))
            }
            Activation::Identity => g as f64,
        })
        .collect();
    let (dx, dw) = cpu::conv2d_backward(&f64s(&x16), &f64s(&ws), &dz, d);
    let gx = grads.get(&x).unwrap();
    assert_eq!(gx.dtype(), DType::F32, "{what}: an f16 input's gradient");
    assert_close(
        &format!("dx {what}"),
        &gx.to_vec().unwrap(),
        &dx,
        1e-4,
        1e-6 * (co * kh * kw) as f64,
    );
    let (oh, ow) = d.out_hw();
    assert_close(
        &format!("dW {what}"),
        &grads.get(&wt).unwrap().to_vec().unwrap(),
        &dw,
        1e-4,
        1e-6 * (n * oh * ow) as f64,
    );
}

#[test]
fn conv2d_with_an_f16_input() {
    #[rustfmt::skip]
    let cases: &[ConvDims] = &[
        ConvDims { n: 2, ci: 3, h: 7, w: 5, co: 5, kh: 3, kw: 3, stride: 1, pad: 1 },
        // 1×1: the GPU profile's matmul path.
        ConvDims { n: 2, ci: 3, h: 5, w: 5, co: 4, kh: 1, kw: 1, stride: 1, pad: 0 },
        // 32-channel subgroup kernels with a ragged tail; stride 2.
        ConvDims { n: 2, ci: 21, h: 6, w: 5, co: 37, kh: 3, kw: 3, stride: 1, pad: 1 },
        ConvDims { n: 1, ci: 33, h: 7, w: 6, co: 18, kh: 3, kw: 3, stride: 2, pad: 1 },
        // The row-blocked forward reading f16 pairs: rows starting at odd and even elements
        // (padding 1, 0 and 2), up to 16 channels.
        ConvDims { n: 2, ci: 5, h: 6, w: 8, co: 7, kh: 3, kw: 3, stride: 1, pad: 1 },
        ConvDims { n: 2, ci: 3, h: 5, w: 10, co: 4, kh: 3, kw: 3, stride: 1, pad: 0 },
        ConvDims { n: 1, ci: 6, h: 4, w: 6, co: 9, kh: 3, kw: 3, stride: 1, pad: 2 },
        // vec4 weights; row-blocked kernels; the main job's 16-channel layer.
        ConvDims { n: 2, ci: 16, h: 6, w: 7, co: 32, kh: 3, kw: 3, stride: 1, pad: 1 },
        ConvDims { n: 1, ci: 17, h: 5, w: 16, co: 36, kh: 3, kw: 3, stride: 1, pad: 1 },
        ConvDims { n: 4, ci: 16, h: 16, w: 16, co: 16, kh: 3, kw: 3, stride: 1, pad: 1 },
    ];
    for dev in conv_devices() {
        for (i, &d) in cases.iter().enumerate() {
            let act = if i % 2 == 0 {
                Activation::Silu
            } else {
                Activation::Identity
            };
            check_conv(&dev, d, act, 40 + i as u64);
        }
    }
}

#[test]
fn conv2d_refuses_an_f16_weight_naming_it() {
    let dev = device();
    let x = Tensor::from_slice(&dev, &[0.5; 16], &[1, 1, 4, 4]).unwrap();
    let w = Tensor::from_slice(&dev, &[1.0; 9], &[1, 1, 3, 3])
        .unwrap()
        .to_f16()
        .unwrap();
    let err = x
        .conv2d(&w, None, 1, 1, Activation::Identity)
        .unwrap_err()
        .to_string();
    assert!(err.contains("weight") && err.contains("f32"), "{err}");
    let u = Tensor::from_u32(&dev, &[1; 16], &[1, 1, 4, 4]).unwrap();
    let w32 = Tensor::from_slice(&dev, &[1.0; 9], &[1, 1, 3, 3]).unwrap();
    let err = u
        .conv2d(&w32, None, 1, 1, Activation::Identity)
        .unwrap_err()
        .to_string();
    assert!(err.contains("F32 or F16"), "{err}");
}

#[allow(clippy::too_many_arguments)]
fn check_matmul(
    dev: &Device,
    (m, n, k): (usize, usize, usize),
    (ta, tb): (bool, bool),
    (a16, b16): (bool, bool),
    batch: usize,
    seed: u64,
) {
    let mut r = rng(seed);
    let mut av = r.vec_range(batch * m * k, -1.0, 1.0);
    let mut bv = r.vec_range(batch * k * n, -1.0, 1.0);
    let (a_raw, b_raw) = (av.clone(), bv.clone());
    let upload = |v: &mut Vec<f32>, dims: &[usize], half: bool| -> Tensor {
        if half {
            let h = halves(v);
            *v = widened(&h);
            Tensor::from_f16(dev, &h, dims).unwrap()
        } else {
            Tensor::from_slice(dev, v, dims).unwrap()
        }
    };
    let a_dims = if ta { [batch, k, m] } else { [batch, m, k] };
    let b_dims = if tb { [batch, n, k] } else { [batch, k, n] };
    let a = upload(&mut av, &a_dims, a16).with_grad();
    let b = upload(&mut bv, &b_dims, b16).with_grad();
    let c = a.matmul_t(&b, ta, tb).unwrap();
    let w = r.vec_range(batch * m * n, -1.0, 1.0);
    let g = c
        .mul(&Tensor::from_slice(dev, &w, c.dims()).unwrap())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let (mut c_ref, mut da_ref, mut db_ref, mut c_exact, mut slack) =
        (vec![], vec![], vec![], vec![], vec![]);
    let abs = |v: &[f32]| -> Vec<f64> { v.iter().map(|&a| a.abs() as f64).collect() };
    for i in 0..batch {
        let (sa, sb) = (i * m * k..(i + 1) * m * k, i * k * n..(i + 1) * k * n);
        let (a64, b64) = (f64s(&av[sa.clone()]), f64s(&bv[sb.clone()]));
        c_ref.extend(cpu::matmul(&a64, &b64, m, n, k, ta, tb));
        let (da, db) = cpu::matmul_backward(
            &a64,
            &b64,
            m,
            n,
            k,
            ta,
            tb,
            &f64s(&w[i * m * n..(i + 1) * m * n]),
        );
        da_ref.extend(da);
        db_ref.extend(db);
        let (ra, rb) = (&a_raw[sa], &b_raw[sb]);
        c_exact.extend(cpu::matmul(&f64s(ra), &f64s(rb), m, n, k, ta, tb));
        slack.extend(cpu::matmul(&abs(ra), &abs(rb), m, n, k, ta, tb));
    }
    let what = format!(
        "{batch}×({m}×{k})·({k}×{n}) ta={ta} tb={tb} a16={a16} b16={b16} {:?} {:?}",
        dev.kernel_profile(),
        dev.options().matmul
    );
    let tol = |len: usize| 1e-5 * len as f64;
    let got = c.to_vec().unwrap();
    assert_close(&what, &got, &c_ref, 1e-4, tol(k));
    assert_within_rounding(
        &format!("{what} against unrounded operands"),
        &got,
        &c_exact,
        &slack.iter().map(|s| 2.0 * s).collect::<Vec<_>>(),
        tol(k),
    );
    for (t, want, len, name) in [(&a, &da_ref, n, "dA"), (&b, &db_ref, m, "dB")] {
        let grad = g.get(t).unwrap();
        assert_eq!(grad.dtype(), DType::F32, "{name} {what}");
        assert_close(
            &format!("{name} {what}"),
            &grad.to_vec().unwrap(),
            want,
            1e-4,
            tol(len),
        );
    }
}

#[test]
fn matmul_with_f16_operands_in_every_family() {
    // Few cases per family: every variant is a pipeline of its own, and lavapipe compiles each
    // for seconds. Together they read A and B as f16 scalars and as vec4s of packed pairs, on
    // sizes that are not tile multiples, transposed or not, batched, forward and both gradients.
    for s in strategies() {
        let dev = device_with(s);
        check_matmul(&dev, (33, 65, 7), (false, false), (true, true), 1, 1);
        check_matmul(&dev, (12, 20, 36), (true, true), (true, false), 1, 2);
        check_matmul(&dev, (70, 36, 20), (false, true), (false, true), 2, 3);
    }
    // A shared f16 weight against a batch (linear's fold into one tall matmul) on the GPU profile.
    let gpu = device_profile(KernelProfile::Gpu);
    check_matmul(&gpu, (24, 16, 12), (false, true), (true, true), 1, 7);
}

#[test]
fn autocast_casts_conv_and_matmul_inputs_and_the_gradients_come_back_in_f32() {
    use mtdiff_engine::{autocast_f16, Autocast};
    let dev = device();
    let mut r = rng(5);
    let x = Tensor::from_slice(&dev, &r.vec_range(2 * 3 * 6 * 8, -1.0, 1.0), &[2, 3, 6, 8])
        .unwrap()
        .with_grad();
    let w = Tensor::from_slice(&dev, &r.vec_range(4 * 3 * 9, -0.5, 0.5), &[4, 3, 3, 3])
        .unwrap()
        .with_grad();
    let m = Tensor::from_slice(&dev, &r.vec_range(8 * 5, -0.5, 0.5), &[5, 8])
        .unwrap()
        .with_grad();
    // conv → linear, the f16 reads explicit or by autocast.
    let explicit = || {
        let h = x
            .to_f16()
            .unwrap()
            .conv2d(&w, None, 1, 1, Activation::Silu)
            .unwrap();
        h.to_f16()
            .unwrap()
            .matmul_t(&m.to_f16().unwrap(), false, true)
            .unwrap()
    };
    let autocast = || {
        let _on = Autocast::f16();
        assert!(autocast_f16());
        x.conv2d(&w, None, 1, 1, Activation::Silu)
            .unwrap()
            .linear(&m, None)
            .unwrap()
    };
    let (a, b) = (explicit(), autocast());
    assert!(!autocast_f16(), "the guard restores the setting");
    assert_eq!(a.to_vec().unwrap(), b.to_vec().unwrap());
    let ga = a.sum_all().unwrap().backward().unwrap();
    // Backward inside the guard: autocast is off while it runs, so the gradients are the same.
    let gb = {
        let _on = Autocast::f16();
        b.sum_all().unwrap().backward().unwrap()
    };
    for t in [&x, &w, &m] {
        let (da, db) = (ga.get(t).unwrap(), gb.get(t).unwrap());
        assert_eq!(db.dtype(), DType::F32, "an f32 leaf's gradient");
        assert_eq!(da.to_vec().unwrap(), db.to_vec().unwrap());
    }
}

/// `f` on f16 inputs gives exactly what it gives on the same values widened to f32, forward and
/// backward: the f16 variant of a kernel reads each value exactly and then runs the f32 kernel's
/// arithmetic, and the f32 kernels are tested against the CPU reference in their own files. So
/// the tolerance here is zero. `inputs`: values, shape, and whether the input is f16.
#[track_caller]
fn same_as_f32(
    what: &str,
    dev: &Device,
    inputs: &[(Vec<f32>, Vec<usize>, bool)],
    f: impl Fn(&[Tensor]) -> Tensor,
) {
    let mut widened_in = Vec::new();
    let mut half_in = Vec::new();
    for (v, dims, half) in inputs {
        let h = halves(v);
        let w = widened(&h);
        widened_in.push(Tensor::from_slice(dev, &w, dims).unwrap().with_grad());
        half_in.push(if *half {
            Tensor::from_f16(dev, &h, dims).unwrap().with_grad()
        } else {
            Tensor::from_slice(dev, &w, dims).unwrap().with_grad()
        });
    }
    let (y32, y16) = (f(&widened_in), f(&half_in));
    assert_eq!(y16.dtype(), DType::F32, "{what}");
    let bits =
        |t: &Tensor| -> Vec<u32> { t.to_vec().unwrap().iter().map(|v| v.to_bits()).collect() };
    assert_eq!(bits(&y32), bits(&y16), "{what}: forward");
    let w = Tensor::from_slice(dev, &rng(3).vec_range(y32.numel(), -1.0, 1.0), y32.dims()).unwrap();
    let g32 = y32.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    let g16 = y16.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    for (i, (a, b)) in widened_in.iter().zip(&half_in).enumerate() {
        match (g32.get(a), g16.get(b)) {
            (Some(a), Some(b)) => {
                assert_eq!(b.dtype(), DType::F32, "{what}: gradient {i}");
                assert_eq!(bits(a), bits(b), "{what}: gradient of input {i}");
            }
            (None, None) => {}
            _ => panic!("{what}: input {i} got a gradient on one side only"),
        }
    }
}

#[test]
fn elementwise_ops_read_f16_inputs() {
    use mtdiff_engine::ops::{BinaryOp, UnaryOp};
    let dev = device();
    let mut r = rng(21);
    let n = 1029;
    let pos = r.vec_range(n, 0.1, 2.0);
    for op in UnaryOp::ALL {
        same_as_f32(
            &format!("{op:?}"),
            &dev,
            &[(pos.clone(), vec![n], true)],
            |t| t[0].unary(op, 1.5).unwrap(),
        );
    }
    // Same shapes (vec4 and scalar paths), broadcasts (block and general), either side f16.
    let shapes: [(&[usize], &[usize]); 5] = [
        (&[4, 6], &[4, 6]),
        (&[3, 7], &[3, 7]),
        (&[3, 4, 5], &[5]),
        (&[4, 1], &[4, 6]),
        (&[2, 1, 3], &[1, 5, 1]),
    ];
    let ops = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
    ];
    for (i, (sa, sb)) in shapes.into_iter().enumerate() {
        let (na, nb) = (sa.iter().product(), sb.iter().product());
        let (a, b) = (r.vec_range(na, 0.5, 2.0), r.vec_range(nb, 0.5, 2.0));
        for (j, op) in ops.into_iter().enumerate() {
            let halves = [(true, false), (false, true), (true, true)][(i + j) % 3];
            same_as_f32(
                &format!("{op:?} {sa:?} {sb:?} {halves:?}"),
                &dev,
                &[
                    (a.clone(), sa.to_vec(), halves.0),
                    (b.clone(), sb.to_vec(), halves.1),
                ],
                |t| t[0].binary(&t[1], op).unwrap(),
            );
        }
    }
}

#[test]
fn reductions_read_f16_inputs_in_both_profiles() {
    let cases: [(&[usize], &[usize]); 8] = [
        (&[3, 5, 7], &[1]),
        (&[2, 3, 8], &[2]),
        (&[2, 8, 4], &[1]),
        (&[2, 300], &[1]),
        (&[4, 6, 8], &[0, 2]),
        (&[4, 6, 7], &[0, 2]),
        (&[3, 5], &[]),
        (&[5, 3, 9], &[0, 1, 2]),
    ];
    for dev in [device(), device_profile(KernelProfile::Gpu)] {
        let mut r = rng(22);
        for (dims, axes) in cases {
            let x = r.vec_range(dims.iter().product(), -2.0, 2.0);
            let what = format!("{dims:?} over {axes:?} {:?}", dev.kernel_profile());
            let input = [(x, dims.to_vec(), true)];
            same_as_f32(&format!("sum {what}"), &dev, &input, |t| {
                t[0].sum(axes, false).unwrap()
            });
            same_as_f32(&format!("mean {what}"), &dev, &input, |t| {
                t[0].mean(axes, true).unwrap()
            });
            same_as_f32(&format!("max {what}"), &dev, &input, |t| {
                t[0].max(axes, false).unwrap()
            });
        }
    }
}

#[test]
fn group_norm_reads_an_f16_input_in_both_profiles() {
    for dev in [device(), device_profile(KernelProfile::Gpu)] {
        let mut r = rng(23);
        // S = 20 (quads: the vec4 kernels) and S = 9.
        for (dims, groups) in [([2usize, 6, 5, 4], 3usize), ([2, 4, 3, 3], 2)] {
            let c = dims[1];
            let x = r.vec_range(dims.iter().product(), -2.0, 2.0);
            let (g, b) = (r.vec_range(c, 0.5, 1.5), r.vec_range(c, -0.5, 0.5));
            let ss = r.vec_range(2 * c * dims[0], -0.5, 0.5);
            for silu in [false, true] {
                let what = format!(
                    "{dims:?} groups {groups} silu {silu} {:?}",
                    dev.kernel_profile()
                );
                same_as_f32(
                    &format!("group_norm {what}"),
                    &dev,
                    &[
                        (x.clone(), dims.to_vec(), true),
                        (g.clone(), vec![c], false),
                        (b.clone(), vec![c], false),
                    ],
                    |t| t[0].group_norm(groups, &t[1], &t[2], 1e-5, silu).unwrap(),
                );
                same_as_f32(
                    &format!("group_norm_scale_shift {what}"),
                    &dev,
                    &[
                        (x.clone(), dims.to_vec(), true),
                        (ss.clone(), vec![2, c, dims[0]], false),
                    ],
                    |t| {
                        t[0].group_norm_scale_shift(groups, &t[1], 1e-5, silu)
                            .unwrap()
                    },
                );
            }
        }
    }
}

#[test]
fn attention_reads_f16_inputs() {
    let dev = device();
    let mut r = rng(24);
    // D = 8: the vec4 forward; D = 6: the scalar one. S = 11, not a multiple of anything.
    for d in [8usize, 6] {
        let dims = vec![2usize, 2, 11, d];
        let n: usize = dims.iter().product();
        let (q, k, v) = (
            r.vec_range(n, -1.0, 1.0),
            r.vec_range(n, -1.0, 1.0),
            r.vec_range(n, -1.0, 1.0),
        );
        for halves in [(true, false, false), (true, true, true)] {
            same_as_f32(
                &format!("attention D={d} {halves:?}"),
                &dev,
                &[
                    (q.clone(), dims.clone(), halves.0),
                    (k.clone(), dims.clone(), halves.1),
                    (v.clone(), dims.clone(), halves.2),
                ],
                |t| t[0].attention(&t[1], &t[2], 0.4).unwrap(),
            );
        }
    }
}

#[test]
fn group_norm_under_autocast_writes_f16_where_its_quad_kernel_runs() {
    use mtdiff_engine::Autocast;
    let mut r = rng(25);
    let dims = [2usize, 6, 5, 4]; // S = 20: quads
    let x = r.vec_range(dims.iter().product(), -3.0, 3.0);
    let (g, b) = (r.vec_range(6, 0.5, 1.5), r.vec_range(6, -0.5, 0.5));
    let w = r.vec_range(dims.iter().product(), -1.0, 1.0);
    for (dev, fused) in [
        (device(), true),
        (device_profile(KernelProfile::Gpu), false),
    ] {
        let up = |v: &[f32], d: &[usize]| Tensor::from_slice(&dev, v, d).unwrap().with_grad();
        let (xt, gt, bt) = (up(&x, &dims), up(&g, &[6]), up(&b, &[6]));
        let wt = Tensor::from_slice(&dev, &w, &dims).unwrap();
        let explicit = xt
            .group_norm(3, &gt, &bt, 1e-5, true)
            .unwrap()
            .to_f16()
            .unwrap();
        let fused_out = {
            let _on = Autocast::f16();
            xt.group_norm(3, &gt, &bt, 1e-5, true).unwrap()
        };
        let expect = if fused { DType::F16 } else { DType::F32 };
        assert_eq!(fused_out.dtype(), expect, "{:?}", dev.kernel_profile());
        if !fused {
            continue;
        }
        let bits = |t: &Tensor| -> Vec<u16> {
            t.to_vec_f16()
                .unwrap()
                .iter()
                .map(|h| h.to_bits())
                .collect()
        };
        assert_eq!(
            bits(&explicit),
            bits(&fused_out),
            "rounded as to_f16 rounds"
        );
        let grads = |y: &Tensor| y.mul(&wt).unwrap().sum_all().unwrap().backward().unwrap();
        let (ge, gf) = (grads(&explicit), grads(&fused_out));
        for t in [&xt, &gt, &bt] {
            let (a, b) = (
                ge.get(t).unwrap().to_vec().unwrap(),
                gf.get(t).unwrap().to_vec().unwrap(),
            );
            assert_eq!(a, b, "gradients");
        }
    }
}
