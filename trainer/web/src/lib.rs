//! mtdiff in a web page: load a checkpoint from bytes and sample it, or train a small model on
//! the built-in glyphs live, on the browser's WebGPU adapter. The page (`trainer/web/www/`)
//! calls the WebAssembly bindings of `bindings.rs`; everything they do is here, in async Rust
//! that reads back only through [`Tensor::to_vec_async`], so the same code runs (and is tested)
//! natively. Sampling is `mtdiff sample`'s code, training `mtdiff train`'s ([`Learner`]), so a
//! page's numbers are the CLI's for the same checkpoint, seed and configuration.

#[cfg(target_arch = "wasm32")]
mod bindings;

use std::path::Path;

use mtdiff::checkpoint::{self, Meta};
use mtdiff::classifier::argmax;
use mtdiff::config::TrainConfig;
use mtdiff::data::pipeline::{batch_indices, examples, BadImages, DEFAULT_MAX_BAD_IMAGES};
use mtdiff::data::{Dataset, Representation};
use mtdiff::sample::{grid_sampler, sample_on_device, sampler_for, DeviceSamples, SAMPLE_CHUNK};
use mtdiff::train::{step_rng, Learner};
use mtdiff::{state, Error, Result};
use mtdiff_engine::{Device, DeviceOptions, KernelProfile, Tensor};
use mtdiff_model::{ModalityKind, MtDiffusion, Observation, SamplerConfig};

/// Opens the best adapter without blocking (the browser's WebGPU one in a page).
pub async fn open_device() -> Result<Device> {
    open_device_with(None).await
}

/// [`open_device`] with the kernel profile forced (`None`: chosen by the adapter's type).
pub async fn open_device_with(profile: Option<KernelProfile>) -> Result<Device> {
    Ok(Device::new_async(DeviceOptions {
        profile,
        ..DeviceOptions::default()
    })
    .await?)
}

/// One line naming the adapter, its backend and its subgroup size, for the page to show.
pub fn describe_adapter(dev: &Device) -> String {
    let i = dev.info();
    let lanes = i
        .subgroup_size
        .map(|n| format!(", subgroups of {n}"))
        .unwrap_or_default();
    // Browsers may withhold the name (fingerprinting).
    let name = if i.name.is_empty() {
        "an unnamed adapter"
    } else {
        &i.name
    };
    format!("{name} ({:?}, {:?}{lanes})", i.backend, i.device_type)
}

/// What to sample: as `mtdiff sample --n N --seed S --steps K [--given label=L]` (DDPM, the
/// run's own guidance).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleRequest {
    /// Number of samples (at most 64: one chunk of `mtdiff sample`).
    pub n: usize,
    /// The sampler's seed.
    pub seed: u64,
    /// Reverse steps.
    pub steps: usize,
    /// The class every sample is given, or None to generate the label jointly.
    pub label: Option<u32>,
}

/// Samples read back: images and, where the task has a label, each sample's class.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    /// [n, C, H, W] in [−1, 1].
    pub images: Vec<f32>,
    /// Each sample's class: the given one, or the most probable generated one.
    pub labels: Option<Vec<u32>>,
    /// n.
    pub n: usize,
}

/// Records `mtdiff sample`'s sampling of one chunk of `labels.len()` samples, each given its
/// label (or `req.n` joint samples without labels), leaving the results on the device.
fn record_samples(
    model: &MtDiffusion,
    sampler: &SamplerConfig,
    req: &SampleRequest,
    labels: Option<Vec<u32>>,
) -> Result<DeviceSamples> {
    let n = labels.as_ref().map_or(req.n, Vec::len);
    if n == 0 || n > SAMPLE_CHUNK {
        return Err(Error::Usage(format!(
            "{n} samples asked: the page samples 1 to {SAMPLE_CHUNK} at a time"
        )));
    }
    let task = model.task();
    let mut given: Vec<Option<Observation>> = vec![None; task.modalities.len()];
    if let Some(ys) = labels {
        let label = label_modality(model)
            .ok_or_else(|| Error::Usage("this model has no label: sample it without one".into()))?;
        let ModalityKind::Label { classes } = task.modalities[label].kind else {
            unreachable!("label_modality finds a label")
        };
        if let Some(y) = ys.iter().find(|&&y| y as usize >= classes) {
            return Err(Error::Usage(format!(
                "label {y}: this model's labels are 0..{classes}"
            )));
        }
        let ys = Tensor::from_u32(model.device(), &ys, &[n])?;
        given[label] = Some(Observation::Label(ys));
    }
    let cfg = SamplerConfig {
        steps: req.steps,
        seed: req.seed,
        ..sampler.clone()
    };
    sample_on_device(model, &given, n, &cfg)
}

