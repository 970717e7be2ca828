//! The MT-Diffusion model on tiny configurations: every task preset runs forward with outputs of
//! the right shapes; the total loss's gradient matches finite differences; ρ ≡ 0 reduces to
//! DDPM; the posterior in ε-form equals the direct form and the sampler's step equals docs/method.md
//! §7.1's mean; DDIM with η = 0 is deterministic; conditional sampling keeps observed modalities.

use mtdiff_model::engine::ops::diffusion::{q_sample, randn};
use mtdiff_model::engine::rng::CpuRng;
use mtdiff_model::engine::{Device, DeviceOptions, Tensor};
use mtdiff_model::forward::{alpha, step_weight};
use mtdiff_model::modality::random_patch_mask;
use mtdiff_model::{
    min_snr_weight, Guidance, HeadOutput, LabelInput, ModalityKind, ModelConfig, MtDiffusion,
    Observation, Ramp, Sampled, SamplerConfig, SamplerKind, Schedule, ScheduleConfig, TaskConfig,
    TaskPreset,
};

const SHAPE: [usize; 3] = [1, 8, 8];
const CLASSES: usize = 3;
const DIM: usize = 5;

fn device() -> Device {
    Device::new(DeviceOptions::default()).unwrap()
}

fn tiny_config(task: TaskConfig) -> ModelConfig {
    let mut c = ModelConfig::new(task, &[8, 16], 50);
    c.head_hidden = 16;
    c
}

fn model(dev: &Device, preset: TaskPreset) -> MtDiffusion {
    let task = preset.task(SHAPE, CLASSES, DIM);
    MtDiffusion::new(dev, &tiny_config(task)).unwrap()
}

/// A full batch of `b` for `task`: random images in [−1, 1], labels, vectors, masks.
fn batch(dev: &Device, task: &TaskConfig, b: usize, seed: u64) -> Vec<Observation> {
    let mut rng = CpuRng::new(seed);
    let n = b * SHAPE.iter().product::<usize>();
    let img = |rng: &mut CpuRng| {
        Tensor::from_slice(
            dev,
            &rng.vec_range(n, -1.0, 1.0),
            &[b, SHAPE[0], SHAPE[1], SHAPE[2]],
        )
        .unwrap()
    };
    let x0 = rng.vec_range(n, -1.0, 1.0);
    let x0t = Tensor::from_slice(dev, &x0, &[b, SHAPE[0], SHAPE[1], SHAPE[2]]).unwrap();
    task.modalities
        .iter()
        .map(|m| match m.kind {
            ModalityKind::Image => Observation::Image(x0t.clone()),
            ModalityKind::SecondImage => Observation::Image(img(&mut rng)),
            ModalityKind::Label { classes } => {
                let y: Vec<u32> = (0..b).map(|_| rng.below(classes) as u32).collect();
                Observation::Label(Tensor::from_u32(dev, &y, &[b]).unwrap())
            }
            ModalityKind::Vector { dim } => Observation::Vector(
                Tensor::from_slice(dev, &rng.vec_normal(b * dim, 1.0), &[b, dim]).unwrap(),
            ),
            ModalityKind::MaskedImage => {
                let mask = random_patch_mask(&mut rng, b, SHAPE[1], SHAPE[2], 2, 0.5);
                // SHAPE has one channel, so pixel i of the batch is mask element i.
                let masked: Vec<f32> = x0.iter().zip(&mask).map(|(v, m)| v * m).collect();
                Observation::Masked {
                    image: Tensor::from_slice(dev, &masked, &[b, 1, SHAPE[1], SHAPE[2]]).unwrap(),
                    mask: Tensor::from_slice(dev, &mask, &[b, 1, SHAPE[1], SHAPE[2]]).unwrap(),
                }
            }
        })
        .collect()
}

fn timesteps(dev: &Device, ts: &[u32]) -> Tensor {
    Tensor::from_u32(dev, ts, &[ts.len()]).unwrap()
}

/// A tiny image-label model with the label embedding (MT-Diffusion-E).
fn label_embedding_model(dev: &Device) -> MtDiffusion {
    let mut cfg = tiny_config(TaskPreset::ImageLabel.task(SHAPE, CLASSES, DIM));
    cfg.label_embedding = true;
    MtDiffusion::new(dev, &cfg).unwrap()
}

