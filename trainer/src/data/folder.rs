//! Image folders, read lazily: listed at start-up, each image decoded (and resized to the model's
//! size) only when a batch needs it, on the pipeline's worker threads.
//!
//! Two layouts:
//! - one subfolder per class, `DIR/<class>/*.png|jpg|jpeg`; classes are the subfolder names in
//!   sorted order;
//! - a flat folder with a labels file, `DIR/labels.csv`, one `FILE,CLASS` line per image (FILE
//!   relative to DIR; `#` lines and a `file,label` header are skipped); classes are the CLASS
//!   values, numerically when all are integers (then class k is the number k), else sorted.
//!
//! The test split holds the images whose relative path hashes into 1 of 10 buckets
//! ([`super::in_test_split`]), so adding files never moves an image between splits.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{in_test_split, Dataset, Example};
use crate::error::{Error, Result};

/// The labels file of a flat folder.
pub const LABELS_FILE: &str = "labels.csv";

/// The image file extensions a folder dataset reads.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// One split of an image folder: file names and labels, no pixels.
pub struct ImageFolder {
    name: String,
    root: PathBuf,
    shape: [usize; 3],
    classes: Vec<String>,
    files: FileList,
}

/// Relative file names in one string (a few dozen bytes per image, not a `PathBuf` each) and
/// their labels.
#[derive(Default)]
struct FileList {
    names: String,
    ends: Vec<usize>,
    labels: Vec<u32>,
}

impl FileList {
    fn push(&mut self, name: &str, label: u32) {
        self.names.push_str(name);
        self.ends.push(self.names.len());
        self.labels.push(label);
    }
    fn len(&self) -> usize {
        self.ends.len()
    }
    fn name(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.names[start..self.ends[i]]
    }
}

fn is_image(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, e)| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn sorted_entries(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .collect();
    v.sort_by_key(|e| e.file_name());
    Ok(v)
}

impl ImageFolder {
    /// Lists `dir` (either layout) for the train or `test` split, images to be resized to
    /// `size`×`size` with `channels` (1: grey, 3: RGB). Decodes nothing.
    pub fn load(dir: &Path, size: usize, channels: usize, test: bool) -> Result<ImageFolder> {
        if !dir.is_dir() {
            return Err(Error::Data(format!(
                "{}: no such directory (an image folder holds one subfolder of images per class, \
                 or images and a {LABELS_FILE})",
                dir.display()
            )));
        }
        let labels_file = dir.join(LABELS_FILE);
        let (classes, files) = if labels_file.is_file() {
            list_flat(&labels_file, test)?
        } else {
            list_class_folders(dir, test)?
        };
        if files.len() == 0 {
            return Err(Error::Data(format!(
                "{}: no images found for the {} split (expected DIR/<class>/*.png or .jpg, or \
                 images listed in DIR/{LABELS_FILE}; {} classes seen)",
                dir.display(),
                if test { "test" } else { "train" },
                classes.len()
            )));
        }
        if classes.len() < 2 {
            return Err(Error::Data(format!(
                "{}: needs at least 2 classes, found {}",
                dir.display(),
                classes.len()
            )));
        }
        Ok(ImageFolder {
            name: format!(
                "folder-{}",
                dir.file_name().unwrap_or_default().to_string_lossy()
            ),
            root: dir.to_path_buf(),
            shape: [channels, size, size],
            classes,
            files,
        })
    }

    /// Class names.
    pub fn class_names(&self) -> &[String] {
        &self.classes
    }
}

/// Classes from the subfolder names, images from each subfolder.
fn list_class_folders(dir: &Path, test: bool) -> Result<(Vec<String>, FileList)> {
    let mut classes = Vec::new();
    let mut files = FileList::default();
    for class_dir in sorted_entries(dir)? {
        if !class_dir.path().is_dir() {
            continue;
        }
        let class = class_dir.file_name().to_string_lossy().to_string();
        let k = classes.len() as u32;
        for f in sorted_entries(&class_dir.path())? {
            let name = format!("{class}/{}", f.file_name().to_string_lossy());
            if is_image(&name) && in_test_split(&name) == test {
                files.push(&name, k);
            }
        }
        classes.push(class);
    }
    Ok((classes, files))
}

/// Classes and images from `labels.csv`.
fn list_flat(labels_file: &Path, test: bool) -> Result<(Vec<String>, FileList)> {
    let text = std::fs::read_to_string(labels_file).map_err(|e| Error::io(labels_file, e))?;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || (n == 0 && line == "file,label") {
            continue;
        }
        let Some((file, class)) = line.rsplit_once(',') else {
            return Err(Error::Data(format!(
                "{}:{}: expected FILE,CLASS, got {line:?}",
                labels_file.display(),
                n + 1
            )));
        };
        let (file, class) = (file.trim(), class.trim());
        if file.is_empty() || class.is_empty() || Path::new(file).is_absolute() {
            return Err(Error::Data(format!(
                "{}:{}: expected FILE,CLASS with FILE relative to the folder, got {line:?}",
                labels_file.display(),
                n + 1
            )));
        }
        rows.push((file, class));
    }
    let numeric: Option<Vec<u32>> = rows.iter().map(|(_, c)| c.parse().ok()).collect();
    let classes: Vec<String> = match &numeric {
        Some(ks) => {
            let n = ks.iter().max().map_or(0, |&m| m as usize + 1);
            if n > 1 << 20 {
                return Err(Error::Data(format!(
                    "{}: class numbers go up to {}; numeric classes must be 0..N with N at most \
                     2^20",
                    labels_file.display(),
                    n - 1
                )));
            }
            (0..n).map(|k| k.to_string()).collect()
        }
        None => rows
            .iter()
            .map(|(_, c)| c.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    let mut files = FileList::default();
    for (i, (file, class)) in rows.iter().enumerate() {
        let k = match &numeric {
            Some(ks) => ks[i],
            None => classes
                .binary_search_by(|c| c.as_str().cmp(class))
                .unwrap_or(0) as u32,
        };
        if in_test_split(file) == test {
            files.push(file, k);
        }
    }
    Ok((classes, files))
}

impl Dataset for ImageFolder {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn len(&self) -> usize {
        self.files.len()
    }
    fn image_shape(&self) -> [usize; 3] {
        self.shape
    }
    fn classes(&self) -> usize {
        self.classes.len()
    }
    fn class_name(&self, k: usize) -> String {
        self.classes
            .get(k)
            .cloned()
            .unwrap_or_else(|| k.to_string())
    }
    fn byte_pixels(&self) -> bool {
        true
    }
    fn example(&self, i: usize) -> Result<Example> {
        let image = super::load_image_file(&self.root.join(self.files.name(i)), self.shape)?;
        Ok(Example {
            image,
            label: self.files.labels[i],
            factors: None,
        })
    }
}
