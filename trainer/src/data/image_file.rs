//! Image files (any format the `image` crate reads) decoded into CHW values in [−1, 1], with the
//! checks that keep a hostile or corrupt file from allocating past a cap or crashing a decoder.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use crate::error::{Error, Result};

/// The most memory one image file may decode into: 256 MiB (an 8192×8192 RGBA image). A file
/// whose header claims more is refused before the pixels are allocated.
pub const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// Decodes an image file's bytes (format guessed from its content) and resizes it to `shape`
/// (see [`image_to_chw`]); refuses images that would need more than `max_alloc` bytes.
pub fn decode_image(bytes: &[u8], shape: [usize; 3], max_alloc: u64) -> Result<Vec<f32>> {
    check_png_palette(bytes)?;
    let img = decode_catching_panics(bytes, max_alloc)?;
    Ok(image_to_chw(&img, shape))
}

/// Decodes with the `image` crate under an allocation cap. A decoder bug must not take the whole
/// run down with it: a panic inside the third-party decoder becomes this file's error. (The fuzz
/// targets still see such a panic: libFuzzer's panic hook aborts before unwinding, and the
/// replay test counts panics.)
fn decode_catching_panics(bytes: &[u8], max_alloc: u64) -> Result<image::DynamicImage> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Data(format!("cannot read the image ({e})")))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_alloc);
    reader.limits(limits);
    catch_unwind(AssertUnwindSafe(|| reader.decode()))
        .map_err(|panic| {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            Error::Data(format!(
                "the image decoder crashed on this file ({why}); the file is probably corrupt: \
                 re-encode it or remove it"
            ))
        })?
        .map_err(|e| Error::Data(e.to_string()))
}

/// Refuses a PNG whose palette (PLTE chunk) is not a whole number of RGB entries, which the PNG
/// specification forbids (§11.2.3) and `png` 0.18.1 does not check: its palette expansion
/// slices past the end and panics. Other files, and PNGs too short to walk, pass through to the
/// decoder, which reports their problems itself.
fn check_png_palette(bytes: &[u8]) -> Result<()> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    let Some(mut rest) = bytes.strip_prefix(SIGNATURE) else {
        return Ok(());
    };
    // Each chunk: 4-byte big-endian data length, 4-byte type, the data, a 4-byte CRC.
    while rest.len() >= 8 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let kind = &rest[4..8];
        if kind == b"PLTE" && !len.is_multiple_of(3) {
            return Err(Error::Data(format!(
                "corrupt PNG: its palette (PLTE chunk) has {len} bytes, not a multiple of 3 \
                 (one R, G, B triple per entry); re-encode the image or remove it"
            )));
        }
        if kind == b"IDAT" || kind == b"IEND" {
            break; // the palette must come before the image data
        }
        let Some(next) = rest.get(8usize.saturating_add(len).saturating_add(4)..) else {
            break;
        };
        rest = next;
    }
    Ok(())
}

/// Reads and decodes an image file (see [`decode_image`], at most [`MAX_IMAGE_BYTES`]); the error
/// names the file.
pub fn load_image_file(path: &Path, shape: [usize; 3]) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_image(&bytes, shape, MAX_IMAGE_BYTES).map_err(|e| match e {
        Error::Data(m) => Error::Data(format!("{}: cannot decode image ({m})", path.display())),
        e => e,
    })
}

/// An image resized to `shape` = [C, H, W] (C = 1: grey, else RGB channels, repeated past 3),
/// as CHW values in [−1, 1].
pub fn image_to_chw(img: &image::DynamicImage, shape: [usize; 3]) -> Vec<f32> {
    let [c, h, w] = shape;
    let img = img.resize_exact(w as u32, h as u32, image::imageops::FilterType::Triangle);
    if c == 1 {
        return img
            .to_luma8()
            .pixels()
            .map(|p| p.0[0] as f32 / 127.5 - 1.0)
            .collect();
    }
    let rgb = img.to_rgb8();
    let mut out = vec![0.0; c * h * w];
    for (i, p) in rgb.pixels().enumerate() {
        for k in 0..c {
            out[k * h * w + i] = p.0[k.min(2)] as f32 / 127.5 - 1.0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid 4×2 PNG but for its palette of 11 bytes, the fault of the input the `image` fuzz
    /// target found in CI (crash-221bacf3…, whose CRCs only a fuzzing build ignores), on which
    /// `png` 0.18.1 panics while expanding the palette.
    const ELEVEN_BYTE_PALETTE: &[u8] =
        include_bytes!("../../fuzz/regressions/image/palette-of-11-bytes.png");

    fn message(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(Error::Data(m)) => m,
            other => panic!("expected a data error, got {other:?}"),
        }
    }

    #[test]
    fn a_palette_that_is_not_whole_rgb_entries_is_refused_before_decoding() {
        let m = message(decode_image(ELEVEN_BYTE_PALETTE, [3, 8, 8], 1 << 24));
        assert!(
            m.contains("palette (PLTE chunk) has 11 bytes, not a multiple of 3"),
            "{m}"
        );
    }

    #[test]
    fn a_panic_inside_the_decoder_becomes_the_files_error() {
        // Without the palette check the decoder itself panics on this file.
        let m = message(decode_catching_panics(ELEVEN_BYTE_PALETTE, 1 << 24));
        assert!(
            m.contains("the image decoder crashed on this file (range end index"),
            "{m}"
        );
        assert!(m.contains("re-encode it or remove it"), "{m}");
    }

    #[test]
    fn a_valid_palette_png_still_decodes() {
        // 5×3, palette red and blue, columns alternating red, blue, red, …
        let mut png = Vec::new();
        let mut enc = png::Encoder::new(&mut png, 5, 3);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(vec![255, 0, 0, 0, 0, 255]);
        let mut w = enc.write_header().unwrap();
        let idx: Vec<u8> = (0..15).map(|i| (i % 5 % 2) as u8).collect();
        w.write_image_data(&idx).unwrap();
        w.finish().unwrap();
        let v = decode_image(&png, [3, 3, 5], 1 << 24).unwrap();
        assert_eq!(&v[..5], &[1.0, -1.0, 1.0, -1.0, 1.0], "red channel, row 0");
        assert_eq!(
            &v[30..35],
            &[-1.0, 1.0, -1.0, 1.0, -1.0],
            "blue channel, row 0"
        );
    }
}
