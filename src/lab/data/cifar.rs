//! CIFAR-10 in its official binary format: raw 3073-byte records (`parse_records`), the official
//! `cifar-10-binary.tar.gz` read as a stream (`read_tar_gz`), and a search of a data folder for
//! any of the layouts a user is likely to have (`load_dir`). Never panics on malformed input.
//!
//! A record is 1 label byte (0–9) then 1024 red, 1024 green and 1024 blue bytes, each plane
//! 32×32 row-major; files have no header. That is already the channel-planar layout of
//! `ImageSet`, so records map straight into it.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::lab::data::{ImageSet, NUM_CLASSES};
use crate::lab::error::{LabError, Result};

/// Bytes per CIFAR-10 record: 1 label + 3×32×32 pixels.
pub const RECORD_LEN: usize = 1 + IMAGE_LEN;
const IMAGE_LEN: usize = 3 * 32 * 32;
/// Where the official release lives; quoted in the "not found" message.
pub const DOWNLOAD_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
const TRAIN_BATCHES: [&str; 5] =
    ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
const TEST_BATCH: &str = "test_batch.bin";
const TAR_NAME: &str = "cifar-10-binary.tar.gz";
const BATCH_DIR: &str = "cifar-10-batches-bin";

/// A training and a test set, and a human-readable note of where they were read from.
#[derive(Debug, Clone, PartialEq)]
pub struct CifarSplits {
    pub train: ImageSet,
    pub test: ImageSet,
    pub source: String,
}

/// Parses a whole file of CIFAR-10 records; `file` names it in error messages.
pub fn parse_records(bytes: &[u8], file: &str) -> Result<ImageSet> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD_LEN) {
        return Err(LabError::data(
            file,
            format!(
                "{} bytes is not a multiple of the {RECORD_LEN}-byte CIFAR-10 record \
                 (1 label + 3×32×32 pixels); truncated?",
                bytes.len()
            ),
        ));
    }
    let count = bytes.len() / RECORD_LEN;
    let mut set = ImageSet::empty(3, 32, 32);
    set.labels.reserve(count);
    set.pixels.reserve(count * IMAGE_LEN);
    for (i, record) in bytes.chunks_exact(RECORD_LEN).enumerate() {
        let label = record[0];
        if label as usize >= NUM_CLASSES {
            return Err(LabError::data(
                file,
                format!("record {i} has label {label}, expected 0..{NUM_CLASSES}; not a CIFAR-10 file?"),
            ));
        }
        set.labels.push(label);
        set.pixels.extend_from_slice(&record[1..]);
    }
    Ok(set)
}

