//! Repairs on one small, quickly trained BadNets model (shared by every test here): thresholds a
//! broken repair fails, the registry of repairs, one evaluation path for original and repaired
//! models, DER arithmetic, progress and cancel.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use backdoor_lab::lab::data::{DataSource, DatasetKind};
use backdoor_lab::lab::detect::{self, DetectSpec, NeuralCleanse};
use backdoor_lab::lab::device::{DeviceKind, fresh_model};
use backdoor_lab::lab::eval::Metrics;
use backdoor_lab::lab::event::{Event, Host};
use backdoor_lab::lab::model::ModelKind;
use backdoor_lab::lab::repair::{
    Abl, Baseline, Defended, Distill, FinePruning, FineTuning, NcUnlearn, RepairInput, RepairReport, RepairSpec,
    Retrain, RetrainBy, StripFilter, der, evaluate, run_all,
};
use backdoor_lab::lab::run::{Outcome, run};
use backdoor_lab::lab::{ExperimentSpec, LabError};
use burn::module::Module;
use burn::tensor::{Device, Tensor};

fn clock() -> f64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

fn mnist() -> &'static DataSource {
    static DATA: OnceLock<DataSource> = OnceLock::new();
    DATA.get_or_init(|| {
        DataSource::load(DatasetKind::Mnist, &Path::new(env!("CARGO_MANIFEST_DIR")).join("static/data"))
            .expect("the repository ships static/data/mnist.bin")
    })
}

/// Counts repair progress events and cancels at the `cancel_at`-th one.
#[derive(Default)]
struct TestHost {
    repair_events: usize,
    repairs: Vec<String>,
    cancel_at: Option<usize>,
    /// Repairs run their nested trainings silently: no epoch may reach the run's curve.
    repairing: bool,
}

impl Host for TestHost {
    fn now(&self) -> f64 {
        clock()
    }
    fn emit(&mut self, e: &Event) -> ControlFlow<()> {
        if let Event::Repair { repair, done, total } = e {
            assert!(done <= total || *total == 0 && *done <= 1, "{repair}: {done} of {total}");
            self.repair_events += 1;
            if self.repairs.last() != Some(repair) {
                self.repairs.push(repair.clone());
            }
        }
        assert!(!(self.repairing && matches!(e, Event::Epoch(_))), "nested trainings must not draw the run's curve");
        if Some(self.repair_events) == self.cancel_at { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }
}

/// A small poisoned model (ρ = 10 %), trained once for all tests in this file.
fn model() -> &'static Outcome {
    static RUN: OnceLock<Outcome> = OnceLock::new();
    RUN.get_or_init(|| {
        let spec = ExperimentSpec::from_link("v=1&train=4000&test=1000&epochs=3&seed=3").expect("valid link");
        let out = pollster::block_on(run(&spec, mnist(), &Device::flex(), DeviceKind::Cpu, &mut TestHost::default()))
            .expect("run succeeds");
        assert!(out.report.final_metrics.asr > 0.9, "the test model must carry the backdoor");
        out
    })
}

/// Reduced budgets: every repair takes seconds.
fn budget() -> RepairSpec {
    RepairSpec {
        defender_clean: 400,
        fp: Some(FinePruning { max_drop: 0.04, ft_epochs: 2 }),
        ft: Some(FineTuning { epochs: 3 }),
        retrain: Some(Retrain { by: RetrainBy::Truth }),
        abl: Some(Abl { epochs: 1, lambda: 1.0, frac: 0.01, isolation_epochs: 2 }),
        nc_unlearn: Some(NcUnlearn { epochs: 5, share: 0.2 }),
        distill: Some(Distill { epochs: 10, temperature: 4.0, ..Distill::default() }),
        strip_filter: Some(StripFilter { n: 10 }),
    }
}

/// Every repair with the reduced budgets, run once.
fn shared() -> &'static (RepairReport, TestHost) {
    static REPORT: OnceLock<(RepairReport, TestHost)> = OnceLock::new();
    REPORT.get_or_init(|| {
        let out = model();
        let mut input = out.repair_input().expect("the run's trigger builds");
        // Neural Cleanse with a smaller budget (the repair reads the defender's detector parameters).
        input.detectors.nc = Some(NeuralCleanse { steps: 150, batch: 8, lr: 0.1 });
        let mut host = TestHost { repairing: true, ..TestHost::default() };
        let report = pollster::block_on(run_all(&budget(), &input, &Device::flex(), &mut host)).expect("repairs run");
        (report, host)
    })
}

