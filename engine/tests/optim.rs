//! Optimizer kernels step by step against the CPU reference: fused AdamW (with weight decay and
//! global gradient-norm clipping), the clip factor, EMA; packed parameters (one dispatch per
//! update) against separate ones.

mod common;

use common::{assert_close, device, f64s, rng};
use mtdiff_engine::loss_scale::{cpu_reference, LossScaleState, LossScaler, LossScalerConfig};
use mtdiff_engine::optim::{clip_factor, AdamW, AdamWConfig, Ema};
use mtdiff_engine::{cpu, ParamArena, Tensor};

/// AdamW at lr 0.01 with weight decay 0.1, clipping the gradient norm at `clip`.
fn decayed(clip: Option<f32>) -> AdamWConfig {
    AdamWConfig {
        lr: 0.01,
        weight_decay: 0.1,
        max_grad_norm: clip,
        ..AdamWConfig::default()
    }
}

#[test]
fn fused_adamw_matches_the_reference_step_by_step() {
    let dev = device();
    for clip in [None, Some(0.5f32)] {
        let cfg = decayed(clip);
        let mut opt = AdamW::new(cfg);
        let mut r = rng(9);
        let shapes: [&[usize]; 2] = [&[7, 33], &[65]];
        let mut cpu_p: Vec<Vec<f64>> = shapes
            .iter()
            .map(|s| f64s(&r.vec_range(s.iter().product(), -1.0, 1.0)))
            .collect();
        let params: Vec<Tensor> = shapes
            .iter()
            .zip(&cpu_p)
            .map(|(s, p)| {
                Tensor::from_slice(&dev, &p.iter().map(|&v| v as f32).collect::<Vec<_>>(), s)
                    .unwrap()
                    .with_grad()
            })
            .collect();
        let mut cpu_m: Vec<Vec<f64>> = cpu_p.iter().map(|p| vec![0.0; p.len()]).collect();
        let mut cpu_v = cpu_m.clone();
        for step in 1..=5 {
            // loss = Σ_k Σ w_k · p_k with random w: the gradient of p_k is w_k.
            let ws: Vec<Vec<f32>> = cpu_p
                .iter()
                .map(|p| r.vec_range(p.len(), -2.0, 2.0))
                .collect();
            let mut loss = Tensor::scalar(&dev, 0.0).unwrap();
            for ((p, w), s) in params.iter().zip(&ws).zip(shapes) {
                loss = loss
                    .add(
                        &p.mul(&Tensor::from_slice(&dev, w, s).unwrap())
                            .unwrap()
                            .sum_all()
                            .unwrap(),
                    )
                    .unwrap();
            }
            let stats = opt
                .step(&params, &loss.backward().unwrap())
                .unwrap()
                .unwrap()
                .to_vec()
                .unwrap();
            let norm = ws
                .iter()
                .flatten()
                .map(|&w| (w as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            let gscale = clip.map_or(1.0, |c| (c as f64 / (norm + 1e-6)).min(1.0));
            assert!(
                (stats[0] as f64 - gscale).abs() < 1e-5,
                "clip factor {} vs {gscale}",
                stats[0]
            );
            if clip.is_some() {
                assert!(
                    (stats[1] as f64 - norm).abs() < 1e-4 * norm,
                    "norm {} vs {norm}",
                    stats[1]
                );
            }
            for k in 0..2 {
                cpu::adamw_step(
                    &mut cpu_p[k],
                    &f64s(&ws[k]),
                    &mut cpu_m[k],
                    &mut cpu_v[k],
                    0.01,
                    0.9,
                    0.999,
                    1e-8,
                    0.1,
                    step,
                    gscale,
                );
                let (m, v) = opt.moments(&params[k]).unwrap();
                let what = format!("AdamW clip={clip:?} step {step} tensor {k}");
                // 1 − β₂ = 0.001 is not exact in f32 (relative error 1.3e-5), hence 1e-4.
                assert_close(
                    &format!("{what} param"),
                    &params[k].to_vec().unwrap(),
                    &cpu_p[k],
                    1e-4,
                    1e-6,
                );
                assert_close(
                    &format!("{what} m"),
                    &m.to_vec().unwrap(),
                    &cpu_m[k],
                    1e-4,
                    1e-7,
                );
                assert_close(
                    &format!("{what} v"),
                    &v.to_vec().unwrap(),
                    &cpu_v[k],
                    1e-4,
                    1e-9,
                );
            }
        }
        assert_eq!(opt.steps(), 5);
    }
}

#[test]
fn clip_factor_over_several_tensors() {
    let dev = device();
    let a = Tensor::from_slice(&dev, &[3.0, 0.0, 0.0], &[3]).unwrap();
    let b = Tensor::from_slice(
        &dev,
        &vec![0.0; 1000]
            .into_iter()
            .chain([4.0])
            .collect::<Vec<f32>>(),
        &[1001],
    )
    .unwrap();
    let s = clip_factor(&[&a, &b], 1.0).unwrap().to_vec().unwrap();
    assert!(
        (s[1] - 5.0).abs() < 1e-5 && (s[0] - 0.2).abs() < 1e-6,
        "{s:?}"
    );
    let s = clip_factor(&[&a, &b], 10.0).unwrap().to_vec().unwrap();
    assert_eq!(s[0], 1.0);
}

#[test]
fn ema_of_parameters() {
    let dev = device();
    let p = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0], &[3]).unwrap();
    let mut ema = Ema::new(std::slice::from_ref(&p), 0.9).unwrap();
    let mut reference = vec![1.0f64, 2.0, 3.0];
    for k in 0..3 {
        let newp: Vec<f32> = vec![10.0 * k as f32, -1.0, 0.5];
        p.assign(&Tensor::from_slice(&dev, &newp, &[3]).unwrap())
            .unwrap();
        ema.update(std::slice::from_ref(&p)).unwrap();
        for (e, n) in reference.iter_mut().zip(&newp) {
            *e = 0.9 * *e + 0.1 * *n as f64;
        }
    }
    assert_close(
        "ema",
        &ema.shadows()[0].to_vec().unwrap(),
        &reference,
        1e-6,
        1e-6,
    );
}

