//! Files a run leaves for people: PNG grids of images (with class names where the task has
//! labels) and a PNG plot of the loss curves and the learning rate. Text is drawn with plotters
//! and an embedded DejaVu Sans, so no system fonts are needed.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::train::MetricsLine;

/// The font family name the embedded DejaVu Sans is registered under.
const FONT: &str = "sans-serif";

/// Registers the embedded font with plotters (once per process).
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are DejaVu Sans from the `dejavu` crate: a valid TrueType font. (plotters
        // registers fonts natively only; on the web the page draws its own text.)
        #[cfg(not(target_arch = "wasm32"))]
        if plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_err()
        {
            eprintln!("note: the embedded font did not load; plots will have no text");
        }
    });
}

/// Text around the images of a grid.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum GridLabels {
    /// Images only.
    #[default]
    None,
    /// One name per row, written left of it (e.g. the class every image of the row was given).
    Rows(Vec<String>),
    /// One caption per image, written under it (e.g. each sample's generated label).
    Cells(Vec<String>),
}

/// Pixel size of the caption text in grids.
const CAPTION_PX: u32 = 13;

/// Where the images of a grid lie: `cols` columns of `cell`-pixel cells (image plus 1-pixel
/// separator, plus a caption strip for [`GridLabels::Cells`]), after a `left` margin.
struct GridLayout {
    cols: usize,
    rows: usize,
    cell_w: usize,
    cell_h: usize,
    left: usize,
}

impl GridLayout {
    fn new(n: usize, shape: [usize; 3], cols: usize, zoom: usize, labels: &GridLabels) -> Self {
        let cols = cols.clamp(1, n.max(1));
        let rows = n.div_ceil(cols).max(1);
        let caption = match labels {
            GridLabels::Cells(_) => CAPTION_PX as usize + 4,
            _ => 0,
        };
        let left = match labels {
            // Wide enough for the longest name at ~0.6 em per character.
            GridLabels::Rows(names) => {
                let chars = names.iter().map(|s| s.chars().count()).max().unwrap_or(0);
                chars * CAPTION_PX as usize * 6 / 10 + 10
            }
            _ => 0,
        };
        GridLayout {
            cols,
            rows,
            cell_w: shape[2] * zoom + 1,
            cell_h: shape[1] * zoom + 1 + caption,
            left,
        }
    }

    fn size(&self) -> (u32, u32) {
        (
            (self.left + self.cols * self.cell_w + 1) as u32,
            (self.rows * self.cell_h + 1) as u32,
        )
    }

    /// Top-left pixel of image `k`.
    fn origin(&self, k: usize) -> (usize, usize) {
        (
            self.left + (k % self.cols) * self.cell_w + 1,
            (k / self.cols) * self.cell_h + 1,
        )
    }
}

/// The top-left pixel of each of the `n` images in the grid [`grid_png`] draws with these
/// arguments (for tools that read the images back out of a grid).
pub fn grid_image_origins(
    n: usize,
    shape: [usize; 3],
    cols: usize,
    zoom: usize,
    labels: &GridLabels,
) -> Vec<(usize, usize)> {
    let layout = GridLayout::new(n, shape, cols, zoom, labels);
    (0..n).map(|k| layout.origin(k)).collect()
}