/// z_t of a fully observed batch.
fn noisy_all(m: &MtDiffusion, obs: &[Observation], t: &Tensor, noise: &Tensor) -> Tensor {
    let given: Vec<Option<Observation>> = obs.iter().cloned().map(Some).collect();
    m.noisy(&given, t, noise).unwrap()
}

#[test]
fn every_preset_predicts_and_computes_its_loss_with_the_right_shapes() {
    let dev = device();
    for preset in TaskPreset::ALL {
        let m = model(&dev, preset);
        let b = 3;
        let obs = batch(&dev, m.task(), b, 1);
        let t = timesteps(&dev, &[0, 20, 49]);
        let noise = randn(&dev, &m.sample_dims(b), 7, 0).unwrap();
        let given: Vec<Option<Observation>> = obs.iter().cloned().map(Some).collect();
        let z = m.noisy(&given, &t, &noise).unwrap();
        assert_eq!(z.dims(), &m.sample_dims(b));
        let pred = m.predict(&z, &t).unwrap();
        assert_eq!(pred.eps.dims(), &m.sample_dims(b), "{preset:?} ε̂");
        for (spec, h) in m.task().modalities.iter().zip(&pred.heads) {
            let dims = h.as_ref().map(|h| h.tensor().dims().to_vec());
            let want = match (spec.head, spec.kind) {
                (false, _) => None,
                (true, ModalityKind::Label { classes }) => Some(vec![b, classes]),
                (true, ModalityKind::Vector { dim }) => Some(vec![b, dim]),
                (true, _) => Some(m.sample_dims(b).to_vec()),
            };
            assert_eq!(dims, want, "{preset:?} head of {}", spec.name);
        }
        let loss = m.loss(&obs, &t, &noise).unwrap();
        let total = loss.total.to_scalar().unwrap();
        let mut sum = loss.eps.to_scalar().unwrap();
        for (name, l) in &loss.heads {
            let v = l.to_scalar().unwrap();
            assert!(v.is_finite() && v > 0.0, "{preset:?} {name}: {v}");
            sum += v;
        }
        assert!(
            (total - sum).abs() < 1e-4 * sum,
            "{preset:?}: {total} vs {sum}"
        );
        assert_eq!(
            loss.heads.len(),
            m.task().modalities.iter().filter(|s| s.head).count()
        );
    }
}

#[test]
fn total_loss_gradient_matches_finite_differences() {
    let dev = device();
    let m = model(&dev, TaskPreset::ImageLabel);
    let b = 2;
    let obs = batch(&dev, m.task(), b, 2);
    let t = timesteps(&dev, &[10, 30]);
    let noise = randn(&dev, &m.sample_dims(b), 3, 0).unwrap();
    let loss = || m.loss(&obs, &t, &noise).unwrap().total;
    let grads = loss().backward().unwrap();
    let mut checked = 0;
    for (name, idx) in [
        ("conv_out.weight", 5),
        ("conv_out.bias", 0),
        ("enc0.conv1.weight", 17),
        ("mid2.temb.bias", 3),
        ("time_mlp.0.weight", 40),
        ("head_label.fc1.weight", 11),
        ("head_label.fc2.bias", 1),
        ("mid_attn.qkv.weight", 100),
    ] {
        let (_, p) = m
            .params()
            .named()
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no parameter {name}"));
        let analytic = grads.get(p).unwrap().to_vec().unwrap()[idx] as f64;
        let orig = p.to_vec().unwrap();
        let h = 1e-2f32;
        let at = |v: f32| {
            let mut w = orig.clone();
            w[idx] = v;
            p.assign(&Tensor::from_slice(&dev, &w, p.dims()).unwrap())
                .unwrap();
            loss().to_scalar().unwrap() as f64
        };
        let fd = (at(orig[idx] + h) - at(orig[idx] - h)) / (2.0 * h as f64);
        at(orig[idx]);
        let tol = 2e-3 + 0.03 * analytic.abs().max(fd.abs());
        assert!(
            (analytic - fd).abs() < tol,
            "{name}[{idx}]: backward {analytic} vs finite difference {fd}"
        );
        checked += 1;
    }
    assert_eq!(checked, 8);
}

