//! Writes a synthetic image dataset for measuring the input pipeline (`mtdiff data`): COUNT small
//! JPEGs (sides drawn from MIN..=MAX, default 64..=96, so the pipeline resizes most of them) in
//! CLASSES classes, each a noisy colour gradient with a class-dependent disk, as a folder with one
//! subfolder per class, or with `--shards N` as WebDataset-style tar shards of N examples
//! (`KEY.jpg` + `KEY.cls`). Deterministic for a given seed.
//!
//! ```text
//! cargo run --release -p mtdiff --example make_image_folder -- /tmp/synth-100k 100000
//! cargo run --release -p mtdiff --example make_image_folder -- /tmp/shards 100000 --shards 5000
//! mtdiff data --data folder:/tmp/synth-100k --image-size 64 --batch 256
//! ```

use std::io::Cursor;
use std::path::{Path, PathBuf};

struct Args {
    dir: PathBuf,
    count: usize,
    classes: usize,
    min: u32,
    max: u32,
    shards: Option<usize>,
    seed: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: make_image_folder DIR COUNT [--classes 10] [--min 64] [--max 96] \
         [--shards PER_SHARD] [--seed 1]"
    );
    std::process::exit(2)
}

fn parse() -> Args {
    let mut it = std::env::args().skip(1);
    let (Some(dir), Some(count)) = (it.next(), it.next()) else {
        usage()
    };
    let num = |v: Option<String>| {
        v.and_then(|s| s.parse::<u64>().ok())
            .unwrap_or_else(|| usage())
    };
    let mut a = Args {
        dir: dir.into(),
        count: num(Some(count)) as usize,
        classes: 10,
        min: 64,
        max: 96,
        shards: None,
        seed: 1,
    };
    while let Some(flag) = it.next() {
        let v = num(it.next());
        match flag.as_str() {
            "--classes" => a.classes = v.max(2) as usize,
            "--min" => a.min = v.max(1) as u32,
            "--max" => a.max = v.max(1) as u32,
            "--shards" => a.shards = Some(v.max(1) as usize),
            "--seed" => a.seed = v,
            _ => usage(),
        }
    }
    a.max = a.max.max(a.min);
    a
}

/// SplitMix64: example i's own stream, so any subset can be made in any order.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Example i: its class and JPEG bytes.
fn example(a: &Args, i: usize) -> (usize, Vec<u8>) {
    let r = |k: u64| mix(a.seed ^ mix(i as u64 * 16 + k));
    let class = (r(0) % a.classes as u64) as usize;
    let side = |k| a.min + (r(k) % (a.max - a.min + 1) as u64) as u32;
    let (w, h) = (side(1), side(2));
    let c0 = [r(3) as u8, r(4) as u8, r(5) as u8];
    let c1 = [r(6) as u8, r(7) as u8, r(8) as u8];
    // The disk's centre turns with the class; its colour is the class's hue.
    let angle = class as f32 / a.classes as f32 * std::f32::consts::TAU;
    let (cx, cy) = (
        w as f32 * (0.5 + 0.25 * angle.cos()),
        h as f32 * (0.5 + 0.25 * angle.sin()),
    );
    let radius = w.min(h) as f32 * 0.2;
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        if dx * dx + dy * dy < radius * radius {
            let t = class as f32 / a.classes as f32;
            return image::Rgb([(255.0 * t) as u8, (255.0 * (1.0 - t)) as u8, 128]);
        }
        // A gradient with pixel noise (±16), so the JPEGs are as large as photos' at this size.
        let t = (x + y) as f32 / (w + h) as f32;
        let noise = mix(r(9) ^ ((y as u64) << 32 | x as u64));
        image::Rgb(std::array::from_fn(|k| {
            let v = c0[k] as f32 * (1.0 - t) + c1[k] as f32 * t;
            (v + ((noise >> (8 * k)) & 31) as f32 - 16.0).clamp(0.0, 255.0) as u8
        }))
    });
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Jpeg)
        .expect("encoding a JPEG in memory");
    (class, bytes)
}

fn write_folder(a: &Args, range: std::ops::Range<usize>) {
    for i in range {
        let (class, bytes) = example(a, i);
        let dir = a.dir.join(format!("class{class:02}"));
        std::fs::write(dir.join(format!("{i:07}.jpg")), bytes).expect("writing an image");
    }
}

fn write_shard(a: &Args, shard: usize, per: usize) {
    let path = a.dir.join(format!("shard-{shard:05}.tar"));
    let file = std::fs::File::create(&path).expect("creating a shard");
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    let add = |tar: &mut tar::Builder<_>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, data)
            .expect("writing a shard");
    };
    for i in shard * per..((shard + 1) * per).min(a.count) {
        let (class, bytes) = example(a, i);
        add(&mut tar, &format!("{i:07}.jpg"), &bytes);
        add(
            &mut tar,
            &format!("{i:07}.cls"),
            class.to_string().as_bytes(),
        );
    }
    tar.finish().expect("finishing a shard");
}

fn main() {
    let a = parse();
    std::fs::create_dir_all(&a.dir).expect("creating the output folder");
    if a.shards.is_none() {
        for k in 0..a.classes {
            std::fs::create_dir_all(a.dir.join(format!("class{k:02}"))).expect("class folder");
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let a = &a;
            s.spawn(move || match a.shards {
                None => {
                    let share = a.count.div_ceil(threads);
                    write_folder(a, t * share..((t + 1) * share).min(a.count));
                }
                Some(per) => {
                    for shard in (t..a.count.div_ceil(per)).step_by(threads) {
                        write_shard(a, shard, per);
                    }
                }
            });
        }
    });
    println!(
        "wrote {} examples in {} classes to {} in {:.1} s",
        a.count,
        a.classes,
        Path::new(&a.dir).display(),
        start.elapsed().as_secs_f64()
    );
}
