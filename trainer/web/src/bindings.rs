//! The WebAssembly interface the page calls (wasm-bindgen): thin wrappers over the crate's async
//! API, errors as JavaScript strings.

use wasm_bindgen::prelude::*;

use mtdiff::config::TrainConfig;
use mtdiff_engine::{Device, KernelProfile};

use crate::{LiveTraining, LoadedCheckpoint, SampleRequest, Samples};

/// [C, H, W] as JavaScript numbers.
fn shape_u32(shape: [usize; 3]) -> Vec<u32> {
    shape.iter().map(|&d| d as u32).collect()
}

/// An error as the page shows it.
fn js(e: impl std::fmt::Display) -> JsValue {
    JsValue::from_str(&e.to_string())
}

// Step counts cross as JavaScript numbers (f64, exact to 2^53), not BigInt.

/// The browser's GPU, opened once per page.
#[wasm_bindgen]
pub struct Gpu {
    dev: Device,
}

#[wasm_bindgen]
impl Gpu {
    /// Opens the browser's WebGPU adapter with the kernel profile `kernels`: "gpu", "cpu", or
    /// anything else (e.g. "auto") for the one the adapter's type asks for.
    pub async fn open(kernels: &str) -> Result<Gpu, JsValue> {
        let profile = match kernels {
            "gpu" => Some(KernelProfile::Gpu),
            "cpu" => Some(KernelProfile::Cpu),
            _ => None,
        };
        Ok(Gpu {
            dev: crate::open_device_with(profile).await.map_err(js)?,
        })
    }

    /// The adapter's name, backend, type and subgroup size.
    pub fn adapter(&self) -> String {
        crate::describe_adapter(&self.dev)
    }

    /// The kernel profile in use ("Gpu" or "Cpu").
    pub fn profile(&self) -> String {
        format!("{:?}", self.dev.kernel_profile())
    }

    /// Loads a checkpoint file's bytes (EMA weights unless `raw_weights`).
    #[wasm_bindgen(js_name = loadCheckpoint)]
    pub fn load_checkpoint(&self, bytes: &[u8], raw_weights: bool) -> Result<Checkpoint, JsValue> {
        Ok(Checkpoint {
            inner: LoadedCheckpoint::load(&self.dev, bytes, !raw_weights).map_err(js)?,
        })
    }

    /// Starts a training run on the built-in glyphs: `config_json` holds `mtdiff train`'s
    /// settings to change (e.g. `{"batch": 32, "steps": 300}`), the main job's otherwise.
    #[wasm_bindgen(js_name = startTraining)]
    pub fn start_training(&self, config_json: &str) -> Result<Training, JsValue> {
        let cfg: TrainConfig = serde_json::from_str(config_json)
            .map_err(|e| js(format!("training settings {config_json}: {e}")))?;
        Ok(Training {
            inner: LiveTraining::new(&self.dev, cfg).map_err(js)?,
        })
    }
}

/// Samples read back: images [n, C, H, W] in [−1, 1] and each sample's class.
#[wasm_bindgen]
pub struct SampleSet {
    inner: Samples,
}

#[wasm_bindgen]
impl SampleSet {
    /// Number of samples.
    #[wasm_bindgen(getter)]
    pub fn n(&self) -> usize {
        self.inner.n
    }

    /// The images, [n, C, H, W] row-major.
    pub fn images(&self) -> Vec<f32> {
        self.inner.images.clone()
    }

    /// Each sample's class (given or generated); empty without a label.
    pub fn labels(&self) -> Vec<u32> {
        self.inner.labels.clone().unwrap_or_default()
    }
}

/// A loaded checkpoint.
#[wasm_bindgen]
pub struct Checkpoint {
    inner: LoadedCheckpoint,
}

#[wasm_bindgen]
impl Checkpoint {
    /// The training step it was written at.
    #[wasm_bindgen(getter)]
    pub fn step(&self) -> f64 {
        self.inner.step() as f64
    }

    /// Its dataset's class names.
    #[wasm_bindgen(js_name = classNames)]
    pub fn class_names(&self) -> Vec<String> {
        self.inner.class_names().to_vec()
    }

    /// [C, H, W] of its images.
    #[wasm_bindgen(js_name = imageShape)]
    pub fn image_shape(&self) -> Vec<u32> {
        shape_u32(self.inner.image_shape())
    }

    /// `mtdiff sample --n N --seed SEED --steps STEPS [--given label=LABEL]`.
    pub async fn sample(
        &self,
        n: usize,
        seed: u64,
        steps: usize,
        label: Option<u32>,
    ) -> Result<SampleSet, JsValue> {
        let req = SampleRequest {
            n,
            seed,
            steps,
            label,
        };
        Ok(SampleSet {
            inner: self.inner.sample(&req).await.map_err(js)?,
        })
    }
}

/// A model training live on the built-in glyphs.
#[wasm_bindgen]
pub struct Training {
    inner: LiveTraining,
}

#[wasm_bindgen]
impl Training {
    /// Runs up to `steps` more steps; returns each step's loss.
    pub async fn train(&mut self, steps: u32) -> Result<Vec<f32>, JsValue> {
        self.inner.train(steps as u64).await.map_err(js)
    }

    /// Steps done so far.
    #[wasm_bindgen(getter, js_name = stepsDone)]
    pub fn steps_done(&self) -> f64 {
        self.inner.steps_done() as f64
    }

    /// The run's length in steps.
    #[wasm_bindgen(getter, js_name = totalSteps)]
    pub fn total_steps(&self) -> f64 {
        self.inner.config().steps as f64
    }

    /// The dataset's class names.
    #[wasm_bindgen(js_name = classNames)]
    pub fn class_names(&self) -> Vec<String> {
        self.inner.class_names().to_vec()
    }

    /// [C, H, W] of its images.
    #[wasm_bindgen(js_name = imageShape)]
    pub fn image_shape(&self) -> Vec<u32> {
        shape_u32(self.inner.image_shape())
    }

    /// `per_class` samples of every class (EMA weights), as the training grids show.
    #[wasm_bindgen(js_name = sampleGrid)]
    pub async fn sample_grid(&self, per_class: usize, seed: u64) -> Result<SampleSet, JsValue> {
        Ok(SampleSet {
            inner: self.inner.sample_grid(per_class, seed).await.map_err(js)?,
        })
    }
}