/// Encodes `images` (`n` of shape [C, H, W], values in [−1, 1]) as a PNG grid with `cols`
/// columns, each pixel drawn `zoom`×`zoom`, 1-pixel grey separators, and `labels`.
pub fn grid_png(
    images: &[f32],
    n: usize,
    shape: [usize; 3],
    cols: usize,
    zoom: usize,
    labels: &GridLabels,
) -> Result<Vec<u8>> {
    let [c, h, w] = shape;
    let layout = GridLayout::new(n, shape, cols, zoom, labels);
    let (iw, ih) = layout.size();
    let mut buf = image::RgbImage::from_pixel(iw, ih, image::Rgb([96, 96, 96]));
    for k in 0..n {
        let (gx, gy) = layout.origin(k);
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
    if *labels != GridLabels::None {
        register_font();
        let root = BitMapBackend::with_buffer(&mut buf, (iw, ih)).into_drawing_area();
        let style = TextStyle::from((FONT, CAPTION_PX).into_font()).color(&WHITE);
        match labels {
            GridLabels::Rows(names) => {
                for (r, name) in names.iter().enumerate().take(layout.rows) {
                    // Vertically centred on the row (clipped where the row is lower than the text).
                    let y = (r * layout.cell_h + layout.cell_h / 2) as i32 - CAPTION_PX as i32 / 2;
                    root.draw_text(name, &style, (4, y)).map_err(plot_error)?;
                }
            }
            GridLabels::Cells(captions) => {
                for (k, caption) in captions.iter().enumerate().take(n) {
                    let (x, y) = layout.origin(k);
                    let y = y + h * zoom + 2;
                    root.draw_text(caption, &style, (x as i32 + 2, y as i32))
                        .map_err(plot_error)?;
                }
            }
            GridLabels::None => {}
        }
        root.present().map_err(plot_error)?;
    }
    Ok(encode(buf))
}

fn encode(buf: image::RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(buf)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("PNG encoding to memory does not fail");
    out
}

fn plot_error(e: impl std::fmt::Display) -> Error {
    Error::Usage(format!("drawing a plot failed: {e}"))
}

/// The zoom a grid of `shape` images is drawn at: about 96 pixels per image side.
pub fn grid_zoom(shape: [usize; 3]) -> usize {
    (96 / shape[1].max(1)).clamp(1, 6)
}

/// Writes a grid PNG atomically.
pub fn write_grid(
    path: &Path,
    images: &[f32],
    n: usize,
    shape: [usize; 3],
    cols: usize,
    labels: &GridLabels,
) -> Result<()> {
    let png = grid_png(images, n, shape, cols, grid_zoom(shape), labels)?;
    write_atomic(path, &png)
}

/// Line colours of the loss terms, in order: total, ε, then each head.
const SERIES_COLOURS: [RGBColor; 6] = [
    RGBColor(0, 0, 0),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

/// One curve of the loss plot: a name and its (step, value) points with finite, positive values.
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
}

/// The curves of `history`: total, ε and each head's loss.
fn loss_series(history: &[MetricsLine]) -> Vec<Series> {
    let mut names = vec!["total".to_string(), "ε (MSE)".to_string()];
    if let Some(first) = history.first() {
        names.extend(first.heads.iter().map(|(n, _)| format!("{n} head")));
    }
    names
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let points = history
                .iter()
                .filter_map(|m| {
                    let v = match i {
                        0 => m.loss,
                        1 => m.eps,
                        _ => m.heads.get(i - 2)?.1,
                    };
                    (v.is_finite() && v > 0.0).then_some((m.step as f64, v))
                })
                .collect();
            Series { name, points }
        })
        .collect()
}

/// A 900×600 PNG of a run's metrics: the loss terms against the step on a log scale (total, ε,
/// each head; legend), and below it the learning rate; titled `title` (run name and task).
pub fn loss_plot_png(history: &[MetricsLine], title: &str) -> Result<Vec<u8>> {
    let series = loss_series(history);
    let all: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .collect();
    if all.is_empty() {
        return Err(Error::Usage("no finite loss values to plot".to_string()));
    }
    register_font();
    let (w, h) = (900u32, 600u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let root = root
            .titled(title, (FONT, 20).into_font())
            .map_err(plot_error)?;
        let (top, bottom) = root.split_vertically(h * 68 / 100);
        let first = history.first().map(|m| m.step).unwrap_or(0) as f64;
        let last = history.last().map(|m| m.step).unwrap_or(1) as f64;
        let xs = first.min(last - 1.0)..last.max(first + 1.0);
        draw_loss_panel(&top, &series, &all, xs.clone())?;
        draw_lr_panel(&bottom, history, xs)?;
        root.present().map_err(plot_error)?;
    }
    let img = image::RgbImage::from_raw(w, h, buf).expect("the buffer has w·h·3 bytes");
    Ok(encode(img))
}

/// The values 1, 2 and 5 times a power of ten within [lo, hi].
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        ticks.extend(
            [1.0, 2.0, 5.0]
                .map(|m| m * decade)
                .iter()
                .filter(|&&v| v >= lo && v <= hi),
        );
        decade *= 10.0;
    }
    ticks
}

