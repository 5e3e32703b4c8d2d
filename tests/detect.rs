//! Detectors on one small, quickly trained BadNets model (shared by every test here): thresholds a
//! broken detector fails, the registry of detectors, progress and cancel, and the report's shape.

use crate::common;

use std::ops::ControlFlow;
use std::sync::OnceLock;

use backdoor_lab::lab::detect::{DetectSpec, run_all};
use backdoor_lab::lab::device::DeviceKind;
use backdoor_lab::lab::event::{Event, Host, Stage};
use backdoor_lab::lab::run::{Outcome, Report, run};
use backdoor_lab::lab::{ExperimentSpec, LabError};
use burn::tensor::Device;
use common::{clock, mnist};

/// Counts detector progress events and cancels at the `cancel_at`-th one.
#[derive(Default)]
struct TestHost {
    detect_events: usize,
    detectors: Vec<String>,
    stages: Vec<Stage>,
    cancel_at: Option<usize>,
}

impl Host for TestHost {
    fn now(&self) -> f64 {
        clock()
    }
    fn emit(&mut self, e: &Event) -> ControlFlow<()> {
        match e {
            Event::Detect { detector, done, total } => {
                assert!(done <= total, "{detector}: {done} of {total}");
                self.detect_events += 1;
                if self.detectors.last() != Some(detector) {
                    self.detectors.push(detector.clone());
                }
            }
            Event::Stage { stage } => self.stages.push(*stage),
            _ => {}
        }
        if Some(self.detect_events) == self.cancel_at { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }
}

/// Reduced budgets: the whole detection step takes seconds.
const LINK: &str = "v=1&train=4000&test=1000&epochs=3&seed=3&detect=nc,ac,ss,strip,loss,occlusion\
                    &nc_steps=150&nc_batch=8&strip_n=20&strip_inputs=100&occ_inputs=10";

/// One poisoned model with every detector's report, trained once for all tests in this file.
fn shared() -> &'static (Outcome, TestHost) {
    static RUN: OnceLock<(Outcome, TestHost)> = OnceLock::new();
    RUN.get_or_init(|| {
        let spec = ExperimentSpec::from_link(LINK).expect("valid link");
        let mut host = TestHost::default();
        let out =
            pollster::block_on(run(&spec, mnist(), &Device::flex(), DeviceKind::Cpu, &mut host)).expect("run succeeds");
        assert!(out.report.final_metrics.asr > 0.9, "the test model must carry the backdoor");
        (out, host)
    })
}

fn report() -> &'static Report {
    &shared().0.report
}

#[test]
fn registry_every_detector_runs_reports_progress_and_seconds() {
    let (out, host) = shared();
    let d = &out.report.detect;
    assert_eq!(host.detectors, DetectSpec::NAMES.to_vec(), "each detector emits progress, in order");
    assert_eq!(host.stages.last(), Some(&Stage::Detect));
    // Every detector's summary (what the CLI's table and the page's cards print) has its time and words.
    let summaries = d.summaries(&out.report.about());
    assert_eq!(summaries.iter().map(|(name, ..)| *name).collect::<Vec<_>>(), DetectSpec::NAMES.to_vec());
    for (name, title, summary) in summaries {
        assert!(summary.seconds > 0.0, "{name} reported no time");
        assert!(!summary.verdict.is_empty() && !summary.figures.is_empty() && !title.is_empty(), "{name}: {summary:?}");
    }
    assert!(out.report.seconds.detect > 0.0);
    // Every name chooses exactly its detector.
    for name in DetectSpec::NAMES {
        let mut spec = DetectSpec::default();
        spec.choose(name).unwrap();
        assert_eq!(spec.chosen(), vec![*name]);
    }
}

#[test]
fn neural_cleanse_flags_the_target_class() {
    let nc = report().detect.nc.as_ref().unwrap();
    assert_eq!(nc.anomaly_index.len(), 10);
    assert_eq!(nc.flagged_classes, vec![0], "anomaly indices {:?}, L1 {:?}", nc.anomaly_index, nc.mask_l1);
    assert!(nc.anomaly_index[0] > 2.0);
    assert_eq!((nc.masks.len(), nc.masks[0].len(), nc.patterns[0].len()), (10, 784, 784));
}