/// The same parameters twice: as separate tensors and packed in a [`ParamArena`].
fn separate_and_packed(
    dev: &mtdiff_engine::Device,
    shapes: &[&[usize]],
    seed: u64,
) -> (Vec<Tensor>, Vec<Tensor>) {
    let mut r = rng(seed);
    let data: Vec<Vec<f32>> = shapes
        .iter()
        .map(|s| r.vec_range(s.iter().product(), -1.0, 1.0))
        .collect();
    let capacity = shapes
        .iter()
        .map(|s| ParamArena::slot_len(dev, s.iter().product()))
        .sum();
    let mut arena = ParamArena::new(dev, capacity).unwrap();
    let separate = shapes
        .iter()
        .zip(&data)
        .map(|(s, d)| Tensor::from_slice(dev, d, s).unwrap().with_grad())
        .collect();
    let packed = shapes
        .iter()
        .zip(&data)
        .map(|(s, d)| arena.alloc(d, s).unwrap().with_grad())
        .collect();
    (separate, packed)
}

/// loss = Σ_k Σ w_k · p_k: the gradient of p_k is w_k (the same `ws` for both layouts).
fn linear_loss(params: &[Tensor], ws: &[Vec<f32>]) -> Tensor {
    let dev = params[0].device();
    let mut loss = Tensor::scalar(dev, 0.0).unwrap();
    for (p, w) in params.iter().zip(ws) {
        let w = Tensor::from_slice(dev, w, p.dims()).unwrap();
        loss = loss.add(&p.mul(&w).unwrap().sum_all().unwrap()).unwrap();
    }
    loss
}