#[test]
fn label_embedding_conditions_the_network_and_its_gradient_matches_finite_differences() {
    let dev = device();
    let m = label_embedding_model(&dev);
    assert_eq!(m.embedded_label(), Some(1));
    assert_eq!(m.no_label_token(), Some(CLASSES as u32));
    let b = 2;
    let obs = batch(&dev, m.task(), b, 5);
    let t = timesteps(&dev, &[10, 30]);
    let noise = randn(&dev, &m.sample_dims(b), 3, 0).unwrap();
    let Observation::Label(y) = &obs[1] else {
        unreachable!()
    };
    // No tokens means "no label" for every sample; a label changes ε̂.
    let none = timesteps(&dev, &[CLASSES as u32; 2]);
    let z = noisy_all(&m, &obs, &t, &noise);
    let eps = |tok: Option<&Tensor>| m.predict_given(&z, &t, tok).unwrap().eps.to_vec().unwrap();
    assert_eq!(eps(None), eps(Some(&none)));
    let diff: f32 = eps(None)
        .iter()
        .zip(eps(Some(y)))
        .map(|(a, b)| (a - b).abs())
        .sum();
    assert!(diff > 1e-3, "the label embedding has no effect: {diff}");
    // ∂L/∂(class_emb) at the row of sample 0's label, against finite differences.
    let shown = LabelInput {
        labels: y.to_vec_u32().unwrap(),
        shown: vec![true, false],
        denominator: None,
    };
    let loss = || m.loss_given(&obs, &t, &noise, Some(&shown)).unwrap().total;
    let grads = loss().backward().unwrap();
    let (_, table) = m
        .params()
        .named()
        .iter()
        .find(|(n, _)| n == "class_emb")
        .expect("a class_emb parameter");
    let label0 = y.to_vec_u32().unwrap()[0] as usize;
    let td = table.dims()[1];
    let orig = table.to_vec().unwrap();
    for idx in [label0 * td + 3, label0 * td + td - 1] {
        let analytic = grads.get(table).unwrap().to_vec().unwrap()[idx] as f64;
        let h = 1e-2f32;
        let at = |v: f32| {
            let mut w = orig.clone();
            w[idx] = v;
            table
                .assign(&Tensor::from_slice(&dev, &w, table.dims()).unwrap())
                .unwrap();
            loss().to_scalar().unwrap() as f64
        };
        let fd = (at(orig[idx] + h) - at(orig[idx] - h)) / (2.0 * h as f64);
        at(orig[idx]);
        assert!(
            (analytic - fd).abs() < 2e-3 + 0.03 * analytic.abs().max(fd.abs()),
            "class_emb[{idx}]: backward {analytic} vs finite difference {fd}"
        );
        assert!(analytic != 0.0, "class_emb[{idx}] gets no gradient");
    }
    // The label head's cross-entropy counts only the sample whose label was hidden.
    let terms = m.loss_given(&obs, &t, &noise, Some(&shown)).unwrap();
    let ce = terms.heads[0].1.to_scalar().unwrap() as f64;
    let logits = match &m
        .predict_given(
            &z,
            &t,
            Some(&timesteps(&dev, &[shown.labels[0], CLASSES as u32])),
        )
        .unwrap()
        .heads[1]
    {
        Some(HeadOutput::Logits(l)) => l.to_vec().unwrap(),
        _ => unreachable!(),
    };
    let row = &logits[CLASSES..];
    let lse = row.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln();
    let want = lse - row[shown.labels[1] as usize] as f64;
    assert!((ce - want).abs() < 1e-4, "masked CE {ce} vs {want}");
    // A model without a label modality cannot have a label embedding.
    let mut bad = tiny_config(TaskPreset::Ddpm.task(SHAPE, CLASSES, DIM));
    bad.label_embedding = true;
    let msg = MtDiffusion::new(&dev, &bad).err().unwrap().to_string();
    assert!(msg.contains("label"), "{msg}");
}

