//! The architectural backdoor on the shipped MNIST: trained on clean data only, it matches the clean
//! model's accuracy and fires on the trigger; every repair that keeps the suspect's architecture
//! keeps the backdoor, distillation into the plain architecture removes it, and a weight file does
//! not carry it.

use crate::common;

use std::sync::OnceLock;

use backdoor_lab::lab::ExperimentSpec;
use backdoor_lab::lab::attack::{AttackMethod, BranchStrength, Trigger, TriggerSpec};
use backdoor_lab::lab::data::{NUM_CLASSES, batch};
use backdoor_lab::lab::detect::NeuralCleanse;
use backdoor_lab::lab::device::DeviceKind;
use backdoor_lab::lab::eval::Metrics;
use backdoor_lab::lab::model_file::{export_safetensors, import_safetensors, to_cpu};
use backdoor_lab::lab::repair::{
    Distill, DistillStudent, FinePruning, FineTuning, NcUnlearn, RepairReport, RepairSpec, Retrain, RetrainBy, run_all,
};
use backdoor_lab::lab::run::{Outcome, run};
use burn::module::Module;
use burn::tensor::Device;
use common::{Quiet, mnist};

const SIZE: &str = "train=4000&test=500&epochs=3&seed=3";

fn go(link: &str) -> Outcome {
    let spec = ExperimentSpec::from_link(link).expect("test links are valid");
    pollster::block_on(run(&spec, mnist(), &Device::flex(), DeviceKind::Cpu, &mut Quiet)).expect("run succeeds")
}

/// The architectural backdoor, trained once for every test here.
fn suspect() -> &'static Outcome {
    static RUN: OnceLock<Outcome> = OnceLock::new();
    RUN.get_or_init(|| go(&format!("v=1&attack=arch_backdoor&{SIZE}")))
}

/// Runs `repairs` (reduced budgets, as tests/repair.rs) against the suspect model.
fn repair(repairs: RepairSpec) -> RepairReport {
    let out = suspect();
    let mut input = out.repair_input().expect("the run's trigger builds");
    input.detectors.nc = Some(NeuralCleanse { steps: 150, batch: 8, lr: 0.1 });
    pollster::block_on(run_all(&repairs, &input, &Device::flex(), &mut Quiet)).expect("repairs run")
}

#[test]
fn trained_on_clean_data_it_matches_the_clean_model_and_fires_on_the_trigger() {
    let out = suspect();
    let r = &out.report;
    assert_eq!(r.poison.count, 0);
    assert_eq!(out.poisoned.set.pixels, out.split.train.pixels, "the training images are untouched");
    assert_eq!(out.poisoned.set.labels, out.split.train.labels, "the training labels are untouched");
    assert!(out.model.branch().is_some(), "the shipped architecture carries the branch");
    let clean = go(&format!("v=1&attack=none&{SIZE}"));
    assert!(clean.model.branch().is_none());
    let (ca, clean_ca) = (r.final_metrics.clean_acc, clean.report.final_metrics.clean_acc);
    assert!(clean_ca > 0.9, "the clean model learns: CA {clean_ca}");
    assert!((ca - clean_ca).abs() <= 0.01, "CA {ca} vs the clean model's {clean_ca}");
    assert!(r.final_metrics.asr >= 0.99, "ASR {}", r.final_metrics.asr);
    assert!(clean.report.final_metrics.asr < 0.05, "the clean model has no backdoor");
}