#[test]
fn packed_parameters_update_in_a_constant_number_of_dispatches_with_the_same_results() {
    // A device of its own: the shared one counts the dispatches of tests running in parallel.
    let dev = mtdiff_engine::Device::new(mtdiff_engine::DeviceOptions::default()).unwrap();
    // Sizes that are not multiples of the 64-element slot alignment, and one of 1.
    let shapes: [&[usize]; 5] = [&[7, 33], &[65], &[1], &[3, 4, 5], &[130]];
    for clip in [None, Some(0.5f32)] {
        let cfg = decayed(clip);
        let (separate, packed) = separate_and_packed(&dev, &shapes, 3);
        let (mut opt_s, mut opt_p) = (AdamW::new(cfg), AdamW::new(cfg));
        let mut ema_s = Ema::new(&separate, 0.9).unwrap();
        let mut ema_p = Ema::new(&packed, 0.9).unwrap();
        let mut r = rng(4);
        for step in 0..4 {
            let ws: Vec<Vec<f32>> = separate
                .iter()
                .map(|p| r.vec_range(p.numel(), -2.0, 2.0))
                .collect();
            let gs = linear_loss(&separate, &ws).backward().unwrap();
            let gp = linear_loss(&packed, &ws).backward().unwrap();
            let stats_s = opt_s.step(&separate, &gs).unwrap().unwrap();
            ema_s.update(&separate).unwrap();
            dev.synchronize().unwrap();
            let before = dev.dispatch_stats().dispatches;
            let stats_p = opt_p.step(&packed, &gp).unwrap().unwrap();
            ema_p.update(&packed).unwrap();
            dev.synchronize().unwrap();
            let dispatches = dev.dispatch_stats().dispatches - before;
            // Sum of squares and clip factor (when clipping), AdamW, EMA: independent of the
            // number of tensors (the per-tensor path takes 2 per tensor plus clipping's).
            let want = if clip.is_some() { 4 } else { 2 };
            assert_eq!(dispatches, want, "clip {clip:?}, step {step}");
            let (ns, np) = (stats_s.to_vec().unwrap(), stats_p.to_vec().unwrap());
            if clip.is_some() {
                // The same norm, summed in another order (f32).
                assert!((ns[1] - np[1]).abs() <= 1e-5 * ns[1], "{ns:?} {np:?}");
            }
            for (k, (a, b)) in separate.iter().zip(&packed).enumerate() {
                let (a, b) = (a.to_vec().unwrap(), b.to_vec().unwrap());
                if clip.is_none() {
                    // Element for element the same kernel arithmetic: bitwise equal.
                    assert_eq!(a, b, "tensor {k}, step {step}");
                } else {
                    assert_close(&format!("tensor {k}"), &b, &f64s(&a), 1e-5, 1e-6);
                }
                let (ea, eb) = (
                    ema_s.shadows()[k].to_vec().unwrap(),
                    ema_p.shadows()[k].to_vec().unwrap(),
                );
                assert_close(&format!("ema {k}"), &eb, &f64s(&ea), 1e-5, 1e-6);
                let (ma, va) = opt_s.moments(&separate[k]).unwrap();
                let (mb, vb) = opt_p.moments(&packed[k]).unwrap();
                assert_close(
                    "m",
                    &mb.to_vec().unwrap(),
                    &f64s(&ma.to_vec().unwrap()),
                    1e-5,
                    1e-6,
                );
                assert_close(
                    "v",
                    &vb.to_vec().unwrap(),
                    &f64s(&va.to_vec().unwrap()),
                    1e-5,
                    1e-6,
                );
            }
        }
    }
}