#[test]
fn classifier_free_guidance_extrapolates_from_the_unlabelled_to_the_labelled_prediction() {
    let dev = device();
    let m = label_embedding_model(&dev);
    let b = 3;
    let z = randn(&dev, &m.sample_dims(b), 8, 0).unwrap();
    let y = timesteps(&dev, &[0, 2, 1]);
    let t = 17;
    let tt = timesteps(&dev, &[t as u32; 3]);
    let cond = m.predict_given(&z, &tt, Some(&y)).unwrap();
    let uncond = m
        .predict_given(&z, &tt, None)
        .unwrap()
        .eps
        .to_vec()
        .unwrap();
    let ce = cond.eps.to_vec().unwrap();
    let s = 2.5;
    let big_t = m.schedule().len();
    let scaled = |guidance: f64| SamplerConfig {
        guidance,
        ..SamplerConfig::default()
    };
    let g = Guidance::new(&m, Some(&y), &scaled(s), big_t)
        .unwrap()
        .expect("guidance applies");
    let guided = g.predict(&m, &z, t).unwrap();
    for (k, got) in guided.eps.to_vec().unwrap().into_iter().enumerate() {
        let want = uncond[k] + s as f32 * (ce[k] - uncond[k]);
        assert!((got - want).abs() < 1e-4, "ε̂[{k}] {got} vs {want}");
    }
    // The heads are the labelled half's.
    let (Some(HeadOutput::Logits(a)), Some(HeadOutput::Logits(c))) =
        (&guided.heads[1], &cond.heads[1])
    else {
        unreachable!("the label head gives logits")
    };
    assert_eq!(a.dims(), c.dims());
    for (p, q) in a.to_vec().unwrap().iter().zip(c.to_vec().unwrap()) {
        assert!((p - q).abs() < 1e-4);
    }
    // Nothing to guide: s = 1, no given label, or no label embedding.
    assert!(Guidance::new(&m, Some(&y), &scaled(1.0), big_t)
        .unwrap()
        .is_none());
    assert!(Guidance::new(&m, None, &scaled(s), big_t)
        .unwrap()
        .is_none());
    let plain = model(&dev, TaskPreset::ImageLabel);
    assert!(Guidance::new(&plain, Some(&y), &scaled(s), big_t)
        .unwrap()
        .is_none());
    // Outside the guidance interval the step is the labelled prediction; inside, guided.
    let interval = |lo: f64, hi: f64| SamplerConfig {
        guidance_interval: (lo, hi),
        ..scaled(s)
    };
    let last = (big_t - 1) as f64;
    let above = Guidance::new(&m, Some(&y), &interval((t + 1) as f64 / last, 1.0), big_t)
        .unwrap()
        .expect("guidance applies");
    let plain_step = above.predict(&m, &z, t).unwrap().eps.to_vec().unwrap();
    for (k, (got, want)) in plain_step.iter().zip(&ce).enumerate() {
        assert!((got - want).abs() < 1e-5, "ε̂[{k}] {got} vs {want} outside");
    }
    let around = Guidance::new(
        &m,
        Some(&y),
        &interval(t as f64 / last, t as f64 / last),
        big_t,
    )
    .unwrap()
    .expect("guidance applies");
    let guided_step = around.predict(&m, &z, t).unwrap().eps.to_vec().unwrap();
    for (k, got) in guided_step.into_iter().enumerate() {
        let want = uncond[k] + s as f32 * (ce[k] - uncond[k]);
        assert!((got - want).abs() < 1e-4, "ε̂[{k}] {got} vs {want} inside");
    }
    for (lo, hi) in [(0.6, 0.4), (-0.1, 1.0), (0.0, 1.5)] {
        let msg = Guidance::new(&m, Some(&y), &interval(lo, hi), big_t)
            .err()
            .unwrap()
            .to_string();
        assert!(msg.contains("guidance interval"), "{msg}");
    }
    // The sampler uses it: a guided chain differs from the unguided one, a negative scale is
    // refused.
    let mut given = vec![None; 2];
    given[1] = Some(Observation::Label(y.clone()));
    let run = |guidance: f64| {
        let c = SamplerConfig {
            guidance,
            steps: 5,
            ..sampler(SamplerKind::Ddim, 4)
        };
        m.sample(&given, b, &c).map(|s| s.image.to_vec().unwrap())
    };
    let (one, two) = (run(1.0).unwrap(), run(3.0).unwrap());
    assert!(one.iter().zip(&two).any(|(p, q)| (p - q).abs() > 1e-4));
    let msg = run(-1.0).err().unwrap().to_string();
    assert!(msg.contains("guidance"), "{msg}");
}

