//! The input pipeline on small generated data: batch order independent of the worker count and
//! of a resume, bounded read-ahead, both folder layouts, tar shards, stable splits, and
//! unreadable images skipped with a count up to a limit.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use mtdiff::data::pipeline::{
    batch_indices, examples, BadImages, Prefetcher, ReadyBatch, READY_PER_WORKER,
};
use mtdiff::data::shards::Shards;
use mtdiff::data::{folder::ImageFolder, DataSource, Dataset, Example};
use mtdiff::train::step_rng;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mtdiff-data-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A small image whose pixels identify `i`.
fn image_bytes(i: usize, jpeg: bool) -> Vec<u8> {
    let img = image::RgbImage::from_fn(6 + (i % 3) as u32, 5, |x, y| {
        image::Rgb([(i * 7 % 256) as u8, (x * 30) as u8, (y * 40) as u8])
    });
    let mut out = Vec::new();
    let format = if jpeg {
        image::ImageFormat::Jpeg
    } else {
        image::ImageFormat::Png
    };
    img.write_to(&mut std::io::Cursor::new(&mut out), format)
        .unwrap();
    out
}

/// DIR/<class>/NNN.png, `n` images over 3 classes.
fn class_folder(name: &str, n: usize) -> PathBuf {
    let dir = scratch(name);
    for i in 0..n {
        let class = dir.join(format!("c{}", i % 3));
        std::fs::create_dir_all(&class).unwrap();
        std::fs::write(
            class.join(format!("{i:03}.png")),
            image_bytes(i, i % 2 == 0),
        )
        .unwrap();
    }
    dir
}

fn plan(seed: u64, batch: usize, len: usize) -> impl Fn(u64) -> Vec<usize> + Send + Sync {
    move |s| batch_indices(&mut step_rng(seed, s), batch, len)
}

fn run_pipeline(
    data: Arc<dyn Dataset>,
    steps: std::ops::Range<u64>,
    workers: usize,
) -> Vec<ReadyBatch> {
    let len = data.len();
    let bad = Arc::new(BadImages::new(10));
    let mut p =
        Prefetcher::start(data, bad, plan(7, 5, len), 0..5, steps.clone(), workers).unwrap();
    steps.map(|_| p.next_batch().unwrap()).collect()
}

fn same(a: &[ReadyBatch], b: &[ReadyBatch]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.step == y.step
                && x.indices == y.indices
                && x.examples
                    .iter()
                    .zip(&y.examples)
                    .all(|(e, f)| e.image == f.image && e.label == f.label)
        })
}

#[test]
fn the_batches_do_not_depend_on_the_worker_count_or_on_a_resume() {
    let dir = class_folder("order", 40);
    let data: Arc<dyn Dataset> = Arc::new(ImageFolder::load(&dir, 8, 3, false).unwrap());
    let one = run_pipeline(data.clone(), 0..12, 1);
    for workers in [2, 3, 5] {
        assert!(
            same(&one, &run_pipeline(data.clone(), 0..12, workers)),
            "{workers} workers"
        );
    }
    // A data-parallel rank's share: rows 2..4 of each batch, the same examples as those rows.
    let bad = Arc::new(BadImages::new(10));
    let mut part =
        Prefetcher::start(data.clone(), bad, plan(7, 5, data.len()), 2..4, 0..12, 2).unwrap();
    for whole in &one {
        let b = part.next_batch().unwrap();
        assert_eq!(b.indices, whole.indices);
        assert_eq!(b.examples.len(), 2);
        assert!(b
            .examples
            .iter()
            .zip(&whole.examples[2..4])
            .all(|(e, f)| e.image == f.image));
    }
    // A resume at step 5 sees exactly the batches of steps 5.. of the uninterrupted run.
    assert!(same(&one[5..], &run_pipeline(data.clone(), 5..12, 2)));
    // Each batch is what a single thread decodes for the step's draw.
    let bad = BadImages::new(0);
    for b in &one {
        let direct = examples(data.as_ref(), &b.indices, &bad).unwrap();
        assert!(direct
            .iter()
            .zip(&b.examples)
            .all(|(e, f)| e.image == f.image));
        assert_eq!(b.indices, plan(7, 5, data.len())(b.step));
    }
}

/// A dataset that counts the examples decoded.
struct Counting {
    decoded: AtomicUsize,
}

