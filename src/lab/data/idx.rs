//! The official MNIST release: LeCun's IDX files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
//! `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`), gzipped as distributed or unpacked, 60,000
//! training and 10,000 test digits. Read natively from a data folder; never shipped.
//!
//! # IDX format
//! Big-endian: a magic number `0x0000_08NN` (unsigned bytes, NN dimensions), NN u32 sizes, then the
//! data. Images are `0x803` with (count, rows, cols); labels `0x801` with (count).

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::lab::data::{ImageSet, NUM_CLASSES};
use crate::lab::error::{LabError, Result};

/// The four files of the release, by their official names (without `.gz`).
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// The largest image side accepted: far above MNIST's 28, low enough that sizes cannot overflow.
const MAX_SIDE: usize = 4096;

/// Reads an IDX file's bytes: (dimensions, data after the header), every size checked.
fn parse<'a>(bytes: &'a [u8], file: &str, want_dims: usize) -> Result<(Vec<usize>, &'a [u8])> {
    let bad = |why: String| LabError::data(file, why);
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("not an IDX file (no IDX magic number)".into()));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!("IDX data type 0x{:02x}; MNIST's files hold unsigned bytes (0x08)", bytes[2])));
    }
    let dims = bytes[3] as usize;
    if dims != want_dims {
        return Err(bad(format!("{dims} dimensions; expected {want_dims}")));
    }
    let header = 4 + 4 * dims;
    if bytes.len() < header {
        return Err(bad("truncated IDX header".into()));
    }
    let sizes: Vec<usize> = (0..dims)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize)
        .collect();
    if sizes[1..].iter().any(|&s| s == 0 || s > MAX_SIDE) {
        return Err(bad(format!("image sides {:?} out of range", &sizes[1..])));
    }
    let want: usize = sizes.iter().product();
    let data = &bytes[header..];
    if data.len() != want {
        return Err(bad(format!(
            "holds {} data bytes; its header promises {want} ({})",
            data.len(),
            sizes.iter().map(usize::to_string).collect::<Vec<_>>().join(" × ")
        )));
    }
    Ok((sizes, data))
}

/// An image file and its label file as one set.
pub fn decode(images: &[u8], labels: &[u8], images_file: &str, labels_file: &str) -> Result<ImageSet> {
    let (isz, pixels) = parse(images, images_file, 3)?;
    let (lsz, label_bytes) = parse(labels, labels_file, 1)?;
    if isz[0] != lsz[0] {
        return Err(LabError::data(
            labels_file,
            format!("{} labels for the {} images of {images_file}", lsz[0], isz[0]),
        ));
    }
    if let Some(i) = label_bytes.iter().position(|&y| y as usize >= NUM_CLASSES) {
        return Err(LabError::data(labels_file, format!("label {} at index {i} is not a digit", label_bytes[i])));
    }
    Ok(ImageSet { channels: 1, height: isz[1], width: isz[2], labels: label_bytes.to_vec(), pixels: pixels.to_vec() })
}

/// The path of `name` in `dir`, gzipped or not, with the dot some mirrors use (`train-images.idx3-ubyte`).
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    let dotted = name.replacen("-idx", ".idx", 1);
    [name, dotted.as_str()]
        .into_iter()
        .flat_map(|n| [format!("{n}.gz"), n.to_string()])
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// A file's bytes, gunzipped when it is gzipped (by its magic number, whatever its name).
fn read(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| LabError::io(path.display(), e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| LabError::data(path.display().to_string(), format!("not a readable gzip file: {e}")))?;
        return Ok(out);
    }
    Ok(raw)
}

/// The release under `dir` or `dir/mnist`: `None` when no IDX file is there; an error naming the missing
/// file when only some are.
pub fn load_dir(dir: &Path) -> Result<Option<(ImageSet, ImageSet)>> {
    for folder in [dir.to_path_buf(), dir.join("mnist")] {
        let found: Vec<Option<PathBuf>> =
            [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS].iter().map(|n| find(&folder, n)).collect();
        if found.iter().all(Option::is_none) {
            continue;
        }
        let names = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];
        if let Some(i) = found.iter().position(Option::is_none) {
            return Err(LabError::DataMissing(format!(
                "{} holds some of MNIST's IDX files but not {} (or {}.gz)",
                folder.display(),
                names[i],
                names[i]
            )));
        }
        let paths: Vec<PathBuf> = found.into_iter().flatten().collect();
        let set = |i: usize, l: usize| -> Result<ImageSet> {
            decode(
                &read(&paths[i])?,
                &read(&paths[l])?,
                &paths[i].display().to_string(),
                &paths[l].display().to_string(),
            )
        };
        return Ok(Some((set(0, 1)?, set(2, 3)?)));
    }
    Ok(None)
}

/// An IDX file of `set`'s images (`labels: false`) or labels: the inverse of `decode`, for tests and
/// for tools that write MNIST-like data.
pub fn encode(set: &ImageSet, labels: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if labels {
        out.extend([0, 0, 0x08, 1]);
        out.extend((set.len() as u32).to_be_bytes());
        out.extend(&set.labels);
    } else {
        out.extend([0, 0, 0x08, 3]);
        for n in [set.len(), set.height, set.width] {
            out.extend((n as u32).to_be_bytes());
        }
        out.extend(&set.pixels);
    }
    out
}