#[test]
fn gather_then_step_gathered_is_step_and_the_gathered_gradient_can_be_replaced() {
    let dev = device();
    let shapes: [&[usize]; 3] = [&[7, 3], &[65], &[1]];
    for clip in [None, Some(0.5f32)] {
        let cfg = decayed(clip);
        let (_, a) = separate_and_packed(&dev, &shapes, 5);
        let (_, b) = separate_and_packed(&dev, &shapes, 5);
        let (_, c) = separate_and_packed(&dev, &shapes, 5);
        let (mut oa, mut ob, mut oc) = (AdamW::new(cfg), AdamW::new(cfg), AdamW::new(cfg));
        let mut r = rng(6);
        for step in 0..3 {
            let ws: Vec<Vec<f32>> = a
                .iter()
                .map(|p| r.vec_range(p.numel(), -2.0, 2.0))
                .collect();
            // a: step with the gradient ws; b: gather and step_gathered, the same.
            oa.step(&a, &linear_loss(&a, &ws).backward().unwrap())
                .unwrap();
            ob.gather(&b, &linear_loss(&b, &ws).backward().unwrap())
                .unwrap();
            ob.step_gathered().unwrap();
            // c: gather ws, then overwrite the flat gradient with its double (as an all-reduce
            // of two equal replicas would), which must equal a step with 2·ws.
            let flat = oc
                .gather(&c, &linear_loss(&c, &ws).backward().unwrap())
                .unwrap();
            let summed: Vec<f32> = flat.to_vec().unwrap().iter().map(|v| v + v).collect();
            flat.assign(&Tensor::from_slice(&dev, &summed, flat.dims()).unwrap())
                .unwrap();
            oc.step_gathered().unwrap();
            for k in 0..shapes.len() {
                let (va, vb) = (a[k].to_vec().unwrap(), b[k].to_vec().unwrap());
                assert_eq!(va, vb, "clip {clip:?}, step {step}, tensor {k}");
            }
        }
        // c took the doubled gradients: compare against a fresh run stepping with 2·ws.
        let (_, d) = separate_and_packed(&dev, &shapes, 5);
        let mut od = AdamW::new(cfg);
        let mut r = rng(6);
        for _ in 0..3 {
            let ws: Vec<Vec<f32>> = d
                .iter()
                .map(|p| r.vec_range(p.numel(), -2.0, 2.0))
                .collect();
            let double: Vec<Vec<f32>> = ws
                .iter()
                .map(|w| w.iter().map(|v| 2.0 * v).collect())
                .collect();
            od.step(&d, &linear_loss(&d, &double).backward().unwrap())
                .unwrap();
        }
        for k in 0..shapes.len() {
            assert_eq!(
                c[k].to_vec().unwrap(),
                d[k].to_vec().unwrap(),
                "clip {clip:?}, tensor {k}"
            );
        }
    }
    // Unpacked parameters cannot be gathered; step_gathered needs a gather first.
    let (separate, _) = separate_and_packed(&dev, &shapes, 5);
    let g = linear_loss(&separate, &[vec![1.0; 21], vec![1.0; 65], vec![1.0]])
        .backward()
        .unwrap();
    assert!(AdamW::new(decayed(None)).gather(&separate, &g).is_err());
    assert!(AdamW::new(decayed(None)).step_gathered().is_err());
}

#[test]
fn packed_moments_restore_and_a_missing_gradient_falls_back_per_tensor() {
    let dev = device();
    let shapes: [&[usize]; 3] = [&[5, 3], &[70], &[2]];
    let cfg = AdamWConfig {
        lr: 0.02,
        ..AdamWConfig::default()
    };
    let (reference, packed) = separate_and_packed(&dev, &shapes, 5);
    let mut r = rng(6);
    let ws: Vec<Vec<Vec<f32>>> = (0..3)
        .map(|_| {
            reference
                .iter()
                .map(|p| r.vec_range(p.numel(), -1.0, 1.0))
                .collect()
        })
        .collect();
    // Reference: three steps on separate tensors.
    let mut opt_r = AdamW::new(cfg);
    for w in &ws {
        opt_r
            .step(&reference, &linear_loss(&reference, w).backward().unwrap())
            .unwrap();
    }
    // Packed: one step, then "resume" into a fresh optimizer from its moments, two more steps.
    let mut opt_a = AdamW::new(cfg);
    opt_a
        .step(&packed, &linear_loss(&packed, &ws[0]).backward().unwrap())
        .unwrap();
    let mut opt_b = AdamW::new(cfg);
    for p in &packed {
        let (m, v) = opt_a.moments(p).unwrap();
        let (m2, v2) = (
            Tensor::zeros(&dev, p.dims()).unwrap(),
            Tensor::zeros(&dev, p.dims()).unwrap(),
        );
        m2.assign(m).unwrap();
        v2.assign(v).unwrap();
        opt_b.restore(opt_a.steps(), p, m2, v2).unwrap();
    }
    for w in &ws[1..] {
        opt_b
            .step(&packed, &linear_loss(&packed, w).backward().unwrap())
            .unwrap();
    }
    for (a, b) in reference.iter().zip(&packed) {
        assert_eq!(a.to_vec().unwrap(), b.to_vec().unwrap());
    }
    // A parameter without a gradient: the others still update (per tensor), it does not.
    let before: Vec<Vec<f32>> = packed.iter().map(|p| p.to_vec().unwrap()).collect();
    let loss = linear_loss(&packed[..2], &ws[0][..2]);
    opt_b.step(&packed, &loss.backward().unwrap()).unwrap();
    assert_ne!(packed[0].to_vec().unwrap(), before[0]);
    assert_eq!(packed[2].to_vec().unwrap(), before[2]);
}