#[test]
fn min_snr_weighting_weights_each_samples_eps_error() {
    let dev = device();
    let mut cfg = tiny_config(TaskPreset::Ddpm.task(SHAPE, CLASSES, DIM));
    cfg.snr_gamma = 5.0;
    let m = MtDiffusion::new(&dev, &cfg).unwrap();
    let b = 3;
    let obs = batch(&dev, m.task(), b, 9);
    // Nearly clean (SNR ≫ γ: weight < 1), middle, and noisy (SNR < γ: weight 1).
    let ts = [1u32, 10, 45];
    let t = timesteps(&dev, &ts);
    let noise = randn(&dev, &m.sample_dims(b), 2, 0).unwrap();
    let loss = m.loss(&obs, &t, &noise).unwrap().eps.to_scalar().unwrap() as f64;
    let z = noisy_all(&m, &obs, &t, &noise);
    let eps = m.predict(&z, &t).unwrap().eps.to_vec().unwrap();
    let e = noise.to_vec().unwrap();
    let per = eps.len() / b;
    let mut want = 0.0;
    for (i, &ti) in ts.iter().enumerate() {
        let mse = (0..per)
            .map(|k| ((eps[i * per + k] - e[i * per + k]) as f64).powi(2))
            .sum::<f64>()
            / per as f64;
        let w = min_snr_weight(m.schedule().alpha_bar(ti as isize), 5.0);
        want += w * mse / b as f64;
    }
    assert!(
        (loss - want).abs() < 1e-5 * want.max(1.0),
        "{loss} vs {want}"
    );
    let (w0, w2) = (
        min_snr_weight(m.schedule().alpha_bar(1), 5.0),
        min_snr_weight(m.schedule().alpha_bar(45), 5.0),
    );
    assert!(w0 < 0.1 && w2 == 1.0, "weights {w0} {w2}");
    // γ < 0 is refused.
    cfg.snr_gamma = -1.0;
    assert!(MtDiffusion::new(&dev, &cfg).is_err());
}

#[test]
fn with_rho_zero_the_forward_process_and_loss_are_ddpm() {
    let dev = device();
    let mut task = TaskPreset::ImageLabel.task(SHAPE, CLASSES, DIM);
    task.modalities[1].ramp = Ramp::OFF;
    let m = MtDiffusion::new(&dev, &tiny_config(task)).unwrap();
    let b = 2;
    let obs = batch(&dev, m.task(), b, 4);
    let t = timesteps(&dev, &[5, 45]);
    let noise = randn(&dev, &m.sample_dims(b), 9, 0).unwrap();
    let given: Vec<Option<Observation>> = obs.iter().cloned().map(Some).collect();
    let z = m.noisy(&given, &t, &noise).unwrap().to_vec().unwrap();
    let Observation::Image(x0) = &obs[0] else {
        unreachable!()
    };
    let table = Tensor::from_slice(&dev, &m.schedule().q_sample_table(), &[50, 2]).unwrap();
    let plain = q_sample(x0, &noise, &t, &table, None)
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(z, plain, "ρ ≡ 0: z_t is DDPM's q_sample exactly");
    // And the aggregate is absent, so the label cannot leak into z_t.
    assert!(m.aggregate(&given, &t).unwrap().is_none());
}

