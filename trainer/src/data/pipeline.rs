//! The input pipeline: batches decoded on worker threads ahead of the step that needs them, in a
//! bounded queue, in an order that is a function of (seed, step) alone.
//!
//! Step s's examples are `batch_indices(step_rng(seed, s))`: drawn with replacement, so neither
//! the worker count, nor a resume, nor a data-parallel rank's share changes which examples a step
//! sees. Worker w decodes the batches of steps start + w, start + w + W, …; each worker's queue
//! holds at most [`READY_PER_WORKER`] finished batches, so at most W·(READY_PER_WORKER + 1)
//! batches exist at once, whatever the dataset's size; images decoded from files wait there as
//! bytes (see [`Dataset::byte_pixels`]) and become f32 when the step takes them. An example that
//! cannot be read or decoded is replaced by the next readable one (index + 1, + 2, … modulo the
//! length), a deterministic choice, and counted in [`BadImages`]; past the limit the run stops
//! with an error naming them.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use mtdiff_engine::rng::CpuRng;

use super::{Dataset, Example};
use crate::error::{Error, Result};

/// Finished batches each worker may hold before it waits for the training loop.
pub const READY_PER_WORKER: usize = 2;

/// How many distinct unreadable images a run tolerates by default (`--max-bad-images`).
pub const DEFAULT_MAX_BAD_IMAGES: usize = 100;

/// The examples of one step's batch: indices drawn with replacement from `rng`, which then goes
/// on to draw the step's masks, timesteps and label dropout.
pub fn batch_indices(rng: &mut CpuRng, batch: usize, len: usize) -> Vec<usize> {
    (0..batch).map(|_| rng.below(len)).collect()
}

/// The examples that could not be read or decoded, each counted once, with a limit.
pub struct BadImages {
    max: usize,
    seen: Mutex<BTreeMap<usize, String>>,
}

impl BadImages {
    /// Tolerates up to `max` distinct bad examples.
    pub fn new(max: usize) -> BadImages {
        BadImages {
            max,
            seen: Mutex::new(BTreeMap::new()),
        }
    }

    /// Number of distinct bad examples met so far.
    pub fn count(&self) -> usize {
        self.seen.lock().map_or(0, |s| s.len())
    }

    /// Records example `i`'s failure (printing a warning the first time); an error once more
    /// than `max` distinct examples failed.
    fn record(&self, i: usize, why: String) -> Result<()> {
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| Error::Data("a data worker stopped while recording a bad image".into()))?;
        if !seen.contains_key(&i) {
            eprintln!(
                "warning: skipped an unreadable image ({why}); {} so far, --max-bad-images {}",
                seen.len() + 1,
                self.max
            );
            seen.insert(i, why);
        }
        if seen.len() > self.max {
            let first: Vec<&str> = seen.values().take(3).map(String::as_str).collect();
            return Err(Error::Data(format!(
                "{} images could not be read or decoded, more than --max-bad-images {}; the \
                 first: {}. Remove or re-encode them, or raise --max-bad-images",
                seen.len(),
                self.max,
                first.join("; ")
            )));
        }
        Ok(())
    }
}

