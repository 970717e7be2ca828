//! MNIST / Fashion-MNIST in IDX format (gzip or raw): `train-images-idx3-ubyte[.gz]`,
//! `train-labels-idx1-ubyte[.gz]`, `t10k-…` for the test split. Magic numbers, counts and sizes
//! are checked; pixels are scaled to [−1, 1]. An optional `classes.txt` beside them names the
//! classes (one name a line, e.g. Fashion-MNIST's), for reports and sample grids.

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
    class_names: Option<Vec<String>>,
}

/// The class names of `dir/classes.txt` (one a line, 10 lines), if the file exists.
fn read_class_names(dir: &Path) -> Result<Option<Vec<String>>> {
    let path = dir.join("classes.txt");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if names.len() != 10 {
        return Err(Error::Data(format!(
            "{}: {} class names, an IDX dataset has 10 classes (one name a line; or remove the \
             file to number the classes)",
            path.display(),
            names.len()
        )));
    }
    Ok(Some(names))
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

/// The most bytes an IDX file may hold, decompressed: 1 GiB, over 1.3 million 28×28 images (the
/// full MNIST training file is 47 MB). A larger file, or a gzip stream that inflates past it, is
/// refused before the memory is allocated.
pub const MAX_FILE_BYTES: usize = 1 << 30;

/// The file's bytes, decompressed if it starts with the gzip magic; at most [`MAX_FILE_BYTES`].
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let size = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if size > MAX_FILE_BYTES as u64 {
        return Err(too_large(path, MAX_FILE_BYTES));
    }
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    inflate(&raw, path, MAX_FILE_BYTES)
}

fn too_large(path: &Path, cap: usize) -> Error {
    Error::Data(format!(
        "{}: more than {cap} bytes (decompressed); an IDX file this large is not MNIST-sized: \
         use a folder dataset or split the file",
        path.display()
    ))
}

/// `raw` as it is, or gunzipped if it starts with the gzip magic; refused past `cap` bytes (a
/// gzip bomb stops at the cap, it does not allocate what its stream claims).
pub fn inflate(raw: &[u8], path: &Path, cap: usize) -> Result<Vec<u8>> {
    if !raw.starts_with(&[0x1f, 0x8b]) {
        if raw.len() > cap {
            return Err(too_large(path, cap));
        }
        return Ok(raw.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw)
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            Error::Data(format!(
                "{}: corrupt or truncated gzip ({e}); download the file again",
                path.display()
            ))
        })?;
    if out.len() > cap {
        return Err(too_large(path, cap));
    }
    Ok(out)
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
    // Checked: three u32 counts multiply past any usize.
    let want = n
        .checked_mul(r)
        .and_then(|v| v.checked_mul(c))
        .and_then(|v| v.checked_add(16));
    if want != Some(bytes.len()) || r == 0 || c == 0 {
        let want = want.map_or_else(|| "more than 2^64".to_string(), |w| w.to_string());
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
            // The count keys the evaluation cache apart for a subset and the full set.
            name: format!("{base}-{prefix}-{n}"),
            rows,
            cols,
            pixels,
            labels,
            class_names: read_class_names(dir)?,
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
    fn class_name(&self, k: usize) -> String {
        match &self.class_names {
            Some(names) => names[k].clone(),
            None => k.to_string(),
        }
    }
    fn byte_pixels(&self) -> bool {
        true
    }
    fn example(&self, i: usize) -> Result<Example> {
        let n = self.rows * self.cols;
        Ok(Example {
            image: self.pixels[i * n..(i + 1) * n]
                .iter()
                .map(|&p| p as f32 / 127.5 - 1.0)
                .collect(),
            label: self.labels[i] as u32,
            factors: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vendored(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data")
            .join(name)
    }

    #[test]
    fn vendored_subsets_load_with_their_counts_and_names() {
        let train = Idx::load(&vendored("mnist"), "train").unwrap();
        let test = Idx::load(&vendored("mnist"), "t10k").unwrap();
        assert_eq!((train.len(), test.len()), (2000, 1000));
        assert_eq!(train.image_shape(), [1, 28, 28]);
        assert_eq!(train.name(), "mnist-train-2000");
        assert_eq!(train.class_name(7), "7");
        // The first training digit of MNIST is a 5.
        assert_eq!(train.example(0).unwrap().label, 5);
        let fashion = Idx::load(&vendored("fashion-mnist"), "t10k").unwrap();
        assert_eq!(fashion.class_name(0), "T-shirt/top");
        assert_eq!(fashion.class_name(9), "Ankle boot");
    }

    #[test]
    fn a_classes_file_with_the_wrong_count_is_refused() {
        let dir = std::env::temp_dir().join(format!("mtdiff-idx-classes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"] {
            std::fs::copy(vendored("mnist").join(f), dir.join(f)).unwrap();
        }
        std::fs::write(dir.join("classes.txt"), "a\nb\n").unwrap();
        let e = Idx::load(&dir, "train").err().unwrap().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            e.contains("2 class names") && e.contains("10 classes"),
            "{e}"
        );
    }
}