#[test]
fn posterior_eps_form_direct_form_and_the_samplers_shifted_step_agree() {
    // docs/method.md §3.4: with z_t = √ᾱ_t z_0 + c_t + √(1−ᾱ_t) ε and c_t = λ_t E,
    //   direct:  √α_t(1−ᾱ_{t−1})/(1−ᾱ_t)·(z_t − √α_t a_t) + β_t/(1−ᾱ_t)·(√ᾱ_{t−1} z_0 + c_{t−1})
    //   ε-form:  (z_t − β_t/√(1−ᾱ_t) ε)/√α_t − a_t,   a_t = w_t E
    //   shifted (our sampler): DDPM mean of u_t = z_t − c_t, plus c_{t−1}.
    let s = Schedule::new(ScheduleConfig::default()).unwrap();
    let ramp = Ramp::DEFAULT;
    let mut rng = CpuRng::new(11);
    let big_t = s.len();
    let table = s.ddpm_table();
    for t in [1usize, 99, 100, 101, 300, 499, 500, 998] {
        let (x, e, eps) = (rng.normal(), rng.normal(), rng.normal());
        let ab = s.alpha_bar(t as isize);
        let ab_prev = s.alpha_bar(t as isize - 1);
        let a = alpha(&s, t);
        let beta = 1.0 - a;
        let lam = |k: isize| s.alpha_bar(k).sqrt() * ramp.rho(k, big_t);
        let c_t = lam(t as isize) * e;
        let c_prev = lam(t as isize - 1) * e;
        let a_t = step_weight(&s, &ramp, t) * e;
        let z_t = ab.sqrt() * x + c_t + (1.0 - ab).sqrt() * eps;
        let direct = a.sqrt() * (1.0 - ab_prev) / (1.0 - ab) * (z_t - a.sqrt() * a_t)
            + beta / (1.0 - ab) * (ab_prev.sqrt() * x + c_prev);
        let eps_form = (z_t - beta / (1.0 - ab).sqrt() * eps) / a.sqrt() - a_t;
        let row = &table[t * 5..t * 5 + 5];
        let u = z_t - c_t;
        let x0_hat = (u - row[1] as f64 * eps) / row[0] as f64;
        let shifted = row[2] as f64 * x0_hat + row[3] as f64 * u + c_prev;
        assert!(
            (direct - eps_form).abs() < 1e-9,
            "t={t}: {direct} vs {eps_form}"
        );
        assert!(
            (shifted - eps_form).abs() < 2e-5 * (1.0 + eps_form.abs()),
            "t={t}: shifted {shifted} vs ε-form {eps_form}"
        );
    }
}

#[test]
fn respaced_ddpm_with_every_step_is_the_plain_ddpm_table() {
    let s = Schedule::new(ScheduleConfig::default()).unwrap();
    assert_eq!(s.respaced_ddpm_table(s.len()), s.ddpm_table());
    let r = s.respaced_ddpm_table(10);
    // The last kept step (t = 0) has no noise; a middle one uses ᾱ of t − 100.
    assert_eq!(r[4], 0.0);
    let t = 500;
    let (ab, ab_prev) = (s.alpha_bar(t), s.alpha_bar(t - 100));
    let var = (1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev);
    assert!((r[t as usize * 5 + 4] as f64 - var.sqrt()).abs() < 1e-5);
}

fn sampler(kind: SamplerKind, seed: u64) -> SamplerConfig {
    SamplerConfig {
        kind,
        steps: 10,
        seed,
        ..SamplerConfig::default()
    }
}

#[test]
fn ddim_with_eta_zero_is_deterministic_and_the_seed_matters() {
    let dev = device();
    let m = model(&dev, TaskPreset::ImageLabel);
    let joint = [None, None];
    let run = |seed| {
        let s = m
            .sample(&joint, 2, &sampler(SamplerKind::Ddim, seed))
            .unwrap();
        let Some(Sampled::Probs(p)) = &s.outputs[1] else {
            panic!("joint sampling gives label probabilities")
        };
        (s.image.to_vec().unwrap(), p.to_vec().unwrap())
    };
    let (a, pa) = run(5);
    let (b, pb) = run(5);
    let (c, _) = run(6);
    assert_eq!(a, b);
    assert_eq!(pa, pb);
    assert_ne!(a, c);
    assert!(
        a.iter().all(|v| v.is_finite() && v.abs() <= 1.0 + 1e-6),
        "clipped to [−1, 1]"
    );
    for row in pa.chunks(CLASSES) {
        assert!(
            (row.iter().sum::<f32>() - 1.0).abs() < 1e-4,
            "probabilities: {row:?}"
        );
    }
    // DDPM is stochastic per seed but reproducible too.
    let d1 = m.sample(&joint, 2, &sampler(SamplerKind::Ddpm, 1)).unwrap();
    let d2 = m.sample(&joint, 2, &sampler(SamplerKind::Ddpm, 1)).unwrap();
    assert_eq!(d1.image.to_vec().unwrap(), d2.image.to_vec().unwrap());
}

