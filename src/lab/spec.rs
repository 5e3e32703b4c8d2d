//! The experiment spec: one versioned value that describes a whole run, as JSON and as a compact,
//! hand-editable link (`key=value&...` with defaults left out, like TensorFlow Playground's hash).
//! Decoding never panics; every problem comes back as `LabError::Spec` with a clear message.

use std::fmt::Write as _;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::lab::attack::{
    AttackMethod, AttackSpec, BlendPattern, BlendTrigger, LabelPolicy, PatchPattern, PatchPosition, PatchTrigger,
    Trigger, TriggerSpec,
};
use crate::lab::data::{DatasetKind, NUM_CLASSES};
use crate::lab::detect::{
    ActivationClustering, DetectSpec, LossIsolation, NeuralCleanse, Occlusion, SpectralSignatures, Strip,
};
use crate::lab::error::{LabError, Result};
use crate::lab::model::ModelKind;
use crate::lab::repair::{Abl, Distill, FinePruning, FineTuning, NcUnlearn, RepairSpec, RetrainBy, StripFilter};

/// The spec format this build writes; links and files of another version are refused.
pub const SPEC_VERSION: u32 = 1;

/// Which data, how much of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub dataset: DatasetKind,
    pub train_size: usize,
    pub test_size: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    Adam,
    Sgd,
}

