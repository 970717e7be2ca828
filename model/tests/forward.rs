//! The multi-modal forward process (docs/method.md §3): the closed form of q(z_t | z_0, X)
//! against the one-step chain unrolled (exactly for the mean recursion, by Monte Carlo on the GPU
//! for mean and variance through the engine's q_sample kernel); ρ ≡ 0 reduces to DDPM; z_T is
//! ≈ N(0, I) for the default ramp.

use mtdiff_model::engine::ops::diffusion::{q_sample, randn, Aggregate};
use mtdiff_model::engine::{Device, DeviceOptions, Tensor};
use mtdiff_model::forward::{alpha, marginal_scale, one_step_scale, one_step_table, step_weight};
use mtdiff_model::{BetaSchedule, Ramp, Schedule, ScheduleConfig};

fn schedules() -> Vec<Schedule> {
    [BetaSchedule::Linear, BetaSchedule::SquaredCosCapV2]
        .into_iter()
        .map(|b| {
            Schedule::new(ScheduleConfig {
                beta_schedule: b,
                ..ScheduleConfig::default()
            })
            .unwrap()
        })
        .collect()
}

#[test]
fn mean_recursion_equals_the_closed_form_exactly() {
    // c_t = √α_t (c_{t−1} + w_t E) with c_{−1} = 0 must equal λ_t E = √ᾱ_t ρ(t) E at every t.
    for s in schedules() {
        for ramp in [
            Ramp::DEFAULT,
            Ramp {
                start: 0.0,
                end: 1.0,
                scale: -1.0,
            },
            Ramp {
                start: 0.3,
                end: 0.35,
                scale: 0.5,
            },
        ] {
            let mut c = 0.0f64;
            for t in 0..s.len() {
                c = alpha(&s, t).sqrt() * (c + step_weight(&s, &ramp, t));
                let want = marginal_scale(&s, &ramp, t);
                assert!(
                    (c - want).abs() < 1e-12,
                    "{:?} {ramp:?} t={t}: chain {c} vs closed form {want}",
                    s.config.beta_schedule
                );
            }
        }
    }
}

#[test]
fn rho_off_is_exactly_ddpm_and_z_t_is_standard_normal() {
    for s in schedules() {
        assert!((0..s.len())
            .all(|t| step_weight(&s, &Ramp::OFF, t) == 0.0
                && marginal_scale(&s, &Ramp::OFF, t) == 0.0));
        // The prior p(z_T) = N(0, I) needs λ_T ≈ 0 and ᾱ_T ≈ 0.
        let last = s.len() - 1;
        assert!(
            marginal_scale(&s, &Ramp::DEFAULT, last) < 0.01,
            "λ_T = {}",
            marginal_scale(&s, &Ramp::DEFAULT, last)
        );
        assert!(s.alphas_cumprod[last] < 1e-4);
    }
}

#[test]
fn one_step_chain_on_the_gpu_matches_the_closed_form_by_monte_carlo() {
    let dev = Device::new(DeviceOptions::default()).unwrap();
    // T = 50 keeps the chain short; 2^16 chains, z_0 = 0.3, E = 1.2 everywhere.
    let s = Schedule::new(ScheduleConfig {
        num_train_timesteps: 50,
        beta_start: 1e-3,
        beta_end: 0.2,
        ..ScheduleConfig::default()
    })
    .unwrap();
    let ramp = Ramp::DEFAULT;
    let (n, z0, e) = (1usize << 16, 0.3f32, 1.2f32);
    let enc = Tensor::from_slice(&dev, &vec![e; n], &[1, n]).unwrap();
    let table = Tensor::from_slice(&dev, &one_step_table(&s), &[s.len(), 2]).unwrap();
    let mut z = Tensor::from_slice(&dev, &vec![z0; n], &[1, n]).unwrap();
    for t in 0..s.len() {
        let tt = Tensor::from_u32(&dev, &[t as u32], &[1]).unwrap();
        let scale = Tensor::from_slice(&dev, &[one_step_scale(&s, &ramp, t) as f32], &[1]).unwrap();
        let eps = randn(&dev, &[1, n], 7, t as u64).unwrap();
        z = q_sample(
            &z,
            &eps,
            &tt,
            &table,
            Some(Aggregate {
                scale: &scale,
                agg: &enc,
            }),
        )
        .unwrap();
        if [4usize, 19, 35, 49].contains(&t) {
            let v = z.to_vec().unwrap();
            let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
            let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
            let ab = s.alphas_cumprod[t];
            let want_mean = ab.sqrt() * z0 as f64 + marginal_scale(&s, &ramp, t) * e as f64;
            let want_var = 1.0 - ab;
            // Standard error of the mean ≈ √(var/n) ≤ 0.004; of the variance ≈ var·√(2/n) ≤ 0.006.
            assert!(
                (mean - want_mean).abs() < 0.02,
                "t={t}: mean {mean} vs closed form {want_mean}"
            );
            assert!(
                (var - want_var).abs() < 0.03 * want_var.max(0.1),
                "t={t}: variance {var} vs closed form {want_var}"
            );
        }
    }
}
