//! Buffer pool: free buffers kept by size class and handed out again, so a training loop stops
//! creating wgpu buffers after its first steps.

use std::collections::HashMap;

/// Rounds a request up to its size class: powers of two up to 1 KiB, then eight classes per
/// octave (waste ≤ 12.5 %).
pub(crate) fn size_class(bytes: u64) -> u64 {
    let b = bytes.max(256).div_ceil(16) * 16;
    let p = b.next_power_of_two();
    if p <= 1024 {
        return p;
    }
    let step = p / 16;
    b.div_ceil(step) * step
}

/// Counts of pooled buffers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// wgpu buffers that exist now (in use or cached).
    pub live_buffers: usize,
    /// Bytes of those buffers.
    pub live_bytes: u64,
    /// Buffers cached for reuse (not in use).
    pub cached_buffers: usize,
    /// Bytes of cached buffers.
    pub cached_bytes: u64,
    /// wgpu buffers created since the device was made.
    pub created_total: u64,
    /// Requests served from the cache.
    pub reused_total: u64,
    /// The most bytes in use at once (live, not cached) since the device was made: a step's
    /// memory high-water mark, tensors and scratch buffers together (size classes rounded up).
    pub peak_in_use_bytes: u64,
}

#[derive(Default)]
pub(crate) struct Pool {
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    stats: PoolStats,
}

impl Pool {
    pub(crate) fn take(&mut self, class: u64) -> Option<wgpu::Buffer> {
        let buf = self.free.get_mut(&class)?.pop()?;
        self.stats.cached_buffers -= 1;
        self.stats.cached_bytes -= class;
        self.stats.reused_total += 1;
        self.note_peak();
        Some(buf)
    }

    pub(crate) fn created(&mut self, class: u64) {
        self.stats.live_buffers += 1;
        self.stats.live_bytes += class;
        self.stats.created_total += 1;
        self.note_peak();
    }

    fn note_peak(&mut self) {
        let in_use = self.stats.live_bytes - self.stats.cached_bytes;
        self.stats.peak_in_use_bytes = self.stats.peak_in_use_bytes.max(in_use);
    }

    pub(crate) fn give_back(&mut self, buffer: wgpu::Buffer, class: u64, cache_limit: u64) {
        if self.stats.cached_bytes + class > cache_limit {
            // Dropped, not destroyed: wgpu keeps it alive until pending commands that use it ran.
            self.destroyed(class);
            drop(buffer);
            return;
        }
        self.stats.cached_buffers += 1;
        self.stats.cached_bytes += class;
        self.free.entry(class).or_default().push(buffer);
    }

    /// A live buffer left the pool's care for good (handed to an application).
    pub(crate) fn taken_out(&mut self, class: u64) {
        self.destroyed(class);
    }

    fn destroyed(&mut self, class: u64) {
        self.stats.live_buffers -= 1;
        self.stats.live_bytes -= class;
    }

    pub(crate) fn release_cached(&mut self) {
        for (class, bufs) in std::mem::take(&mut self.free) {
            for b in bufs {
                self.destroyed(class);
                drop(b);
            }
        }
        self.stats.cached_buffers = 0;
        self.stats.cached_bytes = 0;
    }

    pub(crate) fn stats(&self) -> PoolStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_cover_the_request_with_bounded_waste() {
        for bytes in [
            1u64,
            4,
            255,
            256,
            257,
            1000,
            1025,
            4096,
            5000,
            1 << 20,
            (1 << 20) + 1,
            123_456_789,
        ] {
            let c = size_class(bytes);
            assert!(c >= bytes, "{bytes} -> {c}");
            assert_eq!(c % 16, 0);
            if bytes > 2048 {
                assert!((c - bytes) as f64 <= bytes as f64 * 0.125, "{bytes} -> {c}");
            }
        }
        assert_eq!(size_class(3000), size_class(3001));
    }
}