/// Training hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    pub optimizer: OptimizerKind,
    pub lr: f64,
    pub batch_size: usize,
    pub epochs: usize,
    /// SGD momentum (ignored by Adam).
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
}

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
            train: TrainSpec {
                optimizer: OptimizerKind::Adam,
                lr: 1e-3,
                batch_size: 64,
                epochs,
                momentum: 0.9,
                weight_decay: 0.0,
            },
            detect: DetectSpec::default(),
            repair: RepairSpec::default(),
        }
    }

    /// Image shape (channels, height, width) of the spec's dataset.
    pub fn dims(&self) -> (usize, usize, usize) {
        self.data.dataset.shape()
    }

    /// Checks every value's range; the message names the field and the allowed range.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: String| Err(LabError::spec(m));
        if self.v != SPEC_VERSION {
            return fail(format!("unknown spec version {} (this build reads version {SPEC_VERSION})", self.v));
        }
        let d = &self.data;
        if !(10..=1_000_000).contains(&d.train_size) {
            return fail(format!("train_size {} must be between 10 and 1000000", d.train_size));
        }
        if !(10..=1_000_000).contains(&d.test_size) {
            return fail(format!("test_size {} must be between 10 and 1000000", d.test_size));
        }
        let a = &self.attack;
        if !(a.poison_rate.is_finite() && (0.0..=0.9).contains(&a.poison_rate)) {
            return fail(format!("poison_rate {} must be between 0 and 0.9", a.poison_rate));
        }
        if a.target_label as usize >= NUM_CLASSES {
            return fail(format!("target_label {} must be between 0 and {}", a.target_label, NUM_CLASSES - 1));
        }
        if let TriggerSpec::Blend(b) = a.method.trigger_spec() {
            if !(b.alpha.is_finite() && b.alpha > 0.0 && b.alpha <= 1.0) {
                return fail(format!("blend alpha {} must be in (0, 1]", b.alpha));
            }
        }
        if matches!(a.method, AttackMethod::CleanLabel { .. }) && a.label_policy != LabelPolicy::AllToOne {
            return fail("clean_label keeps labels, so it needs label_policy all_to_one".into());
        }
        Trigger::build(&a.method.trigger_spec(), self.dims(), self.seed)?;
        let t = &self.train;
        if !(1..=500).contains(&t.epochs) {
            return fail(format!("epochs {} must be between 1 and 500", t.epochs));
        }
        if !(1..=8192).contains(&t.batch_size) {
            return fail(format!("batch_size {} must be between 1 and 8192", t.batch_size));
        }
        if !(t.lr.is_finite() && t.lr > 0.0 && t.lr <= 10.0) {
            return fail(format!("lr {} must be in (0, 10]", t.lr));
        }
        if !(t.momentum.is_finite() && (0.0..1.0).contains(&t.momentum)) {
            return fail(format!("momentum {} must be in [0, 1)", t.momentum));
        }
        if !(t.weight_decay.is_finite() && (0.0..1.0).contains(&t.weight_decay)) {
            return fail(format!("weight_decay {} must be in [0, 1)", t.weight_decay));
        }
        self.detect.validate()?;
        self.repair.validate()
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
    /// dataset's defaults.
    pub fn to_link(&self) -> String {
        let base = Self::defaults(self.data.dataset);
        let mut out = format!("v={}", self.v);
        let mut put = |k: &str, v: &dyn std::fmt::Display| {
            let _ = write!(out, "&{k}={v}");
        };
        if self.data.dataset != DatasetKind::Mnist {
            put("data", &self.data.dataset.name());
        }
        if self.seed != base.seed {
            put("seed", &self.seed);
        }
        if self.data.train_size != base.data.train_size {
            put("train", &self.data.train_size);
        }
        if self.data.test_size != base.data.test_size {
            put("test", &self.data.test_size);
        }
        if self.model != base.model {
            put("model", &self.model.name());
        }
        let a = &self.attack;
        if a.method.name() != base.attack.method.name() {
            put("attack", &a.method.name());
        }
        if a.poison_rate != base.attack.poison_rate {
            put("rate", &a.poison_rate);
        }
        if a.target_label != base.attack.target_label {
            put("target", &a.target_label);
        }
        if a.label_policy != base.attack.label_policy {
            put("policy", &policy_name(a.label_policy));
        }
        let trigger = match &a.method {
            AttackMethod::None => None,
            AttackMethod::Badnets { patch } => Some(TriggerSpec::Patch(*patch)),
            AttackMethod::Blended { blend } => Some(TriggerSpec::Blend(blend.clone())),
            AttackMethod::CleanLabel { trigger } => {
                if let TriggerSpec::Blend(_) = trigger {
                    put("trigger", &"blend");
                }
                Some(trigger.clone())
            }
        };
        match trigger {
            Some(TriggerSpec::Patch(p)) => {
                let d = PatchTrigger::default();
                if p.size != d.size {
                    put("patch", &p.size);
                }
                if p.position != d.position {
                    put("pos", &position_name(p.position));
                }
                if p.margin != d.margin {
                    put("margin", &p.margin);
                }
                if p.pattern != d.pattern {
                    put("pattern", &pattern_name(p.pattern));
                }
            }
            Some(TriggerSpec::Blend(b)) => {
                let d = BlendTrigger::default();
                if b.alpha != d.alpha {
                    put("alpha", &b.alpha);
                }
                if let BlendPattern::Image { pixels } = &b.pattern {
                    put("blend", &pixels);
                }
            }
            None => {}
        }
        let (t, bt) = (&self.train, &base.train);
        if t.optimizer != bt.optimizer {
            put("opt", &optimizer_name(t.optimizer));
        }
        if t.lr != bt.lr {
            put("lr", &t.lr);
        }
        if t.batch_size != bt.batch_size {
            put("batch", &t.batch_size);
        }
        if t.epochs != bt.epochs {
            put("epochs", &t.epochs);
        }
        if t.momentum != bt.momentum {
            put("momentum", &t.momentum);
        }
        if t.weight_decay != bt.weight_decay {
            put("wd", &t.weight_decay);
        }
        let d = &self.detect;
        if !d.is_empty() {
            put("detect", &d.chosen().join(","));
        }
        if let Some(p) = &d.nc {
            let b = NeuralCleanse::default();
            if p.steps != b.steps {
                put("nc_steps", &p.steps);
            }
            if p.batch != b.batch {
                put("nc_batch", &p.batch);
            }
            if p.lr != b.lr {
                put("nc_lr", &p.lr);
            }
        }
        if let Some(p) = &d.ac {
            let b = ActivationClustering::default();
            if p.dims != b.dims {
                put("ac_dims", &p.dims);
            }
            if p.max_share != b.max_share {
                put("ac_size", &p.max_share);
            }
            if p.min_silhouette != b.min_silhouette {
                put("ac_sil", &p.min_silhouette);
            }
        }
        if let Some(p) = d.ss.as_ref().filter(|p| p.eps != SpectralSignatures::default().eps) {
            put("ss_eps", &p.eps);
        }
        if let Some(p) = &d.strip {
            let b = Strip::default();
            if p.n != b.n {
                put("strip_n", &p.n);
            }
            if p.inputs != b.inputs {
                put("strip_inputs", &p.inputs);
            }
        }
        if let Some(p) = &d.loss {
            let b = LossIsolation::default();
            if p.frac != b.frac {
                put("loss_frac", &p.frac);
            }
            if p.epochs != b.epochs {
                put("loss_epochs", &p.epochs);
            }
        }
        if let Some(p) = &d.occlusion {
            let b = Occlusion::default();
            if p.patch != b.patch {
                put("occ_patch", &p.patch);
            }
            if p.stride != b.stride {
                put("occ_stride", &p.stride);
            }
            if p.inputs != b.inputs {
                put("occ_inputs", &p.inputs);
            }
        }
        let r = &self.repair;
        if !r.is_empty() {
            put("repair", &r.chosen().join(","));
        }
        if r.defender_clean != RepairSpec::default().defender_clean {
            put("defender_clean", &r.defender_clean);
        }
        if let Some(p) = &r.fp {
            let b = FinePruning::default();
            if p.max_drop != b.max_drop {
                put("fp_drop", &p.max_drop);
            }
            if p.ft_epochs != b.ft_epochs {
                put("fp_ft_epochs", &p.ft_epochs);
            }
        }
        if let Some(p) = r.ft.as_ref().filter(|p| p.epochs != FineTuning::default().epochs) {
            put("ft_epochs", &p.epochs);
        }
        if let Some(p) = r.retrain.as_ref().filter(|p| p.by != RetrainBy::default()) {
            put("retrain_by", &p.by.name());
        }
        if let Some(p) = &r.abl {
            let b = Abl::default();
            if p.epochs != b.epochs {
                put("abl_epochs", &p.epochs);
            }
            if p.lambda != b.lambda {
                put("abl_lambda", &p.lambda);
            }
            if p.frac != b.frac {
                put("abl_frac", &p.frac);
            }
            if p.isolation_epochs != b.isolation_epochs {
                put("abl_iso_epochs", &p.isolation_epochs);
            }
        }
        if let Some(p) = &r.nc_unlearn {
            let b = NcUnlearn::default();
            if p.epochs != b.epochs {
                put("nc_epochs", &p.epochs);
            }
            if p.share != b.share {
                put("nc_share", &p.share);
            }
        }
        if let Some(p) = &r.distill {
            let b = Distill::default();
            if p.epochs != b.epochs {
                put("distill_epochs", &p.epochs);
            }
            if p.temperature != b.temperature {
                put("distill_t", &p.temperature);
            }
        }
        if let Some(p) = r.strip_filter.as_ref().filter(|p| p.n != StripFilter::default().n) {
            put("sf_n", &p.n);
        }
        out
    }

    /// Reads a link: a full URL, a `#fragment`, the `key=value&...` form or `j=<base64url JSON>`.
    pub fn from_link(link: &str) -> Result<Self> {
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
        if let Some((_, json)) = pairs.iter().find(|(k, _)| *k == "j") {
            if pairs.len() > 1 {
                return Err(LabError::spec("a j= link holds the whole spec; remove the other keys"));
            }
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(json.trim_end_matches('='))
                .map_err(|e| LabError::spec(format!("bad base64 in j=: {e}")))?;
            let text = String::from_utf8(bytes).map_err(|_| LabError::spec("j= does not hold UTF-8 JSON"))?;
            return Self::from_json(&text);
        }
        Self::from_pairs(&pairs)
    }

    /// The `j=<base64url JSON>` form, for tools that prefer one opaque value.
    pub fn to_json_link(&self) -> String {
        let json = serde_json::to_string(self).expect("a spec always serialises");
        format!("j={}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
    }

    fn from_pairs(pairs: &[(&str, &str)]) -> Result<Self> {
        if let Some((_, v)) = pairs.iter().find(|(k, _)| *k == "v") {
            let v: u32 = parse(v, "v")?;
            if v != SPEC_VERSION {
                return Err(LabError::spec(format!(
                    "unknown link version {v} (this build reads version {SPEC_VERSION})"
                )));
            }
        }
        Self::defaults(DatasetKind::Mnist).with_overrides(pairs)
    }

    /// This spec with `key=value` overrides in the link's vocabulary (the CLI's flags use it too),
    /// validated. Switching the dataset of a default spec gives that dataset's defaults; switching
    /// the attack gives that attack's default trigger.
    pub fn with_overrides(mut self, pairs: &[(&str, &str)]) -> Result<Self> {
        let get = |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        if let Some(name) = get("data") {
            let dataset = match name {
                "mnist" => DatasetKind::Mnist,
                "cifar10" => DatasetKind::Cifar10,
                other => {
                    return Err(LabError::spec(format!("unknown dataset '{}' (mnist or cifar10)", clip(other))));
                }
            };
            if dataset != self.data.dataset {
                if self == Self::defaults(self.data.dataset) {
                    self = Self::defaults(dataset);
                } else {
                    self.data.dataset = dataset;
                }
            }
        }
        if let Some(name) = get("attack") {
            if name != self.attack.method.name() {
                self.attack.method = AttackMethod::default_named(name).ok_or_else(|| {
                    LabError::spec(format!(
                        "unknown attack '{}' (one of {})",
                        clip(name),
                        AttackMethod::NAMES.join(", ")
                    ))
                })?;
            }
        }
        if let Some(kind) = get("trigger") {
            let AttackMethod::CleanLabel { trigger } = &mut self.attack.method else {
                return Err(LabError::spec("'trigger' applies only to attack=clean_label"));
            };
            let same = matches!((kind, &*trigger), ("patch", TriggerSpec::Patch(_)) | ("blend", TriggerSpec::Blend(_)));
            if !same {
                *trigger = match kind {
                    "patch" => TriggerSpec::Patch(PatchTrigger::default()),
                    "blend" => TriggerSpec::Blend(BlendTrigger::default()),
                    other => {
                        return Err(LabError::spec(format!("unknown trigger '{}' (patch or blend)", clip(other))));
                    }
                };
            }
        }
        if let Some(names) = get("detect") {
            self.detect.choose(names)?;
        }
        if let Some(names) = get("repair") {
            self.repair.choose(names)?;
        }
        for &(key, value) in pairs {
            apply_pair(&mut self, key, value)?;
        }
        self.validate()?;
        Ok(self)
    }
}

