//! Files a run leaves for people: PNG grids of images and a PNG plot of the loss curve.

use std::path::Path;

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

/// Encodes `images` (`n` of shape [C, H, W], values in [−1, 1]) as a PNG grid with `cols`
/// columns, each pixel drawn `zoom`×`zoom`, 1-pixel grey separators.
pub fn grid_png(images: &[f32], n: usize, shape: [usize; 3], cols: usize, zoom: usize) -> Vec<u8> {
    let [c, h, w] = shape;
    let cols = cols.clamp(1, n.max(1));
    let rows = n.div_ceil(cols).max(1);
    let (cw, ch) = (w * zoom + 1, h * zoom + 1);
    let (iw, ih) = (cols * cw + 1, rows * ch + 1);
    let mut buf = image::RgbImage::from_pixel(iw as u32, ih as u32, image::Rgb([96, 96, 96]));
    for k in 0..n {
        let (gx, gy) = ((k % cols) * cw + 1, (k / cols) * ch + 1);
        for y in 0..h * zoom {
            for x in 0..w * zoom {
                let (sy, sx) = (y / zoom, x / zoom);
                let v = |ch: usize| {
                    let ch = ch.min(c - 1);
                    let f = images[((k * c + ch) * h + sy) * w + sx];
                    ((f.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
                };
                buf.put_pixel(
                    (gx + x) as u32,
                    (gy + y) as u32,
                    image::Rgb([v(0), v(1), v(2)]),
                );
            }
        }
    }
    encode(buf)
}

fn encode(buf: image::RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(buf)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("PNG encoding to memory does not fail");
    out
}

/// Writes a grid PNG atomically.
pub fn write_grid(
    path: &Path,
    images: &[f32],
    n: usize,
    shape: [usize; 3],
    cols: usize,
) -> Result<()> {
    let zoom = (96 / shape[1].max(1)).clamp(1, 6);
    write_atomic(path, &grid_png(images, n, shape, cols, zoom))
}

/// A 640×400 PNG of the loss against the step (log-scale y), with axes and grid lines at each
/// power of ten.
pub fn loss_plot_png(points: &[(u64, f64)]) -> Result<Vec<u8>> {
    let (w, h) = (640u32, 400u32);
    let (l, r, t, b) = (50i64, 15i64, 15i64, 30i64);
    let mut img = image::RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
    let pts: Vec<(u64, f64)> = points
        .iter()
        .copied()
        .filter(|p| p.1.is_finite() && p.1 > 0.0)
        .collect();
    if pts.is_empty() {
        return Err(Error::Usage("no finite loss values to plot".to_string()));
    }
    let (x0, x1) = (
        pts[0].0 as f64,
        pts[pts.len() - 1].0.max(pts[0].0 + 1) as f64,
    );
    let ly: Vec<f64> = pts.iter().map(|p| p.1.log10()).collect();
    let (y0, y1) = (
        ly.iter().copied().fold(f64::INFINITY, f64::min).floor(),
        ly.iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
            .ceil()
            .max(ly.iter().copied().fold(f64::INFINITY, f64::min).floor() + 1.0),
    );
    let px = |x: f64| l + ((x - x0) / (x1 - x0) * (w as i64 - l - r) as f64) as i64;
    let py = |y: f64| t + ((y1 - y) / (y1 - y0) * (h as i64 - t - b) as f64) as i64;
    let mut put = |x: i64, y: i64, c: [u8; 3]| {
        if x >= 0 && y >= 0 && x < w as i64 && y < h as i64 {
            img.put_pixel(x as u32, y as u32, image::Rgb(c));
        }
    };
    // Grid lines at each decade, axes.
    let mut d = y0;
    while d <= y1 {
        for x in l..(w as i64 - r) {
            put(x, py(d), [220, 220, 220]);
        }
        d += 1.0;
    }
    for y in t..(h as i64 - b) {
        put(l, y, [0, 0, 0]);
    }
    for x in l..(w as i64 - r) {
        put(x, h as i64 - b, [0, 0, 0]);
    }
    // The curve, as line segments.
    for win in pts.windows(2) {
        let (a, c) = (win[0], win[1]);
        let (xa, ya, xc, yc) = (
            px(a.0 as f64),
            py(a.1.log10()),
            px(c.0 as f64),
            py(c.1.log10()),
        );
        let steps = (xc - xa).abs().max((yc - ya).abs()).max(1);
        for s in 0..=steps {
            let x = xa + (xc - xa) * s / steps;
            let y = ya + (yc - ya) * s / steps;
            put(x, y, [20, 80, 200]);
            put(x, y + 1, [20, 80, 200]);
        }
    }
    Ok(encode(img))
}