impl Dataset for Counting {
    fn name(&self) -> String {
        "counting".into()
    }
    fn len(&self) -> usize {
        1000
    }
    fn image_shape(&self) -> [usize; 3] {
        [1, 2, 2]
    }
    fn classes(&self) -> usize {
        2
    }
    fn example(&self, i: usize) -> mtdiff::Result<Example> {
        self.decoded.fetch_add(1, Ordering::SeqCst);
        Ok(Example {
            image: vec![i as f32; 4],
            label: (i % 2) as u32,
            factors: None,
        })
    }
}

#[test]
fn the_workers_read_ahead_a_bounded_number_of_batches() {
    let data = Arc::new(Counting {
        decoded: AtomicUsize::new(0),
    });
    let (batch, workers) = (4, 3);
    let bad = Arc::new(BadImages::new(0));
    let mut p = Prefetcher::start(
        data.clone(),
        bad,
        plan(1, batch, 1000),
        0..batch,
        0..10_000,
        workers,
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let bound = workers * (READY_PER_WORKER + 1) * batch;
    let ahead = data.decoded.load(Ordering::SeqCst);
    assert!(
        ahead > 0 && ahead <= bound,
        "{ahead} examples decoded ahead, bound {bound}"
    );
    for _ in 0..7 {
        p.next_batch().unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let ahead = data.decoded.load(Ordering::SeqCst) - 7 * batch;
    assert!(
        ahead <= bound,
        "{ahead} examples decoded ahead after 7 steps, bound {bound}"
    );
    drop(p); // stops the workers mid-range without hanging
}

#[test]
fn a_split_does_not_change_when_files_are_added() {
    let dir = class_folder("split", 60);
    let names = |test: bool| -> BTreeSet<(u32, Vec<u8>)> {
        let d = ImageFolder::load(&dir, 8, 3, test).unwrap();
        (0..d.len())
            .map(|i| {
                let e = d.example(i).unwrap();
                (
                    e.label,
                    e.image.iter().map(|v| ((v + 1.0) * 100.0) as u8).collect(),
                )
            })
            .collect()
    };
    let (train, test) = (names(false), names(true));
    assert!(!test.is_empty() && train.len() > 3 * test.len());
    assert!(train.is_disjoint(&test));
    for i in 60..90 {
        std::fs::write(
            dir.join(format!("c{}/{i:03}.png", i % 3)),
            image_bytes(i, false),
        )
        .unwrap();
    }
    let (train2, test2) = (names(false), names(true));
    assert!(train.is_subset(&train2) && test.is_subset(&test2));
    assert!(train2.len() + test2.len() > train.len() + test.len());
}

#[test]
fn a_flat_folder_takes_its_classes_from_labels_csv() {
    let dir = scratch("flat");
    let mut csv = String::from("file,label\n# a comment\n");
    for i in 0..30 {
        std::fs::write(dir.join(format!("img{i}.png")), image_bytes(i, false)).unwrap();
        csv += &format!("img{i}.png,{}\n", ["cat", "dog", "emu"][i % 3]);
    }
    std::fs::write(dir.join("labels.csv"), &csv).unwrap();
    let train = ImageFolder::load(&dir, 8, 1, false).unwrap();
    let test = ImageFolder::load(&dir, 8, 1, true).unwrap();
    assert_eq!(train.class_names(), ["cat", "dog", "emu"]);
    assert_eq!(train.len() + test.len(), 30);
    for d in [&train, &test] {
        for i in 0..d.len() {
            let e = d.example(i).unwrap();
            assert_eq!(e.image.len(), 64);
            // Image i has red value i·7 and class i mod 3.
            let i_of = (0..30).find(|&k| {
                let want = image::load_from_memory(&image_bytes(k, false)).unwrap();
                let got = mtdiff::data::image_to_chw(&want, [1, 8, 8]);
                got == e.image
            });
            assert_eq!(i_of.map(|k| (k % 3) as u32), Some(e.label));
        }
    }
    // Numeric classes: class k is the number k.
    std::fs::write(
        dir.join("labels.csv"),
        "img0.png,4\nimg1.png,0\nimg2.png,2\n",
    )
    .unwrap();
    let d = ImageFolder::load(&dir, 8, 1, false).unwrap();
    assert_eq!(d.classes(), 5);
    // A malformed line names its line number.
    std::fs::write(dir.join("labels.csv"), "img0.png,1\nimg1.png\n").unwrap();
    let e = ImageFolder::load(&dir, 8, 1, false)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("labels.csv:2") && e.contains("FILE,CLASS"),
        "{e}"
    );
}

/// A tar shard of (key, member, bytes).
fn write_tar(path: &Path, members: &[(String, Vec<u8>)]) {
    let mut tar = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    tar.finish().unwrap();
}

#[test]
fn tar_shards_read_the_same_images_as_a_folder() {
    let dir = scratch("shards");
    let mut want = Vec::new(); // (key, label, image) of every complete example
    for s in 0..3 {
        let mut members = Vec::new();
        for j in 0..15 {
            let i = s * 15 + j;
            let key = format!("sub/{i:04}");
            let bytes = image_bytes(i, i % 2 == 1);
            members.push((format!("{key}.jpg"), bytes.clone()));
            members.push((format!("{key}.json"), b"{}".to_vec()));
            if i != 7 {
                members.push((format!("{key}.cls"), format!("{}\n", i % 4).into_bytes()));
                want.push((key, (i % 4) as u32, bytes));
            }
        }
        write_tar(&dir.join(format!("shard-{s}.tar")), &members);
    }
    std::fs::write(dir.join("notes.txt"), "not a shard").unwrap();
    let train = Shards::load(&dir, 8, 3, false).unwrap();
    let test = Shards::load(&dir, 8, 3, true).unwrap();
    assert_eq!(
        train.len() + test.len(),
        44,
        "example 7 has no class and is skipped"
    );
    assert_eq!(train.classes(), 4);
    let decoded: BTreeSet<(u32, Vec<i32>)> = [&train, &test]
        .iter()
        .flat_map(|d| (0..d.len()).map(|i| d.example(i).unwrap()))
        .map(|e| {
            (
                e.label,
                e.image.iter().map(|v| (v * 1000.0) as i32).collect(),
            )
        })
        .collect();
    let expected: BTreeSet<(u32, Vec<i32>)> = want
        .iter()
        .map(|(_, l, b)| {
            let img = image::load_from_memory(b).unwrap();
            let v = mtdiff::data::image_to_chw(&img, [3, 8, 8]);
            (*l, v.iter().map(|v| (v * 1000.0) as i32).collect())
        })
        .collect();
    assert_eq!(decoded, expected);
    // Through DataSource, a single shard file also works.
    let one = DataSource::parse(
        &format!("shards:{}", dir.join("shard-0.tar").display()),
        8,
        3,
    )
    .unwrap()
    .load(false)
    .unwrap();
    assert!(one.len() > 5);
    // A file that is not a tar archive is refused with a message.
    std::fs::write(dir.join("broken.tar"), vec![7u8; 700]).unwrap();
    let e = Shards::load(&dir.join("broken.tar"), 8, 3, false)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("broken.tar"), "{e}");
}

