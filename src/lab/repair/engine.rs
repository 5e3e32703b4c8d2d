//! A repair's working context, and running one repair. The context holds the run's input privately:
//! the repairs (modules beside this one, not below it) see only what a defender holds through its
//! methods, never the attack's target or which samples are poisoned, so the compiler keeps them from
//! deciding by the truth. Scoring against it happens here, after a repair is done (`Repair::score`).

use burn::module::Module;
use burn::tensor::Device;

use super::{Baseline, Repair, RepairInput, Repaired, der, evaluate};
use crate::lab::data::ImageSet;
use crate::lab::detect::{self, DetectInput, DetectReport, DetectSpec, GroundTruth};
use crate::lab::error::{LabError, Result};
use crate::lab::eval::{Metrics, predict};
use crate::lab::event::{Event, Host, Relay};
use crate::lab::model::Model;
use crate::lab::rng::{LabRng, Stream};
use crate::lab::setting::Setting;

/// A repair's working context.
pub struct Cx<'a> {
    pub setting: &'a Setting,
    /// The suspect model without autodiff.
    pub model: Model,
    /// The defender's clean set and the training indices it was taken from.
    pub clean: ImageSet,
    pub clean_indices: Vec<usize>,
    /// The plain (non-autodiff) device.
    pub device: &'a Device,
    /// The run's input, ground truth included: only this module reads it.
    input: &'a RepairInput<'a>,
    host: &'a mut dyn Host,
    repair: &'static str,
    /// Time spent on ground-truth pictures (not a cost of the defense).
    picture_seconds: f64,
}

impl<'a> Cx<'a> {
    /// The context of the repairs of `input`, with the defender's clean set at `clean_indices`.
    pub fn new(
        input: &'a RepairInput<'a>,
        model: Model,
        clean_indices: Vec<usize>,
        device: &'a Device,
        host: &'a mut dyn Host,
    ) -> Self {
        let clean = input.poisoned.set.select(&clean_indices);
        Self {
            setting: &input.setting,
            model,
            clean,
            clean_indices,
            device,
            input,
            host,
            repair: "",
            picture_seconds: 0.0,
        }
    }

