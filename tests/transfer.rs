//! The transfer stage: a victim fine-tunes the run's model on clean images the base never saw,
//! once per freeze mode; frozen layers stay as the base had them and the base itself is untouched.

use crate::common;

use std::collections::HashSet;

use backdoor_lab::lab::ExperimentSpec;
use backdoor_lab::lab::data::ImageSet;
use backdoor_lab::lab::device::{DeviceKind, fresh_model};
use backdoor_lab::lab::event::Event;
use backdoor_lab::lab::model::{Model, ModelKind};
use backdoor_lab::lab::run::run;
use backdoor_lab::lab::train::{TrainSpec, train};
use backdoor_lab::lab::transfer::Freeze;
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use common::{Recorder, mnist};

fn spec(link: &str) -> ExperimentSpec {
    ExperimentSpec::from_link(link).expect("test links are valid")
}

/// Every parameter's values, in the model's order.
fn params(model: &Model) -> Vec<Vec<f32>> {
    struct Gather(Vec<Vec<f32>>);
    impl ModuleVisitor for Gather {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.val().into_data().try_to_vec::<f32>().unwrap());
        }
    }
    let mut g = Gather(Vec::new());
    model.visit(&mut g);
    g.0
}

#[test]
fn frozen_layers_do_not_move_and_the_rest_does() {
    let s = spec("v=1&train=300&test=100&epochs=1");
    let split = mnist().split(&s.data, 0).unwrap();
    let cpu = Device::flex();
    let device = cpu.clone().autodiff();
    let base = fresh_model(ModelKind::Cnn, s.dims(), 0, &device).valid();
    let before = params(&base);
    let trigger = s.attack.trigger(s.dims(), 0).unwrap();
    let triggered = s.attack.triggered_test(&split.train, &split.test, &trigger).unwrap();
    // The reference CNN's parameters in order: conv1 w, b; conv2 w, b; fc w, b; out w, b.
    for (freeze, fixed) in [(false, 4), (true, 6)] {
        let model = base.clone().fork(&device).train().frozen(freeze);
        let (tuned, _) = pollster::block_on(train(
            model,
            &split.train,
            &TrainSpec { epochs: 1, ..TrainSpec::default() },
            0,
            &device,
            &split.test,
            &triggered,
            &cpu,
            None,
            &mut Recorder::default(),
        ))
        .unwrap();
        let after = params(&tuned.valid());
        for (i, (a, b)) in before.iter().zip(&after).enumerate() {
            if i < fixed {
                assert_eq!(a, b, "parameter {i} moved though frozen (all_but_last {freeze})");
            } else {
                assert_ne!(a, b, "parameter {i} did not train (all_but_last {freeze})");
            }
        }
    }
}

#[test]
fn victims_images_are_outside_the_bases_split() {
    let s = spec("v=1&train=6000&test=2000");
    let split = mnist().split(&s.data, 7).unwrap();
    let victim = mnist().held_out(&s.data, 7, 2000).unwrap();
    assert_eq!(victim.len(), 2000);
    let images = |set: &ImageSet| (0..set.len()).map(|i| set.image(i).to_vec()).collect::<HashSet<_>>();
    let seen: HashSet<Vec<u8>> = images(&split.train).union(&images(&split.test)).cloned().collect();
    let overlap = images(&victim).intersection(&seen).count();
    assert_eq!(overlap, 0, "victim images the base saw");
    let err = mnist().held_out(&s.data, 7, 2001).unwrap_err().to_string();
    assert!(err.contains("finetune_size 2001 exceeds the 2000 mnist images the split leaves unused"), "{err}");
}

#[test]
fn each_freeze_mode_is_measured_every_epoch_and_the_base_is_untouched() {
    let link = "v=1&train=2000&test=500&epochs=2&seed=2";
    let with = spec(&format!("{link}&freeze=none,features,all_but_last&finetune_epochs=2&finetune_size=600"));
    let mut host = Recorder::default();
    let out = pollster::block_on(run(&with, mnist(), &Device::flex(), DeviceKind::Cpu, &mut host)).unwrap();
    let plain =
        pollster::block_on(run(&spec(link), mnist(), &Device::flex(), DeviceKind::Cpu, &mut Recorder::default()))
            .unwrap();
    assert_eq!(
        out.report.final_metrics, plain.report.final_metrics,
        "fine-tuning copies must leave the base as trained"
    );
    assert_eq!(out.report.epochs.len(), 2, "the base's training curve holds only its own epochs");
    let t = out.report.transfer.as_ref().expect("a transfer report");
    assert_eq!(t.clean_samples, 600);
    let modes: Vec<Freeze> = t.runs.iter().map(|r| r.freeze).collect();
    assert_eq!(modes, [Freeze::None, Freeze::Features, Freeze::AllButLast]);
    assert!(t.runs.iter().all(|r| r.epochs.len() == 2 && r.epochs.iter().all(|e| e.clean_acc > 0.5)));
    let trained: Vec<usize> = t.runs.iter().map(|r| r.trainable_params).collect();
    assert!(trained[0] > trained[1] && trained[1] > trained[2], "{trained:?}");
    assert_eq!(trained[2], 128 * 10 + 10, "only the output layer");
    let progress = host.0.iter().filter(|e| matches!(e, Event::Transfer { .. })).count();
    assert_eq!(progress, 3 * 2 * 600usize.div_ceil(64), "one progress event per fine-tuning batch");
    assert!(out.report.seconds.transfer > 0.0);
    // The section is in the link, and a link without it is the old experiment.
    assert!(out.report.link.contains("freeze=none,features,all_but_last"), "{}", out.report.link);
    assert!(plain.report.transfer.is_none());
}

#[test]
fn the_default_transfer_fits_the_shipped_data_and_a_split_too_large_is_named_before_any_work() {
    // Issue 31: ticking a freeze mode at the defaults must run on MNIST's 10,000 digits.
    let data = mnist();
    let on = spec("v=1&freeze=features");
    assert_eq!(data.size_problem(&on.data, Some(on.finetune.size)), None);
    let victim = data.held_out(&on.data, on.seed, on.finetune.size).expect("the default victim fits");
    assert_eq!(victim.len(), 2_000);
    // The old default split leaves the victim nothing: named with the controls that cause it.
    let full = spec("v=1&train=8000&freeze=features");
    let p = data.size_problem(&full.data, Some(full.finetune.size)).expect("no room for the victim");
    assert_eq!(p.keys, vec!["train", "finetune_size"]);
    assert!(p.message.contains("leaving 0") && p.message.contains("6,000 or fewer"), "{}", p.message);
    assert!(data.held_out(&full.data, full.seed, full.finetune.size).is_err());
    // Training and test together larger than the pool.
    let big = spec("v=1&train=9000&test=2000");
    assert_eq!(data.size_problem(&big.data, None).map(|p| p.keys), Some(vec!["train", "test"]));
    assert!(data.split(&big.data, big.seed).is_err());
}