/// A log-axis tick label with the digits its decade needs: 0.05, 0.2, 1, 30.
fn log_tick(v: f64) -> String {
    let decimals = (-v.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// The loss terms on a log-scale y axis, with a legend.
fn draw_loss_panel(
    area: &DrawingArea<BitMapBackend, Shift>,
    series: &[Series],
    values: &[f64],
    xs: std::ops::Range<f64>,
) -> Result<()> {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // A tenth of a decade below the lowest value to a third of a decade above the highest,
    // which leaves room for the legend; ticks at 1, 2 and 5 times each power of ten.
    let ys = lo / 10f64.powf(0.1)..hi * 10f64.powf(0.35);
    let ticks = log_ticks(ys.start, ys.end);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(xs, ys.log_scale().with_key_points(ticks))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("loss (log scale)")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| log_tick(*v))
        .draw()
        .map_err(plot_error)?;
    for (i, s) in series.iter().enumerate() {
        let colour = SERIES_COLOURS[i % SERIES_COLOURS.len()];
        let width = if i == 0 { 2 } else { 1 };
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                colour.stroke_width(width),
            ))
            .map_err(plot_error)?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(plot_error)?;
    Ok(())
}

/// The learning rate against the step.
fn draw_lr_panel(
    area: &DrawingArea<BitMapBackend, Shift>,
    history: &[MetricsLine],
    xs: std::ops::Range<f64>,
) -> Result<()> {
    let hi = history.iter().map(|m| m.lr as f64).fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(xs, 0.0..(hi * 1.1).max(f64::MIN_POSITIVE))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("learning rate")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_labels(4)
        .y_label_formatter(&|v| format!("{v:.1e}"))
        .draw()
        .map_err(plot_error)?;
    chart
        .draw_series(LineSeries::new(
            history.iter().map(|m| (m.step as f64, m.lr as f64)),
            RGBColor(120, 120, 120).stroke_width(2),
        ))
        .map_err(plot_error)?;
    Ok(())
}

