//! The experiment spec: one versioned value that describes a whole run, as JSON and as a compact,
//! hand-editable link (`key=value&...` with defaults left out, like TensorFlow Playground's hash).
//! Decoding never panics; every problem comes back as `LabError::Spec` with a clear message.

use std::fmt::Write as _;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::lab::attack::{AttackMethod, AttackSpec, Trigger};
pub use crate::lab::data::{ALL, DataSpec, DatasetKind};
use crate::lab::defense::SanitizeSpec;
use crate::lab::detect::{self, Answers, DetectSpec};
use crate::lab::error::{LabError, Result};
use crate::lab::model::ModelKind;
use crate::lab::params::{ALL_WORD, Kind, LinkValue, Param, ParamInfo, Params, choice, clip, int, size, table_params};
use crate::lab::repair::{self, RepairSpec};
use crate::lab::setting::Setting;
pub use crate::lab::train::{OptimizerKind, TrainSpec};
use crate::lab::transfer::TransferSpec;

/// The spec format this build writes; links and files of another version are refused.
pub const SPEC_VERSION: u32 = 1;

/// A whole run. New sections (detectors, repairs) arrive as fields with serde defaults, so older
/// links keep decoding to the same experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    /// Format version, `SPEC_VERSION`.
    pub v: u32,
    /// Every random choice of the run derives from this.
    pub seed: u64,
    pub data: DataSpec,
    pub attack: AttackSpec,
    pub model: ModelKind,
    pub train: TrainSpec,
    /// Backdoor detectors to run after evaluation (none by default, and then absent from JSON).
    #[serde(default, skip_serializing_if = "DetectSpec::is_empty")]
    pub detect: DetectSpec,
    /// Repairs to run after detection (none by default, and then absent from JSON).
    #[serde(default, skip_serializing_if = "RepairSpec::is_default")]
    pub repair: RepairSpec,
    /// A victim's fine-tuning of the model (off by default, and then absent from JSON).
    #[serde(default, skip_serializing_if = "TransferSpec::is_default")]
    pub finetune: TransferSpec,
    /// An input sanitizer at deployment (off by default, and then absent from JSON).
    #[serde(default, skip_serializing_if = "SanitizeSpec::is_default")]
    pub sanitize: SanitizeSpec,
}

impl Default for ExperimentSpec {
    fn default() -> Self {
        Self::defaults(DatasetKind::Mnist)
    }
}

impl ExperimentSpec {
    /// The default experiment for `dataset`: BadNets 3×3 white patch bottom-right, ρ = 10 %, target 0.
    pub fn defaults(dataset: DatasetKind) -> Self {
        let (train_size, test_size, model, epochs) = match dataset {
            DatasetKind::Mnist => (8_000, 2_000, ModelKind::Cnn, 5),
            DatasetKind::Cifar10 => (10_000, 2_000, ModelKind::CifarCnn, 12),
        };
        Self {
            v: SPEC_VERSION,
            seed: 0,
            data: DataSpec { dataset, train_size, test_size },
            attack: AttackSpec::default(),
            model,
            train: TrainSpec { epochs, ..TrainSpec::default() },
            detect: DetectSpec::default(),
            repair: RepairSpec::default(),
            finetune: TransferSpec::default(),
            sanitize: SanitizeSpec::default(),
        }
    }

    /// The default training size of `dataset` when a transfer victim needs images of its own: the
    /// plain default less the victim's default share, so that the shipped data (MNIST's 10,000 digits,
    /// the 10,000-image CIFAR-10 subset) leave the victim its 2,000 images beside training and test.
    pub fn train_size_with_victim(dataset: DatasetKind) -> usize {
        Self::defaults(dataset).data.train_size - TransferSpec::default().size
    }

