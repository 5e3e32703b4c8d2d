//! Full-size data natively: MNIST's official IDX files (gzipped or not) and the official CIFAR-10
//! release at full size with `train=all`, with memory that stays below the float32 copy of the data.

use crate::common;

use std::path::PathBuf;
use std::process::Command;

use backdoor_lab::lab::data::{DataSource, DatasetKind, ImageSet, cifar, idx};
use backdoor_lab::lab::spec::{ALL, ExperimentSpec};
use flate2::Compression;
use flate2::write::GzEncoder;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("backdoor-lab-full-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// The first `n` digits of the shipped bundle, from `from`.
fn digits(from: usize, n: usize) -> ImageSet {
    let DataSource::Pool(pool) = common::mnist() else { panic!("the shipped MNIST is one pool") };
    pool.select(&(from..from + n).collect::<Vec<_>>())
}

#[test]
fn mnist_idx_files_read_gzipped_or_not() {
    let dir = tmp("idx");
    let (train, test) = (digits(0, 300), digits(5000, 120));
    // The release as distributed (gzipped) for the training files, unpacked for the test files.
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), gz(&idx::encode(&train, false))).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), gz(&idx::encode(&train, true))).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), idx::encode(&test, false)).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx::encode(&test, true)).unwrap();
    let DataSource::TrainTest { train: got_train, test: got_test } =
        DataSource::load(DatasetKind::Mnist, &dir).unwrap()
    else {
        panic!("IDX files are the official train and test sets")
    };
    assert_eq!(got_train, train);
    assert_eq!(got_test, test);
    // train=all takes every training image.
    let spec = ExperimentSpec::from_link("v=1&train=all&test=100").unwrap();
    assert_eq!(spec.data.train_size, ALL);
    assert_eq!(spec.to_link(), "v=1&train=all&test=100");
    assert!(spec.to_json().contains("\"train_size\": \"all\""));
    assert_eq!(ExperimentSpec::from_json(&spec.to_json()).unwrap(), spec);
    let source = DataSource::load(DatasetKind::Mnist, &dir).unwrap();
    let split = source.split(&spec.data, 0).unwrap();
    assert_eq!((split.train.len(), split.test.len()), (300, 100));
    // The CLI runs on them.
    let report = tmp("idx-report").join("r.json");
    let out = Command::new(env!("CARGO_BIN_EXE_backdoor-lab"))
        .args(["run", "-q", "--link", "v=1&train=all&test=100&epochs=1", "--data-dir"])
        .arg(&dir)
        .arg("--out")
        .arg(&report)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["spec"]["data"]["train_size"], "all");
    assert_eq!(r["poison"]["count"], 30, "ρ = 10 % of the 300 training digits");

    // Damaged or incomplete releases say what is wrong.
    let mut cut = idx::encode(&test, false);
    cut.truncate(cut.len() - 7);
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), &cut).unwrap();
    let e = DataSource::load(DatasetKind::Mnist, &dir).unwrap_err().to_string();
    assert!(e.contains("t10k-images-idx3-ubyte") && e.contains("header promises"), "{e}");
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), idx::encode(&test, true)).unwrap();
    let e = DataSource::load(DatasetKind::Mnist, &dir).unwrap_err().to_string();
    assert!(e.contains("1 dimensions; expected 3"), "{e}");
    std::fs::remove_file(dir.join("t10k-images-idx3-ubyte")).unwrap();
    let e = DataSource::load(DatasetKind::Mnist, &dir).unwrap_err().to_string();
    assert!(e.contains("not t10k-images-idx3-ubyte"), "{e}");
    let mut labels = idx::encode(&train, true);
    *labels.last_mut().unwrap() = 10;
    let e = idx::decode(&idx::encode(&train, false), &labels, "i", "l").unwrap_err().to_string();
    assert!(e.contains("label 10"), "{e}");
}

#[test]
fn full_size_cifar10_trains_with_memory_below_its_float32_copy() {
    // The official release's layout and size: 5 × 10,000 training records and 10,000 test records.
    let dir = tmp("cifar");
    let batches = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&batches).unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut set = |n: usize| {
        let mut s = ImageSet::empty(3, 32, 32);
        for _ in 0..n {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            s.labels.push((state >> 60) as u8 % 10);
            let base = (state >> 32) as u8;
            s.pixels.extend((0..3072).map(|i| base.wrapping_add((i * 7) as u8)));
        }
        s
    };
    for b in 1..=5 {
        std::fs::write(batches.join(format!("data_batch_{b}.bin")), cifar::encode_records(&set(10_000))).unwrap();
    }
    std::fs::write(batches.join("test_batch.bin"), cifar::encode_records(&set(10_000))).unwrap();
    let report = dir.join("r.json");
    let out = Command::new(env!("CARGO_BIN_EXE_backdoor-lab"))
        .args(["run", "-q", "--link", "v=1&data=cifar10&train=all&test=1000&model=mlp&epochs=1", "--data-dir"])
        .arg(&dir)
        .arg("--out")
        .arg(&report)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["poison"]["count"], 5000, "ρ = 10 % of all 50,000 training images");
    let peak: f64 = said
        .lines()
        .find_map(|l| l.strip_prefix("peak memory ")?.strip_suffix(" MB")?.parse().ok())
        .unwrap_or_else(|| panic!("no peak memory line in {said}"));
    // The 60,000 images as float32 alone would take 737 MB; as bytes they take 184 MB.
    let float32_mb = 60_000.0 * 3072.0 * 4.0 / (1024.0 * 1024.0);
    eprintln!("full CIFAR-10, train=all: peak memory {peak:.0} MB (float32 copy: {float32_mb:.0} MB)");
    assert!(peak < float32_mb, "peak memory {peak:.0} MB: the data was held as float32 somewhere");
    let _ = std::fs::remove_dir_all(&dir);
}