/// Reads the official `cifar-10-binary.tar.gz` (or any gzip'd tar holding its batch files) from a
/// stream, keeping only `data_batch_1..5.bin` (train, concatenated in batch order whatever their
/// order in the archive) and `test_batch.bin` (test). `file` names the archive in messages.
pub fn read_tar_gz(reader: impl Read, file: &str) -> Result<CifarSplits> {
    let malformed = |e: std::io::Error| LabError::data(file, format!("not a readable gzip'd tar archive: {e}"));
    let mut archive = tar::Archive::new(GzDecoder::new(reader));
    let mut train: [Option<ImageSet>; 5] = Default::default();
    let mut test: Option<ImageSet> = None;

    for entry in archive.entries().map_err(malformed)? {
        let mut entry = entry.map_err(malformed)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(malformed)?.into_owned();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let slot = if name == TEST_BATCH {
            &mut test
        } else if let Some(i) = TRAIN_BATCHES.iter().position(|b| *b == name) {
            &mut train[i]
        } else {
            continue;
        };
        let inner = format!("{file}/{}", path.display());
        if slot.is_some() {
            // Two copies could differ; picking one silently would hide that.
            return Err(LabError::data(
                file,
                format!("archive holds {name} more than once (again at {})", path.display()),
            ));
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(malformed)?;
        *slot = Some(parse_records(&bytes, &inner)?);
    }

    let found: Vec<usize> = (0..5).filter(|&i| train[i].is_some()).collect();
    let mut missing = Vec::new();
    if found.is_empty() {
        missing.push("data_batch_1.bin … data_batch_5.bin");
    }
    if test.is_none() {
        missing.push(TEST_BATCH);
    }
    let test = match test {
        Some(t) if missing.is_empty() => t,
        _ => {
            return Err(LabError::data(
                file,
                format!(
                    "archive has no {}; is it cifar-10-binary.tar.gz from {DOWNLOAD_URL}?",
                    missing.join(" and no ")
                ),
            ));
        }
    };
    let mut merged = ImageSet::empty(3, 32, 32);
    for set in train.iter().flatten() {
        merged.extend(set);
    }
    Ok(CifarSplits { train: merged, test, source: format!("{file} ({}, {TEST_BATCH})", batch_list(&found)) })
}

/// The records of `set` in the official format (the inverse of `parse_records`).
pub fn encode_records(set: &ImageSet) -> Vec<u8> {
    let mut out = Vec::with_capacity(set.len() * RECORD_LEN);
    for i in 0..set.len() {
        out.push(set.labels[i]);
        out.extend_from_slice(set.image(i));
    }
    out
}

/// CIFAR-10 from files a user picked (name, bytes): the official `cifar-10-binary.tar.gz`, or
/// CIFAR-format `.bin` files, where `test_batch.bin` or a name containing "test" is the test set
/// and the others (e.g. `data_batch_1..5.bin`, in name order) are the training set.
pub fn from_files(mut files: Vec<(String, Vec<u8>)>) -> Result<CifarSplits> {
    if let Some(k) = files.iter().position(|(n, _)| n.ends_with(".tar.gz") || n.ends_with(".tgz")) {
        let (name, bytes) = files.swap_remove(k);
        return read_tar_gz(bytes.as_slice(), &name);
    }
    if let Some((name, _)) = files.iter().find(|(n, _)| !n.ends_with(".bin")) {
        return Err(LabError::data(
            name,
            "not a CIFAR-10 file: choose cifar-10-binary.tar.gz or CIFAR-format .bin files",
        ));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let (test, train): (Vec<_>, Vec<_>) = files.into_iter().partition(|(n, _)| n.to_lowercase().contains("test"));
    if train.is_empty() || test.is_empty() {
        return Err(LabError::DataMissing(format!(
            "CIFAR-10 needs a training and a test file: choose cifar-10-binary.tar.gz, or the .bin files \
             together (e.g. data_batch_1.bin … data_batch_5.bin and test_batch.bin); missing: the {} set",
            if train.is_empty() { "training" } else { "test" }
        )));
    }
    let read = |parts: &[(String, Vec<u8>)]| -> Result<ImageSet> {
        let mut set = ImageSet::empty(3, 32, 32);
        for (name, bytes) in parts {
            set.extend(&parse_records(bytes, name)?);
        }
        Ok(set)
    };
    let names = |parts: &[(String, Vec<u8>)]| parts.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
    let source = format!("{} + {}", names(&train), names(&test));
    Ok(CifarSplits { train: read(&train)?, test: read(&test)?, source })
}

/// Finds and reads CIFAR-10 under `dir`, trying in order:
/// (a) `dir/cifar10/{train,test}_subset.bin`;
/// (b) `dir/cifar-10-batches-bin/` or `dir/cifar10/cifar-10-batches-bin/` (`data_batch_*.bin` + `test_batch.bin`);
/// (c) `dir/cifar-10-binary.tar.gz` or `dir/cifar10/cifar-10-binary.tar.gz`;
/// (d) `dir/cifar10/{train,test}.bin` (any CIFAR-format files).
///
/// The first layout found is read; if it is damaged that is an error, not a reason to try the next.
/// If none is there: `LabError::DataMissing` saying where it looked and how to get the data.
pub fn load_dir(dir: &Path) -> Result<CifarSplits> {
    let sub = dir.join("cifar10");
    let mut searched = Vec::new();

    let subset = (sub.join("train_subset.bin"), sub.join("test_subset.bin"));
    if let Some(splits) = try_pair(&subset, &mut searched)? {
        return Ok(splits);
    }

    for batches in [dir.join(BATCH_DIR), sub.join(BATCH_DIR)] {
        let test = batches.join(TEST_BATCH);
        let found: Vec<usize> = (0..5).filter(|&i| batches.join(TRAIN_BATCHES[i]).is_file()).collect();
        if !found.is_empty() && test.is_file() {
            let mut train = ImageSet::empty(3, 32, 32);
            for &i in &found {
                train.extend(&read_records(&batches.join(TRAIN_BATCHES[i]))?);
            }
            let test = read_records(&test)?;
            let source = format!("{} ({}, {TEST_BATCH})", batches.display(), batch_list(&found));
            return Ok(CifarSplits { train, test, source });
        }
        searched.push(format!("{}/ (data_batch_*.bin + {TEST_BATCH})", batches.display()));
    }

    for tar_path in [dir.join(TAR_NAME), sub.join(TAR_NAME)] {
        if tar_path.is_file() {
            let name = tar_path.display().to_string();
            let f = std::fs::File::open(&tar_path).map_err(|e| LabError::io(&name, e))?;
            return read_tar_gz(std::io::BufReader::new(f), &name);
        }
        searched.push(tar_path.display().to_string());
    }

    let user = (sub.join("train.bin"), sub.join("test.bin"));
    if let Some(splits) = try_pair(&user, &mut searched)? {
        return Ok(splits);
    }

    let d = dir.display();
    Err(LabError::DataMissing(format!(
        "CIFAR-10 not found; looked for: {}. To get it: download {DOWNLOAD_URL} (162 MB) into {d} \
         (or run scripts/get-cifar10.sh {d}), or put CIFAR-format .bin files at {d}/cifar10/train.bin \
         and {d}/cifar10/test.bin",
        searched.join("; ")
    )))
}

/// Reads a (train, test) pair of record files if both exist; notes in `searched` what was missing.
fn try_pair((train, test): &(PathBuf, PathBuf), searched: &mut Vec<String>) -> Result<Option<CifarSplits>> {
    match (train.is_file(), test.is_file()) {
        (true, true) => {
            let source = format!("{} + {}", train.display(), test.display());
            Ok(Some(CifarSplits { train: read_records(train)?, test: read_records(test)?, source }))
        }
        // A half-present pair is most likely a user mistake worth pointing at.
        (true, false) => {
            searched.push(format!("{} + {} (found the first, not the second)", train.display(), test.display()));
            Ok(None)
        }
        (false, true) => {
            searched.push(format!("{} + {} (found the second, not the first)", train.display(), test.display()));
            Ok(None)
        }
        (false, false) => {
            searched.push(format!("{} + {}", train.display(), test.display()));
            Ok(None)
        }
    }
}

fn read_records(path: &Path) -> Result<ImageSet> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| LabError::io(&name, e))?;
    parse_records(&bytes, &name)
}