#[test]
fn data_filters_score_every_training_sample() {
    let r = report();
    let d = &r.detect;
    let (ac, ss, loss) = (d.ac.as_ref().unwrap(), d.ss.as_ref().unwrap(), d.loss.as_ref().unwrap());
    for (name, score) in [("ac", &ac.score), ("ss", &ss.score), ("loss", &loss.score)] {
        assert_eq!(score.poisoned, 400, "{name}");
        assert!(score.auroc.is_some_and(|a| (0.0..=1.0).contains(&a)), "{name}: {:?}", score.auroc);
        for v in [score.tpr, score.fpr, score.precision, score.f1] {
            assert!((0.0..=1.0).contains(&v), "{name}: {v}");
        }
    }
    // Every sample lands in exactly one histogram bin.
    let total: u32 = ss.histogram.clean.iter().chain(&ss.histogram.poisoned).sum();
    assert_eq!(total as usize, 4000);
    assert_eq!(ss.removed.iter().sum::<usize>(), ss.score.flagged);
    assert_eq!(ac.classes.iter().map(|c| c.size).sum::<usize>(), 4000);
    assert!(ac.classes.iter().all(|c| c.points.len() == c.size.min(300) && c.poisoned.len() == c.points.len()));
    // At ρ = 10 % the poison is about half of the target class, where both rules fail by design
    // (../shared/REFERENCE.md: AC's smaller-cluster F1 0.00 on 3/3 seeds, SS's in-class AUROC 0.51); the
    // test at ρ = 5 % below is where they must work.
}

/// At ρ = 5 % both data filters work in the plain PyTorch reference on the default experiment, seeds 0
/// and 1 (../shared/REFERENCE.md: AC's smaller-cluster rule F1 0.92 / 0.89, SS's in-class AUROC 0.70):
/// the same setting here, seed 0. The bounds sit well below those and well above what a scorer that
/// ignores the data gets (F1 ≈ 0.05 for random flags at this rate, AUROC 0.5).
#[test]
fn data_filters_find_a_minority_poison() {
    let spec = ExperimentSpec::from_link("v=1&seed=0&rate=0.05&detect=ac,ss").unwrap();
    let out =
        pollster::block_on(run(&spec, mnist(), &Device::flex(), DeviceKind::Cpu, &mut TestHost::default())).unwrap();
    let d = &out.report.detect;
    let (ac, ss) = (d.ac.as_ref().unwrap(), d.ss.as_ref().unwrap());
    assert_eq!(ac.score.poisoned, 400);
    assert!(ac.score.f1 >= 0.5, "AC F1 {} (precision {}, recall {})", ac.score.f1, ac.score.precision, ac.score.tpr);
    assert!(ss.in_class_auroc.is_some_and(|a| a >= 0.6), "SS in-class AUROC {:?}", ss.in_class_auroc);
}

#[test]
fn loss_isolation_finds_poison_among_the_lowest_losses() {
    let loss = report().detect.loss.as_ref().unwrap();
    assert_eq!(loss.score.flagged, 40);
    // The poison is 10 % of this small set: chance gives 0.1, an inverted score 0. (The default run's
    // 8,000 samples reach 1.0; this 4,000-sample, 2-epoch model is learned less far.)
    assert!(loss.score.precision >= 0.5, "precision {}", loss.score.precision);
}

#[test]
fn strip_separates_triggered_inputs() {
    let strip = report().detect.strip.as_ref().unwrap();
    assert!(strip.auroc.is_some_and(|a| a >= 0.95), "AUROC {:?}", strip.auroc);
    assert!(strip.far_at_frr_1pct <= 0.2, "FAR {}", strip.far_at_frr_1pct);
    assert!(strip.frr <= 0.01);
    assert_eq!((strip.clean_inputs, strip.triggered_inputs), (100, 100));
}

#[test]
fn occlusion_lights_up_the_trigger() {
    let o = report().detect.occlusion.as_ref().unwrap();
    assert_eq!(o.heat.len(), 784);
    assert!(o.hottest_on_trigger, "hottest pixel ({}, {})", o.max_row, o.max_col);
}

