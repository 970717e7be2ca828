//! Entry points for fuzzing every loader of untrusted bytes, shared by the coverage-guided fuzz
//! targets (`trainer/fuzz`, cargo-fuzz on a nightly toolchain) and by the stable test that replays
//! their seeds and every crash found so far (`cargo test --test fuzz_regressions`).
//!
//! Each function takes arbitrary bytes and must return, never panic, hang or allocate past the
//! caps below; a loader's error is a normal outcome. Each [`Target`] has a name (the fuzz target's
//! and its corpus folders') and its function.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;

use mtdiff_model::ModalityKind;

/// Decompressed IDX files stop at this many bytes under fuzzing (users get
/// [`crate::data::idx::MAX_FILE_BYTES`]); the harness's allocation limit sits above it.
pub const IDX_CAP: usize = 16 << 20;

/// Decoded images stop at this many bytes under fuzzing (users get
/// [`crate::data::MAX_IMAGE_BYTES`]).
pub const IMAGE_CAP: u64 = 16 << 20;

/// No single allocation may exceed this under fuzzing: 64 MiB, four times the largest cap above.
pub const ALLOC_CAP: usize = 64 << 20;

/// The system allocator with a cap on any one allocation ([`ALLOC_CAP`]): installed as the
/// global allocator of the fuzz targets and of the replay test, it turns a header that claims a
/// huge size and gets it allocated into a crash with its input saved, not a slow run or an
/// out-of-memory kill.
pub struct CappedAlloc;

/// Aborts (an allocator must not unwind) after saying why; libFuzzer saves the input.
fn check_size(size: usize) {
    if size > ALLOC_CAP {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "an allocation of {size} bytes, above the fuzzing cap of {ALLOC_CAP} bytes"
        );
        std::process::abort();
    }
}

// SAFETY: every call forwards to the system allocator unchanged after the size check.
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check_size(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// One fuzz target: its name and the function fed with each input.
pub struct Target {
    /// The cargo-fuzz target's name, also its seed and regression folders' name.
    pub name: &'static str,
    /// Runs one input.
    pub run: fn(&[u8]),
}

/// Every fuzz target.
pub const TARGETS: [Target; 6] = [
    Target {
        name: "idx",
        run: idx,
    },
    Target {
        name: "image",
        run: image,
    },
    Target {
        name: "shard",
        run: shard,
    },
    Target {
        name: "checkpoint",
        run: checkpoint,
    },
    Target {
        name: "config",
        run: config,
    },
    Target {
        name: "given",
        run: given,
    },
];

/// An IDX file, gzipped or raw, parsed as an image file and as a label file.
pub fn idx(data: &[u8]) {
    let path = Path::new("fuzz.idx");
    if let Ok(bytes) = crate::data::idx::inflate(data, path, IDX_CAP) {
        let _ = crate::data::idx::parse_images(&bytes, path);
        let _ = crate::data::idx::parse_labels(&bytes, path);
    }
}

/// An image file of a folder dataset (any format the build decodes), resized to 8×8 RGB.
pub fn image(data: &[u8]) {
    let _ = crate::data::decode_image(data, [3, 8, 8], IMAGE_CAP);
}

/// A tar shard of a `shards:` dataset: its index (headers, keys, `.cls` members), then the
/// first examples' images decoded from where the index says they lie.
pub fn shard(data: &[u8]) {
    let path = Path::new("fuzz.tar");
    let Ok(index) = crate::data::shards::index_shard(std::io::Cursor::new(data), path) else {
        return;
    };
    for &(_, offset, len, _) in index.examples.iter().take(4) {
        let member = usize::try_from(offset).ok().and_then(|start| {
            let end = start.checked_add(usize::try_from(len).ok()?)?;
            data.get(start..end)
        });
        assert!(member.is_some(), "the index points inside the shard");
        if let Some(bytes) = member {
            let _ = crate::data::decode_image(bytes, [3, 8, 8], IMAGE_CAP);
        }
    }
}

/// A checkpoint: the safetensors header and tensor table, the `mtdiff` JSON metadata, the
/// tensors' dtypes and shapes, and the run configuration inside it.
pub fn checkpoint(data: &[u8]) {
    if let Ok(ckpt) = crate::checkpoint::decode(data, Path::new("fuzz.safetensors")) {
        let _ = ckpt.meta.train.validate();
        for t in ckpt.tensors.values() {
            assert_eq!(
                t.values.len(),
                t.shape.iter().product::<usize>(),
                "a decoded tensor's values fill its shape"
            );
        }
    }
}

/// A run configuration's TOML text, then its validation and its data source.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = crate::config::TrainConfig::from_toml_str(text, Path::new("fuzz.toml")) {
        if cfg.validate().is_ok() {
            let _ = cfg.source();
            let _ = cfg.lr_at(cfg.steps);
        }
    }
}

/// A `--given NAME=VALUE`, its value parsed for every kind of modality.
pub fn given(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((name, value)) = crate::sample::split_given(text) else {
        return;
    };
    for kind in [
        ModalityKind::Label { classes: 10 },
        ModalityKind::Vector { dim: 16 },
        ModalityKind::Image,
        ModalityKind::MaskedImage,
    ] {
        let _ = crate::sample::parse_given_value(&kind, name, value);
    }
}