/// Applies one `key=value` of a link to `spec`.
fn apply_pair(spec: &mut ExperimentSpec, key: &str, value: &str) -> Result<()> {
    match key {
        "v" | "data" | "attack" | "trigger" | "detect" | "repair" => {}
        "seed" => spec.seed = parse(value, key)?,
        "train" => spec.data.train_size = parse(value, key)?,
        "test" => spec.data.test_size = parse(value, key)?,
        "model" => {
            spec.model = ModelKind::from_name(value).ok_or_else(|| {
                LabError::spec(format!("unknown model '{}' (one of {})", clip(value), ModelKind::NAMES.join(", ")))
            })?
        }
        "rate" => spec.attack.poison_rate = parse(value, key)?,
        "target" => spec.attack.target_label = parse(value, key)?,
        "policy" => {
            spec.attack.label_policy = match value {
                "all_to_one" => LabelPolicy::AllToOne,
                "all_to_all" => LabelPolicy::AllToAll,
                other => {
                    return Err(LabError::spec(format!("unknown policy '{}' (all_to_one or all_to_all)", clip(other))));
                }
            }
        }
        "patch" => patch(spec, key)?.size = parse(value, key)?,
        "margin" => patch(spec, key)?.margin = parse(value, key)?,
        "pos" => patch(spec, key)?.position = parse_position(value)?,
        "pattern" => {
            patch(spec, key)?.pattern = match value {
                "white" => PatchPattern::White,
                "checker" => PatchPattern::Checkerboard,
                "random" => PatchPattern::Random,
                other => {
                    return Err(LabError::spec(format!(
                        "unknown pattern '{}' (white, checker or random)",
                        clip(other)
                    )));
                }
            }
        }
        "alpha" => blend(spec, key)?.alpha = parse(value, key)?,
        "blend" => {
            blend(spec, key)?.pattern =
                if value == "noise" { BlendPattern::Noise } else { BlendPattern::Image { pixels: value.to_string() } }
        }
        "opt" => {
            spec.train.optimizer = match value {
                "adam" => OptimizerKind::Adam,
                "sgd" => OptimizerKind::Sgd,
                other => {
                    return Err(LabError::spec(format!("unknown optimizer '{}' (adam or sgd)", clip(other))));
                }
            }
        }
        "lr" => spec.train.lr = parse(value, key)?,
        "batch" => spec.train.batch_size = parse(value, key)?,
        "epochs" => spec.train.epochs = parse(value, key)?,
        "momentum" => spec.train.momentum = parse(value, key)?,
        "wd" => spec.train.weight_decay = parse(value, key)?,
        "nc_steps" => chosen(&mut spec.detect.nc, key, "nc")?.steps = parse(value, key)?,
        "nc_batch" => chosen(&mut spec.detect.nc, key, "nc")?.batch = parse(value, key)?,
        "nc_lr" => chosen(&mut spec.detect.nc, key, "nc")?.lr = parse(value, key)?,
        "ac_dims" => chosen(&mut spec.detect.ac, key, "ac")?.dims = parse(value, key)?,
        "ac_size" => chosen(&mut spec.detect.ac, key, "ac")?.max_share = parse(value, key)?,
        "ac_sil" => chosen(&mut spec.detect.ac, key, "ac")?.min_silhouette = parse(value, key)?,
        "ss_eps" => chosen(&mut spec.detect.ss, key, "ss")?.eps = parse(value, key)?,
        "strip_n" => chosen(&mut spec.detect.strip, key, "strip")?.n = parse(value, key)?,
        "strip_inputs" => chosen(&mut spec.detect.strip, key, "strip")?.inputs = parse(value, key)?,
        "loss_frac" => chosen(&mut spec.detect.loss, key, "loss")?.frac = parse(value, key)?,
        "loss_epochs" => chosen(&mut spec.detect.loss, key, "loss")?.epochs = parse(value, key)?,
        "occ_patch" => chosen(&mut spec.detect.occlusion, key, "occlusion")?.patch = parse(value, key)?,
        "occ_stride" => chosen(&mut spec.detect.occlusion, key, "occlusion")?.stride = parse(value, key)?,
        "occ_inputs" => chosen(&mut spec.detect.occlusion, key, "occlusion")?.inputs = parse(value, key)?,
        "defender_clean" => spec.repair.defender_clean = parse(value, key)?,
        "fp_drop" => repair(&mut spec.repair.fp, key, "fp")?.max_drop = parse(value, key)?,
        "fp_ft_epochs" => repair(&mut spec.repair.fp, key, "fp")?.ft_epochs = parse(value, key)?,
        "ft_epochs" => repair(&mut spec.repair.ft, key, "ft")?.epochs = parse(value, key)?,
        "retrain_by" => {
            repair(&mut spec.repair.retrain, key, "retrain")?.by = RetrainBy::from_name(value).ok_or_else(|| {
                LabError::spec(format!("unknown retrain_by '{}' (one of {})", clip(value), RetrainBy::NAMES.join(", ")))
            })?
        }
        "abl_epochs" => repair(&mut spec.repair.abl, key, "abl")?.epochs = parse(value, key)?,
        "abl_lambda" => repair(&mut spec.repair.abl, key, "abl")?.lambda = parse(value, key)?,
        "abl_frac" => repair(&mut spec.repair.abl, key, "abl")?.frac = parse(value, key)?,
        "abl_iso_epochs" => repair(&mut spec.repair.abl, key, "abl")?.isolation_epochs = parse(value, key)?,
        "nc_epochs" => repair(&mut spec.repair.nc_unlearn, key, "nc_unlearn")?.epochs = parse(value, key)?,
        "nc_share" => repair(&mut spec.repair.nc_unlearn, key, "nc_unlearn")?.share = parse(value, key)?,
        "distill_epochs" => repair(&mut spec.repair.distill, key, "distill")?.epochs = parse(value, key)?,
        "distill_t" => repair(&mut spec.repair.distill, key, "distill")?.temperature = parse(value, key)?,
        "sf_n" => repair(&mut spec.repair.strip_filter, key, "strip_filter")?.n = parse(value, key)?,
        other => {
            return Err(LabError::spec(format!("unknown link key '{}'", clip(other))));
        }
    }
    Ok(())
}