/// The index of the model's label modality, if it has one.
fn label_modality(model: &MtDiffusion) -> Option<usize> {
    model
        .task()
        .modalities
        .iter()
        .position(|m| matches!(m.kind, ModalityKind::Label { .. }))
}

/// Reads recorded samples back without blocking; each sample's class is the given one
/// (`given`) or else the most probable generated one.
async fn read_samples(
    model: &MtDiffusion,
    given: Option<Vec<u32>>,
    s: &DeviceSamples,
) -> Result<Samples> {
    let images = s.images.to_vec_async()?.await?;
    let generated = label_modality(model).and_then(|i| {
        let name = &model.task().modalities[i].name;
        s.outputs.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    });
    let labels = match (given, generated) {
        (Some(ys), _) => Some(ys),
        (None, Some(probs)) => {
            let classes = probs.dims()[1];
            let p = probs.to_vec_async()?.await?;
            Some(p.chunks(classes).map(|row| argmax(row) as u32).collect())
        }
        (None, None) => None,
    };
    Ok(Samples {
        images,
        labels,
        n: s.n,
    })
}

/// A checkpoint loaded on the device, ready to sample.
pub struct LoadedCheckpoint {
    model: MtDiffusion,
    meta: Meta,
    sampler: SamplerConfig,
}

impl LoadedCheckpoint {
    /// Decodes a checkpoint file's bytes (as `mtdiff train` writes them) and loads its EMA
    /// weights (`use_ema`) or its raw ones on `dev`.
    pub fn load(dev: &Device, bytes: &[u8], use_ema: bool) -> Result<LoadedCheckpoint> {
        let ckpt = checkpoint::decode(bytes, Path::new("the loaded checkpoint"))?;
        let model = state::model_from(dev, &ckpt, use_ema)?;
        let sampler = sampler_for(&ckpt, &SamplerConfig::default(), None, None);
        Ok(LoadedCheckpoint {
            model,
            meta: ckpt.meta,
            sampler,
        })
    }

    /// The training step it was written at.
    pub fn step(&self) -> u64 {
        self.meta.step
    }

    /// Its dataset's class names (empty when it has none).
    pub fn class_names(&self) -> &[String] {
        &self.meta.class_names
    }

    /// [C, H, W] of its images.
    pub fn image_shape(&self) -> [usize; 3] {
        self.model.task().image_shape
    }

    /// Samples as `mtdiff sample` does for the same checkpoint, seed, steps and label.
    pub async fn sample(&self, req: &SampleRequest) -> Result<Samples> {
        let labels = req.label.map(|y| vec![y; req.n]);
        let s = record_samples(&self.model, &self.sampler, req, labels.clone())?;
        read_samples(&self.model, labels, &s).await
    }
}

/// A model training on the built-in glyphs, one step at a time: `mtdiff train`'s steps (same
/// batches, noise, optimizer and EMA), paused whenever the caller stops asking for steps.
pub struct LiveTraining {
    cfg: TrainConfig,
    dev: Device,
    data: Box<dyn Dataset>,
    repr: Representation,
    bad: BadImages,
    learner: Learner,
    class_names: Vec<String>,
    next_step: u64,
}