#[test]
fn an_arena_refuses_more_than_its_capacity() {
    let dev = device();
    let mut arena = ParamArena::new(&dev, ParamArena::slot_len(&dev, 10)).unwrap();
    arena.alloc(&[0.0; 10], &[10]).unwrap();
    let e = arena.alloc(&[0.0; 3], &[3]).err().unwrap().to_string();
    assert!(e.contains("slot_len"), "{e}");
    let e = arena.alloc(&[0.0; 3], &[4]).err().unwrap().to_string();
    assert!(e.contains("4 values") || e.contains("3 values"), "{e}");
}

/// Bits of every parameter.
fn bits(params: &[Tensor]) -> Vec<Vec<u32>> {
    params
        .iter()
        .map(|p| p.to_vec().unwrap().iter().map(|v| v.to_bits()).collect())
        .collect()
}

#[test]
fn a_scaled_step_without_overflow_is_the_unscaled_step_bit_for_bit() {
    let dev = device();
    let shapes: [&[usize]; 3] = [&[7, 33], &[65], &[3, 2, 5]];
    let mut r = rng(31);
    let ws: Vec<Vec<f32>> = shapes
        .iter()
        .map(|s| r.vec_range(s.iter().product(), -2.0, 2.0))
        .collect();
    for clip in [None, Some(0.5f32)] {
        let (separate, packed) = separate_and_packed(&dev, &shapes, 5);
        let (separate2, packed2) = separate_and_packed(&dev, &shapes, 5);
        for (plain, scaled) in [(separate, separate2), (packed, packed2)] {
            let mut a = AdamW::new(decayed(clip));
            let mut b = AdamW::new(decayed(clip));
            // A power-of-two scale multiplies and divides exactly.
            let scaler = LossScaler::new(
                &dev,
                LossScalerConfig {
                    init_scale: 1024.0,
                    growth_interval: 2,
                    ..LossScalerConfig::default()
                },
            )
            .unwrap();
            for _ in 0..3 {
                let g = linear_loss(&plain, &ws).backward().unwrap();
                a.step(&plain, &g).unwrap();
                let loss = scaler.scale(&linear_loss(&scaled, &ws)).unwrap();
                let stats = b
                    .step_scaled(&scaled, &loss.backward().unwrap(), &scaler)
                    .unwrap()
                    .unwrap();
                assert_eq!(stats.to_vec().unwrap()[2], 0.0, "not skipped");
            }
            assert_eq!(bits(&plain), bits(&scaled), "clip {clip:?}");
            // Three clean steps with growth every 2: 1024 → 2048 after the second.
            let state = LossScaleState::from_values(&scaler.state().to_vec().unwrap()).unwrap();
            assert_eq!(
                state,
                LossScaleState {
                    scale: 2048.0,
                    clean_steps: 1,
                    skipped_steps: 0,
                    last_skipped: false
                }
            );
        }
    }
}

