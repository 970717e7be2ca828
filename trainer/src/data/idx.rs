//! MNIST / Fashion-MNIST in IDX format (gzip or raw): `train-images-idx3-ubyte[.gz]`,
//! `train-labels-idx1-ubyte[.gz]`, `t10k-…` for the test split. Magic numbers, counts and sizes
//! are checked; pixels are scaled to [−1, 1].

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Dataset, Example};
use crate::error::{Error, Result};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

/// One split of an IDX dataset, held in memory as u8.
pub struct Idx {
    name: String,
    rows: usize,
    cols: usize,
    pixels: Vec<u8>,
    labels: Vec<u8>,
}

/// Finds `stem` or `stem.gz` in `dir`.
fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::Data(format!(
        "{}: no {stem} or {stem}.gz (an MNIST-style folder holds train-images-idx3-ubyte.gz, \
         train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)",
        dir.display()
    )))
}

/// The file's bytes, decompressed if it starts with the gzip magic.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| {
                Error::Data(format!(
                    "{}: corrupt or truncated gzip ({e}); download the file again",
                    path.display()
                ))
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses an IDX images file: (count, rows, cols, pixels).
pub fn parse_images(bytes: &[u8], path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    let bad = |m: String| Error::Data(format!("{}: {m}", path.display()));
    if bytes.len() < 16 {
        return Err(bad(format!(
            "{} bytes is too short for an IDX header",
            bytes.len()
        )));
    }
    let magic = be_u32(bytes, 0);
    if magic != IMAGES_MAGIC {
        return Err(bad(format!(
            "magic {magic:#010x} is not an IDX image file's ({IMAGES_MAGIC:#010x})"
        )));
    }
    let (n, r, c) = (
        be_u32(bytes, 4) as usize,
        be_u32(bytes, 8) as usize,
        be_u32(bytes, 12) as usize,
    );
    let want = 16 + n * r * c;
    if bytes.len() != want || r == 0 || c == 0 {
        return Err(bad(format!(
            "header says {n} images of {r}×{c} ({want} bytes), the file has {} bytes (truncated?)",
            bytes.len()
        )));
    }
    Ok((n, r, c, bytes[16..].to_vec()))
}

/// Parses an IDX labels file.
pub fn parse_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let bad = |m: String| Error::Data(format!("{}: {m}", path.display()));
    if bytes.len() < 8 {
        return Err(bad(format!(
            "{} bytes is too short for an IDX header",
            bytes.len()
        )));
    }
    let magic = be_u32(bytes, 0);
    if magic != LABELS_MAGIC {
        return Err(bad(format!(
            "magic {magic:#010x} is not an IDX label file's ({LABELS_MAGIC:#010x})"
        )));
    }
    let n = be_u32(bytes, 4) as usize;
    if bytes.len() != 8 + n {
        return Err(bad(format!(
            "header says {n} labels, the file has {} (truncated?)",
            bytes.len() - 8
        )));
    }
    if let Some(l) = bytes[8..].iter().find(|&&l| l > 9) {
        return Err(bad(format!("label {l} is outside 0..=9")));
    }
    Ok(bytes[8..].to_vec())
}

impl Idx {
    /// Loads split `prefix` (`train` or `t10k`) from `dir`.
    pub fn load(dir: &Path, prefix: &str) -> Result<Idx> {
        if !dir.is_dir() {
            return Err(Error::Data(format!(
                "{}: no such directory (give --data mnist:DIR with the IDX files, or leave \
                 --data out for the built-in glyphs)",
                dir.display()
            )));
        }
        let ip = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
        let lp = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
        let (n, rows, cols, pixels) = parse_images(&read_maybe_gz(&ip)?, &ip)?;
        let labels = parse_labels(&read_maybe_gz(&lp)?, &lp)?;
        if labels.len() != n {
            return Err(Error::Data(format!(
                "{} has {n} images but {} has {} labels",
                ip.display(),
                lp.display(),
                labels.len()
            )));
        }
        if n == 0 {
            return Err(Error::Data(format!("{}: no images", ip.display())));
        }
        let base = dir
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "idx".to_string());
        Ok(Idx {
            name: format!("{base}-{prefix}"),
            rows,
            cols,
            pixels,
            labels,
        })
    }
}

impl Dataset for Idx {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn image_shape(&self) -> [usize; 3] {
        [1, self.rows, self.cols]
    }
    fn classes(&self) -> usize {
        10
    }
    fn example(&self, i: usize) -> Example {
        let n = self.rows * self.cols;
        Example {
            image: self.pixels[i * n..(i + 1) * n]
                .iter()
                .map(|&p| p as f32 / 127.5 - 1.0)
                .collect(),
            label: self.labels[i] as u32,
            factors: None,
        }
    }
}
