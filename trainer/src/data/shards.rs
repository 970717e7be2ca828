//! WebDataset-style tar shards (`shards:DIR`, every `DIR/*.tar` in name order, or
//! `shards:FILE.tar`): each example is a group of adjacent members sharing a key (the member's
//! path up to the first dot of its file name), with an image (`KEY.png`, `KEY.jpg`, `KEY.jpeg`)
//! and an integer class (`KEY.cls`, ASCII). Other members are ignored.
//!
//! Start-up reads only the tar headers and the small `.cls` members, recording where each image
//! lies; images are read with positioned reads and decoded when a batch needs them. Examples
//! without an image or a readable class are skipped with a count. The test split holds the keys
//! that hash into 1 of 10 buckets ([`super::in_test_split`]).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{in_test_split, Dataset, Example};
use crate::error::{Error, Result};

/// Where one example's image lies.
#[derive(Clone, Copy)]
struct Member {
    shard: u32,
    offset: u64,
    len: u32,
    label: u32,
}

/// One split of a set of tar shards.
pub struct Shards {
    name: String,
    paths: Vec<PathBuf>,
    files: Vec<File>,
    shape: [usize; 3],
    classes: usize,
    members: Vec<Member>,
}

/// The largest image member read (64 MiB); larger ones count as bad examples.
const MAX_MEMBER_BYTES: u64 = 64 << 20;

/// An example being assembled from adjacent members.
#[derive(Default)]
struct Pending {
    key: String,
    image: Option<(u64, u64)>,
    label: Option<u32>,
}

/// The key and extension of a member path: `a/b/x.seg.jpg` → (`a/b/x`, `seg.jpg`).
fn key_and_ext(path: &str) -> Option<(&str, &str)> {
    let base = path.rfind('/').map_or(0, |i| i + 1);
    let dot = path[base..].find('.')? + base;
    Some((&path[..dot], &path[dot + 1..]))
}

impl Shards {
    /// Indexes `path` (a tar file, or a folder of them) for the train or `test` split, images to
    /// be resized to `size`×`size` with `channels`.
    pub fn load(path: &Path, size: usize, channels: usize, test: bool) -> Result<Shards> {
        let paths: Vec<PathBuf> = if path.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| Error::io(path, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "tar"))
                .collect();
            v.sort();
            v
        } else if path.is_file() {
            vec![path.to_path_buf()]
        } else {
            return Err(Error::Data(format!(
                "{}: no such tar file or folder of .tar shards",
                path.display()
            )));
        };
        if paths.is_empty() {
            return Err(Error::Data(format!(
                "{}: no .tar shards in this folder",
                path.display()
            )));
        }
        let mut files = Vec::with_capacity(paths.len());
        let mut members = Vec::new();
        let (mut incomplete, mut max_label) = (0usize, None::<u32>);
        for (s, p) in paths.iter().enumerate() {
            let file = File::open(p).map_err(|e| Error::io(p, e))?;
            let index = index_shard(&file, p)?;
            incomplete += index.incomplete;
            for (key, offset, len, label) in index.examples {
                max_label = max_label.max(Some(label));
                if in_test_split(&key) == test {
                    members.push(Member {
                        shard: s as u32,
                        offset,
                        len: len as u32,
                        label,
                    });
                }
            }
            files.push(file);
        }
        if incomplete > 0 {
            eprintln!(
                "warning: {}: skipped {incomplete} examples without both an image and a .cls \
                 class",
                path.display()
            );
        }
        let classes = max_label.map_or(0, |m| m as usize + 1);
        if members.is_empty() || classes < 2 {
            return Err(Error::Data(format!(
                "{}: {} examples for the {} split and {classes} classes in {} shards (expected \
                 members KEY.jpg or KEY.png with KEY.cls, and at least 2 classes)",
                path.display(),
                members.len(),
                if test { "test" } else { "train" },
                paths.len()
            )));
        }
        Ok(Shards {
            name: format!(
                "shards-{}",
                path.file_stem().unwrap_or_default().to_string_lossy()
            ),
            paths,
            files,
            shape: [channels, size, size],
            classes,
            members,
        })
    }
}