impl LiveTraining {
    /// A fresh model for `cfg` (its data must be built in: `glyphs` or `glyphs:SIZE`).
    pub fn new(dev: &Device, cfg: TrainConfig) -> Result<LiveTraining> {
        cfg.validate()?;
        if !cfg.data.starts_with("glyphs") {
            return Err(Error::Usage(format!(
                "data {:?}: a page trains on the built-in glyphs only (glyphs or glyphs:SIZE)",
                cfg.data
            )));
        }
        let data = cfg.source()?.load(false)?;
        let repr = Representation::fit(data.as_ref())?;
        let model_cfg = cfg.model_config(data.as_ref(), &repr)?;
        let learner = Learner::new(dev, &cfg, &model_cfg, true)?;
        let class_names = (0..data.classes()).map(|k| data.class_name(k)).collect();
        Ok(LiveTraining {
            cfg,
            dev: dev.clone(),
            data,
            repr,
            bad: BadImages::new(DEFAULT_MAX_BAD_IMAGES),
            learner,
            class_names,
            next_step: 0,
        })
    }

    /// Steps taken so far.
    pub fn steps_done(&self) -> u64 {
        self.next_step
    }

    /// The configuration (its `steps` is the schedule's length).
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The dataset's class names.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// [C, H, W] of its images.
    pub fn image_shape(&self) -> [usize; 3] {
        self.learner.model.task().image_shape
    }

    /// Records up to `steps` more steps (never past the configured length), then reads their
    /// total losses back at once: one value per step.
    pub async fn train(&mut self, steps: u64) -> Result<Vec<f32>> {
        let end = (self.next_step + steps).min(self.cfg.steps);
        let mut losses = Vec::new();
        for step in self.next_step..end {
            let mut rng = step_rng(self.cfg.seed, step);
            let indices = batch_indices(&mut rng, self.cfg.batch, self.data.len());
            let batch = examples(self.data.as_ref(), &indices, &self.bad)?;
            let host = self.learner.host_batch(
                &self.cfg,
                &self.repr,
                &mut rng,
                &batch,
                0..self.cfg.batch,
            )?;
            let l = self
                .learner
                .step(&self.cfg, &self.dev, step, &host, false)?;
            losses.push(l.parts[0][0].clone());
        }
        self.next_step = end;
        if losses.is_empty() {
            return Ok(Vec::new());
        }
        // One read-back for all the steps: the losses side by side on the device.
        let rows = losses
            .iter()
            .map(|l| l.reshape(&[1]))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let out = Tensor::cat(&rows.iter().collect::<Vec<_>>(), 0)?
            .to_vec_async()?
            .await?;
        if let Some(bad) = out.iter().position(|v| !v.is_finite()) {
            return Err(Error::Diverged(format!(
                "the loss of step {} is {}: training diverged; start again, with a larger batch \
                 or a lower learning rate (`lr` in the training settings)",
                end as usize - out.len() + bad + 1,
                out[bad]
            )));
        }
        Ok(out)
    }

    /// Samples with the EMA weights (the raw ones before any EMA): `per_class` samples of every
    /// class in class order where the task has a label, else `per_class` joint samples; the
    /// run's sampling steps and guidance, like the grids `mtdiff train` writes.
    pub async fn sample_grid(&self, per_class: usize, seed: u64) -> Result<Samples> {
        let model = &self.learner.model;
        let sampler = grid_sampler(&self.cfg, seed);
        // One batch: `per_class` of every class in class order where the task has a label.
        let labels = label_modality(model).map(|_| {
            (0..self.class_names.len() * per_class)
                .map(|k| (k / per_class) as u32)
                .collect::<Vec<u32>>()
        });
        let req = SampleRequest {
            n: per_class,
            seed,
            steps: sampler.steps,
            label: None,
        };
        // The EMA swapped in, the sampling recorded, the raw weights back (all in program
        // order), then the read-back.
        let recorded = state::with_ema(model, self.learner.ema.as_ref(), || {
            record_samples(model, &sampler, &req, labels.clone())
        })?;
        read_samples(model, labels, &recorded).await
    }
}
