//! Datasets behind one trait, and the batches the model trains on.
//!
//! Sources (`--data`): `glyphs` (the built-in default, no files), `mnist:DIR` (MNIST or
//! Fashion-MNIST IDX files, gz or raw) and `folder:DIR` (one subfolder of images per class).
//! Every task's extra modalities are derived here: the label; a representation vector (the
//! glyphs' true generative factors, or a fixed random projection of the image normalised to unit
//! variance per dimension, docs/method.md §4.4); a random patch mask (docs/method.md §8.2); a paired second
//! image, the Sobel edge map (docs/method.md §8.3).

pub mod folder;
pub mod glyphs;
pub mod idx;
mod image_file;
pub mod measure;
pub mod pipeline;
pub mod shards;

use std::path::PathBuf;

use mtdiff_engine::rng::CpuRng;
use mtdiff_engine::{Device, Tensor};
use mtdiff_model::modality::random_patch_mask;
use mtdiff_model::{ModalityKind, Observation, TaskConfig};

use crate::error::{Error, Result};

pub use image_file::{decode_image, image_to_chw, load_image_file, MAX_IMAGE_BYTES};

/// One example: an image in [−1, 1] (CHW), its class, and its generative factors if known.
#[derive(Clone, Debug)]
pub struct Example {
    /// C·H·W values in [−1, 1].
    pub image: Vec<f32>,
    /// Class index.
    pub label: u32,
    /// Standardised generative factors (built-in glyphs only).
    pub factors: Option<Vec<f32>>,
}

/// A finite, indexable set of examples.
pub trait Dataset: Send + Sync {
    /// A short name (used to key caches).
    fn name(&self) -> String;
    /// Number of examples.
    fn len(&self) -> usize;
    /// True when there are no examples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// [C, H, W].
    fn image_shape(&self) -> [usize; 3];
    /// Number of classes.
    fn classes(&self) -> usize;
    /// Name of class `k` (< classes), for reports; the index unless the dataset names it.
    fn class_name(&self, k: usize) -> String {
        k.to_string()
    }
    /// Example `i` (< len); an error when a streamed image cannot be read or decoded (see
    /// [`pipeline::fetch`], which skips such examples).
    fn example(&self, i: usize) -> Result<Example>;
    /// Whether every pixel value is p/127.5 − 1 for a byte p (images decoded from files): the
    /// data pipeline then queues them as bytes, a quarter of the memory, with the same values.
    fn byte_pixels(&self) -> bool {
        false
    }
}

/// Whether the example named `key` (a file's path relative to its folder, or a shard member's
/// key) belongs to the test split: 1 key in 10 by a fixed hash (64-bit FNV-1a), so a split does
/// not change when files are added.
pub fn in_test_split(key: &str) -> bool {
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    h % 10 == 9
}

/// Where the data comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// The built-in glyphs at `size`×`size`.
    Glyphs {
        /// Image side.
        size: usize,
    },
    /// MNIST-style IDX files in a folder.
    Idx(PathBuf),
    /// WebDataset-style tar shards (a .tar file or a folder of them).
    Shards {
        /// The file or folder.
        path: PathBuf,
        /// Side the images are resized to.
        size: usize,
        /// 1 (grey) or 3 (RGB).
        channels: usize,
    },
    /// Images in one subfolder per class, or in a flat folder with labels.csv.
    Folder {
        /// The root folder.
        dir: PathBuf,
        /// Side the images are resized to.
        size: usize,
        /// 1 (grey) or 3 (RGB).
        channels: usize,
    },
}