#[test]
fn registry_every_repair_returns_finite_metrics_progress_and_its_name() {
    let (report, host) = shared();
    let rows = report.rows();
    assert_eq!(rows.iter().map(|r| r.name).collect::<Vec<_>>(), RepairSpec::NAMES.to_vec());
    for r in &rows {
        for (what, v) in [("clean_acc", r.clean_acc), ("asr", r.asr), ("robust_acc", r.robust_acc), ("der", r.der)] {
            assert!(v.is_finite() && (0.0..=1.0).contains(&v), "{}: {what} = {v}", r.name);
        }
        assert!(r.seconds > 0.0, "{}: seconds {}", r.name, r.seconds);
    }
    for name in RepairSpec::NAMES {
        assert!(host.repairs.iter().any(|r| r == name), "no progress from {name}: {:?}", host.repairs);
    }
    let json = serde_json::to_value(report).expect("serialises");
    for name in RepairSpec::NAMES {
        for field in ["clean_acc", "asr", "robust_acc", "der", "seconds", "clean_samples", "params"] {
            assert!(json[name].get(field).is_some(), "repair.{name}.{field} missing: {}", json[name]);
        }
    }
    assert_eq!(report.defender_clean, 400);
    assert_eq!(report.fp.as_ref().unwrap().clean_samples, 400);
}

#[test]
fn repairs_that_work_lower_the_asr_and_fine_tuning_keeps_the_clean_accuracy() {
    let (r, _) = shared();
    let before = &r.before;
    assert!(before.asr > 0.9, "before: {before:?}");
    let nc = r.nc_unlearn.as_ref().unwrap();
    assert!(nc.asr < 0.2 && nc.clean_acc > before.clean_acc - 0.05, "nc_unlearn: {nc:?}");
    assert_eq!(nc.detail.class, 0, "Neural Cleanse unlearns the target class");
    let rt = r.retrain.as_ref().unwrap();
    assert!(rt.asr < 0.2, "retrain on the ground truth: {rt:?}");
    assert_eq!((rt.detail.removed_poisoned, rt.detail.remaining_poisoned), (400, 0));
    let ft = r.ft.as_ref().unwrap();
    assert!(ft.clean_acc > before.clean_acc - 0.03, "fine-tuning must keep CA: {ft:?} vs {before:?}");
    let sf = r.strip_filter.as_ref().unwrap();
    assert!(sf.asr < before.asr - 0.3, "STRIP must reject most triggered inputs: {:?}", sf.detail);
    let d = r.distill.as_ref().unwrap();
    assert!(d.clean_acc > 0.5, "the student learns the clean task: {d:?}");
}

#[test]
fn fine_pruning_curve_starts_at_the_original_and_stops_by_the_defenders_rule() {
    let (r, _) = shared();
    let fp = r.fp.as_ref().unwrap();
    let d = &fp.detail;
    assert_eq!((d.layer.as_str(), d.units), ("last_conv", 32));
    let first = &d.curve[0];
    assert_eq!((first.pruned, first.clean_acc, first.asr), (0, r.before.clean_acc, r.before.asr));
    assert_eq!(d.curve.last().unwrap().pruned, 32);
    assert!(d.curve.windows(2).all(|w| w[0].pruned < w[1].pruned));
    let stop = d.curve.iter().find(|p| p.pruned == d.pruned).expect("the stopping point is on the curve");
    assert!(first.defender_acc - stop.defender_acc <= 0.04 + 1e-12);
    if let Some(next) = d.curve.iter().find(|p| p.pruned == d.pruned + 1) {
        assert!(first.defender_acc - next.defender_acc > 0.04, "pruning stops only when the rule says so");
    }
}

#[test]
fn original_and_repaired_models_are_evaluated_by_one_code_path() {
    let out = model();
    let device = Device::flex();
    let (r, _) = shared();
    let f = &out.report.final_metrics;
    // The baseline `run_all` measures is exactly the run's own final evaluation.
    assert_eq!(r.before, Baseline { clean_acc: f.clean_acc, asr: f.asr, robust_acc: f.robust_acc });
    let direct = pollster::block_on(Metrics::measure(&out.model, &out.split.test, &out.triggered, &device)).unwrap();
    let via_repair =
        pollster::block_on(evaluate(&Defended::Model(out.model.valid()), &out.split.test, &out.triggered, &device))
            .unwrap();
    assert_eq!(direct, via_repair);
    assert_eq!(&direct, f);
    // A filter that rejects nothing changes nothing; one that rejects everything leaves CA = ASR = 0.
    let (n, m) = (out.split.test.len(), out.triggered.set.len());
    let none = Defended::Filtered {
        model: out.model.valid(),
        rejected_clean: vec![false; n],
        rejected_triggered: vec![false; m],
    };
    assert_eq!(pollster::block_on(evaluate(&none, &out.split.test, &out.triggered, &device)).unwrap(), direct);
    let all = Defended::Filtered {
        model: out.model.valid(),
        rejected_clean: vec![true; n],
        rejected_triggered: vec![true; m],
    };
    let all = pollster::block_on(evaluate(&all, &out.split.test, &out.triggered, &device)).unwrap();
    assert_eq!((all.clean_acc, all.asr, all.robust_acc), (0.0, 0.0, 0.0));
}

