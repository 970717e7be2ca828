//! Noise-schedule kernels against the CPU reference: Philox normals (bit-exact generator, f32
//! transcendental tolerance), their statistics and reproducibility, q_sample (and its gradient),
//! the fused DDPM and DDIM steps with and without the aggregated term, the timestep embedding.

mod common;

use common::{assert_close, device, f64s, rng};
use mtdiff_engine::ops::diffusion::{
    q_sample, randn, randn_from, reverse_step, timestep_embedding, Aggregate, StepKind,
};
use mtdiff_engine::{cpu, Tensor};

#[test]
fn philox_normals_match_the_reference_and_are_reproducible() {
    let dev = device();
    let n = 1001;
    let a = randn(&dev, &[n], 42, 7).unwrap().to_vec().unwrap();
    let b = randn(&dev, &[n], 42, 7).unwrap().to_vec().unwrap();
    let c = randn(&dev, &[n], 42, 8).unwrap().to_vec().unwrap();
    assert_eq!(a, b, "same seed and stream, same numbers");
    assert_ne!(a, c, "another stream, other numbers");
    let reference: Vec<f64> = (0..n as u64).map(|i| cpu::normal_at(i, 42, 7)).collect();
    assert_close("randn vs reference", &a, &reference, 1e-4, 1e-4);
    // Known-answer test of the generator itself (Random123's philox4x32-10 vector).
    assert_eq!(
        cpu::philox([0, 0, 0, 0], [0, 0]),
        [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
    );
}

#[test]
fn a_slice_of_the_stream_is_the_same_rows_of_the_whole() {
    let dev = device();
    let whole = randn(&dev, &[7, 3, 5], 11, 4).unwrap().to_vec().unwrap();
    // Rows 2..5 (of 15 elements each), as a data-parallel replica draws them.
    let part = randn_from(&dev, &[3, 3, 5], 11, 4, 2 * 15)
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(part, whole[30..75]);
    assert!(randn_from(&dev, &[4], 1, 1, u32::MAX as usize - 2).is_err());
}

#[test]
fn philox_normals_have_unit_gaussian_statistics() {
    let dev = device();
    let n = 1 << 20;
    let v = randn(&dev, &[n], 3, 0).unwrap().to_vec().unwrap();
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    let tail = v.iter().filter(|x| x.abs() > 1.96).count() as f64 / n as f64;
    // Standard errors at n = 2^20: mean 0.001, variance 0.0014, tail share 0.0002.
    assert!(mean.abs() < 0.005, "mean {mean}");
    assert!((var - 1.0).abs() < 0.007, "variance {var}");
    assert!((tail - 0.05).abs() < 0.002, "share beyond 1.96: {tail}");
}

fn schedule_table(t_max: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut r = rng(seed);
    (0..t_max * cols)
        .map(|_| r.range(0.05, 0.95) as f32)
        .collect()
}

#[test]
fn q_sample_with_and_without_aggregate_and_its_gradient() {
    let dev = device();
    let (b, per) = (3usize, 7 * 5);
    let mut r = rng(1);
    let x0 = r.vec_range(b * per, -1.0, 1.0);
    let eps = r.vec_normal(b * per, 1.0);
    let agg = r.vec_range(b * per, -1.0, 1.0);
    let scale = r.vec_range(b, 0.0, 1.0);
    let ts = vec![0u32, 9, 4];
    let table = schedule_table(10, 2, 2);
    let up = |v: &[f32]| Tensor::from_slice(&dev, v, &[b, 7, 5]).unwrap();
    let (x0t, et, aggt) = (up(&x0).with_grad(), up(&eps), up(&agg).with_grad());
    let tt = Tensor::from_u32(&dev, &ts, &[b]).unwrap();
    let tab = Tensor::from_slice(&dev, &table, &[10, 2]).unwrap();
    let st = Tensor::from_slice(&dev, &scale, &[b]).unwrap();
    let plain = q_sample(&x0t, &et, &tt, &tab, None).unwrap();
    assert_close(
        "q_sample",
        &plain.to_vec().unwrap(),
        &cpu::q_sample(&f64s(&x0), &f64s(&eps), &ts, &f64s(&table), None),
        1e-6,
        1e-6,
    );
    let with = q_sample(
        &x0t,
        &et,
        &tt,
        &tab,
        Some(Aggregate {
            scale: &st,
            agg: &aggt,
        }),
    )
    .unwrap();
    let reference = cpu::q_sample(
        &f64s(&x0),
        &f64s(&eps),
        &ts,
        &f64s(&table),
        Some((&f64s(&scale), &f64s(&agg))),
    );
    assert_close(
        "q_sample + aggregate",
        &with.to_vec().unwrap(),
        &reference,
        1e-6,
        1e-6,
    );
    let g = with.sum_all().unwrap().backward().unwrap();
    let dx0: Vec<f64> = (0..b * per)
        .map(|i| table[ts[i / per] as usize * 2] as f64)
        .collect();
    let dagg: Vec<f64> = (0..b * per).map(|i| scale[i / per] as f64).collect();
    assert_close(
        "d q_sample / d x0",
        &g.get(&x0t).unwrap().to_vec().unwrap(),
        &dx0,
        1e-6,
        0.0,
    );
    assert_close(
        "d q_sample / d agg",
        &g.get(&aggt).unwrap().to_vec().unwrap(),
        &dagg,
        1e-6,
        0.0,
    );
}

#[test]
fn fused_ddpm_and_ddim_steps() {
    let dev = device();
    let (b, per) = (4usize, 33usize);
    let mut r = rng(5);
    let x = r.vec_normal(b * per, 1.0);
    let eps = r.vec_normal(b * per, 1.0);
    let agg = r.vec_range(b * per, -1.0, 1.0);
    let ts = vec![3u32, 0, 7, 3];
    let up = |v: &[f32]| Tensor::from_slice(&dev, v, &[b, per]).unwrap();
    let (xt, et, aggt) = (up(&x), up(&eps), up(&agg));
    let tt = Tensor::from_u32(&dev, &ts, &[b]).unwrap();
    let (seed, stream) = (11u64, 99u64);
    let z: Vec<f64> = (0..(b * per) as u64)
        .map(|i| cpu::normal_at(i, seed, stream))
        .collect();
    for (kind, cols, scols) in [(StepKind::Ddpm, 5usize, 1usize), (StepKind::Ddim, 3, 2)] {
        let mut table = schedule_table(8, cols, cols as u64);
        if kind == StepKind::Ddim {
            // σ² ≤ 1 − ᾱ_t' keeps the direction term real.
            for row in table.chunks_mut(3) {
                row[2] = 0.3 * (1.0 - row[1]).sqrt();
            }
        }
        let tab = Tensor::from_slice(&dev, &table, &[8, cols]).unwrap();
        let scale = r.vec_range(b * scols, 0.0, 1.0);
        let sdims: Vec<usize> = if scols == 1 { vec![b] } else { vec![b, scols] };
        let st = Tensor::from_slice(&dev, &scale, &sdims).unwrap();
        for (with_agg, clip) in [(false, 0.0f32), (true, 0.0), (true, 1.0)] {
            let a = with_agg.then_some(Aggregate {
                scale: &st,
                agg: &aggt,
            });
            let (out, x0) = reverse_step(kind, &xt, &et, &tt, &tab, a, clip, seed, stream).unwrap();
            let agg_ref = (f64s(&scale), f64s(&agg));
            let agg_arg = with_agg.then_some((&agg_ref.0[..], &agg_ref.1[..]));
            let step = if kind == StepKind::Ddpm {
                cpu::ddpm_step
            } else {
                cpu::ddim_step
            };
            let (o_ref, x0_ref) = step(
                &f64s(&x),
                &f64s(&eps),
                &z,
                &ts,
                &f64s(&table),
                agg_arg,
                clip as f64,
            );
            let what = format!("{kind:?} agg={with_agg} clip={clip}");
            assert_close(
                &format!("{what} x_prev"),
                &out.to_vec().unwrap(),
                &o_ref,
                1e-4,
                1e-4,
            );
            assert_close(
                &format!("{what} x0"),
                &x0.to_vec().unwrap(),
                &x0_ref,
                1e-5,
                1e-5,
            );
        }
    }
}

#[test]
fn sinusoidal_timestep_embedding() {
    let dev = device();
    let ts = vec![0u32, 1, 17, 999, 500];
    let tt = Tensor::from_u32(&dev, &ts, &[5]).unwrap();
    for (dim, shift, flip) in [(32usize, 0.0f32, false), (33, 1.0, true), (2, 0.0, false)] {
        let e = timestep_embedding(&tt, dim, 10_000.0, shift, flip).unwrap();
        assert_eq!(e.dims(), &[5, dim]);
        // f32 arguments up to ~1e3 rad: sin/cos lose ~1e-4 absolute.
        assert_close(
            &format!("embedding dim={dim}"),
            &e.to_vec().unwrap(),
            &cpu::timestep_embedding(&ts, dim, 10_000.0, shift as f64, flip),
            0.0,
            3e-4,
        );
    }
}

#[test]
fn step_shape_errors_are_named() {
    let dev = device();
    let x = Tensor::zeros(&dev, &[2, 3]).unwrap();
    let t = Tensor::from_u32(&dev, &[1, 2, 3], &[3]).unwrap();
    let tab = Tensor::zeros(&dev, &[10, 2]).unwrap();
    let msg = q_sample(&x, &x, &t, &tab, None).unwrap_err().to_string();
    assert!(
        msg.contains("q_sample") && msg.contains("timesteps [2]"),
        "{msg}"
    );
}
