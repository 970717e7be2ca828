//! The embedding example (`trainer/examples/render_samples.rs`) end to end: it trains a small
//! model, samples it on its own wgpu device and draws the samples with its own render
//! pipeline; its frame must be the grid `mtdiff sample` writes for the same checkpoint and seed,
//! pixel for pixel through the example's colour map.

#[allow(dead_code)]
#[path = "../trainer/examples/render_samples.rs"]
mod render_samples;

use std::path::Path;
use std::process::Command;

use mtdiff::report::{grid_image_origins, grid_zoom, GridLabels};
use render_samples::{colour_map, origin, Options, GAP, GAP_RGB};

#[test]
fn the_applications_frame_is_the_cli_grid_through_its_colour_map() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("render-example");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (n, seed, steps) = (10, 7, 20);
    let frame = render_samples::render(&Options {
        ckpt: None,
        scratch: dir.clone(),
        n,
        seed,
        steps,
    })
    .unwrap_or_else(|e| panic!("the example failed: {e}"));
    render_samples::write_png(&frame, &dir.join("frame.png")).unwrap();
    let grid_path = dir.join("grid.png");
    let out = Command::new(env!("CARGO_BIN_EXE_mtdiff-cli"))
        .args(["sample", "--ckpt"])
        .arg(&frame.ckpt)
        .args(["--n", &n.to_string(), "--seed", &seed.to_string()])
        .args(["--steps", &steps.to_string(), "--out"])
        .arg(&grid_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mtdiff sample failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let grid = image::open(&grid_path).unwrap().to_rgb8();
    let shape = frame.shape;
    let zoom = grid_zoom(shape);
    assert_eq!(frame.zoom, zoom);
    // The image-label task captions every cell; only the layout of the captions matters here.
    let cli_origins = grid_image_origins(
        n,
        shape,
        frame.cols,
        zoom,
        &GridLabels::Cells(vec![String::new(); n]),
    );
    let at = |x: usize, y: usize| -> [u8; 3] {
        let i = (y * frame.width + x) * 3;
        [frame.rgb[i], frame.rgb[i + 1], frame.rgb[i + 2]]
    };
    let mut levels = std::collections::BTreeSet::new();
    let mut mismatches = Vec::new();
    for (k, &(gx, gy)) in cli_origins.iter().enumerate() {
        let (fx, fy) = origin(k, frame.cols, shape, zoom);
        for y in 0..shape[1] * zoom {
            for x in 0..shape[2] * zoom {
                let cli = grid.get_pixel((gx + x) as u32, (gy + y) as u32).0;
                levels.insert(cli);
                let want = [
                    colour_map(cli[0])[0],
                    colour_map(cli[1])[1],
                    colour_map(cli[2])[2],
                ];
                let got = at(fx + x, fy + y);
                if got != want {
                    mismatches.push((k, x, y, cli, got, want));
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of the frame's image pixels differ from the CLI grid through the colour map; first: \
         {:?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(5)]
    );
    assert!(levels.len() > 8, "the samples are not flat: {levels:?}");
    // The application's separators, around and between the images.
    assert_eq!(at(0, 0), GAP_RGB);
    let (x1, _) = origin(1, frame.cols, shape, zoom);
    assert_eq!(at(x1 - GAP, GAP + 1), GAP_RGB);
    assert_eq!(at(frame.width - 1, frame.height - 1), GAP_RGB);
}