#[test]
fn report_json_has_the_names_external_checks_read() {
    let json: serde_json::Value = serde_json::to_value(report()).unwrap();
    let d = &json["detect"];
    assert!(d["nc"]["flagged_classes"].is_array() && d["nc"]["anomaly_index"].as_array().unwrap().len() == 10);
    for name in ["ac", "ss", "loss"] {
        for key in ["tpr", "fpr", "precision", "f1", "auroc", "seconds", "params"] {
            assert!(!d[name][key].is_null(), "detect.{name}.{key}");
        }
    }
    for key in ["far_at_frr_1pct", "auroc", "seconds", "params"] {
        assert!(!d["strip"][key].is_null(), "detect.strip.{key}");
    }
    assert!(d["occlusion"]["heat"].is_array());
    // The report reads back.
    let back: Report = serde_json::from_value(json).unwrap();
    assert_eq!(back.detect, report().detect);
}

#[test]
fn detection_runs_on_demand_and_cancels() {
    let (out, _) = shared();
    let only = DetectSpec { ss: Some(Default::default()), ..Default::default() };
    let mut host = TestHost::default();
    let r = pollster::block_on(run_all(&only, &out.detect_input().unwrap(), &Device::flex(), &mut host)).unwrap();
    assert!(r.ss.is_some() && r.nc.is_none());
    assert_eq!(r.ss.as_ref().unwrap().score, out.report.detect.ss.as_ref().unwrap().score, "deterministic");
    let mut host = TestHost { cancel_at: Some(2), ..Default::default() };
    let result =
        pollster::block_on(run_all(&DetectSpec::all(), &out.detect_input().unwrap(), &Device::flex(), &mut host));
    assert!(matches!(result, Err(LabError::Cancelled)), "{result:?}");
    assert_eq!(host.detect_events, 2);
}

#[test]
fn reports_without_detectors_stay_as_before() {
    let mut r = report().clone();
    r.detect = Default::default();
    r.seconds.detect = 0.0;
    r.spec.detect = DetectSpec::default();
    let json = serde_json::to_value(&r).unwrap();
    assert!(json.get("detect").is_none() && json["spec"].get("detect").is_none());
    assert!(json["seconds"].get("detect").is_none());
}

/// At ρ = 10 % the poison is the larger part of class 0: the smaller-cluster rule flags the clean
/// images (or nothing), while exclusionary reclassification finds the poison, whatever the sizes. On
/// the MNIST defaults (8,000 images, 5 epochs): the rule needs retrained models about as good as the
/// run's (with 4,000 images and 3 epochs it fails).
#[test]
fn activation_clustering_by_reclassification_finds_a_majority_poison() {
    let spec = ExperimentSpec::from_link("v=1&seed=1&detect=ac&ac_rule=reclassify").unwrap();
    let mut host = TestHost::default();
    let out = pollster::block_on(run(&spec, mnist(), &Device::flex(), DeviceKind::Cpu, &mut host)).unwrap();
    let ac = out.report.detect.ac.as_ref().unwrap();
    let size_rule = DetectSpec { ac: Some(Default::default()), ..Default::default() };
    let size = pollster::block_on(run_all(
        &size_rule,
        &out.detect_input().unwrap(),
        &Device::flex(),
        &mut TestHost::default(),
    ))
    .unwrap()
    .ac
    .unwrap();
    println!(
        "AC at ρ = 10 %: size rule F1 {:.2}; reclassification F1 {:.2} (precision {:.2}, recall {:.2}) in {:.1} s",
        size.score.f1, ac.score.f1, ac.score.precision, ac.score.tpr, ac.seconds
    );
    for k in &ac.classes {
        println!("class {}: own label {:?}, claimed {:?}, flagged {}", k.class, k.own_label, k.claimed, k.flagged);
    }
    assert!(size.score.f1 < 0.5, "the size rule is expected to fail here: {:?}", size.score);
    assert!(ac.score.f1 >= 0.85, "{:?}", ac.score);
    assert_eq!(ac.classes.iter().filter(|k| k.flagged).map(|k| k.class).collect::<Vec<_>>(), vec![0]);
    assert!(host.detectors.contains(&"ac".to_string()));
}
