//! The engine's own demo: a 2-layer MLP trained with the fused AdamW on two interleaved half-moons, a toy
//! 2-class problem. Used by `mtdiff demo` and by the end-to-end test.

use crate::error::Result;
use crate::optim::{AdamW, AdamWConfig};
use crate::rng::CpuRng;
use crate::tensor::Tensor;
use crate::{no_grad, Device};

/// `n` points of two noisy interleaved half-moons, as (xy pairs, labels 0/1).
pub fn two_moons(n: usize, noise: f64, rng: &mut CpuRng) -> (Vec<f32>, Vec<u32>) {
    let mut xy = Vec::with_capacity(2 * n);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = (i % 2) as u32;
        let t = rng.uniform() * std::f64::consts::PI;
        let (x, y) = if class == 0 {
            (t.cos(), t.sin())
        } else {
            (1.0 - t.cos(), 0.5 - t.sin())
        };
        xy.push((x + noise * rng.normal()) as f32);
        xy.push((y + noise * rng.normal()) as f32);
        labels.push(class);
    }
    (xy, labels)
}

/// What a demo run reports.
#[derive(Clone, Debug)]
pub struct DemoReport {
    /// Cross-entropy on the training set at the last step.
    pub final_loss: f32,
    /// Accuracy on a held-out test set.
    pub test_accuracy: f32,
    /// Training steps taken.
    pub steps: usize,
}

/// Trains a 2→hidden→2 MLP (tanh) for `steps` full-batch Adam steps; returns the test accuracy.
pub fn train_mlp(
    device: &Device,
    hidden: usize,
    steps: usize,
    seed: u64,
    mut log: impl FnMut(usize, f32),
) -> Result<DemoReport> {
    let mut rng = CpuRng::new(seed);
    let (train_x, train_y) = two_moons(512, 0.1, &mut rng);
    let (test_x, test_y) = two_moons(1000, 0.1, &mut rng);
    let x = Tensor::from_slice(device, &train_x, &[512, 2])?;
    let y = Tensor::from_u32(device, &train_y, &[512])?;
    let init =
        |rng: &mut CpuRng, fan_in: usize, n: usize| rng.vec_normal(n, (1.0 / fan_in as f64).sqrt());
    let w1 = Tensor::from_slice(device, &init(&mut rng, 2, hidden * 2), &[hidden, 2])?.with_grad();
    let b1 = Tensor::zeros(device, &[hidden])?.with_grad();
    let w2 =
        Tensor::from_slice(device, &init(&mut rng, hidden, 2 * hidden), &[2, hidden])?.with_grad();
    let b2 = Tensor::zeros(device, &[2])?.with_grad();
    let params = [w1.clone(), b1.clone(), w2.clone(), b2.clone()];
    let forward =
        |x: &Tensor| -> Result<Tensor> { x.linear(&w1, Some(&b1))?.tanh()?.linear(&w2, Some(&b2)) };
    let mut opt = AdamW::new(AdamWConfig {
        lr: 0.03,
        weight_decay: 0.0,
        ..AdamWConfig::default()
    });
    let mut final_loss = f32::NAN;
    for step in 0..steps {
        let loss = forward(&x)?.cross_entropy(&y)?;
        let grads = loss.backward()?;
        opt.step(&params, &grads)?;
        // Read the loss back only at logging points: never inside every step.
        if step % 50 == 0 || step + 1 == steps {
            final_loss = loss.to_scalar()?;
            log(step, final_loss);
        }
    }
    let logits =
        no_grad(|| forward(&Tensor::from_slice(device, &test_x, &[1000, 2])?))?.to_vec()?;
    let correct = logits
        .chunks(2)
        .zip(&test_y)
        .filter(|(l, &t)| ((l[1] > l[0]) as u32) == t)
        .count();
    Ok(DemoReport {
        final_loss,
        test_accuracy: correct as f32 / test_y.len() as f32,
        steps,
    })
}
