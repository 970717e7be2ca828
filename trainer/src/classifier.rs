//! The evaluation network, trained by the engine on the dataset and cached on disk: a small CNN
//! (three 3×3 convolutions with SiLU, the last two strided, global average pooling, a 64-unit
//! penultimate layer) with a class head and a representation-regression head. Its penultimate
//! features are what FID-lite compares; its class head judges generated images; its regression
//! head judges generated representation vectors.

use std::collections::HashMap;
use std::path::Path;

use mtdiff_engine::ops::conv::Activation;
use mtdiff_engine::optim::{AdamW, AdamWConfig};
use mtdiff_engine::rng::CpuRng;
use mtdiff_engine::{no_grad, Device, Tensor};
use mtdiff_model::nn::{Linear, ParamStore};

use crate::checkpoint::{self, NamedTensor};
use crate::data::pipeline::{
    default_workers, examples_in_parallel, BadImages, DEFAULT_MAX_BAD_IMAGES,
};
use crate::data::{Dataset, Representation};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

/// Width of the penultimate features.
pub const FEATURES: usize = 64;
/// Default training steps of the evaluation network.
pub const TRAIN_STEPS: usize = 500;
const BATCH: usize = 64;

/// The evaluation CNN.
pub struct Classifier {
    params: ParamStore,
    convs: Vec<(Tensor, Tensor, usize)>,
    fc: Linear,
    logits: Linear,
    regress: Linear,
    /// Accuracy on the test split, measured when it was trained.
    pub test_accuracy: f64,
}

/// What the network computes for a batch.
pub struct Outputs {
    /// [B, FEATURES].
    pub features: Vec<f32>,
    /// [B, classes].
    pub logits: Vec<f32>,
    /// [B, repr dim].
    pub repr: Vec<f32>,
}

impl Classifier {
    fn build(dev: &Device, shape: [usize; 3], classes: usize, repr_dim: usize) -> Result<Self> {
        let mut ps = ParamStore::new(dev, 0xC1A5);
        let mut convs = Vec::new();
        let mut cin = shape[0];
        for (i, (cout, stride)) in [(16, 1), (32, 2), (64, 2)].into_iter().enumerate() {
            let bound = 1.0 / ((cin * 9) as f64).sqrt();
            let w = ps.uniform(&format!("conv{i}.weight"), &[cout, cin, 3, 3], bound)?;
            let b = ps.uniform(&format!("conv{i}.bias"), &[cout], bound)?;
            convs.push((w, b, stride));
            cin = cout;
        }
        let fc = Linear::new(&mut ps, "fc", cin, FEATURES)?;
        let logits = Linear::new(&mut ps, "logits", FEATURES, classes)?;
        let regress = Linear::new(&mut ps, "regress", FEATURES, repr_dim.max(1))?;
        Ok(Classifier {
            params: ps,
            convs,
            fc,
            logits,
            regress,
            test_accuracy: f64::NAN,
        })
    }