/// The parameters of detector `name` that link key `key` edits; the detector must be chosen.
fn chosen<'a, T>(slot: &'a mut Option<T>, key: &str, name: &str) -> Result<&'a mut T> {
    slot.as_mut()
        .ok_or_else(|| LabError::spec(format!("link key '{key}' applies only when {name} is chosen (detect={name})")))
}

/// The parameters of repair `name` that link key `key` edits; the repair must be chosen.
fn repair<'a, T>(slot: &'a mut Option<T>, key: &str, name: &str) -> Result<&'a mut T> {
    slot.as_mut()
        .ok_or_else(|| LabError::spec(format!("link key '{key}' applies only when {name} is chosen (repair={name})")))
}

/// The patch trigger that link key `key` edits.
fn patch<'a>(spec: &'a mut ExperimentSpec, key: &str) -> Result<&'a mut PatchTrigger> {
    let name = spec.attack.method.name();
    match &mut spec.attack.method {
        AttackMethod::Badnets { patch } | AttackMethod::CleanLabel { trigger: TriggerSpec::Patch(patch) } => Ok(patch),
        _ => Err(LabError::spec(format!("link key '{key}' applies to patch triggers, not to attack={name}"))),
    }
}

/// The blend trigger that link key `key` edits.
fn blend<'a>(spec: &'a mut ExperimentSpec, key: &str) -> Result<&'a mut BlendTrigger> {
    let name = spec.attack.method.name();
    match &mut spec.attack.method {
        AttackMethod::Blended { blend } | AttackMethod::CleanLabel { trigger: TriggerSpec::Blend(blend) } => Ok(blend),
        _ => Err(LabError::spec(format!("link key '{key}' applies to blend triggers, not to attack={name}"))),
    }
}