#[test]
fn unreadable_images_are_skipped_with_a_count_until_the_limit() {
    let dir = class_folder("bad", 30);
    // Three corrupt files (a truncated PNG, text, an empty file), in any split.
    std::fs::write(dir.join("c0/900.png"), &image_bytes(1, false)[..40]).unwrap();
    std::fs::write(dir.join("c1/901.png"), "not an image").unwrap();
    std::fs::write(dir.join("c2/902.jpg"), "").unwrap();
    let all: Vec<Arc<dyn Dataset>> = [false, true]
        .iter()
        .map(|&t| Arc::new(ImageFolder::load(&dir, 8, 3, t).unwrap()) as Arc<dyn Dataset>)
        .collect();
    let total_bad: usize = all
        .iter()
        .map(|d| {
            let bad = BadImages::new(10);
            let every: Vec<usize> = (0..d.len()).collect();
            let ex = examples(d.as_ref(), &every, &bad).unwrap();
            assert_eq!(
                ex.len(),
                d.len(),
                "each bad image is replaced by a readable one"
            );
            bad.count()
        })
        .sum();
    assert_eq!(total_bad, 3);
    // With a limit of 0 the first bad image stops the pipeline with a message naming it.
    let d = all.iter().find(|d| {
        let bad = BadImages::new(10);
        let every: Vec<usize> = (0..d.len()).collect();
        examples(d.as_ref(), &every, &bad).unwrap();
        bad.count() > 0
    });
    let d = d.unwrap();
    let every: Vec<usize> = (0..d.len()).collect();
    let e = examples(d.as_ref(), &every, &BadImages::new(0))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("could not be read or decoded, more than --max-bad-images 0")
            && e.contains("cannot decode image")
            && e.contains("raise --max-bad-images"),
        "{e}"
    );
}