/// A 800×500 PNG of named lines of (x, y) points on linear axes, with a legend.
pub fn line_plot_png(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<Vec<u8>> {
    let points: Vec<(f64, f64)> = series.iter().flat_map(|s| s.1.iter().copied()).collect();
    let finite = |v: f64| v.is_finite();
    if points.is_empty() || !points.iter().all(|p| finite(p.0) && finite(p.1)) {
        return Err(Error::Usage(format!(
            "{title}: no points, or points that are not finite, to plot"
        )));
    }
    let fold = |f: fn(f64, f64) -> f64, init: f64, y: bool| {
        points
            .iter()
            .map(|p| if y { p.1 } else { p.0 })
            .fold(init, f)
    };
    let (x0, x1) = (
        fold(f64::min, f64::INFINITY, false),
        fold(f64::max, f64::NEG_INFINITY, false),
    );
    let (y0, y1) = (
        fold(f64::min, f64::INFINITY, true),
        fold(f64::max, f64::NEG_INFINITY, true),
    );
    let pad = ((y1 - y0) * 0.1).max(1e-3);
    register_font();
    let (w, h) = (800u32, 500u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 18))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0.min(x1 - 1.0)..x1.max(x0 + 1.0), (y0 - pad)..(y1 + pad))
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()
            .map_err(plot_error)?;
        for (i, (name, pts)) in series.iter().enumerate() {
            let colour = SERIES_COLOURS[(i + 1) % SERIES_COLOURS.len()];
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
                .map_err(plot_error)?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 4, colour.filled())))
                .map_err(plot_error)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 14))
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    let img = image::RgbImage::from_raw(w, h, buf).expect("the buffer has w·h·3 bytes");
    Ok(encode(img))
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_plot_draws_its_series_and_refuses_what_it_cannot_draw() {
        let series = vec![
            (
                "a".to_string(),
                vec![(25.0, 40.0), (50.0, 30.0), (100.0, 20.0)],
            ),
            ("b".to_string(), vec![(25.0, 45.0), (100.0, 25.0)]),
        ];
        let png = line_plot_png("t", "x", "y", &series).unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), (800, 500));
        assert!(line_plot_png("t", "x", "y", &[]).is_err());
        let bad = vec![("a".to_string(), vec![(1.0, f64::INFINITY)])];
        assert!(line_plot_png("t", "x", "y", &bad).is_err());
    }

    use super::*;

    fn line(step: u64, loss: f64, lr: f32) -> MetricsLine {
        MetricsLine {
            step,
            loss,
            eps: loss * 0.5,
            heads: vec![("label".to_string(), loss * 2.0)],
            lr,
            img_per_s: 1.0,
            dispatches_per_step: 0.0,
            peak_memory_mib: 0.0,
            all_reduce_ms_per_step: 0.0,
            all_reduce_bytes_per_step: 0.0,
            loss_scale: None,
            skipped_steps: None,
        }
    }

    fn decode(png: &[u8]) -> image::RgbImage {
        image::load_from_memory(png).unwrap().to_rgb8()
    }

    /// Counts pixels of `img` within `tol` of colour `c`.
    fn count(img: &image::RgbImage, c: RGBColor, tol: i32) -> usize {
        img.pixels()
            .filter(|p| (0..3).all(|k| (p[k] as i32 - [c.0, c.1, c.2][k] as i32).abs() <= tol))
            .count()
    }

    #[test]
    fn loss_plot_draws_every_term_text_and_the_learning_rate() {
        let history: Vec<MetricsLine> = (1..=20)
            .map(|i| line(i * 10, 1.0 / i as f64, 1e-3 * (i as f32 / 20.0)))
            .collect();
        let img = decode(&loss_plot_png(&history, "run default · image-label").unwrap());
        assert_eq!(img.dimensions(), (900, 600));
        // Each term's colour is drawn (the curves and their legend swatches).
        for c in &SERIES_COLOURS[1..3] {
            assert!(count(&img, *c, 30) > 100, "colour {c:?} missing");
        }
        // Text (title, tick labels, axis descriptions) leaves dark anti-aliased pixels well
        // beyond the frame lines alone: far more than with the text removed.
        let dark = count(&img, RGBColor(0, 0, 0), 60);
        assert!(dark > 3000, "{dark} dark pixels: no text?");
        // The learning-rate panel (lower third) holds its grey curve.
        let lower = image::imageops::crop_imm(&img, 0, 420, 900, 180).to_image();
        assert!(count(&lower, RGBColor(120, 120, 120), 10) > 200);
    }

    #[test]
    fn log_ticks_show_the_digits_of_their_decade() {
        assert_eq!(log_tick(0.05), "0.05");
        assert_eq!(log_tick(0.2), "0.2");
        assert_eq!(log_tick(1.0), "1");
        assert_eq!(log_tick(30.0), "30");
        let t = log_ticks(0.13, 3.5);
        let want = [0.2, 0.5, 1.0, 2.0];
        assert_eq!(t.len(), want.len(), "{t:?}");
        assert!(
            t.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{t:?}"
        );
    }

    #[test]
    fn loss_plot_refuses_no_finite_values() {
        let history = vec![line(1, f64::NAN, 1e-3)];
        let e = loss_plot_png(&history, "t").err().unwrap().to_string();
        assert!(e.contains("no finite loss"), "{e}");
    }

    #[test]
    fn grid_places_images_and_writes_row_names() {
        let shape = [1, 4, 4];
        let images = vec![1.0f32; 2 * 16];
        let plain = decode(&grid_png(&images, 2, shape, 1, 2, &GridLabels::None).unwrap());
        // Two rows of 8×8 white images with 1-pixel separators.
        assert_eq!(plain.dimensions(), (10, 19));
        assert_eq!(plain.get_pixel(1, 1).0, [255, 255, 255]);
        assert_eq!(plain.get_pixel(0, 0).0, [96, 96, 96]);
        let names = GridLabels::Rows(vec!["ring".to_string(), "triangle".to_string()]);
        let named = decode(&grid_png(&images, 2, shape, 1, 2, &names).unwrap());
        let left = (8 * CAPTION_PX as usize * 6 / 10 + 10) as u32;
        assert_eq!(named.dimensions(), (10 + left, 19));
        // The images moved right by the margin, unchanged.
        assert_eq!(named.get_pixel(left + 1, 1).0, [255, 255, 255]);
        // The margin holds light text pixels.
        let margin = image::imageops::crop_imm(&named, 0, 0, left, 19).to_image();
        assert!(margin.pixels().any(|p| p[0] > 200), "no text in the margin");
    }

    #[test]
    fn grid_captions_go_under_each_image() {
        let shape = [1, 16, 16];
        let images = vec![-1.0f32; 3 * 256];
        let captions = GridLabels::Cells(vec!["3".into(), "7".into(), "ring".into()]);
        let img = decode(&grid_png(&images, 3, shape, 3, 2, &captions).unwrap());
        let cell_h = 16 * 2 + 1 + CAPTION_PX + 4;
        assert_eq!(img.dimensions(), (3 * 33 + 1, cell_h + 1));
        let strip = image::imageops::crop_imm(&img, 0, 34, 3 * 33 + 1, CAPTION_PX + 4).to_image();
        assert!(strip.pixels().any(|p| p[0] > 200), "no caption text");
    }
}