/// Example `i`, or the next readable one after it (modulo the length) when it is unreadable.
pub fn fetch(data: &dyn Dataset, i: usize, bad: &BadImages) -> Result<Example> {
    let n = data.len();
    for k in 0..n {
        let j = (i + k) % n;
        match data.example(j) {
            Ok(e) => return Ok(e),
            Err(e @ (Error::Data(_) | Error::Io { .. })) => bad.record(j, e.to_string())?,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Data(format!(
        "no example of {} could be read",
        data.name()
    )))
}

/// The examples at `indices` (see [`fetch`]), decoded on this thread.
pub fn examples(data: &dyn Dataset, indices: &[usize], bad: &BadImages) -> Result<Vec<Example>> {
    indices.iter().map(|&i| fetch(data, i, bad)).collect()
}

/// The examples at `indices` (see [`fetch`]), decoded on `workers` scoped threads, each taking
/// a contiguous share; the same examples as [`examples`] in the same order.
pub fn examples_in_parallel(
    data: &dyn Dataset,
    indices: &[usize],
    bad: &BadImages,
    workers: usize,
) -> Result<Vec<Example>> {
    let share = indices.len().div_ceil(workers.max(1)).max(1);
    if share >= indices.len() {
        return examples(data, indices, bad);
    }
    std::thread::scope(|s| {
        let parts: Vec<_> = indices
            .chunks(share)
            .map(|part| s.spawn(move || examples(data, part, bad)))
            .collect();
        let mut out = Vec::with_capacity(indices.len());
        for p in parts {
            out.extend(
                p.join()
                    .map_err(|_| Error::Data("a data worker thread panicked".into()))??,
            );
        }
        Ok(out)
    })
}

/// Refuses a pipeline whose batches in flight (W·([`READY_PER_WORKER`] + 1) of `batch` f32
/// images of `shape`) would not fit in the host memory available now.
pub fn check_queue_fits(shape: [usize; 3], batch: usize, workers: usize) -> Result<()> {
    let Some(room) = mtdiff_engine::host_memory_room() else {
        return Ok(());
    };
    let batches = (workers.max(1) * (READY_PER_WORKER + 1)) as u128;
    let need = batches * batch as u128 * shape.iter().product::<usize>() as u128 * 4;
    if need > room as u128 {
        let [c, h, w] = shape;
        return Err(Error::Data(format!(
            "the data pipeline holds up to {batches} batches of {batch} images of {c}×{h}×{w} \
             ({} MiB as f32), more than the {} MiB of memory available: lower --image-size \
             (now {h}), --batch or --data-workers",
            need >> 20,
            room >> 20
        )));
    }
    Ok(())
}

/// Worker threads for decoding: the machine's logical CPUs (1 if unknown).
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The worker count of a `--data-workers` / `--workers` flag: `n`, or [`default_workers`] for 0.
pub fn workers_or_default(n: usize) -> usize {
    match n {
        0 => default_workers(),
        n => n,
    }
}

/// One step's batch as the workers deliver it.
pub struct ReadyBatch {
    /// The step.
    pub step: u64,
    /// The indices drawn for it, the whole batch's (before replacing unreadable ones).
    pub indices: Vec<usize>,
    /// The decoded examples of the rows the pipeline serves.
    pub examples: Vec<Example>,
}

/// A batch waiting in a queue: as decoded, or with its pixels packed back into the bytes they
/// came from (datasets whose [`Dataset::byte_pixels`] is true), a quarter of the memory.
enum QueuedBatch {
    Decoded(ReadyBatch),
    Packed {
        step: u64,
        indices: Vec<usize>,
        /// Each example's label and factors, its pixels emptied.
        examples: Vec<Example>,
        /// Every example's pixels, p for the value p/127.5 − 1, one example after the other.
        bytes: Vec<u8>,
    },
}

impl QueuedBatch {
    /// Decodes step `step`'s examples, packing each one's pixels into bytes as soon as it is
    /// decoded when `byte_pixels`, so a worker never holds a whole batch of f32 pixels.
    fn decode(
        data: &dyn Dataset,
        bad: &BadImages,
        step: u64,
        indices: Vec<usize>,
        rows: Range<usize>,
        byte_pixels: bool,
    ) -> Result<QueuedBatch> {
        let mine = indices.get(rows.clone()).ok_or_else(|| {
            Error::Data(format!(
                "internal error: rows {rows:?} of a batch of {}",
                indices.len()
            ))
        })?;
        if !byte_pixels {
            let examples = examples(data, mine, bad)?;
            return Ok(QueuedBatch::Decoded(ReadyBatch {
                step,
                indices,
                examples,
            }));
        }
        let mut examples = Vec::with_capacity(mine.len());
        let mut bytes = Vec::new();
        for &i in mine {
            let mut e = fetch(data, i, bad)?;
            bytes.extend(e.image.iter().map(|&v| ((v + 1.0) * 127.5).round() as u8));
            e.image = Vec::new();
            examples.push(e);
        }
        Ok(QueuedBatch::Packed {
            step,
            indices,
            examples,
            bytes,
        })
    }

    /// The batch with f32 pixels again: the same values, bit for bit, as decoding gave.
    fn unpack(self) -> ReadyBatch {
        match self {
            QueuedBatch::Decoded(ready) => ready,
            QueuedBatch::Packed {
                step,
                indices,
                mut examples,
                bytes,
            } => {
                let per = bytes.len() / examples.len().max(1);
                for (e, px) in examples.iter_mut().zip(bytes.chunks(per.max(1))) {
                    e.image = px.iter().map(|&p| p as f32 / 127.5 - 1.0).collect();
                }
                ReadyBatch {
                    step,
                    indices,
                    examples,
                }
            }
        }
    }
}

/// Worker threads decoding the batches of a range of steps ahead of the training loop.
pub struct Prefetcher {
    queues: Vec<Receiver<Result<QueuedBatch>>>,
    workers: Vec<JoinHandle<()>>,
    steps: Range<u64>,
    next: u64,
}

impl Prefetcher {
    /// Starts `workers` threads (at least 1) decoding the batches of `steps`; `plan(s)` gives
    /// step s's indices, of which the workers decode those at positions `rows` (a
    /// data-parallel rank's share of the batch; all of them otherwise).
    pub fn start(
        data: Arc<dyn Dataset>,
        bad: Arc<BadImages>,
        plan: impl Fn(u64) -> Vec<usize> + Send + Sync + 'static,
        rows: Range<usize>,
        steps: Range<u64>,
        workers: usize,
    ) -> Result<Prefetcher> {
        let workers = workers.max(1);
        let byte_pixels = data.byte_pixels();
        let plan = Arc::new(plan);
        let mut queues = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = sync_channel(READY_PER_WORKER);
            let (data, bad, plan, steps, rows) = (
                data.clone(),
                bad.clone(),
                plan.clone(),
                steps.clone(),
                rows.clone(),
            );
            let handle = std::thread::Builder::new()
                .name(format!("mtdiff-data-{w}"))
                .spawn(move || {
                    for step in steps.skip(w).step_by(workers) {
                        let indices = plan(step);
                        let ready = QueuedBatch::decode(
                            data.as_ref(),
                            &bad,
                            step,
                            indices,
                            rows.clone(),
                            byte_pixels,
                        );
                        let failed = ready.is_err();
                        // The loop is gone (finished or failed): stop quietly.
                        if tx.send(ready).is_err() || failed {
                            return;
                        }
                    }
                })
                .map_err(|e| Error::Data(format!("cannot start a data worker thread: {e}")))?;
            queues.push(rx);
            handles.push(handle);
        }
        Ok(Prefetcher {
            queues,
            workers: handles,
            next: steps.start,
            steps,
        })
    }

    /// The batch of the next step, waiting for it if the workers are behind.
    pub fn next_batch(&mut self) -> Result<ReadyBatch> {
        if !self.steps.contains(&self.next) {
            return Err(Error::Data(format!(
                "the data pipeline has no batch for step {} (it serves steps {:?})",
                self.next, self.steps
            )));
        }
        let w = ((self.next - self.steps.start) % self.queues.len() as u64) as usize;
        let queued = self.queues[w]
            .recv()
            .map_err(|_| Error::Data("a data worker thread stopped unexpectedly".into()))??;
        self.next += 1;
        Ok(queued.unpack())
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Closing the queues makes every worker's next send fail, so each ends after the batch
        // it is decoding.
        self.queues.clear();
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five examples: the even ones `values`, the odd ones `values` reversed.
    struct Two(Vec<f32>);

    impl Dataset for Two {
        fn name(&self) -> String {
            "two".into()
        }
        fn len(&self) -> usize {
            5
        }
        fn image_shape(&self) -> [usize; 3] {
            [1, 16, 16]
        }
        fn classes(&self) -> usize {
            2
        }
        fn example(&self, i: usize) -> Result<Example> {
            let mut image = self.0.clone();
            if i % 2 == 1 {
                image.reverse();
            }
            Ok(Example {
                image,
                label: 3,
                factors: Some(vec![0.5]),
            })
        }
    }

    #[test]
    fn packing_pixels_into_bytes_gives_back_the_same_values_bit_for_bit() {
        let values: Vec<f32> = (0..=255u8).map(|p| p as f32 / 127.5 - 1.0).collect();
        let bad = BadImages::new(0);
        let packed =
            QueuedBatch::decode(&Two(values.clone()), &bad, 9, vec![4, 1], 0..2, true).unwrap();
        let QueuedBatch::Packed { ref bytes, .. } = packed else {
            panic!("not packed")
        };
        assert_eq!(bytes.len(), 512);
        let back = packed.unpack();
        assert_eq!((back.step, back.indices), (9, vec![4, 1]));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let rev: Vec<f32> = values.iter().rev().copied().collect();
        assert_eq!(bits(&back.examples[0].image), bits(&values));
        assert_eq!(bits(&back.examples[1].image), bits(&rev));
        assert_eq!(back.examples[1].factors, Some(vec![0.5]));
    }
}