fn parse<T: std::str::FromStr>(value: &str, key: &str) -> Result<T> {
    value.parse().map_err(|_| LabError::spec(format!("link value '{}' for '{key}' is not a valid number", clip(value))))
}

/// Keeps echoed user input short in messages.
fn clip(s: &str) -> String {
    if s.chars().count() > 40 { s.chars().take(40).collect::<String>() + "…" } else { s.to_string() }
}

pub fn policy_name(p: LabelPolicy) -> &'static str {
    match p {
        LabelPolicy::AllToOne => "all_to_one",
        LabelPolicy::AllToAll => "all_to_all",
    }
}

pub fn pattern_name(p: PatchPattern) -> &'static str {
    match p {
        PatchPattern::White => "white",
        PatchPattern::Checkerboard => "checker",
        PatchPattern::Random => "random",
    }
}

pub fn optimizer_name(o: OptimizerKind) -> &'static str {
    match o {
        OptimizerKind::Adam => "adam",
        OptimizerKind::Sgd => "sgd",
    }
}

/// `br`, `bl`, `tr`, `tl`, `center` or `X,Y`.
pub fn position_name(p: PatchPosition) -> String {
    match p {
        PatchPosition::BottomRight => "br".into(),
        PatchPosition::BottomLeft => "bl".into(),
        PatchPosition::TopRight => "tr".into(),
        PatchPosition::TopLeft => "tl".into(),
        PatchPosition::Center => "center".into(),
        PatchPosition::Xy { x, y } => format!("{x},{y}"),
    }
}

pub fn parse_position(value: &str) -> Result<PatchPosition> {
    Ok(match value {
        "br" => PatchPosition::BottomRight,
        "bl" => PatchPosition::BottomLeft,
        "tr" => PatchPosition::TopRight,
        "tl" => PatchPosition::TopLeft,
        "center" => PatchPosition::Center,
        xy => {
            let bad = || LabError::spec(format!("patch position '{}' must be br, bl, tr, tl, center or X,Y", clip(xy)));
            let (x, y) = xy.split_once(',').ok_or_else(bad)?;
            PatchPosition::Xy { x: x.trim().parse().map_err(|_| bad())?, y: y.trim().parse().map_err(|_| bad())? }
        }
    })
}
