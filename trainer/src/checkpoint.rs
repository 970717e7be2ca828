//! Checkpoints: one safetensors file per checkpoint (`ckpt_<step>.safetensors`) holding the
//! parameters (`param.<name>`), their EMA (`ema.<name>`) and AdamW's moments (`adam_m.<name>`,
//! `adam_v.<name>`), all f32 and readable by Python's `safetensors`; the JSON metadata (model and
//! run configuration, step, optimizer step, RNG state) is in the header's `__metadata__` under
//! `mtdiff`. Written atomically (temp file, fsync, rename), so a crash never leaves a torn
//! checkpoint; the last K are kept.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mtdiff_model::ModelConfig;
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic_as;

/// A tensor on the CPU: its shape and f32 values.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub values: Vec<f32>,
}

/// A named tensor on the CPU, as a safetensors file holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    /// The tensor's name in the file.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub values: Vec<f32>,
}

impl NamedTensor {
    /// A named tensor of `shape` holding `values`.
    pub fn new(name: impl Into<String>, shape: &[usize], values: Vec<f32>) -> NamedTensor {
        NamedTensor {
            name: name.into(),
            shape: shape.to_vec(),
            values,
        }
    }
}

/// Format tag stored in every checkpoint.
pub const FORMAT: &str = "mtdiff-checkpoint-v1";

/// The random state of a run. Batches, timesteps and masks of step s come from a generator
/// seeded by (seed, s), and GPU noise from the Philox stream (seed, s), so the next step is the
/// whole state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RngState {
    /// The run's seed.
    pub seed: u64,
    /// The step the next batch is drawn for.
    pub next_step: u64,
}

/// A checkpoint's metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// [`FORMAT`].
    pub format: String,
    /// The model (schedule, task, U-Net, heads).
    pub model: ModelConfig,
    /// The run that wrote it.
    pub train: TrainConfig,
    /// Optimizer steps taken.
    pub step: u64,
    /// AdamW's step count (for bias correction).
    pub adam_step: u32,
    /// Random state.
    pub rng: RngState,
    /// Name of the training dataset.
    pub dataset: String,
    /// The dataset's class names (for grids and reports); empty in checkpoints written before
    /// they were recorded, whose classes are shown by index.
    #[serde(default)]
    pub class_names: Vec<String>,
    /// With `--loss-scale true`: the scaler's state `[scale, clean steps, skipped steps, last
    /// skipped]` after this step (absent otherwise and in older checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<[f32; 4]>,
}

/// A loaded checkpoint.
pub struct Checkpoint {
    /// Its file.
    pub path: PathBuf,
    /// Its metadata.
    pub meta: Meta,
    /// Its tensors by name.
    pub tensors: HashMap<String, HostTensor>,
}

impl Checkpoint {
    /// A tensor by name, or an error naming it.
    pub fn tensor(&self, name: &str) -> Result<&HostTensor> {
        self.tensors.get(name).ok_or_else(|| Error::Checkpoint {
            path: self.path.clone(),
            message: format!("has no tensor {name} (written by another version or model?)"),
        })
    }
}

/// The file of the checkpoint at `step` in `dir`.
pub fn path_for(dir: &Path, step: u64) -> PathBuf {
    dir.join(format!("ckpt_{step:08}.safetensors"))
}

/// Encodes f32 tensors (and optional header metadata) as safetensors bytes.
pub fn encode(
    tensors: &[NamedTensor],
    metadata: Option<HashMap<String, String>>,
) -> std::result::Result<Vec<u8>, safetensors::SafeTensorError> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.values.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.shape.clone(), b)
                .map(|v| (t.name.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    safetensors::serialize(views, metadata)
}

/// The values of an F32 tensor view.
pub fn f32_values(view: &safetensors::tensor::TensorView<'_>) -> Vec<f32> {
    view.data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Serialises and writes a checkpoint atomically.
pub fn save(path: &Path, meta: &Meta, tensors: &[NamedTensor]) -> Result<()> {
    let err = |message: String| Error::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let json =
        serde_json::to_string(meta).map_err(|e| err(format!("cannot serialise metadata: {e}")))?;
    let header = HashMap::from([("mtdiff".to_string(), json)]);
    let data = encode(tensors, Some(header)).map_err(|e| err(format!("cannot serialise: {e}")))?;
    write_atomic_as(path, &data, Some("checkpoint")).map_err(|e| match e {
        Error::Io { source, .. } if crate::error::is_disk_full(&source) => {
            let dir = path.parent().unwrap_or(Path::new("."));
            let kept = match list(dir).last() {
                Some((_, newest)) => format!(
                    "the earlier checkpoints are intact (newest: {})",
                    newest.display()
                ),
                None => "no earlier checkpoint exists".to_string(),
            };
            err(format!(
                "not written: {source}. The disk is full or a file-size limit (ulimit -f) was \
                 hit; {kept}. Free space, then continue with --resume"
            ))
        }
        e => e,
    })
}

/// Reads and checks a checkpoint: a truncated or corrupt file, or one without our metadata, is
/// an error that names the file and what to do.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let err = |message: String| Error::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    if !path.is_file() {
        return Err(err(
            "no such file (give a ckpt_*.safetensors file or a run directory)".into(),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode(&bytes, path)
}

/// Decodes and checks a checkpoint's bytes (`path` names it in errors): a safetensors file with
/// our metadata and f32 tensors only. The tensors are copied out of `bytes`, never sized by what
/// a header claims (safetensors checks every offset against the buffer first).
pub fn decode(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
    let err = |message: String| Error::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| {
        err(format!(
            "corrupt or truncated ({e}); delete it and use an earlier checkpoint"
        ))
    })?;
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| err(format!("corrupt header ({e})")))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get("mtdiff"))
        .ok_or_else(|| err("is a safetensors file without mtdiff metadata".into()))?;
    let meta: Meta = serde_json::from_str(json).map_err(|e| {
        err(format!(
            "metadata does not parse ({e}); written by another version?"
        ))
    })?;
    if meta.format != FORMAT {
        return Err(err(format!(
            "format {:?}, this build reads {FORMAT:?}",
            meta.format
        )));
    }
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(err(format!(
                "tensor {name} is {:?}, expected F32",
                view.dtype()
            )));
        }
        tensors.insert(
            name,
            HostTensor {
                shape: view.shape().to_vec(),
                values: f32_values(&view),
            },
        );
    }
    Ok(Checkpoint {
        path: path.to_path_buf(),
        meta,
        tensors,
    })
}