    /// After the freeze modes changed from `was_on`: a training size still at its default for the old
    /// state moves to the new state's default, so that ticking a freeze mode at the defaults runs (and
    /// a customised size stays as the user set it).
    fn follow_victim(&mut self, was_on: bool) {
        let on = !self.finetune.is_off();
        let plain = Self::defaults(self.data.dataset).data.train_size;
        let room = Self::train_size_with_victim(self.data.dataset);
        match (was_on, on) {
            (false, true) if self.data.train_size == plain => self.data.train_size = room,
            (true, false) if self.data.train_size == room => self.data.train_size = plain,
            _ => {}
        }
    }

    /// Image shape (channels, height, width) of the spec's dataset.
    pub fn dims(&self) -> (usize, usize, usize) {
        self.data.dataset.shape()
    }

    /// What a defender knows of this run: how its model was built and trained.
    pub fn setting(&self) -> Setting {
        Setting { seed: self.seed, model: self.model, dataset: self.data.dataset, train: self.train.clone() }
    }

    /// What the attack did, for scoring defenses: its trigger and its target.
    pub fn answers(&self) -> Result<Answers> {
        Ok(Answers { trigger: self.attack.trigger(self.dims(), self.seed)?, target: self.attack.target_label })
    }

    /// Checks every value's range; the message names the link key and the allowed range.
    pub fn validate(&self) -> Result<()> {
        if self.v != SPEC_VERSION {
            return Err(LabError::spec(format!(
                "unknown spec version {} (this build reads version {SPEC_VERSION})",
                self.v
            )));
        }
        Params::validate(self).map_err(LabError::spec)?;
        if self.train.dp() && self.attack.method.loss_weight().is_some() {
            return Err(LabError::spec(
                "the malicious-loss attacker runs the training job, so its victim cannot choose DP-SGD: \
                 set dp_sigma=0 or choose a data-poisoning attack",
            ));
        }
        Trigger::build(&self.attack.method.trigger_spec(), self.dims(), self.seed)?;
        Ok(())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a spec always serialises")
    }

    pub fn from_json(text: &str) -> Result<Self> {
        let spec: Self = serde_json::from_str(text).map_err(|e| LabError::spec(format!("bad JSON: {e}")))?;
        spec.validate()?;
        Ok(spec)
    }

    /// The compact link fragment (no leading `#`): `v=1` and every value that differs from the
    /// defaults. Each value is compared with a spec that made the same choices so far (dataset,
    /// attack, trigger family, detectors, repairs) and kept every other default.
    pub fn to_link(&self) -> String {
        let mut out = format!("{VERSION_KEY}={}", self.v);
        // A choice is compared with the choices made before it; every other value with a spec that
        // made all of this spec's choices, as decoding applies them all first (a freeze mode, late in
        // the link, sets the training size's default, early in it).
        let mut base = Self::default();
        let mut chosen = Self::default();
        for p in self.params().into_iter().filter(|p| p.selects) {
            let _ = chosen.set(p.key, &self.get(p.key).expect("a listed parameter has a value"));
        }
        for p in self.params() {
            let value = self.get(p.key).expect("a listed parameter has a value");
            let reference = if p.selects { &base } else { &chosen };
            if reference.get(p.key).as_ref() != Some(&value) {
                let _ = write!(out, "&{}={value}", p.key);
            }
            if p.selects {
                let _ = base.set(p.key, &value);
            }
        }
        out
    }

    /// Reads a link: a full URL, a `#fragment`, the `key=value&...` form or `j=<base64url JSON>`.
    /// A link with several bad keys is refused with every one of them named.
    pub fn from_link(link: &str) -> Result<Self> {
        Self::from_link_strict(link).map_err(|first| {
            let (_, problems) = Self::from_link_partial(link);
            if problems.len() > 1 { LabError::spec(problems.join("; ")) } else { first }
        })
    }