/// What one shard holds: (key, image offset, image length, class) per complete example, and
/// the number of incomplete ones.
pub struct ShardIndex {
    /// Complete examples.
    pub examples: Vec<(String, u64, u64, u32)>,
    /// Examples without an image or a readable class.
    pub incomplete: usize,
}

/// Reads a shard's headers and `.cls` members (see the module doc).
pub fn index_shard<R: Read + Seek>(mut reader: R, path: &Path) -> Result<ShardIndex> {
    let bad = |e: std::io::Error| {
        Error::Data(format!(
            "{}: not a readable tar file ({e}); shards are plain (uncompressed) tar archives",
            path.display()
        ))
    };
    // A member that claims to run past the end (a truncated shard) holds no image.
    let total = reader.seek(SeekFrom::End(0)).map_err(bad)?;
    reader.seek(SeekFrom::Start(0)).map_err(bad)?;
    let mut archive = tar::Archive::new(reader);
    let mut index = ShardIndex {
        examples: Vec::new(),
        incomplete: 0,
    };
    let mut pending: Option<Pending> = None;
    let finish = |p: Option<Pending>, index: &mut ShardIndex| {
        if let Some(p) = p {
            match (p.image, p.label) {
                (Some((offset, len)), Some(label)) => {
                    index.examples.push((p.key, offset, len, label))
                }
                _ => index.incomplete += 1,
            }
        }
    };
    for entry in archive.entries_with_seek().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(bad)?.to_string_lossy().to_string();
        let Some((key, ext)) = key_and_ext(&name) else {
            continue;
        };
        if pending.as_ref().is_none_or(|p| p.key != key) {
            finish(pending.take(), &mut index);
            pending = Some(Pending {
                key: key.to_string(),
                ..Pending::default()
            });
        }
        let Some(p) = pending.as_mut() else { continue };
        match ext.to_ascii_lowercase().as_str() {
            "png" | "jpg" | "jpeg"
                if entry.size() <= MAX_MEMBER_BYTES
                    && entry.raw_file_position().checked_add(entry.size()) <= Some(total) =>
            {
                p.image = Some((entry.raw_file_position(), entry.size()));
            }
            "cls" if entry.size() <= 32 => {
                let mut text = String::new();
                if entry.read_to_string(&mut text).is_ok() {
                    p.label = text.trim().parse().ok().filter(|&k| k < 1 << 20);
                }
            }
            _ => {}
        }
    }
    finish(pending.take(), &mut index);
    Ok(index)
}

/// Reads `buf.len()` bytes at `offset` without moving a shared cursor, so worker threads can
/// read one file at once.
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            let n = std::os::windows::fs::FileExt::seek_read(
                file,
                &mut buf[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
        Ok(())
    }
    #[cfg(not(any(unix, windows)))]
    {
        // No positioned reads here (e.g. the web, which has no files anyway).
        let _ = (file, buf, offset);
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

impl Dataset for Shards {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn len(&self) -> usize {
        self.members.len()
    }
    fn image_shape(&self) -> [usize; 3] {
        self.shape
    }
    fn classes(&self) -> usize {
        self.classes
    }
    fn byte_pixels(&self) -> bool {
        true
    }
    fn example(&self, i: usize) -> Result<Example> {
        let m = self.members[i];
        let path = &self.paths[m.shard as usize];
        let mut bytes = vec![0; m.len as usize];
        read_exact_at(&self.files[m.shard as usize], &mut bytes, m.offset)
            .map_err(|e| Error::io(path, e))?;
        let image = super::decode_image(&bytes, self.shape, super::MAX_IMAGE_BYTES).map_err(
            |e| match e {
                Error::Data(msg) => Error::Data(format!(
                    "{}: member at byte {}: cannot decode image ({msg})",
                    path.display(),
                    m.offset
                )),
                e => e,
            },
        )?;
        Ok(Example {
            image,
            label: m.label,
            factors: None,
        })
    }
}
