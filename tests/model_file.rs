//! Model files: the reference PyTorch model's weights load (safetensors and .pt) and reproduce its
//! logits; our export loads back bit for bit; files that do not fit are refused with a message that
//! names the problem.

use crate::common;

use std::path::PathBuf;

use backdoor_lab::lab::data::{ImageSet, batch};
use backdoor_lab::lab::device::{DeviceKind, fresh_model};
use backdoor_lab::lab::model::{Model, ModelKind};
use backdoor_lab::lab::model_file::{declared_arch, export_safetensors, import_path, import_safetensors};
use burn::tensor::Device;
use serde::Deserialize;

const MNIST: (usize, usize, usize) = (1, 28, 28);

fn example(ext: &str) -> PathBuf {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../shared/reference/example/badnets_tl_target6.{ext}"));
    assert!(p.exists(), "{} is missing: the tests need ../shared beside the repository", p.display());
    p
}

#[derive(Deserialize)]
struct Check {
    pixels_u8: Vec<Vec<u8>>,
    labels: Vec<u8>,
    logits: Vec<Vec<f32>>,
}

fn check() -> (ImageSet, Vec<Vec<f32>>) {
    let c: Check = serde_json::from_str(&std::fs::read_to_string(example("check.json")).unwrap()).unwrap();
    let set = ImageSet {
        channels: 1,
        height: 28,
        width: 28,
        labels: c.labels,
        pixels: c.pixels_u8.into_iter().flatten().collect(),
    };
    (set, c.logits)
}

fn logits(model: &Model, set: &ImageSet) -> Vec<f32> {
    let idx: Vec<usize> = (0..set.len()).collect();
    model.forward(batch::images(set, &idx, &Device::flex())).into_data().try_to_vec::<f32>().unwrap()
}

fn max_diff(model: &Model) -> f32 {
    let (set, want) = check();
    let got = logits(model, &set);
    want.iter().flatten().zip(&got).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

#[test]
fn reference_safetensors_reproduce_pytorch_logits() {
    if common::skip_without_shared() {
        return;
    }
    let bytes = std::fs::read(example("safetensors")).unwrap();
    let model = import_safetensors(bytes, "example", ModelKind::Cnn, MNIST, &Device::flex()).unwrap();
    let d = max_diff(&model);
    assert!(d < 1e-3, "largest logit difference {d}");
}

#[test]
fn reference_pt_archive_reproduces_pytorch_logits() {
    if common::skip_without_shared() {
        return;
    }
    let model = import_path(&example("pt"), ModelKind::Cnn, MNIST, &Device::flex()).unwrap();
    let d = max_diff(&model);
    assert!(d < 1e-3, "largest logit difference {d}");
}

#[test]
fn export_then_import_predicts_bit_for_bit() {
    if common::skip_without_shared() {
        return;
    }
    for kind in [ModelKind::Cnn, ModelKind::Mlp] {
        let model = fresh_model(kind, MNIST, 7, &Device::flex());
        let bytes = export_safetensors(&model, kind, MNIST).unwrap();
        assert_eq!(declared_arch(&bytes), Some(kind));
        let back = import_safetensors(bytes, "ours", kind, MNIST, &Device::flex()).unwrap();
        let (set, _) = check();
        assert_eq!(logits(&model, &set), logits(&back, &set), "{kind:?}");
    }
}

#[test]
fn files_that_do_not_fit_are_refused_with_their_reason() {
    if common::skip_without_shared() {
        return;
    }
    let bytes = std::fs::read(example("safetensors")).unwrap();
    let err = |b: Vec<u8>, kind| import_safetensors(b, "f", kind, MNIST, &Device::flex()).unwrap_err().to_string();

    let truncated = err(bytes[..bytes.len() / 2].to_vec(), ModelKind::Cnn);
    assert!(truncated.contains("f: truncated safetensors file: its tensors need"), "{truncated}");
    let header_cut = err(bytes[..40].to_vec(), ModelKind::Cnn);
    assert!(header_cut.contains("truncated"), "{header_cut}");

    let mlp = err(bytes.clone(), ModelKind::Mlp);
    assert!(mlp.contains("no tensor 'fc1.weight' [256, 784]"), "{mlp}");
    let cifar = import_safetensors(bytes.clone(), "f", ModelKind::CifarCnn, (3, 32, 32), &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(cifar.contains("tensor 'conv1.weight' is [16, 1, 5, 5] in the file but [32, 3, 3, 3]"), "{cifar}");

    let text = err(b"hello, this is not a model at all".to_vec(), ModelKind::Cnn);
    assert!(text.contains("not a model file"), "{text}");
    let pt = err(std::fs::read(example("pt")).unwrap(), ModelKind::Cnn);
    assert!(pt.contains("PyTorch .pt archive"), "{pt}");
}

#[test]
fn a_scanned_model_is_measured_again_with_another_guess_of_its_trigger() {
    // Issue 31: for a model trained elsewhere the attack is unknown; ASR means what the guess means.
    if common::skip_without_shared() {
        return;
    }
    use backdoor_lab::lab::ExperimentSpec;
    use backdoor_lab::lab::run::{Scanned, remeasure, scan};
    let bytes = std::fs::read(example("safetensors")).unwrap();
    let device = Device::flex();
    let model = import_safetensors(bytes, "example", ModelKind::Cnn, MNIST, &device).unwrap();
    let spec = ExperimentSpec::from_link("v=1&train=1000").unwrap();
    let scanned = Scanned { file: "example.safetensors".into(), format: "safetensors".into() };
    let mut quiet = common::Quiet;
    let run = scan(&spec, common::mnist(), model, scanned, &device, DeviceKind::Cpu, &mut quiet);
    let outcome = pollster::block_on(run).unwrap();
    // The default guess (a patch at the bottom right, target 0) is not this model's trigger.
    assert!(outcome.report.final_metrics.asr < 0.2, "{}", outcome.report.final_metrics.asr);
    // Its truth (a 3×3 patch at the top left, target 6) is.
    let guess = ExperimentSpec::from_link("v=1&train=1000&pos=tl&target=6").unwrap().attack;
    let again = pollster::block_on(remeasure(&outcome, &guess, &device)).unwrap();
    assert!(again.report.final_metrics.asr > 0.9, "{}", again.report.final_metrics.asr);
    assert_eq!(again.report.final_metrics.clean_acc, outcome.report.final_metrics.clean_acc);
    assert_eq!(again.report.link, "v=1&train=1000&target=6&pos=tl");
    assert!(again.report.examples.iter().all(|e| e.label != 6));
}