/// The checkpoints in `dir`, oldest first, as (step, path).
pub fn list(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let step = name
                .strip_prefix("ckpt_")?
                .strip_suffix(".safetensors")?
                .parse()
                .ok()?;
            Some((step, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Deletes all but the newest `keep` checkpoints in `dir`.
pub fn prune(dir: &Path, keep: usize) -> Result<()> {
    let all = list(dir);
    for (_, p) in &all[..all.len().saturating_sub(keep)] {
        std::fs::remove_file(p).map_err(|e| Error::io(p, e))?;
    }
    Ok(())
}

/// A checkpoint file from a path that is either a file or a run directory (its newest).
pub fn resolve(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        list(path)
            .pop()
            .map(|(_, p)| p)
            .ok_or_else(|| Error::Checkpoint {
                path: path.to_path_buf(),
                message: "holds no ckpt_*.safetensors (train first, or point at a file)".into(),
            })
    } else {
        Ok(path.to_path_buf())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// The metadata of a real checkpoint (the fuzz seed's).
    fn real_meta() -> Meta {
        let seed =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/checkpoint/small.safetensors");
        decode(&std::fs::read(&seed).unwrap(), &seed).unwrap().meta
    }

    const CHILD: &str = "MTDIFF_FSIZE_TEST_DIR";

    /// Under a file-size limit (`ulimit -f`), a checkpoint write that passes it is an error
    /// naming the limit and the intact earlier checkpoint, and leaves no temporary file. The
    /// limit is set in a child process (this test binary run again), so the other tests' files
    /// are not limited; lavapipe cannot run under such a limit (its memory is memfd files), so
    /// the CLI-level test of a full disk uses a small tmpfs instead.
    #[test]
    fn a_write_past_a_file_size_limit_keeps_the_earlier_checkpoints() {
        if let Some(dir) = std::env::var_os(CHILD) {
            let dir = PathBuf::from(dir);
            let meta = real_meta();
            let small = [NamedTensor::new("param.a", &[4], vec![1.0; 4])];
            save(&path_for(&dir, 1), &meta, &small).unwrap();
            // SAFETY: setrlimit and signal on this single-purpose child process.
            unsafe {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let limit = libc::rlimit {
                    rlim_cur: 64 << 10,
                    rlim_max: 64 << 10,
                };
                assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
            }
            let big = [NamedTensor::new("param.a", &[65536], vec![1.0; 65536])];
            let e = save(&path_for(&dir, 2), &meta, &big)
                .expect_err("a 256 kB file under a 64 kB limit")
                .to_string();
            println!("CHILD-ERROR {e}");
            return;
        }
        let dir = std::env::temp_dir().join(format!("mtdiff-fsize-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "checkpoint::tests::a_write_past_a_file_size_limit_keeps_the_earlier_checkpoints",
                "--nocapture",
            ])
            .env(CHILD, &dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let e = stdout
            .lines()
            .find_map(|l| l.strip_prefix("CHILD-ERROR "))
            .unwrap_or_else(|| panic!("the child wrote no error:\n{stdout}"));
        assert!(
            e.contains("ckpt_00000002.safetensors: not written")
                && e.contains("File too large")
                && e.contains("file-size limit")
                && e.contains("newest:")
                && e.contains("ckpt_00000001.safetensors"),
            "{e}"
        );
        assert_eq!(list(&dir).len(), 1);
        load(&path_for(&dir, 1)).unwrap();
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, vec!["ckpt_00000001.safetensors".to_string()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