#[test]
fn der_follows_backdoorbench() {
    let before = Baseline { clean_acc: 0.97, asr: 0.99, robust_acc: 0.01 };
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    // ASR 99 → 5 % at a CA cost of 1 point: (0.94 − 0.01 + 1) / 2.
    assert!(close(der(&before, 0.96, 0.05), 0.965));
    // Nothing changes: 0.5. Gains never count as negative costs.
    assert!(close(der(&before, 0.97, 0.99), 0.5));
    assert!(close(der(&before, 0.99, 1.0), 0.5));
    // Everything lost and nothing gained: CA 97 → 0 %.
    assert!(close(der(&before, 0.0, 0.99), 0.015));
    // Backdoor gone for free.
    assert!(close(der(&before, 0.97, 0.0), 0.995));
}

#[test]
fn pruned_units_are_silent_for_every_model() {
    let device = Device::flex();
    for kind in [ModelKind::Mlp, ModelKind::Cnn] {
        let model = fresh_model(kind, (1, 28, 28), 1, &device);
        let units = model.prunable_units();
        let keep: Vec<bool> = (0..units).map(|u| u % 3 != 0).collect();
        let pruned = model.pruned(&keep);
        let x = Tensor::<4>::ones([4, 1, 28, 28], &device);
        let a: Vec<f32> = pruned.prunable_activity(x).into_data().try_to_vec().unwrap();
        for (i, v) in a.iter().enumerate() {
            if !keep[i % units] {
                assert_eq!(*v, 0.0, "{kind:?}: unit {} still active", i % units);
            }
        }
    }
}

#[test]
fn cancelling_a_repair_stops_it() {
    let out = model();
    let input = out.repair_input().expect("the run's trigger builds");
    let spec = RepairSpec { ft: Some(FineTuning { epochs: 5 }), ..RepairSpec::default() };
    let mut host = TestHost { cancel_at: Some(3), repairing: true, ..TestHost::default() };
    let r = pollster::block_on(run_all(&spec, &input, &Device::flex(), &mut host));
    assert_eq!(r.err(), Some(LabError::Cancelled));
    assert_eq!(host.repair_events, 3);
}

/// One question, one answer: when the run's Detect step ran Neural Cleanse, NC unlearning unlearns
/// that verdict's class and reversed trigger instead of reversing its own.
#[test]
fn nc_unlearning_uses_the_detect_steps_verdict() {
    let out = model();
    let detectors = DetectSpec { nc: Some(NeuralCleanse { steps: 150, batch: 8, lr: 0.1 }), ..DetectSpec::default() };
    let input = out.detect_input().expect("the run's trigger builds");
    let found = pollster::block_on(detect::run_all(&detectors, &input, &Device::flex(), &mut TestHost::default()))
        .expect("detection runs");
    let nc = found.nc.as_ref().expect("nc ran");
    let only = RepairSpec { nc_unlearn: Some(NcUnlearn { epochs: 2, share: 0.2 }), ..RepairSpec::default() };
    let input = RepairInput { detectors, detected: &found, ..out.repair_input().expect("the run's trigger builds") };
    let report =
        pollster::block_on(run_all(&only, &input, &Device::flex(), &mut TestHost::default())).expect("repairs");
    let detail = &report.nc_unlearn.as_ref().expect("nc_unlearn ran").detail;
    assert!(detail.from_detection);
    let smallest = (0..nc.mask_l1.len()).min_by(|&a, &b| nc.mask_l1[a].total_cmp(&nc.mask_l1[b])).unwrap();
    let expected =
        nc.flagged_classes.iter().copied().min_by(|a, b| nc.mask_l1[*a as usize].total_cmp(&nc.mask_l1[*b as usize]));
    assert_eq!(detail.class, expected.unwrap_or(smallest as u8));
    assert_eq!(detail.flagged, !nc.flagged_classes.is_empty());
    assert_eq!(detail.anomaly_index, nc.anomaly_index[detail.class as usize]);
    // Without a Detect step it reverses its own, on the defender's clean set.
    let alone = &shared().0.nc_unlearn.as_ref().unwrap().detail;
    assert!(!alone.from_detection);
}
