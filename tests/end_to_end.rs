//! Small real runs on the shipped MNIST: thresholds that a broken attack or broken training fails.

use crate::common;

use std::ops::ControlFlow;

use backdoor_lab::lab::device::DeviceKind;
use backdoor_lab::lab::event::{Event, Host};
use backdoor_lab::lab::run::{Outcome, run};
use backdoor_lab::lab::{ExperimentSpec, LabError};
use burn::tensor::Device;
use common::{clock, mnist};

fn small(link: &str) -> ExperimentSpec {
    ExperimentSpec::from_link(link).expect("test links are valid")
}

/// A host that counts batches and cancels after `cancel_after` of them.
struct TestHost {
    batches: usize,
    cancel_after: Option<usize>,
}

impl Host for TestHost {
    fn now(&self) -> f64 {
        clock()
    }
    fn emit(&mut self, e: &Event) -> ControlFlow<()> {
        if matches!(e, Event::Batch { .. }) {
            self.batches += 1;
        }
        if Some(self.batches) == self.cancel_after { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }
}

fn go(spec: &ExperimentSpec) -> Outcome {
    let mut host = TestHost { batches: 0, cancel_after: None };
    pollster::block_on(run(spec, mnist(), &Device::flex(), DeviceKind::Cpu, &mut host)).expect("run succeeds")
}

#[test]
fn badnets_implants_a_backdoor_and_training_learns() {
    let out = go(&small("v=1&train=4000&test=1000&epochs=3&seed=3"));
    let m = &out.report.final_metrics;
    assert!(m.clean_acc >= 0.90, "CA {}", m.clean_acc);
    assert!(m.asr >= 0.90, "ASR {}", m.asr);
    assert!(m.robust_acc <= 0.10, "RA {}", m.robust_acc);
    assert_eq!(out.report.poison.count, 400);
    assert_eq!(out.report.epochs.len(), 3);
    assert!(out.report.epochs[1].loss < out.report.epochs[0].loss);
    let confusion_total: u32 = m.confusion.iter().flatten().sum();
    assert_eq!(confusion_total, 1000);
}

#[test]
fn clean_model_has_no_backdoor() {
    let out = go(&small("v=1&attack=none&train=4000&test=1000&epochs=3&seed=3"));
    let m = &out.report.final_metrics;
    assert!(m.clean_acc >= 0.90, "CA {}", m.clean_acc);
    assert!(m.asr <= 0.05, "ASR {}", m.asr);
    assert_eq!(out.report.poison.count, 0);
}

#[test]
fn same_spec_gives_identical_results() {
    let spec = small("v=1&train=600&test=200&epochs=1&seed=8&model=mlp");
    let (a, b) = (go(&spec).report, go(&spec).report);
    assert_eq!(a.final_metrics, b.final_metrics);
    assert_eq!(
        a.epochs.iter().map(|e| e.loss).collect::<Vec<_>>(),
        b.epochs.iter().map(|e| e.loss).collect::<Vec<_>>()
    );
    assert_eq!(a.poison, b.poison);
}

#[test]
fn cancelling_stops_the_run() {
    let spec = small("v=1&train=600&test=200&epochs=3");
    let mut host = TestHost { batches: 0, cancel_after: Some(3) };
    let result = pollster::block_on(run(&spec, mnist(), &Device::flex(), DeviceKind::Cpu, &mut host));
    assert!(matches!(result, Err(LabError::Cancelled)));
    assert_eq!(host.batches, 3);
}

#[test]
fn split_is_seeded_and_disjoint() {
    let spec = small("v=1&train=8000&test=2000&seed=5");
    let a = mnist().split(&spec.data, 5).unwrap();
    let b = mnist().split(&spec.data, 5).unwrap();
    let c = mnist().split(&spec.data, 6).unwrap();
    assert_eq!(a.train, b.train);
    assert_ne!(a.train.labels, c.train.labels);
    assert_eq!((a.train.len(), a.test.len()), (8000, 2000));
    let too_big = small("v=1&train=9000&test=2000");
    assert!(mnist().split(&too_big.data, 0).unwrap_err().to_string().contains("exceeds the 10000 images"));
}

/// The attacker who trains: the data stays clean (nothing to find for data-level detectors, and
/// the report says so), yet the model learns the trigger through the mixed loss.
#[test]
fn malicious_loss_plants_a_backdoor_in_a_clean_dataset() {
    let spec = small("v=1&attack=malicious_loss&lambda=0.1&train=4000&test=500&epochs=3&seed=3&detect=ac,ss,loss");
    let out = go(&spec);
    let r = &out.report;
    assert_eq!(r.poison.count, 0);
    assert!(out.poisoned.poisoned.is_empty());
    assert_eq!(out.poisoned.set.pixels, out.split.train.pixels, "the training images are untouched");
    assert_eq!(out.poisoned.set.labels, out.split.train.labels, "the training labels are untouched");
    assert!(r.final_metrics.asr > 0.9, "ASR {}", r.final_metrics.asr);
    assert!(r.final_metrics.clean_acc > 0.9, "CA {}", r.final_metrics.clean_acc);
    for (name, score) in [
        ("ac", &r.detect.ac.as_ref().unwrap().score),
        ("ss", &r.detect.ss.as_ref().unwrap().score),
        ("loss", &r.detect.loss.as_ref().unwrap().score),
    ] {
        assert_eq!(score.poisoned, 0, "{name}");
        assert_eq!(score.true_positives, 0, "{name}");
        assert_eq!(score.auroc, None, "{name}: no AUROC without poisoned samples");
    }
    // λ = 0 is plain training on clean data: the model `attack=none` trains, up to the order of
    // float sums in a batch twice as large.
    let zero = go(&small("v=1&attack=malicious_loss&lambda=0&train=600&test=200&epochs=1&seed=4&model=mlp"));
    let none = go(&small("v=1&attack=none&train=600&test=200&epochs=1&seed=4&model=mlp"));
    assert!((zero.report.epochs[0].loss - none.report.epochs[0].loss).abs() < 1e-4);
    assert!((zero.report.final_metrics.clean_acc - none.report.final_metrics.clean_acc).abs() <= 0.01);
}
