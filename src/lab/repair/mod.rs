//! Backdoor repairs, one file each, behind one small trait: each takes the suspect model and what a
//! defender holds (a small clean set, the training data it was given, the detectors) and returns a
//! repaired classifier, evaluated by exactly the code path of the original model (`Metrics`), with
//! BackdoorBench's defense-effectiveness rating (DER).
//!
//! The defender's clean data is a seeded subset of the training samples the attack left untouched
//! (the reference's "400 clean training samples"): the test split stays evaluation-only, so no repair
//! ever trains on an image it is measured on, and the before-repair baseline is measured on the
//! same test images as every repair.

pub mod abl;
pub mod distill;
pub mod fine_pruning;
pub mod fine_tuning;
pub mod nc_unlearn;
pub mod retrain;
pub mod strip_filter;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

pub use abl::{Abl, AblDetail};
pub use distill::{Distill, DistillDetail, DistillStudent};
pub use fine_pruning::{CurvePoint, FinePruning, FpDetail};
pub use fine_tuning::{FineTuning, FtDetail};
pub use nc_unlearn::{NcDetail, NcUnlearn};
pub use retrain::{Retrain, RetrainBy, RetrainDetail};
pub use strip_filter::{StripDetail, StripFilter};

use crate::lab::attack::Poisoned;
use crate::lab::data::{ImageSet, NUM_CLASSES, batch};
use crate::lab::detect::{self, Answers, DetectInput, DetectSpec};
use crate::lab::error::{LabError, Result};
use crate::lab::eval::{Metrics, REJECTED, TriggeredTest, predict};
use crate::lab::event::{Event, Host, Relay};
use crate::lab::model::Model;
use crate::lab::params::{Family, Hint, Kind, Param, ParamInfo, Params, Table, int, method_list, other};
use crate::lab::rng::{LabRng, Stream};
use crate::lab::setting::Setting;
use crate::lab::train::optimizer;

/// The repairs to run, a comma list of link names.
pub const REPAIR: ParamInfo = other("repair", Kind::Methods(Family(RepairSpec::REGISTRY)), Hint::Checkboxes)
    .selector()
    .label("repairs")
    .doc("Repairs to run after detection, comma-separated (or none).");

/// The size of the defender's clean set, shared by every repair (the reference's 400).
pub const DEFENDER_CLEAN: Param<RepairSpec> = crate::lens!(
    int("defender_clean", 10, 100_000)
        .label("defender's clean images")
        .doc("Clean training samples the defender holds for repairs."),
    defender_clean
);

/// The reference's defender: 400 clean training samples.
pub const DEFAULT_DEFENDER_CLEAN: usize = 400;

/// The registry: `link_name: Type`, in the order repairs run and appear in links, reports and tables.
/// The link name is also the key in the spec's JSON and in REPORT.json.
macro_rules! repairs {
    ($($name:ident: $ty:ty),+ $(,)?) => {
        /// The repairs a spec chose, each with its parameters (`None` = not chosen), and the size of the
        /// defender's clean set they share.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct RepairSpec {
            /// Clean training samples the defender holds.
            pub defender_clean: usize,
            $(#[serde(skip_serializing_if = "Option::is_none")] pub $name: Option<$ty>,)+
        }

        impl Default for RepairSpec {
            fn default() -> Self {
                Self { defender_clean: DEFAULT_DEFENDER_CLEAN, $($name: None,)+ }
            }
        }

        /// What the repairs achieved, as written to REPORT.json under `repair`.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct RepairReport {
            pub before: Baseline,
            pub defender_clean: usize,
            $(#[serde(skip_serializing_if = "Option::is_none")] pub $name: Option<Repaired<$ty, <$ty as Repair>::Detail>>,)+
            pub seconds: f64,
        }

        crate::method_set!(RepairSpec, Repair, $($name: $ty),+);

        impl RepairReport {
            /// The repairs that ran, in `RepairSpec::NAMES` order (for tables and bar charts).
            pub fn rows(&self) -> Vec<Row> {
                let mut out = Vec::new();
                $(if let Some(r) = &self.$name { out.push(r.row(stringify!($name))); })+
                out
            }
        }

        /// Runs the chosen repairs in registry order.
        async fn run_chosen(chosen: &RepairSpec, cx: &mut Cx<'_>, report: &mut RepairReport) -> Result<()> {
            $(report.$name = one(cx, stringify!($name), chosen.$name.as_ref(), &report.before).await?;)+
            Ok(())
        }
    };
}

