//! `mtdiff export`: a checkpoint's weights (the EMA's by default, as sampling uses them) as a
//! plain safetensors file in f32 or f16, one tensor per parameter under its name, with the model
//! configuration in the header metadata: what Python (`safetensors.numpy.load_file`) and other
//! tools read. Optimizer state is left out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::checkpoint;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

/// The element type of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportDtype {
    /// 32-bit floats, exactly the checkpoint's values.
    F32,
    /// IEEE half precision, rounded to nearest even: half the size.
    F16,
}

impl ExportDtype {
    /// Parses `f32` or `f16`.
    pub fn parse(s: &str) -> Result<ExportDtype> {
        match s {
            "f32" | "float32" => Ok(ExportDtype::F32),
            "f16" | "float16" | "half" => Ok(ExportDtype::F16),
            _ => Err(Error::Usage(format!("--dtype {s:?}: use f32 or f16"))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            ExportDtype::F32 => "f32",
            ExportDtype::F16 => "f16",
        }
    }
}

/// What `mtdiff export` does.
#[derive(Clone, Debug)]
pub struct ExportArgs {
    /// A checkpoint file or a run directory (its newest checkpoint).
    pub checkpoint: PathBuf,
    /// The file to write.
    pub out: PathBuf,
    /// f32 or f16.
    pub dtype: ExportDtype,
    /// Export the raw weights instead of the EMA's.
    pub no_ema: bool,
}

/// What an export wrote.
#[derive(Clone, Debug)]
pub struct ExportSummary {
    /// The file written.
    pub out: PathBuf,
    /// Tensors written.
    pub tensors: usize,
    /// Parameters written.
    pub parameters: usize,
    /// Bytes of the file.
    pub bytes: usize,
    /// "ema" or "raw".
    pub weights: &'static str,
    /// The largest |f16 − f32| over all values (0 for f32).
    pub max_rounding: f32,
}

/// Writes the export (atomically) and says what it holds.
pub fn run(args: &ExportArgs) -> Result<ExportSummary> {
    let path = checkpoint::resolve(&args.checkpoint)?;
    let ckpt = checkpoint::load(&path)?;
    let has_ema = ckpt.tensors.keys().any(|k| k.starts_with("ema."));
    let (prefix, weights) = if has_ema && !args.no_ema {
        ("ema.", "ema")
    } else {
        ("param.", "raw")
    };
    let mut names: Vec<&String> = ckpt
        .tensors
        .keys()
        .filter(|k| k.starts_with(prefix))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(Error::Checkpoint {
            path,
            message: format!("holds no {prefix}* tensors to export"),
        });
    }
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(names.len());
    let (mut parameters, mut max_rounding) = (0usize, 0f32);
    for name in names {
        let t = &ckpt.tensors[name];
        let short = name[prefix.len()..].to_string();
        parameters += t.values.len();
        let bytes = match args.dtype {
            ExportDtype::F32 => t.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ExportDtype::F16 => {
                let mut b = Vec::with_capacity(2 * t.values.len());
                for &v in &t.values {
                    let h = half::f16::from_f32(v);
                    if v.is_finite() && !h.is_finite() {
                        return Err(Error::Usage(format!(
                            "{short} holds {v}, beyond f16's range (±65504): export it with \
                             --dtype f32"
                        )));
                    }
                    max_rounding = max_rounding.max((h.to_f32() - v).abs());
                    b.extend(h.to_le_bytes());
                }
                b
            }
        };
        data.push((short, t.shape.clone(), bytes));
    }
    let dtype = match args.dtype {
        ExportDtype::F32 => safetensors::Dtype::F32,
        ExportDtype::F16 => safetensors::Dtype::F16,
    };
    let views = data
        .iter()
        .map(|(n, shape, b)| {
            safetensors::tensor::TensorView::new(dtype, shape.clone(), b).map(|v| (n.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Data(format!("cannot encode the export: {e}")))?;
    let model = serde_json::to_string(&ckpt.meta.model)
        .map_err(|e| Error::Data(format!("cannot encode the model configuration: {e}")))?;
    let metadata = HashMap::from([
        ("format".to_string(), "mtdiff-weights-v1".to_string()),
        ("model".to_string(), model),
        ("weights".to_string(), weights.to_string()),
        ("dtype".to_string(), args.dtype.name().to_string()),
        ("step".to_string(), ckpt.meta.step.to_string()),
        ("source".to_string(), file_name(&path)),
    ]);
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::Data(format!("cannot encode the export: {e}")))?;
    write_atomic(&args.out, &bytes)?;
    Ok(ExportSummary {
        out: args.out.clone(),
        tensors: data.len(),
        parameters,
        bytes: bytes.len(),
        weights,
        max_rounding,
    })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}