#[test]
fn an_overflowing_step_changes_nothing_and_the_scale_follows_the_reference() {
    let dev = device();
    let shapes: [&[usize]; 2] = [&[9, 4], &[17]];
    let (_, params) = separate_and_packed(&dev, &shapes, 8);
    let mut r = rng(2);
    let finite: Vec<Vec<f32>> = shapes
        .iter()
        .map(|s| r.vec_range(s.iter().product(), -1.0, 1.0))
        .collect();
    let mut overflowing = finite.clone();
    overflowing[1][3] = f32::INFINITY;
    let mut nan = finite.clone();
    nan[0][0] = f32::NAN;
    let config = LossScalerConfig {
        init_scale: 256.0,
        growth_interval: 2,
        ..LossScalerConfig::default()
    };
    let scaler = LossScaler::new(&dev, config).unwrap();
    let mut opt = AdamW::new(decayed(Some(1.0)));
    let mut want = LossScaleState::from_values(&scaler.state().to_vec().unwrap()).unwrap();
    // Clean, overflow, NaN, clean, clean (a growth), overflow.
    let plan = [
        (&finite, true),
        (&overflowing, false),
        (&nan, false),
        (&finite, true),
        (&finite, true),
        (&overflowing, false),
    ];
    for (step, (ws, ok)) in plan.into_iter().enumerate() {
        let before = bits(&params);
        let loss = scaler.scale(&linear_loss(&params, ws)).unwrap();
        let stats = opt
            .step_scaled(&params, &loss.backward().unwrap(), &scaler)
            .unwrap()
            .unwrap()
            .to_vec()
            .unwrap();
        want = cpu_reference(&config, want, ok);
        let got = LossScaleState::from_values(&scaler.state().to_vec().unwrap()).unwrap();
        assert_eq!(got, want, "step {step}");
        if ok {
            assert_ne!(bits(&params), before, "step {step} updates");
            assert_eq!(stats[2], 0.0);
        } else {
            assert_eq!(bits(&params), before, "step {step} is skipped");
            assert_eq!(stats[..1], [0.0], "step {step}: factor 0");
            assert_eq!(stats[2], 1.0);
        }
    }
    assert_eq!(want.skipped_steps, 3);
    // A saved state comes back.
    let saved = LossScaleState {
        scale: 8.0,
        clean_steps: 5,
        skipped_steps: 2,
        last_skipped: true,
    };
    scaler.restore(saved).unwrap();
    assert_eq!(
        LossScaleState::from_values(&scaler.state().to_vec().unwrap()).unwrap(),
        saved
    );
}

#[test]
fn a_loss_scaler_refuses_bad_settings_and_losses() {
    let dev = device();
    for bad in [
        LossScalerConfig {
            init_scale: 0.0,
            ..LossScalerConfig::default()
        },
        LossScalerConfig {
            backoff_factor: 1.0,
            ..LossScalerConfig::default()
        },
        LossScalerConfig {
            growth_interval: 0,
            ..LossScalerConfig::default()
        },
    ] {
        let e = LossScaler::new(&dev, bad)
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("LossScaler::new"), "{e}");
    }
    let s = LossScaler::new(&dev, LossScalerConfig::default()).unwrap();
    let v = Tensor::from_slice(&dev, &[1.0, 2.0], &[2]).unwrap();
    assert!(s.scale(&v).is_err(), "a two-element loss");
    let one = Tensor::scalar(&dev, 3.0).unwrap();
    assert_eq!(
        s.scale(&one).unwrap().to_vec().unwrap(),
        vec![3.0 * 65536.0]
    );
}

#[test]
fn gather_then_step_gathered_scaled_is_step_scaled() {
    let dev = device();
    let shapes: [&[usize]; 2] = [&[5, 6], &[11]];
    let mut r = rng(12);
    let ws: Vec<Vec<f32>> = shapes
        .iter()
        .map(|s| r.vec_range(s.iter().product(), -1.0, 1.0))
        .collect();
    let (_, a) = separate_and_packed(&dev, &shapes, 4);
    let (_, b) = separate_and_packed(&dev, &shapes, 4);
    let config = LossScalerConfig {
        growth_interval: 2,
        ..LossScalerConfig::default()
    };
    let (sa, sb) = (
        LossScaler::new(&dev, config).unwrap(),
        LossScaler::new(&dev, config).unwrap(),
    );
    let (mut oa, mut ob) = (
        AdamW::new(decayed(Some(0.5))),
        AdamW::new(decayed(Some(0.5))),
    );
    for _ in 0..3 {
        let g = sa.scale(&linear_loss(&a, &ws)).unwrap().backward().unwrap();
        oa.step_scaled(&a, &g, &sa).unwrap();
        let g = sb.scale(&linear_loss(&b, &ws)).unwrap().backward().unwrap();
        ob.gather(&b, &g).unwrap();
        ob.step_gathered_scaled(&sb).unwrap();
    }
    assert_eq!(bits(&a), bits(&b));
    assert_eq!(sa.state().to_vec().unwrap(), sb.state().to_vec().unwrap());
}
