//! Fused attention against the f64 CPU reference for seq lengths 1, 49, 196, 197 and head dims
//! 16, 32, 64 (plus an odd one); its backward against the reference backward, which is checked
//! against finite differences of the reference forward.

mod common;

use common::{assert_close, device_profile, f64s, rng};
use mtdiff_engine::KernelProfile;
use mtdiff_engine::{cpu, Tensor};

fn run(
    profile: KernelProfile,
    b: usize,
    h: usize,
    s: usize,
    d: usize,
    seed: u64,
    check_grad: bool,
) {
    let dev = device_profile(profile);
    let n = b * h * s * d;
    let mut r = rng(seed);
    let (qs, ks, vs) = (
        r.vec_range(n, -1.0, 1.0),
        r.vec_range(n, -1.0, 1.0),
        r.vec_range(n, -1.0, 1.0),
    );
    let up = |v: &[f32]| {
        Tensor::from_slice(&dev, v, &[b, h, s, d])
            .unwrap()
            .with_grad()
    };
    let (q, k, v) = (up(&qs), up(&ks), up(&vs));
    let scale = 1.0 / (d as f32).sqrt();
    let o = q.attention(&k, &v, scale).unwrap();
    let (q64, k64, v64) = (f64s(&qs), f64s(&ks), f64s(&vs));
    let reference = cpu::attention(&q64, &k64, &v64, b * h, s, d, scale as f64);
    let what = format!("attention {profile:?} b={b} h={h} s={s} d={d}");
    assert_close(&what, &o.to_vec().unwrap(), &reference, 1e-4, 1e-5);
    if !check_grad {
        return;
    }
    let w = r.vec_range(n, -1.0, 1.0);
    let w64 = f64s(&w);
    let g = o
        .mul(&Tensor::from_slice(&dev, &w, o.dims()).unwrap())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let loss = |q: &[f64], k: &[f64], v: &[f64]| {
        cpu::attention(q, k, v, b * h, s, d, scale as f64)
            .iter()
            .zip(&w64)
            .map(|(a, b)| a * b)
            .sum::<f64>()
    };
    // The GPU backward against the reference backward on every element, and the reference
    // backward against finite differences of the reference forward on a spread sample.
    let (rdq, rdk, rdv) =
        cpu::attention_backward(&q64, &k64, &v64, b * h, s, d, scale as f64, &w64);
    let picks: Vec<usize> = (0..n.min(24)).map(|i| i * n / n.min(24)).collect();
    for (name, t, which, refd) in [
        ("dq", &q, 0, &rdq),
        ("dk", &k, 1, &rdk),
        ("dv", &v, 2, &rdv),
    ] {
        let got = g.get(t).unwrap().to_vec().unwrap();
        assert_close(
            &format!("{name} GPU vs reference {what}"),
            &got,
            refd,
            1e-3,
            1e-4,
        );
        let fd: Vec<f64> = picks
            .iter()
            .map(|&i| {
                let mut ins = [q64.clone(), k64.clone(), v64.clone()];
                ins[which][i] += 1e-6;
                let up = loss(&ins[0], &ins[1], &ins[2]);
                ins[which][i] -= 2e-6;
                (up - loss(&ins[0], &ins[1], &ins[2])) / 2e-6
            })
            .collect();
        let at: Vec<f32> = picks.iter().map(|&i| refd[i] as f32).collect();
        assert_close(
            &format!("{name} reference vs differences {what}"),
            &at,
            &fd,
            1e-5,
            1e-6,
        );
    }
}

#[test]
fn attention_forward_over_seq_lengths_and_head_dims() {
    for profile in [KernelProfile::Cpu, KernelProfile::Gpu] {
        for (i, &s) in [1usize, 49, 196, 197].iter().enumerate() {
            for &d in &[16usize, 32, 64] {
                run(profile, 2, 2, s, d, (i * 100 + d) as u64, false);
            }
        }
        run(profile, 1, 3, 13, 7, 5, false);
    }
}

#[test]
fn attention_backward() {
    for &(b, h, s, d) in &[
        (2usize, 2usize, 1usize, 16usize),
        (2, 2, 13, 7),
        (1, 2, 49, 32),
        (1, 1, 49, 64),
        (1, 1, 197, 16),
    ] {
        run(KernelProfile::Cpu, b, h, s, d, (s + d) as u64, true);
    }
}
