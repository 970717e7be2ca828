//! Optimizer kernels step by step against the CPU reference: fused AdamW (with weight decay and
//! global gradient-norm clipping), the clip factor, EMA.

mod common;

use common::{assert_close, device, f64s, rng};
use mtdiff_engine::optim::{clip_factor, AdamW, AdamWConfig, Ema};
use mtdiff_engine::{cpu, Tensor};

#[test]
fn fused_adamw_matches_the_reference_step_by_step() {
    let dev = device();
    for clip in [None, Some(0.5f32)] {
        let cfg = AdamWConfig {
            lr: 0.01,
            weight_decay: 0.1,
            max_grad_norm: clip,
            ..AdamWConfig::default()
        };
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
