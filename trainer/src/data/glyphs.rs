//! The built-in default dataset: 10 classes of stroked glyphs (ring, |, −, +, ×, square,
//! triangle, L, T, Z) at random position, scale, stroke width and rotation, rendered with
//! anti-aliasing. Example i is a pure function of (seed, i), so the set needs no files and any
//! split is reproducible. The true generative factors are returned as the representation.

use mtdiff_engine::rng::CpuRng;

use super::{Dataset, Example};
use crate::error::Result;

/// Class names, in label order.
pub const CLASS_NAMES: [&str; 10] = [
    "ring", "bar", "dash", "plus", "cross", "square", "triangle", "ell", "tee", "zed",
];

/// Generative factors per example: centre x, centre y, scale, stroke width, rotation.
pub const FACTORS: usize = 5;

/// Ranges of the factors (uniform): centre ±0.2 of the half-size, scale, width, angle (rad).
const CENTRE: f64 = 0.2;
const SCALE: (f64, f64) = (0.55, 0.85);
const WIDTH: (f64, f64) = (0.12, 0.22);
const ANGLE: f64 = 0.3;

/// Line segments of each glyph in a canonical frame [−1, 1]² (a ring is handled apart).
fn segments(class: usize) -> Vec<[f64; 4]> {
    match class {
        1 => vec![[0.0, -1.0, 0.0, 1.0]],
        2 => vec![[-1.0, 0.0, 1.0, 0.0]],
        3 => vec![[0.0, -1.0, 0.0, 1.0], [-1.0, 0.0, 1.0, 0.0]],
        4 => vec![[-0.8, -0.8, 0.8, 0.8], [-0.8, 0.8, 0.8, -0.8]],
        5 => vec![
            [-0.75, -0.75, 0.75, -0.75],
            [0.75, -0.75, 0.75, 0.75],
            [0.75, 0.75, -0.75, 0.75],
            [-0.75, 0.75, -0.75, -0.75],
        ],
        6 => vec![
            [0.0, -0.9, 0.85, 0.7],
            [0.85, 0.7, -0.85, 0.7],
            [-0.85, 0.7, 0.0, -0.9],
        ],
        7 => vec![[-0.6, -1.0, -0.6, 0.8], [-0.6, 0.8, 0.8, 0.8]],
        8 => vec![[-0.9, -0.8, 0.9, -0.8], [0.0, -0.8, 0.0, 1.0]],
        9 => vec![
            [-0.8, -0.8, 0.8, -0.8],
            [0.8, -0.8, -0.8, 0.8],
            [-0.8, 0.8, 0.8, 0.8],
        ],
        _ => Vec::new(),
    }
}

fn segment_distance(p: (f64, f64), s: &[f64; 4]) -> f64 {
    let (dx, dy) = (s[2] - s[0], s[3] - s[1]);
    let len2 = dx * dx + dy * dy;
    let u = (((p.0 - s[0]) * dx + (p.1 - s[1]) * dy) / len2).clamp(0.0, 1.0);
    let (qx, qy) = (s[0] + u * dx - p.0, s[1] + u * dy - p.1);
    (qx * qx + qy * qy).sqrt()
}

/// Renders glyph `class` with factors `f` (see [`FACTORS`]) into `size`×`size` intensities in
/// [0, 1] (1 = ink).
pub fn render(class: usize, f: &[f64; FACTORS], size: usize) -> Vec<f32> {
    let [cx, cy, scale, width, angle] = *f;
    let (sin, cos) = angle.sin_cos();
    let half = size as f64 / 2.0;
    let segs = segments(class);
    let mut out = vec![0.0f32; size * size];
    for y in 0..size {
        for x in 0..size {
            // Pixel centre in [−1, 1]², then into the glyph's canonical frame.
            let px = (x as f64 + 0.5) / half - 1.0 - cx;
            let py = (y as f64 + 0.5) / half - 1.0 - cy;
            let q = (
                (cos * px + sin * py) / scale,
                (-sin * px + cos * py) / scale,
            );
            let d = if class == 0 {
                ((q.0 * q.0 + q.1 * q.1).sqrt() - 0.75).abs()
            } else {
                segs.iter()
                    .map(|s| segment_distance(q, s))
                    .fold(f64::INFINITY, f64::min)
            };
            // Distance and half stroke in pixels; one pixel of anti-aliasing.
            let d_px = d * scale * half;
            let hw_px = width * half / 2.0;
            out[y * size + x] = (hw_px - d_px + 0.5).clamp(0.0, 1.0) as f32;
        }
    }
    out
}

/// The glyph dataset: `len` examples of `size`×`size` drawn from `seed`.
pub struct Glyphs {
    seed: u64,
    len: usize,
    size: usize,
}

impl Glyphs {
    /// `len` glyphs of `size`×`size` from `seed` (different seeds give disjoint-looking sets).
    pub fn new(seed: u64, len: usize, size: usize) -> Glyphs {
        Glyphs { seed, len, size }
    }

    /// Class and raw factors of example `i`.
    pub fn factors(&self, i: usize) -> (usize, [f64; FACTORS]) {
        let mut rng = CpuRng::new(self.seed.wrapping_mul(0x100_0000_01B3) ^ i as u64);
        let class = i % 10;
        let f = [
            rng.range(-CENTRE, CENTRE),
            rng.range(-CENTRE, CENTRE),
            rng.range(SCALE.0, SCALE.1),
            rng.range(WIDTH.0, WIDTH.1),
            rng.range(-ANGLE, ANGLE),
        ];
        (class, f)
    }
}

/// (v − midpoint) / std of U(lo, hi): a uniform factor scaled to zero mean, unit variance.
fn standardise(v: f64, lo: f64, hi: f64) -> f32 {
    ((v - (lo + hi) / 2.0) / ((hi - lo) / 12f64.sqrt())) as f32
}

impl Dataset for Glyphs {
    fn name(&self) -> String {
        format!("glyphs{}", self.size)
    }
    fn len(&self) -> usize {
        self.len
    }
    fn image_shape(&self) -> [usize; 3] {
        [1, self.size, self.size]
    }
    fn classes(&self) -> usize {
        10
    }
    fn class_name(&self, k: usize) -> String {
        CLASS_NAMES
            .get(k)
            .map_or_else(|| k.to_string(), |n| n.to_string())
    }
    fn example(&self, i: usize) -> Result<Example> {
        let (class, f) = self.factors(i);
        let image = render(class, &f, self.size)
            .into_iter()
            .map(|v| 2.0 * v - 1.0)
            .collect();
        let factors = vec![
            standardise(f[0], -CENTRE, CENTRE),
            standardise(f[1], -CENTRE, CENTRE),
            standardise(f[2], SCALE.0, SCALE.1),
            standardise(f[3], WIDTH.0, WIDTH.1),
            standardise(f[4], -ANGLE, ANGLE),
        ];
        Ok(Example {
            image,
            label: class as u32,
            factors: Some(factors),
        })
    }
}
