//! `mtdiff data`: the input pipeline alone, as training runs it (same batches, same workers),
//! with its throughput, CPU use and peak memory.

use std::sync::Arc;
use std::time::Instant;

use super::pipeline::{batch_indices, BadImages, Prefetcher};
use super::{DataSource, Dataset};
use crate::error::Result;
use crate::train::step_rng;

/// What `mtdiff data` runs.
#[derive(Clone, Debug)]
pub struct MeasureArgs {
    /// The data source.
    pub source: DataSource,
    /// Read the test split instead of the train split.
    pub test: bool,
    /// Images per batch.
    pub batch: usize,
    /// Batches to decode.
    pub batches: u64,
    /// Worker threads (at least 1).
    pub workers: usize,
    /// Seed of the batch order.
    pub seed: u64,
    /// Distinct unreadable images tolerated.
    pub max_bad_images: usize,
}

/// What one measurement found.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// The dataset's name.
    pub name: String,
    /// Examples in the split.
    pub examples: usize,
    /// Classes.
    pub classes: usize,
    /// [C, H, W] of a decoded example.
    pub shape: [usize; 3],
    /// Seconds to list or index the dataset.
    pub open_seconds: f64,
    /// Seconds from the start to the first batch in hand.
    pub first_batch_seconds: f64,
    /// Seconds for all batches, after the dataset was opened.
    pub seconds: f64,
    /// Images decoded.
    pub images: u64,
    /// CPU seconds (user + system) of the process while the batches were decoded.
    pub cpu_seconds: Option<f64>,
    /// The process's peak resident memory, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Unreadable images skipped.
    pub bad_images: usize,
}

impl Measurement {
    /// Images per second over all batches.
    pub fn images_per_second(&self) -> f64 {
        self.images as f64 / self.seconds.max(1e-9)
    }

    /// A few lines for the terminal.
    pub fn report(&self, workers: usize) -> String {
        let [c, h, w] = self.shape;
        let mut s = format!(
            "data: {} ({} examples, {} classes, decoded to {c}×{h}×{w}), {workers} workers\n\
             opened in {:.2} s; first batch after {:.2} s\n\
             {} images in {:.2} s: {:.0} images/s\n",
            self.name,
            self.examples,
            self.classes,
            self.open_seconds,
            self.first_batch_seconds,
            self.images,
            self.seconds,
            self.images_per_second()
        );
        if let Some(cpu) = self.cpu_seconds {
            s += &format!(
                "CPU: {cpu:.1} s, {:.2} cores busy on average\n",
                cpu / self.seconds.max(1e-9)
            );
        }
        if let Some(rss) = self.peak_rss_bytes {
            s += &format!("peak memory (resident): {} MiB\n", rss >> 20);
        }
        s += &format!("unreadable images skipped: {}", self.bad_images);
        s
    }
}

/// CPU seconds (user + system) and peak resident bytes of this process so far.
fn process_usage() -> (Option<f64>, Option<u64>) {
    #[cfg(unix)]
    {
        // SAFETY: getrusage only writes the struct it is given.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0 {
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
            // ru_maxrss is in KiB on Linux (bytes on macOS).
            let unit = if cfg!(target_os = "macos") { 1 } else { 1024 };
            return (
                Some(secs(ru.ru_utime) + secs(ru.ru_stime)),
                Some(ru.ru_maxrss as u64 * unit),
            );
        }
    }
    (None, None)
}

/// Opens the dataset and decodes `batches` batches through the training pipeline.
pub fn measure(args: &MeasureArgs) -> Result<Measurement> {
    let start = Instant::now();
    let data: Arc<dyn Dataset> = Arc::from(args.source.load(args.test)?);
    let open_seconds = start.elapsed().as_secs_f64();
    super::pipeline::check_queue_fits(data.image_shape(), args.batch, args.workers)?;
    let bad = Arc::new(BadImages::new(args.max_bad_images));
    let (seed, batch, len) = (args.seed, args.batch, data.len());
    let (cpu0, _) = process_usage();
    let t0 = Instant::now();
    let mut batches = Prefetcher::start(
        data.clone(),
        bad.clone(),
        move |s| batch_indices(&mut step_rng(seed, s), batch, len),
        0..batch,
        0..args.batches,
        args.workers,
    )?;
    let mut images = 0u64;
    let mut first_batch_seconds = 0.0;
    for s in 0..args.batches {
        let ready = batches.next_batch()?;
        images += ready.examples.len() as u64;
        if s == 0 {
            first_batch_seconds = start.elapsed().as_secs_f64();
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    drop(batches);
    let (cpu1, peak) = process_usage();
    Ok(Measurement {
        name: data.name(),
        examples: data.len(),
        classes: data.classes(),
        shape: data.image_shape(),
        open_seconds,
        first_batch_seconds,
        seconds,
        images,
        cpu_seconds: cpu0.zip(cpu1).map(|(a, b)| b - a),
        peak_rss_bytes: peak,
        bad_images: bad.count(),
    })
}