    /// Reads as much of a link as is valid: the experiment of every key that can be kept, and for each
    /// part dropped, why (the page keeps what it can of a link and says what it dropped). Choices apply
    /// first, as in `with_overrides`; a value that does not fit the experiment built so far is dropped.
    /// A link of another version, or a whole-JSON link that does not read, keeps nothing.
    pub fn from_link_partial(link: &str) -> (Self, Vec<String>) {
        if let Ok(spec) = Self::from_link_strict(link) {
            return (spec, Vec::new());
        }
        let fragment = link.find('#').map_or(link, |i| &link[i + 1..]).trim().trim_start_matches(['?', '&']);
        let mut problems = Vec::new();
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for part in fragment.split('&').filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                None => problems.push(format!("'{}' is not key=value", clip(part))),
                Some((k, _)) if pairs.iter().any(|(seen, _)| *seen == k) => {
                    problems.push(format!("link key '{}' appears twice (the first is kept)", clip(k)))
                }
                Some(pair) => pairs.push(pair),
            }
        }
        // The whole JSON, or another version, decides how everything else reads: no partial reading.
        let version = pairs.iter().find(|(k, _)| *k == VERSION_KEY).map(|(_, v)| *v);
        if pairs.iter().any(|(k, _)| *k == JSON_KEY) || version.is_some_and(|v| v != SPEC_VERSION.to_string()) {
            let whole: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let why = Self::from_link_strict(&whole.join("&")).err().map(spec_problem);
            return (Self::default(), why.into_iter().collect());
        }
        let every = Self::every_param();
        let selects = |key: &str| every.iter().any(|p| p.key == key && p.selects);
        let choices = every.iter().filter(|p| p.selects).filter_map(|p| pairs.iter().find(|(k, _)| *k == p.key));
        let rest = pairs.iter().filter(|(k, _)| *k != VERSION_KEY && !selects(k));
        let mut spec = Self::default();
        for &(key, value) in choices.chain(rest) {
            match spec.clone().with_overrides(&[(key, value)]) {
                Ok(next) => spec = next,
                Err(e) => problems.push(spec_problem(e)),
            }
        }
        (spec, problems)
    }

    fn from_link_strict(link: &str) -> Result<Self> {
        let fragment = match link.find('#') {
            Some(i) => &link[i + 1..],
            None => link,
        };
        let fragment = fragment.trim().trim_start_matches(['?', '&']);
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for part in fragment.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| LabError::spec(format!("link part '{}' is not key=value", clip(part))))?;
            if pairs.iter().any(|(seen, _)| *seen == k) {
                return Err(LabError::spec(format!("link key '{}' appears twice", clip(k))));
            }
            pairs.push((k, v));
        }
        if let Some((_, json)) = pairs.iter().find(|(k, _)| *k == JSON_KEY) {
            if pairs.len() > 1 {
                return Err(LabError::spec(format!("a {JSON_KEY}= link holds the whole spec; remove the other keys")));
            }
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(json.trim_end_matches('='))
                .map_err(|e| LabError::spec(format!("bad base64 in {JSON_KEY}=: {e}")))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| LabError::spec(format!("{JSON_KEY}= does not hold UTF-8 JSON")))?;
            return Self::from_json(&text);
        }
        if let Some((_, v)) = pairs.iter().find(|(k, _)| *k == VERSION_KEY) {
            let v: u32 = v.parse().map_err(|_| {
                LabError::spec(format!("link value '{}' for '{VERSION_KEY}' is not a valid number", clip(v)))
            })?;
            if v != SPEC_VERSION {
                return Err(LabError::spec(format!(
                    "unknown link version {v} (this build reads version {SPEC_VERSION})"
                )));
            }
        }
        Self::default().with_overrides(&pairs)
    }

    /// The `j=<base64url JSON>` form, for tools that prefer one opaque value.
    pub fn to_json_link(&self) -> String {
        let json = serde_json::to_string(self).expect("a spec always serialises");
        format!("{JSON_KEY}={}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
    }

    /// This spec with `key=value` overrides in the link's vocabulary (the CLI's flags and the page's
    /// controls use it too), validated. Choices (dataset, attack, trigger family, detectors, repairs)
    /// apply first, in that order, whatever the order of `pairs`: switching the dataset of a default
    /// spec gives that dataset's defaults; switching the attack gives that attack's defaults.
    pub fn with_overrides(mut self, pairs: &[(&str, &str)]) -> Result<Self> {
        let every = Self::every_param();
        let selects = |key: &str| every.iter().any(|p| p.key == key && p.selects);
        for p in every.iter().filter(|p| p.selects) {
            if let Some((key, value)) = pairs.iter().find(|(k, _)| *k == p.key) {
                self.apply(key, value)?;
            }
        }
        for (key, value) in pairs.iter().filter(|(k, _)| *k != VERSION_KEY && !selects(k)) {
            self.apply(key, value)?;
        }
        self.validate()?;
        Ok(self)
    }

    fn apply(&mut self, key: &str, value: &str) -> Result<()> {
        match self.set(key, value) {
            Some(done) => done.map_err(LabError::spec),
            None => Err(LabError::spec(format!("unknown link key '{}'", clip(key)))),
        }
    }

    /// Every parameter any spec may have, each key once, in link order: the CLI's flags, the docs'
    /// key table and the page's `hide=` keys come from this.
    pub fn every_param() -> Vec<&'static ParamInfo> {
        let mut out: Vec<&'static ParamInfo> = TOP.iter().map(|p| &p.info).collect();
        out.extend(AttackSpec::every_param());
        out.extend(table_params::<TrainSpec>());
        out.extend(detect::every_param());
        out.extend(repair::every_param());
        out.extend(table_params::<TransferSpec>());
        out.extend(table_params::<SanitizeSpec>());
        out
    }

    /// The data and seed parameters (the page's Data step).
    pub fn data_params() -> Vec<&'static ParamInfo> {
        TOP[..MODEL_AT].iter().map(|p| &p.info).collect()
    }

    /// The model's parameters (the page's Train step shows them with training's).
    pub fn model_params() -> Vec<&'static ParamInfo> {
        TOP[MODEL_AT..].iter().map(|p| &p.info).collect()
    }

    /// A parameter's declaration, by link key.
    pub fn param_info(key: &str) -> Option<&'static ParamInfo> {
        Self::every_param().into_iter().find(|p| p.key == key)
    }

    /// A parameter's default in link form, for docs: MNIST's defaults, with every method chosen so
    /// that its parameters have values (the first attack that has the key gives it).
    pub fn default_text(key: &str) -> String {
        let mut spec = Self::default();
        if let Some(value) = spec.get(key) {
            // An empty list of names is "empty": "none" may be one of the names (freeze=none).
            let list = Self::param_info(key).is_some_and(|p| matches!(p.kind, Kind::Choices(_)));
            return match (value.is_empty(), list) {
                (false, _) => value,
                (true, true) => "empty".into(),
                (true, false) => "none".into(),
            };
        }
        spec.detect = DetectSpec::all();
        spec.repair = RepairSpec::all();
        let mut value = spec.get(key);
        for name in AttackMethod::NAMES {
            if value.is_some() {
                break;
            }
            spec.attack.method = AttackMethod::default_named(name).expect("a registered attack");
            value = spec.get(key);
        }
        value.unwrap_or_default()
    }
}