repairs! {
    fp: FinePruning,
    ft: FineTuning,
    retrain: Retrain,
    abl: Abl,
    nc_unlearn: NcUnlearn,
    distill: Distill,
    strip_filter: StripFilter,
}

impl RepairSpec {
    /// No repair chosen.
    pub fn is_empty(&self) -> bool {
        self.chosen().is_empty()
    }

    /// Nothing differs from the default (the spec's JSON then leaves the section out).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Chooses exactly the repairs `names` (comma-separated link names; empty or `none` for none),
    /// keeping the parameters of those already chosen.
    pub fn choose(&mut self, names: &str) -> Result<()> {
        let names = method_list(names, Self::NAMES, REPAIR.key).map_err(LabError::spec)?;
        self.keep_only(&names);
        Ok(())
    }
}

impl Params for RepairSpec {
    fn params(&self) -> Vec<&'static ParamInfo> {
        let mut out = vec![&REPAIR, &DEFENDER_CLEAN.info];
        out.extend(self.chosen_params().into_iter().flat_map(|r| r.params()));
        out
    }
    fn get(&self, key: &str) -> Option<String> {
        if key == REPAIR.key {
            return Some(self.chosen().join(","));
        }
        if key == DEFENDER_CLEAN.info.key {
            return Some((DEFENDER_CLEAN.get)(self));
        }
        self.chosen_params().into_iter().find_map(|r| r.get(key))
    }
    /// A key of a repair that is not chosen says which one to choose.
    fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
        if key == REPAIR.key {
            return Some(self.choose(value).map_err(|e| e.to_string()));
        }
        if key == DEFENDER_CLEAN.info.key {
            return Some((DEFENDER_CLEAN.set)(self, value).map_err(|r| DEFENDER_CLEAN.info.unparsable(value, r)));
        }
        if let Some(done) = self.chosen_params_mut().into_iter().find_map(|r| r.set(key, value)) {
            return Some(done);
        }
        let owner = Self::REGISTRY.iter().find(|m| (m.params)().iter().any(|p| p.key == key))?;
        let name = owner.name;
        Some(Err(format!("link key '{key}' applies only when {name} is chosen (repair={name})")))
    }
    fn validate(&self) -> std::result::Result<(), String> {
        DEFENDER_CLEAN.info.check(&(DEFENDER_CLEAN.get)(self))?;
        self.chosen_params().into_iter().try_for_each(|r| r.validate())
    }
}

/// Every repair parameter, the choice of repairs and the defender's clean set, each key once.
pub fn every_param() -> Vec<&'static ParamInfo> {
    let mut out = vec![&REPAIR, &DEFENDER_CLEAN.info];
    out.extend(RepairSpec::REGISTRY.iter().flat_map(|m| (m.params)()));
    out
}

/// BackdoorBench's defense-effectiveness rating: [max(0, ΔASR) − max(0, ΔCA) + 1] / 2 with
/// ΔX = X before − X after. 1 = backdoor gone at no cost, 0.5 = nothing changed, 0 = all CA lost.
pub fn der(before: &Baseline, clean_acc: f64, asr: f64) -> f64 {
    let d_asr = (before.asr - asr).max(0.0);
    let d_ca = (before.clean_acc - clean_acc).max(0.0);
    (d_asr - d_ca + 1.0) / 2.0
}

