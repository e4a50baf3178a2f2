//! Decoding JPEG, PNG and WebP files into uint8 `(H, W, C)` pixels.
//!
//! The decoders are the `image` crate's (zune-jpeg for JPEG, `png`,
//! `image-webp`), compiled with only these three formats. Each item decodes
//! independently and yields either pixels or a message saying why it could
//! not be read; a decoder panic is caught and reported the same way, so one
//! bad file never takes a batch down.
//!
//! - Colour: alpha is dropped (as Pillow's `convert("RGB")`), 16-bit samples
//!   are scaled to 8 bits (`round(v / 257)`), greyscale becomes three equal
//!   channels, or stays one channel with [`Gray::Keep`].
//! - EXIF orientation (tag 274) is applied when asked, as Pillow's
//!   `ImageOps.exif_transpose`.
//! - The decoder of JPEG conceals missing data instead of failing, so a JPEG
//!   whose marker stream ends before its end-of-image marker is rejected here
//!   as truncated (as Pillow does).

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use rayon::prelude::*;

/// What to do with greyscale images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gray {
    /// Three equal channels: every image comes out `(H, W, 3)`.
    Rgb,
    /// One channel for greyscale images, three for colour ones.
    Keep,
}

/// Decoding options.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    pub gray: Gray,
    /// Rotate/mirror by the EXIF orientation tag.
    pub exif_orientation: bool,
    /// Refuse images whose decoded pixels would exceed this many bytes.
    pub max_bytes: u64,
    /// Refuse images that declare more pixels than this (decompression bombs).
    pub max_pixels: u64,
}

/// Pillow's `DecompressionBombError` threshold: twice `Image.MAX_IMAGE_PIXELS`.
pub const DEFAULT_MAX_PIXELS: u64 = 2 * 89_478_485;

impl Default for DecodeOptions {
    fn default() -> Self {
        Self { gray: Gray::Rgb, exif_orientation: true, max_bytes: 1 << 30, max_pixels: DEFAULT_MAX_PIXELS }
    }
}

/// Decoded pixels, `(height, width, channels)` in row-major order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub data: Vec<u8>,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

/// Where an encoded image comes from.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    Bytes(&'a [u8]),
    Path(&'a Path),
}

/// Decodes one encoded image held in memory.
pub fn decode_bytes(bytes: &[u8], options: &DecodeOptions) -> Result<Decoded, String> {
    match catch_unwind(AssertUnwindSafe(|| decode_inner(bytes, options))) {
        Ok(result) => result,
        Err(_) => Err("the decoder failed on malformed data".into()),
    }
}

/// Reads and decodes one item.
pub fn decode_input(input: Input<'_>, options: &DecodeOptions) -> Result<Decoded, String> {
    match input {
        Input::Bytes(b) => decode_bytes(b, options),
        Input::Path(p) => {
            let bytes = std::fs::read(p).map_err(|e| format!("cannot read the file: {e}"))?;
            decode_bytes(&bytes, options)
        }
    }
}

/// Decodes every item, in parallel on the current rayon pool when `parallel`.
pub fn decode_many(inputs: &[Input<'_>], options: &DecodeOptions, parallel: bool) -> Vec<Result<Decoded, String>> {
    if parallel {
        inputs.par_iter().with_max_len(1).map(|i| decode_input(*i, options)).collect()
    } else {
        inputs.iter().map(|i| decode_input(*i, options)).collect()
    }
}

fn decode_inner(bytes: &[u8], options: &DecodeOptions) -> Result<Decoded, String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    let format = match reader.format() {
        Some(f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP)) => f,
        Some(f) => return Err(format!("unsupported image format {f:?} (expected JPEG, PNG or WebP)")),
        None => return Err("not a JPEG, PNG or WebP image (unknown signature)".into()),
    };
    if format == ImageFormat::Jpeg {
        check_jpeg_complete(bytes)?;
    }
    let mut decoder = reader.into_decoder().map_err(|e| e.to_string())?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(options.max_bytes);
    decoder.set_limits(limits).map_err(|e| e.to_string())?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(format!("the image is empty ({w}x{h})"));
    }
    // Checked from the header, before any pixel buffer is allocated: an allocation that fails
    // inside the decoder aborts the process instead of returning an error.
    let pixels = u64::from(w) * u64::from(h);
    if pixels > options.max_pixels {
        return Err(format!("the image declares {w}x{h} = {pixels} pixels, over the limit of {} (a decompression bomb?)", options.max_pixels));
    }
    let decoded_bytes = pixels.saturating_mul(decoder.color_type().bytes_per_pixel() as u64);
    if decoded_bytes > options.max_bytes {
        return Err(format!("the image declares {w}x{h} pixels, {decoded_bytes} bytes decoded, over the limit of {} bytes", options.max_bytes));
    }
    let orientation = if options.exif_orientation { decoder.orientation().ok() } else { None };
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    let (width, height) = (img.width() as usize, img.height() as usize);
    let keep_gray = options.gray == Gray::Keep && !img.color().has_color();
    let (data, channels) = match img {
        DynamicImage::ImageRgb8(buf) => (buf.into_raw(), 3),
        DynamicImage::ImageLuma8(buf) if keep_gray => (buf.into_raw(), 1),
        other if keep_gray => (other.into_luma8().into_raw(), 1),
        other => (other.into_rgb8().into_raw(), 3),
    };
    Ok(Decoded { data, height, width, channels })
}

