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
mod engine;
pub mod fine_pruning;
pub mod fine_tuning;
mod fit;
pub mod nc_unlearn;
pub mod retrain;
pub mod strip_filter;

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

pub use abl::{Abl, AblDetail};
pub use distill::{Distill, DistillDetail, DistillStudent};
pub use engine::Cx;
use engine::one;
pub use fine_pruning::{CurvePoint, FinePruning, FpDetail};
pub use fine_tuning::{FineTuning, FtDetail};
pub use fit::{Fit, Objective, fit};
pub use nc_unlearn::{NcDetail, NcUnlearn};
pub use retrain::{Retrain, RetrainBy, RetrainDetail};
pub use strip_filter::{StripDetail, StripFilter};

use crate::lab::attack::Poisoned;
use crate::lab::data::ImageSet;
use crate::lab::detect::{self, Answers, DetectSpec, GroundTruth};
use crate::lab::error::{LabError, Result};
use crate::lab::eval::{Metrics, REJECTED, TriggeredTest, predict};
use crate::lab::event::Host;
use crate::lab::model::Model;
use crate::lab::params::{Family, Hint, Kind, Param, ParamInfo, Params, Table, int, method_list, other};
use crate::lab::rng::{LabRng, Stream};
use crate::lab::setting::Setting;

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

/// A share as a percentage with one decimal, as repair summaries print it.
pub fn pct1(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

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
                $(if let Some(r) = &self.$name {
                    out.push(Row { detail: <$ty as Repair>::summary(r), ..r.row(stringify!($name)) });
                })+
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
    /// What it did, in one sentence (`Repair::summary`).
    pub detail: String,
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
            detail: String::new(),
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
    /// What it did, in one sentence from its own report: the CLI's table and the page's list print this
    /// for every repair in the registry, under its CA, ASR, RA and DER.
    fn summary(done: &Repaired<Self, Self::Detail>) -> String;
    /// Fills in what its detail says against the attack's ground truth (how many of the samples it
    /// dropped were poisoned, say), once it is done: `Cx` never holds the truth, so no repair decides
    /// by it.
    fn score(&self, _detail: &mut Self::Detail, _truth: &GroundTruth<'_>) {}
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
    let mut cx = Cx::new(input, model, clean_indices, device, host);
    let mut report = RepairReport { before, defender_clean: cx.clean.len(), ..RepairReport::default() };
    run_chosen(chosen, &mut cx, &mut report).await?;
    report.seconds = cx.now() - start;
    Ok(report)
}