/// The suspect model before any repair, measured on the same test images as every repair.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub clean_acc: f64,
    pub asr: f64,
    pub robust_acc: f64,
}

/// What one repair achieved and cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repaired<P, D> {
    pub clean_acc: f64,
    pub asr: f64,
    pub robust_acc: f64,
    pub der: f64,
    /// Wall time of the repair itself (without its final evaluation or ground-truth pictures).
    pub seconds: f64,
    /// Clean samples the repair used (the defender's set, or the training samples it kept).
    pub clean_samples: usize,
    pub params: P,
    #[serde(flatten)]
    pub detail: D,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: &'static str,
    pub clean_acc: f64,
    pub asr: f64,
    pub robust_acc: f64,
    pub der: f64,
    pub seconds: f64,
    pub clean_samples: usize,
}

impl RepairReport {
    pub fn is_empty(&self) -> bool {
        self.rows().is_empty()
    }
}

impl<P, D> Repaired<P, D> {
    fn row(&self, name: &'static str) -> Row {
        Row {
            name,
            clean_acc: self.clean_acc,
            asr: self.asr,
            robust_acc: self.robust_acc,
            der: self.der,
            seconds: self.seconds,
            clean_samples: self.clean_samples,
        }
    }
}

/// What a repair may use: how the suspect model was trained (not the experiment's spec), the model,
/// the training set it was trained on (as the defender received it), the defender's detector settings,
/// and the test split with its triggered copies, which only the evaluation reads. The ground truth
/// (`poisoned.poisoned`, `answers`) picks the defender's clean set and scores pictures, never
/// decisions (except `retrain_by=truth`, an oracle shown for comparison). A finished run builds one
/// with `run::Outcome::repair_input`.
pub struct RepairInput<'a> {
    pub setting: Setting,
    /// The detectors' parameters, for repairs that run a detector of their own.
    pub detectors: DetectSpec,
    pub answers: Answers,
    pub model: &'a Model,
    pub poisoned: &'a Poisoned,
    pub test: &'a ImageSet,
    pub triggered: &'a TriggeredTest,
    /// What the detection step found on this model: a repair that needs a detector's verdict uses
    /// it, so one question never gets two answers.
    pub detected: &'a detect::DetectReport,
}

/// A repaired classifier: a model, or a model behind a run-time input filter.
pub enum Defended {
    Model(Model),
    /// The model, with the evaluation inputs the filter rejected (clean test set, triggered set).
    Filtered {
        model: Model,
        rejected_clean: Vec<bool>,
        rejected_triggered: Vec<bool>,
    },
}

/// What a repair returns: the repaired classifier, how much clean data it used, its details.
pub struct Fixed<D> {
    pub defended: Defended,
    pub clean_samples: usize,
    pub detail: D,
}

/// A backdoor repair.
#[allow(async_fn_in_trait)] // the lab runs on one thread (the browser worker): no Send bound needed
pub trait Repair: Table + Params + Default + Clone {
    /// The name a student reads.
    const TITLE: &'static str;
    /// One sentence on the method, with its paper.
    const EXPLAIN: &'static str;
    type Detail;
    async fn repair(&self, cx: &mut Cx<'_>) -> Result<Fixed<Self::Detail>>;
}

/// A repair's working context.
pub struct Cx<'a> {
    pub setting: &'a Setting,
    /// The suspect model without autodiff.
    pub model: Model,
    pub input: &'a RepairInput<'a>,
    /// The defender's clean set and the training indices it was taken from.
    pub clean: ImageSet,
    pub clean_indices: Vec<usize>,
    /// The plain (non-autodiff) device.
    pub device: &'a Device,
    host: &'a mut dyn Host,
    repair: &'static str,
    /// Time spent on ground-truth pictures (not a cost of the defense).
    picture_seconds: f64,
}