/// "data_batch_1..5" when complete, else the numbers found, so a partial download is visible.
fn batch_list(found: &[usize]) -> String {
    if found == [0, 1, 2, 3, 4] {
        "data_batch_1..5.bin".to_string()
    } else {
        let nums: Vec<String> = found.iter().map(|i| (i + 1).to_string()).collect();
        format!("data_batch_{{{}}}.bin only", nums.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    /// A record with the given label whose R, G, B planes are filled with r, g, b except pixel
    /// (row 1, col 2) of each plane, which is 100 + plane index.
    fn record(label: u8, r: u8, g: u8, b: u8) -> Vec<u8> {
        let mut v = vec![label];
        for (c, fill) in [r, g, b].into_iter().enumerate() {
            let mut plane = vec![fill; 1024];
            plane[32 + 2] = 100 + c as u8;
            v.extend(plane);
        }
        v
    }

    fn message<T: std::fmt::Debug>(r: Result<T>) -> (LabError, String) {
        let e = r.expect_err("expected an error");
        let m = e.to_string();
        (e, m)
    }

    #[test]
    fn parses_records_into_planes() {
        let mut bytes = record(7, 1, 2, 3);
        bytes.extend(record(0, 4, 5, 6));
        let set = parse_records(&bytes, "two.bin").unwrap();
        assert_eq!((set.channels, set.height, set.width, set.len()), (3, 32, 32, 2));
        assert_eq!(set.labels, vec![7, 0]);
        let img = set.image(1);
        assert_eq!((img[0], img[1024], img[2048]), (4, 5, 6));
        assert_eq!((img[34], img[1024 + 34], img[2048 + 34]), (100, 101, 102));
        assert_eq!(set.image(0)[1023], 1);
        assert_eq!(set.image(0)[1024], 2);
        assert_eq!(set.pixels.len(), 2 * 3072);
    }

    #[test]
    fn truncated_file_is_rejected() {
        let bytes = record(1, 0, 0, 0);
        let (_, m) = message(parse_records(&bytes[..3000], "short.bin"));
        assert_eq!(
            m,
            "short.bin: 3000 bytes is not a multiple of the 3073-byte CIFAR-10 record \
             (1 label + 3×32×32 pixels); truncated?"
        );
        let (_, m) = message(parse_records(&[], "empty.bin"));
        assert!(m.contains("0 bytes"), "{m}");
    }

    #[test]
    fn bad_label_is_rejected() {
        let mut bytes = record(1, 0, 0, 0);
        bytes.extend(record(10, 0, 0, 0));
        let (_, m) = message(parse_records(&bytes, "bad.bin"));
        assert!(m.starts_with("bad.bin: ") && m.contains("record 1 has label 10"), "{m}");
    }

    fn tar_gz(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, data.as_slice()).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn reads_tar_gz_in_batch_order() {
        let b1 = [record(1, 10, 0, 0), record(2, 11, 0, 0)].concat();
        let b2 = record(3, 20, 0, 0);
        let t = record(9, 90, 0, 0);
        let gz = tar_gz(&[
            ("cifar-10-batches-bin/readme.html", b"<html>".to_vec()),
            ("cifar-10-batches-bin/test_batch.bin", t),
            ("cifar-10-batches-bin/data_batch_2.bin", b2),
            ("cifar-10-batches-bin/batches.meta.txt", b"airplane\n".to_vec()),
            ("cifar-10-batches-bin/data_batch_1.bin", b1),
        ]);
        let s = read_tar_gz(gz.as_slice(), "c.tar.gz").unwrap();
        assert_eq!(s.train.labels, vec![1, 2, 3]);
        assert_eq!([s.train.image(0)[0], s.train.image(1)[0], s.train.image(2)[0]], [10, 11, 20]);
        assert_eq!(s.test.labels, vec![9]);
        assert_eq!(s.test.image(0)[0], 90);
        assert!(s.source.contains("data_batch_{1,2}.bin only"), "{}", s.source);
    }

    #[test]
    fn tar_gz_without_batches_names_what_is_missing() {
        let gz = tar_gz(&[("x/readme.html", b"hi".to_vec())]);
        let (_, m) = message(read_tar_gz(gz.as_slice(), "c.tar.gz"));
        assert!(m.contains("data_batch_1.bin … data_batch_5.bin and no test_batch.bin"), "{m}");
        let gz = tar_gz(&[("x/data_batch_3.bin", record(0, 0, 0, 0))]);
        let (_, m) = message(read_tar_gz(gz.as_slice(), "c.tar.gz"));
        assert!(m.contains("no test_batch.bin") && !m.contains("data_batch_1"), "{m}");
    }

    #[test]
    fn tar_gz_with_bad_batch_names_the_entry() {
        let gz = tar_gz(&[("x/data_batch_1.bin", vec![0; 100]), ("x/test_batch.bin", record(0, 0, 0, 0))]);
        let (_, m) = message(read_tar_gz(gz.as_slice(), "c.tar.gz"));
        assert!(m.contains("c.tar.gz/x/data_batch_1.bin") && m.contains("100 bytes"), "{m}");
    }

    #[test]
    fn picked_files_are_read_like_the_release() {
        let train = [record(1, 1, 2, 3), record(2, 4, 5, 6)].concat();
        let test = record(3, 7, 8, 9);
        let set = parse_records(&train, "t").expect("valid");
        assert_eq!(encode_records(&set), train);
        let bins = vec![("test_batch.bin".to_string(), test.clone()), ("data_batch_1.bin".to_string(), train.clone())];
        let s = from_files(bins).expect("two .bin files");
        assert_eq!((s.train.labels.clone(), s.test.labels.clone()), (vec![1, 2], vec![3]));
        let archive =
            tar_gz(&[("cifar-10-batches-bin/data_batch_1.bin", train), ("cifar-10-batches-bin/test_batch.bin", test)]);
        let s2 = from_files(vec![("cifar-10-binary.tar.gz".into(), archive)]).expect("the archive");
        assert_eq!((s2.train, s2.test), (s.train, s.test));
        let (e, msg) = message(from_files(vec![("data_batch_1.bin".into(), record(1, 0, 0, 0))]));
        assert!(matches!(e, LabError::DataMissing(_)) && msg.contains("missing: the test set"), "{msg}");
        let (_, msg) = message(from_files(vec![("cat.png".into(), vec![1, 2, 3])]));
        assert!(msg.contains("not a CIFAR-10 file"), "{msg}");
        let (_, msg) = message(from_files(vec![("a.bin".into(), vec![1; 10]), ("test.bin".into(), vec![1; 10])]));
        assert!(msg.contains("truncated"), "{msg}");
    }

    #[test]
    fn malformed_gzip_is_an_error() {
        let (_, m) = message(read_tar_gz(&b"this is not gzip at all"[..], "bad.tar.gz"));
        assert!(m.starts_with("bad.tar.gz: not a readable gzip'd tar archive"), "{m}");

        let gz = tar_gz(&[("x/data_batch_1.bin", record(0, 0, 0, 0)), ("x/test_batch.bin", record(0, 0, 0, 0))]);
        for cut in [10, gz.len() / 2, gz.len() - 30] {
            assert!(read_tar_gz(&gz[..cut], "cut.tar.gz").is_err(), "cut at {cut}");
        }
        // Valid gzip, garbage tar.
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(&[0x5a; 2048]).unwrap();
        let (_, m) = message(read_tar_gz(enc.finish().unwrap().as_slice(), "junk.tar.gz"));
        assert!(m.starts_with("junk.tar.gz: "), "{m}");
    }

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!("bdlab-cifar-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn empty_dir_is_data_missing_with_instructions() {
        let dir = TempDir::new("empty");
        let (e, m) = message(load_dir(&dir.0));
        assert!(matches!(e, LabError::DataMissing(_)), "{e:?}");
        assert!(m.contains(DOWNLOAD_URL) && m.contains("162 MB"), "{m}");
        assert!(m.contains(&format!("scripts/get-cifar10.sh {}", dir.0.display())), "{m}");
        assert!(m.contains("cifar10/train_subset.bin") && m.contains(TAR_NAME), "{m}");
    }

    #[test]
    fn load_dir_finds_each_layout() {
        let dir = TempDir::new("layouts");
        let sub = dir.0.join("cifar10");
        std::fs::create_dir_all(&sub).unwrap();

        // (d) user files, with a half-present pair noted in the message first.
        std::fs::write(sub.join("train.bin"), record(4, 0, 0, 0)).unwrap();
        let (_, m) = message(load_dir(&dir.0));
        assert!(m.contains("found the first, not the second"), "{m}");
        std::fs::write(sub.join("test.bin"), record(5, 0, 0, 0)).unwrap();
        assert_eq!(load_dir(&dir.0).unwrap().train.labels, vec![4]);

        // (c) tar.gz beats (d).
        let gz = tar_gz(&[("a/data_batch_1.bin", record(3, 0, 0, 0)), ("a/test_batch.bin", record(3, 0, 0, 0))]);
        std::fs::write(sub.join(TAR_NAME), gz).unwrap();
        assert_eq!(load_dir(&dir.0).unwrap().train.labels, vec![3]);

        // (b) extracted batches beat (c).
        let batches = dir.0.join(BATCH_DIR);
        std::fs::create_dir_all(&batches).unwrap();
        std::fs::write(batches.join("data_batch_2.bin"), record(2, 0, 0, 0)).unwrap();
        std::fs::write(batches.join("data_batch_1.bin"), record(1, 0, 0, 0)).unwrap();
        std::fs::write(batches.join(TEST_BATCH), record(0, 0, 0, 0)).unwrap();
        assert_eq!(load_dir(&dir.0).unwrap().train.labels, vec![1, 2]);

        // (a) the subset beats everything; a damaged one is an error, not skipped.
        std::fs::write(sub.join("train_subset.bin"), record(8, 0, 0, 0)).unwrap();
        std::fs::write(sub.join("test_subset.bin"), record(9, 0, 0, 0)).unwrap();
        let s = load_dir(&dir.0).unwrap();
        assert_eq!((s.train.labels.as_slice(), s.test.labels.as_slice()), (&[8u8][..], &[9u8][..]));
        std::fs::write(sub.join("test_subset.bin"), [0u8; 5]).unwrap();
        let (_, m) = message(load_dir(&dir.0));
        assert!(m.contains("test_subset.bin") && m.contains("5 bytes"), "{m}");
    }

    #[test]
    fn loads_shared_subset() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data"));
        if !dir.join("cifar10").is_dir() {
            eprintln!("skipping: {} not present", dir.display());
            return;
        }
        let s = load_dir(dir).unwrap();
        assert_eq!((s.train.len(), s.test.len()), (10_000, 2_000));
        assert_eq!(s.train.labels[..10], [9, 0, 2, 5, 2, 8, 5, 6, 2, 3]);
        assert_eq!(s.test.labels[..10], [2, 5, 5, 3, 8, 5, 7, 6, 9, 0]);
        let mut per_class = [0usize; NUM_CLASSES];
        for &l in &s.train.labels {
            per_class[l as usize] += 1;
        }
        assert_eq!(per_class, [1000; NUM_CLASSES]);
        assert!(s.source.contains("train_subset.bin"), "{}", s.source);
    }
}