#[test]
fn conditional_sampling_keeps_the_observed_modalities() {
    let dev = device();
    // Masked image: visible pixels are exactly the given ones after the final paste.
    let m = model(&dev, TaskPreset::MaskedImage);
    let obs = batch(&dev, m.task(), 2, 8);
    let Observation::Masked { image, mask } = &obs[1] else {
        unreachable!()
    };
    let s = m
        .sample(
            &[None, Some(obs[1].clone())],
            2,
            &sampler(SamplerKind::Ddpm, 3),
        )
        .unwrap();
    let (out, vis, mk) = (
        s.image.to_vec().unwrap(),
        image.to_vec().unwrap(),
        mask.to_vec().unwrap(),
    );
    let visible = mk.iter().filter(|&&v| v == 1.0).count();
    assert!(visible > 0 && visible < mk.len());
    for i in 0..out.len() {
        if mk[i] == 1.0 {
            assert_eq!(out[i], vis[i], "visible pixel {i} changed");
        }
    }
    assert!(s.outputs[1].is_none());
    // Given label: the label is not generated; the image is.
    let m = model(&dev, TaskPreset::ImageLabel);
    let y = Tensor::from_u32(&dev, &[2, 0], &[2]).unwrap();
    let s = m
        .sample(
            &[None, Some(Observation::Label(y))],
            2,
            &sampler(SamplerKind::Ddim, 1),
        )
        .unwrap();
    assert!(s.outputs[1].is_none());
    assert_eq!(s.image.dims(), &m.sample_dims(2));
    // Given image (transition): the image stays, the second image is generated.
    let m = model(&dev, TaskPreset::Transition);
    let obs = batch(&dev, m.task(), 2, 9);
    let s = m
        .sample(
            &[Some(obs[0].clone()), None],
            2,
            &sampler(SamplerKind::Ddim, 1),
        )
        .unwrap();
    let Observation::Image(x) = &obs[0] else {
        unreachable!()
    };
    assert_eq!(s.image.to_vec().unwrap(), x.to_vec().unwrap());
    assert!(matches!(s.outputs[1], Some(Sampled::Image(_))));
    // Representation: a vector comes out.
    let m = model(&dev, TaskPreset::ImageRepresentation);
    let s = m
        .sample(&[None, None], 2, &sampler(SamplerKind::Ddim, 1))
        .unwrap();
    let Some(Sampled::Vector(r)) = &s.outputs[1] else {
        panic!("vector output")
    };
    assert_eq!(r.dims(), &[2, DIM]);
}

#[test]
fn bad_inputs_name_the_problem() {
    let dev = device();
    let m = model(&dev, TaskPreset::ImageLabel);
    let obs = batch(&dev, m.task(), 2, 1);
    let t = timesteps(&dev, &[1, 2]);
    let noise = randn(&dev, &m.sample_dims(2), 1, 0).unwrap();
    let msg =
        |r: Result<mtdiff_model::LossTerms, mtdiff_model::Error>| r.err().unwrap().to_string();
    assert!(msg(m.loss(&obs[..1], &t, &noise)).contains("2 modalities"));
    let wrong = vec![obs[0].clone(), obs[0].clone()];
    assert!(msg(m.loss(&wrong, &t, &noise)).contains("modality label"));
    let r = m.sample(
        &[None, None],
        1,
        &SamplerConfig {
            steps: 0,
            ..SamplerConfig::default()
        },
    );
    assert!(r.err().unwrap().to_string().contains("steps"));
    assert!(TaskPreset::parse("nope")
        .err()
        .unwrap()
        .to_string()
        .contains("image-label"));
    let mut bad = TaskPreset::ImageLabel.task([1, 7, 7], 3, 1);
    bad.modalities[1].head = false;
    let e = MtDiffusion::new(&dev, &tiny_config(bad))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("needs a head"), "{e}");
    let e = MtDiffusion::new(&dev, &tiny_config(TaskPreset::Ddpm.task([1, 7, 7], 3, 1)))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("does not halve"), "{e}");
    // Label head logits are what `infer` returns.
    let p = m.infer(&[Some(obs[0].clone()), None], 2, &noise).unwrap();
    assert!(matches!(p.heads[1], Some(HeadOutput::Logits(_))));
}