impl<'a> Cx<'a> {
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

/// What a fine-tuning loop minimises on each batch of its set.
pub enum Objective<'s> {
    /// Cross-entropy on the set's labels.
    Labels,
    /// Cross-entropy against a teacher's probabilities at `temperature` (`probs`: NUM_CLASSES per
    /// sample of the set), scaled by T² as Hinton et al. do so gradients keep their size.
    Soft { probs: &'s [f32], temperature: f64 },
    /// Labels on the set minus `weight` × the loss on `isolated` (a batch of it with every batch),
    /// each isolated sample's loss capped at `cap`: ascent stops there instead of diverging.
    Unlearn { isolated: &'s ImageSet, weight: f64, cap: f64 },
}

/// A fine-tuning job: `epochs` passes over `set` with the spec's optimiser, learning rate and batch
/// size; `keep` (fine-pruning) silences pruned units again after every step.
pub struct Fit<'s> {
    pub set: &'s ImageSet,
    pub epochs: usize,
    pub objective: Objective<'s>,
    pub keep: Option<&'s [bool]>,
}

/// Runs `fit` on `model` (on an autodiff device), reporting every batch as progress.
pub async fn fit(cx: &mut Cx<'_>, mut model: Model, job: Fit<'_>) -> Result<Model> {
    let t = &cx.setting.train;
    let mut optim = optimizer(t);
    let device = cx.device.clone().autodiff();
    let ce = CrossEntropyLossConfig::new().init(&device);
    let mut rng = cx.rng();
    let set = job.set;
    if set.is_empty() {
        return Err(LabError::spec(format!("{}: nothing to train on", cx.repair)));
    }
    let batches = set.len().div_ceil(t.batch_size);
    let total = batches * job.epochs;
    let mut iso_order: Vec<usize> = Vec::new();
    let mut done = 0;
    for epoch in 1..=job.epochs {
        let order = rng.permutation(set.len());
        for chunk in order.chunks(t.batch_size) {
            let x = batch::images(set, chunk, &device);
            let logits = model.forward(x);
            let loss = match &job.objective {
                Objective::Labels => {
                    let y: Vec<u8> = chunk.iter().map(|&i| set.labels[i]).collect();
                    ce.forward(logits, batch::labels(&y, &device))
                }
                Objective::Soft { probs, temperature } => {
                    let p: Vec<f32> = chunk
                        .iter()
                        .flat_map(|&i| probs[i * NUM_CLASSES..(i + 1) * NUM_CLASSES].iter().copied())
                        .collect();
                    let p = Tensor::<2>::from_data(TensorData::new(p, [chunk.len(), NUM_CLASSES]), &device);
                    let logp = log_softmax(logits / *temperature, 1);
                    (p * logp).sum_dim(1).mean().neg() * (temperature * temperature)
                }
                Objective::Unlearn { isolated, weight, cap } => {
                    let y: Vec<u8> = chunk.iter().map(|&i| set.labels[i]).collect();
                    let clean = ce.forward(logits, batch::labels(&y, &device));
                    // A quarter batch of isolated samples with every batch, cycling through them.
                    let k = (t.batch_size / 4).clamp(1, isolated.len().max(1));
                    let mut iso = Vec::with_capacity(k);
                    while iso.len() < k && !isolated.is_empty() {
                        if iso_order.is_empty() {
                            iso_order = rng.permutation(isolated.len());
                        }
                        iso.extend(iso_order.pop());
                    }
                    if iso.is_empty() {
                        clean
                    } else {
                        let onehot: Vec<f32> = iso
                            .iter()
                            .flat_map(|&i| {
                                (0..NUM_CLASSES).map(move |c| f32::from(u8::from(c == isolated.labels[i] as usize)))
                            })
                            .collect();
                        let onehot = Tensor::<2>::from_data(TensorData::new(onehot, [iso.len(), NUM_CLASSES]), &device);
                        let logp = log_softmax(model.forward(batch::images(isolated, &iso, &device)), 1);
                        let per_sample = (logp * onehot).sum_dim(1).neg().clamp_max(*cap); // [k, 1]
                        clean - per_sample.mean() * *weight
                    }
                }
            };
            let value = f64::from(loss.clone().into_scalar_async::<f32>().await.map_err(LabError::device_fault)?);
            if !value.is_finite() {
                return Err(LabError::spec(format!(
                    "{}: fine-tuning diverged (loss {value} in epoch {epoch}); lower the learning rate",
                    cx.repair
                )));
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(t.lr, model, grads);
            if let Some(keep) = job.keep {
                model = model.pruned(keep);
            }
            done += 1;
            cx.progress(done, total).await?;
        }
    }
    Ok(model)
}

/// The defender's clean set: `n` training samples the attack left untouched, chosen with the seed.
pub fn defender_clean_indices(poisoned: &Poisoned, n: usize, seed: u64) -> Vec<usize> {
    let flags = poisoned.is_poisoned();
    let untouched: Vec<usize> = (0..flags.len()).filter(|&i| !flags[i]).collect();
    LabRng::new(seed, Stream::Repair).choose_sorted(&untouched, n.min(untouched.len()))
}

/// Measures `defended` on the test images: one code path for the original and every repair
/// (`Metrics::from_predictions` on the model's predictions; a filter's rejections become `REJECTED`).
pub async fn evaluate(
    defended: &Defended,
    test: &ImageSet,
    triggered: &TriggeredTest,
    device: &Device,
) -> Result<Metrics> {
    let (model, rejected) = match defended {
        Defended::Model(m) => (m, None),
        Defended::Filtered { model, rejected_clean, rejected_triggered } => {
            (model, Some((rejected_clean, rejected_triggered)))
        }
    };
    let mut clean = predict(model, test, device).await?;
    let mut trig = predict(model, &triggered.set, device).await?;
    if let Some((rc, rt)) = rejected {
        clean.iter_mut().zip(rc).filter(|(_, r)| **r).for_each(|(p, _)| *p = REJECTED);
        trig.iter_mut().zip(rt).filter(|(_, r)| **r).for_each(|(p, _)| *p = REJECTED);
    }
    Ok(Metrics::from_predictions(test, &clean, triggered, &trig))
}

/// Runs the repairs `chosen` on a trained model, reporting `Event::Repair` progress; `run` calls it
/// after detection and the browser worker calls it on its own after a run.
pub async fn run_all(
    chosen: &RepairSpec,
    input: &RepairInput<'_>,
    device: &Device,
    host: &mut dyn Host,
) -> Result<RepairReport> {
    chosen.validate().map_err(LabError::spec)?;
    let start = host.now();
    let model = input.model.valid();
    let original = Defended::Model(model.clone());
    let m = evaluate(&original, input.test, input.triggered, device).await?;
    let before = Baseline { clean_acc: m.clean_acc, asr: m.asr, robust_acc: m.robust_acc };
    let clean_indices = defender_clean_indices(input.poisoned, chosen.defender_clean, input.setting.seed);
    let clean = input.poisoned.set.select(&clean_indices);
    let mut cx = Cx {
        setting: &input.setting,
        model,
        input,
        clean,
        clean_indices,
        device,
        host,
        repair: "",
        picture_seconds: 0.0,
    };
    let mut report = RepairReport { before, defender_clean: cx.clean.len(), ..RepairReport::default() };
    run_chosen(chosen, &mut cx, &mut report).await?;
    report.seconds = cx.host.now() - start;
    Ok(report)
}

/// Runs one repair (if chosen), evaluates what it returns and rates it against `before`.
async fn one<R: Repair + Clone>(
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
    let fixed = repair.repair(cx).await?;
    let seconds = cx.host.now() - t - cx.picture_seconds;
    let m = evaluate(&fixed.defended, cx.input.test, cx.input.triggered, cx.device).await?;
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