    /// (features, logits, representation) tensors for images `x` [B, C, H, W].
    fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let mut h = x.clone();
        for (w, b, stride) in &self.convs {
            h = h.conv2d(w, Some(b), *stride, 1, Activation::Silu)?;
        }
        let pooled = h.mean(&[2, 3], false)?;
        let f = self.fc.forward(&pooled)?.silu()?;
        Ok((
            f.clone(),
            self.logits.forward(&f)?,
            self.regress.forward(&f)?,
        ))
    }

    /// Runs the network on `n` images (values [n·C·H·W]) in chunks, reading back the outputs.
    pub fn run(&self, images: &[f32], n: usize, shape: [usize; 3]) -> Result<Outputs> {
        let dev = self.params.device().clone();
        let per = shape.iter().product::<usize>();
        let mut out = Outputs {
            features: Vec::new(),
            logits: Vec::new(),
            repr: Vec::new(),
        };
        no_grad(|| -> Result<()> {
            for start in (0..n).step_by(256) {
                let b = (n - start).min(256);
                let x = Tensor::from_slice(
                    &dev,
                    &images[start * per..(start + b) * per],
                    &[b, shape[0], shape[1], shape[2]],
                )?;
                let (f, l, r) = self.forward(&x)?;
                out.features.extend(f.to_vec()?);
                out.logits.extend(l.to_vec()?);
                out.repr.extend(r.to_vec()?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Trains on `train` (class cross-entropy + representation MSE) and measures test accuracy.
    fn fit(
        &mut self,
        train: &dyn Dataset,
        test: &dyn Dataset,
        repr: &Representation,
        steps: usize,
    ) -> Result<()> {
        let dev = self.params.device().clone();
        let shape = train.image_shape();
        let params = self.params.tensors();
        let mut opt = AdamW::new(AdamWConfig {
            lr: 2e-3,
            weight_decay: 0.0,
            ..AdamWConfig::default()
        });
        let mut rng = CpuRng::new(0xE7A1);
        let bad = BadImages::new(DEFAULT_MAX_BAD_IMAGES);
        for _ in 0..steps {
            let idx: Vec<usize> = (0..BATCH).map(|_| rng.below(train.len())).collect();
            let ex = examples_in_parallel(train, &idx, &bad, default_workers())?;
            let x: Vec<f32> = ex.iter().flat_map(|e| e.image.iter().copied()).collect();
            let y: Vec<u32> = ex.iter().map(|e| e.label).collect();
            let r: Vec<f32> = ex.iter().flat_map(|e| repr.of(e)).collect();
            let xt = Tensor::from_slice(&dev, &x, &[BATCH, shape[0], shape[1], shape[2]])?;
            let (_, logits, rp) = self.forward(&xt)?;
            let mut loss = logits.cross_entropy(&Tensor::from_u32(&dev, &y, &[BATCH])?)?;
            if repr.dim() > 0 {
                loss =
                    loss.add(&rp.mse(&Tensor::from_slice(&dev, &r, &[BATCH, repr.dim()])?)?)?;
            }
            let grads = loss.backward()?;
            opt.step(&params, &grads)?;
        }
        let n = test.len().min(2000);
        let all: Vec<usize> = (0..n).collect();
        let ex = examples_in_parallel(test, &all, &bad, default_workers())?;
        let x: Vec<f32> = ex.iter().flat_map(|e| e.image.iter().copied()).collect();
        let out = self.run(&x, n, shape)?;
        let k = test.classes();
        let correct = ex
            .iter()
            .enumerate()
            .filter(|(i, e)| argmax(&out.logits[i * k..(i + 1) * k]) == e.label as usize)
            .count();
        self.test_accuracy = correct as f64 / n.max(1) as f64;
        Ok(())
    }

    /// Loads the cached network for this dataset from `cache_dir`, or trains it for `steps`
    /// steps and caches it.
    pub fn load_or_train(
        dev: &Device,
        cache_dir: &Path,
        train: &dyn Dataset,
        test: &dyn Dataset,
        repr: &Representation,
        steps: usize,
    ) -> Result<Classifier> {
        let shape = train.image_shape();
        let mut net = Classifier::build(dev, shape, train.classes(), repr.dim())?;
        let file = cache_dir.join(format!(
            "{}_{}x{}x{}_c{}_r{}_s{steps}.safetensors",
            train.name(),
            shape[0],
            shape[1],
            shape[2],
            train.classes(),
            repr.dim()
        ));
        if let Ok(bytes) = std::fs::read(&file) {
            if net.load(&bytes).is_ok() {
                return Ok(net);
            }
            eprintln!("note: {} is unreadable; retraining it", file.display());
        }
        eprintln!(
            "training the evaluation classifier for {} (cached afterwards)…",
            train.name()
        );
        net.fit(train, test, repr, steps)?;
        std::fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
        write_atomic(&file, &net.save()?)?;
        Ok(net)
    }

    fn save(&self) -> Result<Vec<u8>> {
        let tensors = self
            .params
            .named()
            .iter()
            .map(|(n, t)| Ok(NamedTensor::new(n.clone(), t.dims(), t.to_vec()?)))
            .collect::<Result<Vec<_>>>()?;
        let meta = HashMap::from([("test_accuracy".to_string(), self.test_accuracy.to_string())]);
        checkpoint::encode(&tensors, Some(meta))
            .map_err(|e| Error::Usage(format!("classifier serialisation: {e}")))
    }

    fn load(&mut self, bytes: &[u8]) -> std::result::Result<(), String> {
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
        for (name, p) in self.params.named() {
            let v = st.tensor(name).map_err(|e| e.to_string())?;
            if v.shape() != p.dims() {
                return Err(format!("{name}: shape"));
            }
            let vals = checkpoint::f32_values(&v);
            let t = Tensor::from_slice(p.device(), &vals, p.dims()).map_err(|e| e.to_string())?;
            p.assign(&t).map_err(|e| e.to_string())?;
        }
        let (_, meta) =
            safetensors::SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
        self.test_accuracy = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get("test_accuracy"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        Ok(())
    }
}

/// Index of the largest value.
pub fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |b, (i, &v)| if v > b.1 { (i, v) } else { b },
        )
        .0
}

/// Fréchet distance between Gaussians fitted to two feature sets (rows of `dim`):
/// ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½), with tr((Σ₁Σ₂)^½) from symmetric eigendecompositions.
pub fn frechet_distance(a: &[f32], b: &[f32], dim: usize) -> f64 {
    let (ma, ca) = moments(a, dim);
    let (mb, cb) = moments(b, dim);
    let s1 = sym_sqrt(&ca, dim);
    // M = S₁ Σ₂ S₁ is symmetric PSD; tr((Σ₁Σ₂)^½) = tr(M^½) = Σ √λ(M).
    let m = matmul(&matmul(&s1, &cb, dim), &s1, dim);
    let (vals, _) = jacobi_eigen(&m, dim);
    let tr_sqrt: f64 = vals.iter().map(|v| v.max(0.0).sqrt()).sum();
    let mean_term: f64 = ma.iter().zip(&mb).map(|(x, y)| (x - y).powi(2)).sum();
    let trace = |c: &[f64]| (0..dim).map(|i| c[i * dim + i]).sum::<f64>();
    (mean_term + trace(&ca) + trace(&cb) - 2.0 * tr_sqrt).max(0.0)
}

fn moments(x: &[f32], dim: usize) -> (Vec<f64>, Vec<f64>) {
    let n = x.len() / dim;
    let mut mean = vec![0.0; dim];
    for row in x.chunks(dim) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += *v as f64 / n as f64;
        }
    }
    let mut cov = vec![0.0; dim * dim];
    for row in x.chunks(dim) {
        for i in 0..dim {
            for j in 0..dim {
                cov[i * dim + j] +=
                    (row[i] as f64 - mean[i]) * (row[j] as f64 - mean[j]) / (n.max(2) - 1) as f64;
            }
        }
    }
    (mean, cov)
}

fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut c = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            for j in 0..n {
                c[i * n + j] += aik * b[k * n + j];
            }
        }
    }
    c
}