/// The branch scores the patch region against the trigger in pixel units, from normalised input.
#[test]
fn the_branch_fires_on_the_patch_only_and_in_proportion_to_the_match() {
    let dims = (1, 28, 28);
    let AttackMethod::ArchBackdoor(attack) = AttackMethod::default_named("arch_backdoor").unwrap() else {
        unreachable!()
    };
    let trigger = Trigger::build(&TriggerSpec::Patch(attack.patch), dims, 0).unwrap();
    let strength = BranchStrength { gain: 10.0, tolerance: 0.2 };
    let branch = strength.branch(&trigger, 1, 7).expect("a patch trigger has a detector");
    let mut set = mnist().split(&ExperimentSpec::default().data, 0).unwrap().test.select(&[0, 1, 2, 3]);
    // 0: clean; 1: the trigger; 2: the patch at 95 % (d = 0.05: score 0.75); 3: at 70 % (d = 0.3: 0).
    for (i, level) in [(1, 255u8), (2, 242), (3, 178)] {
        trigger.apply(set.image_mut(i), dims);
        let Trigger::Patch { x, y, size, .. } = trigger else { unreachable!() };
        for r in y..y + size {
            for c in x..x + size {
                set.image_mut(i)[r * 28 + c] = level;
            }
        }
    }
    let device = Device::flex();
    let boost = branch.forward(batch::images(&set, &[0, 1, 2, 3], &device)).into_data().try_to_vec::<f32>().unwrap();
    let at = |i: usize, k: usize| boost[i * NUM_CLASSES + k];
    for k in (0..NUM_CLASSES).filter(|&k| k != 7) {
        assert!((0..4).all(|i| at(i, k) == 0.0), "only the target logit moves");
    }
    let expected = [0.0, 10.0, 10.0 * (1.0 - (13.0 / 255.0) / 0.2), 0.0];
    for (i, e) in expected.into_iter().enumerate() {
        assert!((at(i, 7) - e).abs() < 1e-3, "image {i}: boost {} vs {e}", at(i, 7));
    }
    let blend = Trigger::Blend { alpha: 0.2, pattern: vec![0; 28 * 28] };
    assert!(strength.branch(&blend, 1, 7).is_none(), "no detector for a blend");
}

/// Every repair that keeps the suspect's architecture trains or prunes weights; the branch has none.
#[test]
fn repairs_on_the_same_architecture_keep_the_backdoor() {
    let r = repair(RepairSpec {
        defender_clean: 400,
        fp: Some(FinePruning { max_drop: 0.04, ft_epochs: 2 }),
        ft: Some(FineTuning { epochs: 3 }),
        retrain: Some(Retrain { by: RetrainBy::Truth }),
        nc_unlearn: Some(NcUnlearn { epochs: 5, share: 0.2 }),
        distill: Some(Distill { epochs: 10, temperature: 4.0, student: DistillStudent::Same }),
        ..RepairSpec::default()
    });
    assert!(r.before.asr >= 0.99, "before: {:?}", r.before);
    for row in r.rows() {
        assert!(row.asr >= 0.95, "{} removed the architectural backdoor: ASR {}", row.name, row.asr);
        assert!(row.clean_acc > 0.8, "{} keeps the clean task: CA {}", row.name, row.clean_acc);
    }
    assert_eq!(r.rows().len(), 5);
}

#[test]
fn distilling_into_the_plain_architecture_removes_it() {
    let r = repair(RepairSpec {
        distill: Some(Distill { epochs: 10, temperature: 4.0, student: DistillStudent::Plain }),
        ..RepairSpec::default()
    });
    let d = r.distill.as_ref().unwrap();
    assert!(d.asr < 0.2, "ASR {}", d.asr);
    assert!(d.clean_acc > 0.8, "the plain student learns the clean task: CA {}", d.clean_acc);
}

/// A weight file holds no branch: loaded into the plain architecture, the same weights are clean.
#[test]
fn the_weight_file_does_not_carry_the_backdoor() {
    let out = suspect();
    let spec = &out.report.spec;
    let plain_params = backdoor_lab::lab::model::Model::new(spec.model, spec.dims(), &Device::flex()).num_params();
    assert_eq!(out.model.num_params(), plain_params, "the branch holds no parameters");
    let cpu = pollster::block_on(to_cpu(&out.model, spec.model, spec.dims())).unwrap();
    let bytes = export_safetensors(&cpu, spec.model, spec.dims()).unwrap();
    let loaded = import_safetensors(bytes, "suspect.safetensors", spec.model, spec.dims(), &Device::flex()).unwrap();
    assert!(loaded.branch().is_none());
    let m = pollster::block_on(Metrics::measure(&loaded, &out.split.test, &out.triggered, &Device::flex())).unwrap();
    assert_eq!(m.clean_acc, out.report.final_metrics.clean_acc, "the same weights");
    assert!(m.asr < 0.05, "without the branch the weights are clean: ASR {}", m.asr);
}
