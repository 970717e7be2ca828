//! Replays the fuzz targets' seeds and every crash input found so far (`trainer/fuzz/seeds/` and
//! `trainer/fuzz/regressions/`, see `.ci/fuzz`) through the same entry points, on stable, under
//! the same capped allocator; plus hand-made hostile inputs that must be refused without
//! allocating what their headers claim.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use mtdiff::fuzzing::{self, CappedAlloc, TARGETS};

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("trainer/fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"))
        .collect();
    v.sort();
    v
}

/// Panics seen by the hook [`count_panics`] installs: the loaders catch a third-party decoder's
/// panic and turn it into an error (as they should in a run), so the replay counts them instead.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
}

#[test]
fn every_seed_and_saved_crash_input_runs_through_its_target_without_a_panic() {
    count_panics();
    let mut ran = 0;
    for target in &TARGETS {
        let seeds = files(&fuzz_dir().join("seeds").join(target.name));
        assert!(
            !seeds.is_empty(),
            "no seeds for fuzz target {}",
            target.name
        );
        let regressions = files(&fuzz_dir().join("regressions").join(target.name));
        for f in seeds.iter().chain(&regressions) {
            // Straight to stderr (not captured), so an abort in the allocator names its input.
            let _ = writeln!(
                std::io::stderr(),
                "fuzz replay {}: {}",
                target.name,
                f.display()
            );
            let bytes = std::fs::read(f).unwrap();
            let before = PANICS.load(Ordering::SeqCst);
            (target.run)(&bytes);
            assert_eq!(
                PANICS.load(Ordering::SeqCst),
                before,
                "fuzz target {} panicked on {} (caught or not)",
                target.name,
                f.display()
            );
            ran += 1;
        }
    }
    assert!(ran >= TARGETS.len());
}

#[test]
fn a_gzip_bomb_stops_at_the_cap() {
    // 17 MiB of zeros gzip to ~17 KB; the fuzzing cap is 16 MiB.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..17 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    let e = refused(mtdiff::data::idx::inflate(
        &bomb,
        Path::new("bomb.gz"),
        fuzzing::IDX_CAP,
    ));
    assert!(e.contains("more than 16777216 bytes"), "{e}");
    fuzzing::idx(&bomb);
}

#[test]
fn an_idx_header_claiming_2_to_the_96_bytes_is_refused() {
    let mut b = vec![0, 0, 8, 3];
    for _ in 0..3 {
        b.extend_from_slice(&u32::MAX.to_be_bytes());
    }
    b.extend_from_slice(&[0; 64]);
    let e = refused(mtdiff::data::idx::parse_images(&b, Path::new("huge.idx")));
    assert!(e.contains("more than 2^64"), "{e}");
}

#[test]
fn a_png_claiming_a_huge_canvas_is_refused_before_its_pixels_are_allocated() {
    // IHDR of 60000 × 60000 RGBA (14.4 GB decoded), then a few bytes of image data.
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&60_000u32.to_be_bytes());
    ihdr.extend_from_slice(&60_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut idat = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    idat.write_all(&[0; 4096]).unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [
        (b"IHDR", ihdr),
        (b"IDAT", idat.finish().unwrap()),
        (b"IEND", vec![]),
    ] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(&data);
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    let e = refused(mtdiff::data::decode_image(
        &png,
        [3, 8, 8],
        fuzzing::IMAGE_CAP,
    ));
    assert!(e.contains("limit"), "{e}");
}

#[test]
fn a_safetensors_header_claiming_a_huge_length_is_refused() {
    let mut b = (u64::MAX - 7).to_le_bytes().to_vec();
    b.extend_from_slice(b"{}");
    let e = refused(mtdiff::checkpoint::decode(
        &b,
        Path::new("huge.safetensors"),
    ));
    assert!(e.contains("corrupt or truncated"), "{e}");
}

/// The error of a loader that must refuse its input.
fn refused<T>(r: mtdiff::Result<T>) -> String {
    match r {
        Ok(_) => panic!("the hostile input was accepted"),
        Err(e) => e.to_string(),
    }
}

/// CRC-32 (IEEE) of a PNG chunk's type and data.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn the_seeds_are_valid_inputs_so_the_fuzzers_start_inside_the_parsers() {
    let seeds = fuzz_dir().join("seeds");
    let read = |t: &str, f: &str| std::fs::read(seeds.join(t).join(f)).unwrap();
    let p = Path::new("seed");
    for f in ["images3.idx", "images3.idx.gz"] {
        let bytes = mtdiff::data::idx::inflate(&read("idx", f), p, fuzzing::IDX_CAP).unwrap();
        let (n, r, c, _) = mtdiff::data::idx::parse_images(&bytes, p).unwrap();
        assert_eq!((n, r, c), (3, 28, 28));
    }
    for f in ["labels3.idx", "labels3.idx.gz"] {
        let bytes = mtdiff::data::idx::inflate(&read("idx", f), p, fuzzing::IDX_CAP).unwrap();
        assert_eq!(mtdiff::data::idx::parse_labels(&bytes, p).unwrap().len(), 3);
    }
    for f in ["grey.png", "rgb.png", "rgba.png", "palette.png", "rgb.jpg"] {
        let img = mtdiff::data::decode_image(&read("image", f), [3, 8, 8], fuzzing::IMAGE_CAP);
        assert_eq!(img.unwrap().len(), 3 * 8 * 8, "{f}");
    }
    let tar = read("shard", "two.tar");
    let index = mtdiff::data::shards::index_shard(std::io::Cursor::new(&tar), p).unwrap();
    let labels: Vec<u32> = index.examples.iter().map(|e| e.3).collect();
    assert_eq!((labels, index.incomplete), (vec![3, 7], 1));
    for &(_, offset, len, _) in &index.examples {
        let member = &tar[offset as usize..(offset + len) as usize];
        let img = mtdiff::data::decode_image(member, [3, 8, 8], fuzzing::IMAGE_CAP);
        assert_eq!(img.unwrap().len(), 3 * 8 * 8);
    }
    let ckpt = mtdiff::checkpoint::decode(&read("checkpoint", "small.safetensors"), p).unwrap();
    assert_eq!(ckpt.tensor("param.a").unwrap().shape, vec![2, 3]);
    ckpt.meta.train.validate().unwrap();
    for f in ["main_job.toml", "tiny.toml"] {
        let text = String::from_utf8(read("config", f)).unwrap();
        let cfg = mtdiff::config::TrainConfig::from_toml_str(&text, p).unwrap();
        cfg.validate().unwrap();
    }
    let labels = mtdiff_model::ModalityKind::Label { classes: 10 };
    let (name, value) = mtdiff::sample::split_given("label=0,1,2,9").unwrap();
    assert_eq!(
        mtdiff::sample::parse_given_value(&labels, name, value).unwrap(),
        mtdiff::sample::GivenValue::Labels(vec![0, 1, 2, 9])
    );
}
