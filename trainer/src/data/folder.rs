//! An image folder with one subfolder per class (`DIR/<class>/*.png|jpg…`), decoded with the
//! `image` crate and resized to the model's size. Classes are the subfolder names in sorted
//! order; every 10th image of a class (sorted by name) is held out as the test split.

use std::path::Path;

use super::{Dataset, Example};
use crate::error::{Error, Result};

/// Decoded images of one split.
pub struct ImageFolder {
    name: String,
    shape: [usize; 3],
    classes: Vec<String>,
    images: Vec<(Vec<f32>, u32)>,
}

impl ImageFolder {
    /// Loads `dir`, resizing to `size`×`size` with `channels` (1: grey, 3: RGB); `test` picks the
    /// held-out split.
    pub fn load(dir: &Path, size: usize, channels: usize, test: bool) -> Result<ImageFolder> {
        let read_dir = |p: &Path| {
            let mut v: Vec<_> = std::fs::read_dir(p)
                .map_err(|e| Error::io(p, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            v.sort();
            Ok::<_, Error>(v)
        };
        if !dir.is_dir() {
            return Err(Error::Data(format!(
                "{}: no such directory (an image folder holds one subfolder of images per class)",
                dir.display()
            )));
        }
        let class_dirs: Vec<_> = read_dir(dir)?.into_iter().filter(|p| p.is_dir()).collect();
        let mut classes = Vec::new();
        // (class, file) of this split, listed before anything is decoded.
        let mut files = Vec::new();
        for (k, cd) in class_dirs.iter().enumerate() {
            classes.push(
                cd.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string(),
            );
            let images: Vec<_> = read_dir(cd)?
                .into_iter()
                .filter(|p| {
                    p.extension().is_some_and(|e| {
                        matches!(
                            e.to_string_lossy().to_lowercase().as_str(),
                            "png" | "jpg" | "jpeg" | "bmp" | "gif"
                        )
                    })
                })
                .collect();
            for (j, f) in images.into_iter().enumerate() {
                if (j % 10 == 9) == test {
                    files.push((k as u32, f));
                }
            }
        }
        check_fits_in_memory(dir, files.len(), [channels, size, size])?;
        let mut images = Vec::with_capacity(files.len());
        for (k, f) in &files {
            let data = super::load_image_file(f, [channels, size, size])?;
            images.push((data, *k));
        }
        if images.is_empty() {
            return Err(Error::Data(format!(
                "{}: no images found for the {} split (expected DIR/<class>/*.png or .jpg; \
                 {} class folders seen)",
                dir.display(),
                if test { "test" } else { "train" },
                class_dirs.len()
            )));
        }
        if classes.len() < 2 {
            return Err(Error::Data(format!(
                "{}: needs at least 2 class subfolders, found {}",
                dir.display(),
                classes.len()
            )));
        }
        Ok(ImageFolder {
            name: format!(
                "folder-{}",
                dir.file_name().unwrap_or_default().to_string_lossy()
            ),
            shape: [channels, size, size],
            classes,
            images,
        })
    }

    /// Class names (subfolder names).
    pub fn class_names(&self) -> &[String] {
        &self.classes
    }
}

/// Refuses a folder whose decoded images (f32, `shape` each) would not fit in 80 % of the host
/// memory available now, before any is decoded.
fn check_fits_in_memory(dir: &Path, count: usize, shape: [usize; 3]) -> Result<()> {
    let Some(room) = mtdiff_engine::host_memory_room() else {
        return Ok(());
    };
    let need = (count as u128) * (shape.iter().product::<usize>() as u128) * 4;
    let room = room as u128;
    if need > room {
        return Err(Error::Data(format!(
            "{}: {count} images of {}×{}×{} take {} MiB as f32, more than the {} MiB of memory \
             available (this loader holds the whole split in memory): lower --image-size (now \
             {}) or use a folder with fewer images",
            dir.display(),
            shape[0],
            shape[1],
            shape[2],
            need >> 20,
            room >> 20,
            shape[1]
        )));
    }
    Ok(())
}

impl Dataset for ImageFolder {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn len(&self) -> usize {
        self.images.len()
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
    fn example(&self, i: usize) -> Example {
        let (image, label) = self.images[i].clone();
        Example {
            image,
            label,
            factors: None,
        }
    }
}