/// A spec error's problem without the "invalid spec" heading, for lists of problems.
fn spec_problem(e: LabError) -> String {
    match e {
        LabError::Spec(problem) => problem,
        e => e.to_string(),
    }
}

/// The link key of the seed (grids average over it).
pub const SEED_KEY: &str = "seed";
/// The link key of the spec version.
const VERSION_KEY: &str = "v";
/// The link key of the whole-JSON form.
const JSON_KEY: &str = "j";

/// The spec's own parameters: the data and seed (the page's Data step), then the model; the sections
/// hold the rest.
const TOP: &[Param<ExperimentSpec>] = &[
    Param {
        info: choice("data", DatasetKind::CHOICES)
            .flag("dataset")
            .selector()
            .label("dataset")
            .doc("The dataset: mnist or cifar10."),
        get: |s| s.data.dataset.to_link(),
        // A spec still at one dataset's defaults moves to the other's; a customised one keeps its values.
        set: |s, v| {
            let dataset = DatasetKind::from_link(v)?;
            if dataset != s.data.dataset {
                if *s == ExperimentSpec::defaults(s.data.dataset) {
                    *s = ExperimentSpec::defaults(dataset);
                } else {
                    s.data.dataset = dataset;
                }
            }
            Ok(())
        },
    },
    crate::lens!(int(SEED_KEY, 0, u64::MAX as i128).doc("Every random choice of the run derives from it."), seed),
    Param {
        info: size("train", 10, 1_000_000)
            .flag("train-size")
            .label("training images")
            .doc("Training split size (MNIST 8000, CIFAR-10 10000 by default; 2000 fewer when a transfer victim needs images of its own); all: every training image there is.")
            .field("data.train_size"),
        get: |s| s.data.train_text(),
        set: |s, v| {
            s.data.train_size = if v == ALL_WORD { ALL } else { LinkValue::from_link(v)? };
            Ok(())
        },
    },
    crate::lens!(
        int("test", 10, 1_000_000).flag("test-size").label("test images").doc("Test split size."),
        data.test_size
    ),
    // The model comes last: the page shows it in the Train step (`MODEL_AT`).
    crate::lens!(
        choice("model", ModelKind::CHOICES).doc("The network: mlp, the reference cnn (MNIST) or cifar_cnn (CIFAR-10)."),
        model
    ),
];