/// Walks the marker stream of a JPEG and fails unless it reaches the
/// end-of-image marker (segments are skipped by their lengths, so markers
/// inside metadata such as EXIF thumbnails are never mistaken for it).
fn check_jpeg_complete(b: &[u8]) -> Result<(), String> {
    let truncated = || Err("truncated JPEG: the data ends before the end-of-image marker".to_string());
    let mut i = 2; // after SOI
    loop {
        // find the next marker, skipping fill bytes
        while i < b.len() && b[i] != 0xFF {
            i += 1;
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1;
        }
        if i >= b.len() {
            return truncated();
        }
        let marker = b[i];
        i += 1;
        match marker {
            0xD9 => return Ok(()),
            0x01 | 0xD0..=0xD7 | 0x00 => continue,
            _ => {
                if i + 2 > b.len() {
                    return truncated();
                }
                let len = u16::from_be_bytes([b[i], b[i + 1]]) as usize;
                if len < 2 || i + len > b.len() {
                    return truncated();
                }
                i += len;
                if marker == 0xDA {
                    // entropy-coded data: runs until a marker other than FF00 / RSTn
                    loop {
                        while i < b.len() && b[i] != 0xFF {
                            i += 1;
                        }
                        let mut j = i;
                        while j < b.len() && b[j] == 0xFF {
                            j += 1;
                        }
                        if j >= b.len() {
                            return truncated();
                        }
                        if b[j] == 0x00 || (0xD0..=0xD7).contains(&b[j]) {
                            i = j + 1;
                        } else {
                            i = j - 1;
                            break;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny PNG that declares `w`x`h` RGB pixels: an IHDR, one IDAT with an empty zlib
    /// stream, IEND (74 bytes, like the bombs that made the decoder's allocation abort).
    fn png_header_only(w: u32, h: u32) -> Vec<u8> {
        let mut header = w.to_be_bytes().to_vec();
        header.extend_from_slice(&h.to_be_bytes());
        header.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in [(b"IHDR", header), (b"IDAT", vec![0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]), (b"IEND", vec![])] {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut chunk = kind.to_vec();
            chunk.extend_from_slice(&data);
            out.extend_from_slice(&chunk);
            out.extend_from_slice(&crc32(&chunk).to_be_bytes());
        }
        out
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn decompression_bombs_are_refused_from_the_header() {
        let bomb = png_header_only(100_000, 100_000);
        let error = decode_bytes(&bomb, &DecodeOptions::default()).unwrap_err();
        assert!(error.contains("100000x100000") && error.contains("over the limit"), "{error}");
        let small = DecodeOptions { max_pixels: 99, ..DecodeOptions::default() };
        let error = decode_bytes(&png_header_only(10, 10), &small).unwrap_err();
        assert!(error.contains("100 pixels"), "{error}");
        let few_bytes = DecodeOptions { max_bytes: 299, ..DecodeOptions::default() };
        let error = decode_bytes(&png_header_only(10, 10), &few_bytes).unwrap_err();
        assert!(error.contains("300 bytes"), "{error}");
    }
    use image::codecs::jpeg::JpegEncoder;
    use image::codecs::png::PngEncoder;
    use image::{ExtendedColorType, ImageEncoder};

    fn gradient(h: usize, w: usize) -> Vec<u8> {
        (0..h * w * 3).map(|i| ((i % (w * 3)) * 255 / (w * 3)) as u8 ^ ((i / (w * 3)) as u8 & 0x10)).collect()
    }

    fn png(data: &[u8], h: usize, w: usize, color: ExtendedColorType) -> Vec<u8> {
        let mut out = Vec::new();
        PngEncoder::new(&mut out).write_image(data, w as u32, h as u32, color).unwrap();
        out
    }

    fn jpeg(data: &[u8], h: usize, w: usize) -> Vec<u8> {
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 95).write_image(data, w as u32, h as u32, ExtendedColorType::Rgb8).unwrap();
        out
    }

    #[test]
    fn png_round_trips_exactly_and_gray_is_expanded_or_kept() {
        let rgb = gradient(13, 17);
        let d = decode_bytes(&png(&rgb, 13, 17, ExtendedColorType::Rgb8), &DecodeOptions::default()).unwrap();
        assert_eq!((d.height, d.width, d.channels), (13, 17, 3));
        assert_eq!(d.data, rgb);
        let gray: Vec<u8> = (0..13 * 17).map(|i| i as u8).collect();
        let bytes = png(&gray, 13, 17, ExtendedColorType::L8);
        let d = decode_bytes(&bytes, &DecodeOptions::default()).unwrap();
        assert_eq!(d.channels, 3);
        assert!(d.data.chunks(3).zip(&gray).all(|(p, &g)| p == [g, g, g]));
        let keep = DecodeOptions { gray: Gray::Keep, ..DecodeOptions::default() };
        let d = decode_bytes(&bytes, &keep).unwrap();
        assert_eq!((d.channels, d.data), (1, gray));
    }

    #[test]
    fn alpha_is_dropped_and_16_bit_is_scaled() {
        let rgba: Vec<u8> = (0..4 * 5 * 4).map(|i| (i * 3) as u8).collect();
        let d = decode_bytes(&png(&rgba, 4, 5, ExtendedColorType::Rgba8), &DecodeOptions::default()).unwrap();
        let expected: Vec<u8> = rgba.chunks(4).flat_map(|p| p[..3].to_vec()).collect();
        assert_eq!(d.data, expected);
        let wide: Vec<u16> = vec![0, 257 * 10, 65535, 1000];
        let bytes: Vec<u8> = wide.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let d = decode_bytes(&png(&bytes, 2, 2, ExtendedColorType::L16), &DecodeOptions::default()).unwrap();
        let firsts: Vec<u8> = d.data.chunks(3).map(|p| p[0]).collect();
        assert_eq!(firsts, vec![0, 10, 255, 4]);
    }

    #[test]
    fn jpeg_decodes_close_to_the_source_and_truncation_is_an_error() {
        let rgb = gradient(32, 48);
        let bytes = jpeg(&rgb, 32, 48);
        let d = decode_bytes(&bytes, &DecodeOptions::default()).unwrap();
        assert_eq!((d.height, d.width, d.channels), (32, 48, 3));
        let mean: f64 = d.data.iter().zip(&rgb).map(|(&a, &b)| (a as f64 - b as f64).abs()).sum::<f64>() / rgb.len() as f64;
        assert!(mean < 4.0, "{mean}");
        for cut in [bytes.len() - 2, bytes.len() / 2, 200, 3] {
            let err = decode_bytes(&bytes[..cut], &DecodeOptions::default()).unwrap_err();
            assert!(err.contains("truncated") || err.contains("end"), "{cut}: {err}");
        }
        // trailing bytes after the end-of-image marker are allowed
        let mut padded = bytes.clone();
        padded.extend_from_slice(b"trailer");
        assert_eq!(decode_bytes(&padded, &DecodeOptions::default()).unwrap(), d);
    }

    #[test]
    fn garbage_and_empty_input_are_errors_not_panics() {
        assert!(decode_bytes(b"", &DecodeOptions::default()).unwrap_err().contains("empty"));
        assert!(decode_bytes(b"hello world", &DecodeOptions::default()).unwrap_err().contains("JPEG, PNG or WebP"));
        let rgb = gradient(8, 8);
        let mut bytes = png(&rgb, 8, 8, ExtendedColorType::Rgb8);
        let n = bytes.len();
        bytes.truncate(n - 20);
        assert!(decode_bytes(&bytes, &DecodeOptions::default()).is_err());
        let mut state = 1u64;
        let good = jpeg(&rgb, 8, 8);
        for _ in 0..300 {
            let mut b = good.clone();
            for _ in 0..4 {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let k = (state >> 33) as usize % b.len();
                b[k] = (state >> 17) as u8;
            }
            let _ = decode_bytes(&b, &DecodeOptions::default());
        }
    }

    #[test]
    fn many_in_parallel_equals_serial_and_keeps_order() {
        let a = png(&gradient(5, 6), 5, 6, ExtendedColorType::Rgb8);
        let b = jpeg(&gradient(9, 4), 9, 4);
        let inputs = [Input::Bytes(&a), Input::Bytes(b"bad"), Input::Bytes(&b), Input::Path(Path::new("/nonexistent/x.png"))];
        let par = decode_many(&inputs, &DecodeOptions::default(), true);
        let ser = decode_many(&inputs, &DecodeOptions::default(), false);
        assert_eq!(par, ser);
        assert_eq!(par[0].as_ref().unwrap().height, 5);
        assert!(par[1].is_err());
        assert_eq!(par[2].as_ref().unwrap().width, 4);
        assert!(par[3].as_ref().unwrap_err().contains("cannot read"));
    }
}