    /// The running repair's link name.
    pub fn name(&self) -> &'static str {
        self.repair
    }

    /// The training set as the defender received it (images and labels, poisoned ones included).
    pub fn train(&self) -> &'a ImageSet {
        &self.input.poisoned.set
    }

    /// The detectors' parameters, for repairs that run a detector of their own.
    pub fn detectors(&self) -> &'a DetectSpec {
        &self.input.detectors
    }

    /// What the detection step found on this model.
    pub fn detected(&self) -> &'a DetectReport {
        self.input.detected
    }

    /// The inputs the repaired classifier meets at run time: the clean test images and their
    /// triggered copies (images only; the attack's labels stay with the evaluation). A run-time
    /// filter screens them.
    pub fn run_time_inputs(&self) -> (&'a ImageSet, &'a ImageSet) {
        (self.input.test, &self.input.triggered.set)
    }

    /// Which training samples are poisoned: the oracle `retrain_by=truth` shows for comparison (what a
    /// perfect detector buys). Not a defense; no other repair calls it.
    pub fn oracle_poisoned(&self) -> Vec<bool> {
        self.input.poisoned.is_poisoned()
    }

    /// Reports progress of the running repair and lets the host run (and cancel).
    pub async fn progress(&mut self, done: usize, total: usize) -> Result<()> {
        let event = Event::Repair { repair: self.repair.to_string(), done, total };
        if self.host.emit(&event).is_break() {
            return Err(LabError::Cancelled);
        }
        self.host.pause().await;
        Ok(())
    }

    pub fn now(&self) -> f64 {
        self.host.now()
    }

    /// A random stream for this repair, derived from the run's seed.
    pub fn rng(&self) -> LabRng {
        let salt = self.repair.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        LabRng::new(self.setting.seed ^ salt, Stream::Repair)
    }

    /// The suspect model on an autodiff device, ready to train.
    pub fn trainable(&self) -> Model {
        self.model.clone().fork(&self.device.clone().autodiff()).train()
    }

    /// Runs a detector with `test` as its clean images (the defender's set, never the evaluation
    /// images), relaying its progress as this repair's.
    pub async fn detector<T>(
        &mut self,
        name: &'static str,
        test: &ImageSet,
        run: impl AsyncFnOnce(&mut detect::Cx<'_>) -> Result<T>,
    ) -> Result<T> {
        let input = DetectInput {
            setting: self.setting.clone(),
            model: self.input.model,
            poisoned: self.input.poisoned,
            test,
            triggered: self.input.triggered,
            answers: self.input.answers.clone(),
        };
        let mut relay = relay(&mut *self.host, self.repair, 0);
        let mut dcx = detect::Cx::new(&input, self.device, &mut relay, name)?;
        run(&mut dcx).await
    }

    /// Evaluates `model` on the test images (ground truth, for pictures); the time is not charged
    /// to the repair.
    pub async fn measure_for_picture(&mut self, model: &Model) -> Result<Metrics> {
        let t = self.host.now();
        let m = Metrics::measure(model, self.input.test, self.input.triggered, self.device).await?;
        self.picture_seconds += self.host.now() - t;
        Ok(m)
    }

    /// Excludes `seconds` spent on pictures from the repair's cost.
    pub fn charge_to_picture(&mut self, seconds: f64) {
        self.picture_seconds += seconds;
    }

    /// Share of the defender's clean set `model` classifies right (the defender's own yardstick).
    pub async fn defender_accuracy(&self, model: &Model) -> Result<f64> {
        let pred = predict(model, &self.clean, self.device).await?;
        Ok(crate::lab::eval::accuracy(&pred, &self.clean.labels))
    }

    /// A host that turns the batches of a nested training of `total` batches into this repair's
    /// progress events.
    pub fn relay(&mut self, total: usize) -> Relay<'_> {
        relay(&mut *self.host, self.repair, total)
    }
}

/// Nested work (a training loop, a detector) as `repair`'s progress.
fn relay<'a>(host: &'a mut dyn Host, repair: &'static str, total: usize) -> Relay<'a> {
    let progress = move |done, total| Event::Repair { repair: repair.to_string(), done, total };
    Relay { inner: host, done: 0, total, progress: Box::new(progress) }
}

/// Runs one repair (if chosen), scores its detail against the truth, evaluates what it returns and
/// rates it against `before`.
pub(super) async fn one<R: Repair + Clone>(
    cx: &mut Cx<'_>,
    name: &'static str,
    repair: Option<&R>,
    before: &Baseline,
) -> Result<Option<Repaired<R, R::Detail>>> {
    let Some(repair) = repair else { return Ok(None) };
    cx.repair = name;
    cx.picture_seconds = 0.0;
    cx.progress(0, 1).await?;
    let t = cx.host.now();
    let mut fixed = repair.repair(cx).await?;
    let seconds = cx.host.now() - t - cx.picture_seconds;
    let input = cx.input;
    let poisoned = input.poisoned.is_poisoned();
    let truth = GroundTruth {
        poisoned: &poisoned,
        labels: &input.poisoned.set.labels,
        true_labels: &input.poisoned.true_labels,
        answers: &input.answers,
    };
    repair.score(&mut fixed.detail, &truth);
    let m = evaluate(&fixed.defended, input.test, input.triggered, cx.device).await?;
    Ok(Some(Repaired {
        clean_acc: m.clean_acc,
        asr: m.asr,
        robust_acc: m.robust_acc,
        der: der(before, m.clean_acc, m.asr),
        seconds,
        clean_samples: fixed.clean_samples,
        params: repair.clone(),
        detail: fixed.detail,
    }))
}