impl DataSource {
    /// Parses `glyphs`, `glyphs:SIZE`, `mnist:DIR`, `folder:DIR` or `shards:PATH`
    /// (`folder_size` and `folder_channels` apply to folders and shards).
    pub fn parse(spec: &str, folder_size: usize, folder_channels: usize) -> Result<DataSource> {
        let (kind, arg) = spec.split_once(':').unwrap_or((spec, ""));
        match kind {
            "glyphs" => {
                let size = if arg.is_empty() {
                    16
                } else {
                    arg.parse().map_err(|_| {
                        Error::Usage(format!("--data glyphs:SIZE needs a number, got {arg:?}"))
                    })?
                };
                if !(8..=128).contains(&size) {
                    return Err(Error::Usage(format!(
                        "--data glyphs:{size}: the size must be in 8..=128"
                    )));
                }
                Ok(DataSource::Glyphs { size })
            }
            "mnist" | "idx" | "fashion" if !arg.is_empty() => Ok(DataSource::Idx(arg.into())),
            "folder" | "shards" if !arg.is_empty() => {
                if folder_channels != 1 && folder_channels != 3 {
                    return Err(Error::Usage(format!(
                        "--channels must be 1 or 3, got {folder_channels}"
                    )));
                }
                if !(4..=4096).contains(&folder_size) {
                    return Err(Error::Usage(format!(
                        "--image-size must be in 4..=4096, got {folder_size}"
                    )));
                }
                let (size, channels) = (folder_size, folder_channels);
                Ok(if kind == "folder" {
                    DataSource::Folder {
                        dir: arg.into(),
                        size,
                        channels,
                    }
                } else {
                    DataSource::Shards {
                        path: arg.into(),
                        size,
                        channels,
                    }
                })
            }
            _ => Err(Error::Usage(format!(
                "--data {spec:?}: use glyphs, glyphs:SIZE, mnist:DIR, folder:DIR or shards:PATH"
            ))),
        }
    }

    /// Loads the train or test split.
    pub fn load(&self, test: bool) -> Result<Box<dyn Dataset>> {
        Ok(match self {
            DataSource::Glyphs { size } => Box::new(if test {
                glyphs::Glyphs::new(0x7E57, 2_000, *size)
            } else {
                glyphs::Glyphs::new(0x7EA1, 60_000, *size)
            }),
            DataSource::Idx(dir) => {
                Box::new(idx::Idx::load(dir, if test { "t10k" } else { "train" })?)
            }
            DataSource::Folder {
                dir,
                size,
                channels,
            } => Box::new(folder::ImageFolder::load(dir, *size, *channels, test)?),
            DataSource::Shards {
                path,
                size,
                channels,
            } => Box::new(shards::Shards::load(path, *size, *channels, test)?),
        })
    }
}

/// Dimensions of the representation vector for datasets without generative factors.
pub const PROJECTION_DIM: usize = 16;

/// How an example becomes a representation vector: its factors, or a fixed projection.
pub struct Representation {
    /// [dim, C·H·W] projection, with per-dimension mean and std (None: use the factors).
    projection: Option<(Vec<f32>, Vec<f32>, Vec<f32>)>,
    dim: usize,
}

impl Representation {
    /// Fits the representation for `data`: the factors if it has them, else a random
    /// projection (seed fixed) normalised on up to 1,000 examples.
    pub fn fit(data: &dyn Dataset) -> Result<Representation> {
        let bad = pipeline::BadImages::new(pipeline::DEFAULT_MAX_BAD_IMAGES);
        let first = pipeline::fetch(data, 0, &bad)?;
        if let Some(f) = &first.factors {
            return Ok(Representation {
                projection: None,
                dim: f.len(),
            });
        }
        let n: usize = first.image.len();
        let mut rng = CpuRng::new(0x2E97);
        let p = rng.vec_normal(PROJECTION_DIM * n, 1.0 / (n as f64).sqrt());
        let raw = |x: &[f32]| -> Vec<f64> {
            (0..PROJECTION_DIM)
                .map(|d| {
                    p[d * n..(d + 1) * n]
                        .iter()
                        .zip(x)
                        .map(|(a, b)| (a * b) as f64)
                        .sum()
                })
                .collect()
        };
        let m = data.len().min(1000);
        let indices: Vec<usize> = (0..m).collect();
        let rows: Vec<Vec<f64>> = pipeline::examples(data, &indices, &bad)?
            .iter()
            .map(|e| raw(&e.image))
            .collect();
        let mean: Vec<f64> = (0..PROJECTION_DIM)
            .map(|d| rows.iter().map(|r| r[d]).sum::<f64>() / m as f64)
            .collect();
        let std: Vec<f64> = (0..PROJECTION_DIM)
            .map(|d| {
                (rows.iter().map(|r| (r[d] - mean[d]).powi(2)).sum::<f64>() / m as f64)
                    .sqrt()
                    .max(1e-6)
            })
            .collect();
        Ok(Representation {
            projection: Some((
                p,
                mean.iter().map(|&v| v as f32).collect(),
                std.iter().map(|&v| v as f32).collect(),
            )),
            dim: PROJECTION_DIM,
        })
    }