/// Square root of a symmetric PSD matrix (negative eigenvalues clamped to 0).
fn sym_sqrt(a: &[f64], n: usize) -> Vec<f64> {
    let (vals, vecs) = jacobi_eigen(a, n);
    let mut out = vec![0.0; n * n];
    for (k, &l) in vals.iter().enumerate() {
        let s = l.max(0.0).sqrt();
        for i in 0..n {
            for j in 0..n {
                out[i * n + j] += s * vecs[i * n + k] * vecs[j * n + k];
            }
        }
    }
    out
}

/// Eigenvalues and eigenvectors (columns) of a symmetric matrix by cyclic Jacobi rotations.
pub fn jacobi_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut m = a.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j].powi(2))
            .sum();
        if off < 1e-22 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| m[i * n + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frechet_distance_of_gaussians_matches_the_closed_form() {
        // Diagonal covariances: FD = Σ (μa−μb)² + Σ (σa − σb)².
        let mut rng = CpuRng::new(1);
        let dim = 4;
        let n = 20_000;
        let (sa, sb) = ([1.0, 2.0, 0.5, 1.0], [1.0, 1.0, 1.5, 3.0]);
        let mut a = Vec::new();
        let mut b = Vec::new();
        for _ in 0..n {
            for d in 0..dim {
                a.push((rng.normal() * sa[d]) as f32);
                b.push((rng.normal() * sb[d] + 1.0) as f32);
            }
        }
        let want: f64 = dim as f64 + (0..dim).map(|d| (sa[d] - sb[d]).powi(2)).sum::<f64>();
        let got = frechet_distance(&a, &b, dim);
        assert!((got - want).abs() < 0.1 * want, "{got} vs {want}");
        assert!(frechet_distance(&a, &a, dim) < 1e-6);
    }

    #[test]
    fn jacobi_reconstructs_a_symmetric_matrix() {
        let a = [4.0, 1.0, 2.0, 1.0, 3.0, 0.5, 2.0, 0.5, 5.0];
        let (vals, vecs) = jacobi_eigen(&a, 3);
        for i in 0..3 {
            for j in 0..3 {
                let r: f64 = (0..3)
                    .map(|k| vals[k] * vecs[i * 3 + k] * vecs[j * 3 + k])
                    .sum();
                assert!((r - a[i * 3 + j]).abs() < 1e-9);
            }
        }
    }
}