/// Where the model's parameter starts in `TOP`.
const MODEL_AT: usize = 4;

/// The spec is its sections' parameters in link order: its own, the attack's, training's, the
/// detectors' and the repairs'.
impl Params for ExperimentSpec {
    fn params(&self) -> Vec<&'static ParamInfo> {
        let mut out: Vec<&'static ParamInfo> = TOP.iter().map(|p| &p.info).collect();
        out.extend(self.attack.params());
        out.extend(self.train.params());
        out.extend(self.detect.params());
        out.extend(self.repair.params());
        out.extend(self.finetune.params());
        out.extend(self.sanitize.params());
        out
    }
    fn get(&self, key: &str) -> Option<String> {
        if let Some(p) = TOP.iter().find(|p| p.info.key == key) {
            return Some((p.get)(self));
        }
        self.attack
            .get(key)
            .or_else(|| self.train.get(key))
            .or_else(|| self.detect.get(key))
            .or_else(|| self.repair.get(key))
            .or_else(|| self.finetune.get(key))
            .or_else(|| self.sanitize.get(key))
    }
    fn set(&mut self, key: &str, value: &str) -> Option<std::result::Result<(), String>> {
        if let Some(p) = TOP.iter().find(|p| p.info.key == key) {
            return Some((p.set)(self, value).map_err(|reason| p.info.unparsable(value, reason)));
        }
        if let Some(done) = self.attack.set(key, value) {
            return Some(done);
        }
        if let Some(done) = self.train.set(key, value) {
            return Some(done);
        }
        if let Some(done) = self.detect.set(key, value) {
            return Some(done);
        }
        if let Some(done) = self.repair.set(key, value) {
            return Some(done);
        }
        let was_on = !self.finetune.is_off();
        if let Some(done) = self.finetune.set(key, value) {
            if done.is_ok() {
                self.follow_victim(was_on);
            }
            return Some(done);
        }
        self.sanitize.set(key, value)
    }
    fn validate(&self) -> std::result::Result<(), String> {
        for p in TOP {
            p.info.check(&(p.get)(self))?;
        }
        self.attack.validate()?;
        self.train.validate()?;
        self.detect.validate()?;
        self.repair.validate()?;
        self.finetune.validate()?;
        self.sanitize.validate()
    }
}