    /// Length of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The vector of an example.
    pub fn of(&self, ex: &Example) -> Vec<f32> {
        match (&self.projection, &ex.factors) {
            (None, Some(f)) => f.clone(),
            (Some((p, mean, std)), _) => {
                let n = ex.image.len();
                (0..self.dim)
                    .map(|d| {
                        let v: f32 = p[d * n..(d + 1) * n]
                            .iter()
                            .zip(&ex.image)
                            .map(|(a, b)| a * b)
                            .sum();
                        (v - mean[d]) / std[d]
                    })
                    .collect()
            }
            (None, None) => vec![0.0; self.dim],
        }
    }
}

/// The Sobel edge map of a CHW image in [−1, 1] (channel mean), thresholded to ±1.
pub fn edge_map(image: &[f32], shape: [usize; 3]) -> Vec<f32> {
    let [c, h, w] = shape;
    let px = |y: isize, x: isize| -> f32 {
        let (y, x) = (
            y.clamp(0, h as isize - 1) as usize,
            x.clamp(0, w as isize - 1) as usize,
        );
        (0..c)
            .map(|k| (image[(k * h + y) * w + x] + 1.0) / 2.0)
            .sum::<f32>()
            / c as f32
    };
    let mut out = vec![0.0; c * h * w];
    for y in 0..h as isize {
        for x in 0..w as isize {
            let gx = px(y - 1, x + 1) + 2.0 * px(y, x + 1) + px(y + 1, x + 1)
                - px(y - 1, x - 1)
                - 2.0 * px(y, x - 1)
                - px(y + 1, x - 1);
            let gy = px(y + 1, x - 1) + 2.0 * px(y + 1, x) + px(y + 1, x + 1)
                - px(y - 1, x - 1)
                - 2.0 * px(y - 1, x)
                - px(y - 1, x + 1);
            let v = if (gx * gx + gy * gy).sqrt() > 1.0 {
                1.0
            } else {
                -1.0
            };
            for k in 0..c {
                out[(k * h + y as usize) * w + x as usize] = v;
            }
        }
    }
    out
}

/// Side of the square patches hidden by masks: a 4×4…7×7 grid of patches.
pub fn mask_patch(size: usize) -> usize {
    (size / 7).max(size / 4).max(1)
}

/// Observations of `task` for the given examples; masks are drawn from `rng` with a per-sample
/// ratio from `mask_ratio` (a range).
pub fn observations(
    dev: &Device,
    task: &TaskConfig,
    examples: &[Example],
    repr: &Representation,
    rng: &mut CpuRng,
    mask_ratio: (f64, f64),
) -> Result<Vec<Observation>> {
    let n = examples.len();
    let host = host_observations(task, examples, repr, rng, mask_ratio, 0..n, n)?;
    host.iter()
        .map(|h| h.upload(dev, task.image_shape, 0..examples.len()))
        .collect()
}

/// One modality's observations of a batch, in host memory: every random draw made, nothing
/// uploaded (a data-parallel step uploads each replica's rows of the same draws).
pub enum HostObservation {
    /// `[B, C, H, W]` images.
    Image(Vec<f32>),
    /// `[B]` class labels.
    Label(Vec<u32>),
    /// `[B, dim]` vectors.
    Vector(Vec<f32>, usize),
    /// `[B, C, H, W]` masked images and their `[B, 1, H, W]` masks.
    Masked(Vec<f32>, Vec<f32>),
}

impl HostObservation {
    /// Rows `rows` of the batch as device tensors (`shape` = the task's [C, H, W]).
    pub fn upload(
        &self,
        dev: &Device,
        shape: [usize; 3],
        rows: std::ops::Range<usize>,
    ) -> Result<Observation> {
        let [c, h, w] = shape;
        let (per, b) = (c * h * w, rows.len());
        let dims = [b, c, h, w];
        Ok(match self {
            HostObservation::Image(x) => Observation::Image(Tensor::from_slice(
                dev,
                &x[rows.start * per..rows.end * per],
                &dims,
            )?),
            HostObservation::Label(y) => Observation::Label(Tensor::from_u32(dev, &y[rows], &[b])?),
            HostObservation::Vector(v, dim) => Observation::Vector(Tensor::from_slice(
                dev,
                &v[rows.start * dim..rows.end * dim],
                &[b, *dim],
            )?),
            HostObservation::Masked(x, m) => Observation::Masked {
                image: Tensor::from_slice(dev, &x[rows.start * per..rows.end * per], &dims)?,
                mask: Tensor::from_slice(
                    dev,
                    &m[rows.start * h * w..rows.end * h * w],
                    &[b, 1, h, w],
                )?,
            },
        })
    }
}

/// [`observations`] before the upload: each modality's values for the examples of rows `rows`
/// of a batch of `batch` (`examples` holds those rows). Random draws are made for the whole
/// batch, in the same order whatever the rows, so a data-parallel rank holding some rows gets
/// exactly their share of the single-process draws.
pub fn host_observations(
    task: &TaskConfig,
    examples: &[Example],
    repr: &Representation,
    rng: &mut CpuRng,
    mask_ratio: (f64, f64),
    rows: std::ops::Range<usize>,
    batch: usize,
) -> Result<Vec<HostObservation>> {
    let shape = task.image_shape;
    let b = examples.len();
    if b != rows.len() || rows.end > batch {
        return Err(Error::Data(format!(
            "internal error: {b} examples for rows {rows:?} of a batch of {batch}"
        )));
    }
    let dims = [b, shape[0], shape[1], shape[2]];
    let images: Vec<f32> = examples
        .iter()
        .flat_map(|e| e.image.iter().copied())
        .collect();
    if images.len() != dims.iter().product::<usize>() {
        return Err(Error::Data(format!(
            "images do not match the model's shape {shape:?}"
        )));
    }
    let mut out = Vec::new();
    for m in &task.modalities {
        out.push(match m.kind {
            ModalityKind::Image => HostObservation::Image(images.clone()),
            ModalityKind::Label { classes } => {
                let y: Vec<u32> = examples.iter().map(|e| e.label).collect();
                if let Some(bad) = y.iter().find(|&&l| l as usize >= classes) {
                    return Err(Error::Data(format!(
                        "label {bad} is outside the model's {classes} classes"
                    )));
                }
                HostObservation::Label(y)
            }
            ModalityKind::Vector { dim } => {
                let v: Vec<f32> = examples.iter().flat_map(|e| repr.of(e)).collect();
                if v.len() != b * dim {
                    return Err(Error::Data(format!(
                        "representation vectors have {} entries, the model expects {dim}",
                        v.len() / b.max(1)
                    )));
                }
                HostObservation::Vector(v, dim)
            }
            ModalityKind::MaskedImage => {
                let (h, w) = (shape[1], shape[2]);
                let mut mask = Vec::with_capacity(b * h * w);
                for row in 0..batch {
                    let ratio = rng.range(mask_ratio.0, mask_ratio.1);
                    let m = random_patch_mask(rng, 1, h, w, mask_patch(h), ratio);
                    if rows.contains(&row) {
                        mask.extend(m);
                    }
                }
                let masked: Vec<f32> = images
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let (s, p) = (i / (shape[0] * h * w), i % (h * w));
                        v * mask[s * h * w + p]
                    })
                    .collect();
                HostObservation::Masked(masked, mask)
            }
            ModalityKind::SecondImage => HostObservation::Image(
                examples
                    .iter()
                    .flat_map(|ex| edge_map(&ex.image, shape))
                    .collect(),
            ),
        });
    }
    Ok(out)
}
