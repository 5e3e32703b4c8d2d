//! A whole attack (method, poisoning rate, target, label policy) and the poisoning procedure: select,
//! trigger and relabel the training samples, and build the triggered test inputs ASR is measured on.

use serde::{Deserialize, Serialize};

use super::*;
use crate::lab::data::{ImageSet, NUM_CLASSES};
use crate::lab::error::{LabError, Result};
use crate::lab::eval::TriggeredTest;
use crate::lab::model::TriggerBranch;
use crate::lab::params::{Family, Hint, Kind, Param, ParamInfo, Params, choice, float, int, other};
use crate::lab::rng::{LabRng, Stream};
use crate::lab::train::LossMix;

/// A whole attack: method, poisoning rate, target and label policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackSpec {
    #[serde(flatten)]
    pub method: AttackMethod,
    /// ρ = |Dp| / (|Dc| + |Dp|).
    pub poison_rate: f64,
    pub target_label: u8,
    pub label_policy: LabelPolicy,
}

impl Default for AttackSpec {
    fn default() -> Self {
        Self { method: AttackMethod::default(), poison_rate: 0.1, target_label: 0, label_policy: LabelPolicy::AllToOne }
    }
}

/// The parameters every attack shares, before the method's own.
const COMMON: &[Param<AttackSpec>] = &[
    Param {
        info: other(AttackMethod::KEY, Kind::Method(Family(AttackMethod::REGISTRY)), Hint::Select)
            .selector()
            .doc("The attack: how the backdoor gets into the model."),
        get: |a| a.method.name().to_string(),
        // Naming the current attack keeps its parameters; another one starts from its defaults.
        set: |a, v| {
            if v != a.method.name() {
                a.method = AttackMethod::default_named(v).ok_or_else(|| format!("unknown attack '{v}'"))?;
            }
            Ok(())
        },
    },
    crate::lens!(
        float("rate", 0.0, 0.9)
            .flag("poison-rate")
            .label("poisoning rate ρ")
            .doc("Poisoning rate ρ = |Dp| / (|Dc| + |Dp|): the share of training samples poisoned."),
        poison_rate
    ),
    crate::lens!(
        int("target", 0, NUM_CLASSES as i128 - 1)
            .flag("target-label")
            .label("target label")
            .doc("The label the attacker wants triggered inputs to get."),
        target_label
    ),
    crate::lens!(
        choice("policy", LabelPolicy::CHOICES)
            .flag("label-policy")
            .label("label policy")
            .doc("Which label a poisoned sample gets: the target (all_to_one) or y+1 mod 10 (all_to_all)."),
        label_policy
    ),
];

/// The poisoning rate, which an attacker who trains or ships the architecture (and poisons no data)
/// has no use for.
const RATE: &Param<AttackSpec> = &COMMON[1];

impl AttackSpec {
    /// Whether the poisoning rate applies: not to an attacker who poisons no data, nor to a semantic
    /// one, whose sub-population fixes what it relabels.
    fn has_rate(&self) -> bool {
        self.method.poisons_data() && self.method.selection() != Selection::SubPopulation
    }

    /// The shared parameters that apply to this attack.
    fn common(&self) -> Vec<&'static Param<AttackSpec>> {
        let rated = self.has_rate();
        COMMON.iter().filter(|p| rated || p.info.key != RATE.info.key).collect()
    }

    /// The link key of the attack's strength, the parameter a sweep varies: λ for the attacker who
    /// trains, ρ for those who poison data; none for the attacker who ships the architecture.
    pub fn strength_key(&self) -> Option<&'static str> {
        if self.method.loss_weight().is_some() {
            Some(malicious_loss::LAMBDA.info.key)
        } else if self.has_rate() {
            Some(RATE.info.key)
        } else {
            None
        }
    }

    /// Every parameter of every attack, each key once (CLI flags, docs).
    pub fn every_param() -> Vec<&'static ParamInfo> {
        let mut out: Vec<&'static ParamInfo> = COMMON.iter().map(|p| &p.info).collect();
        for m in AttackMethod::REGISTRY {
            for p in (m.params)() {
                if !out.iter().any(|q| q.key == p.key) {
                    out.push(p);
                }
            }
        }
        out
    }
}

impl Params for AttackSpec {
    fn params(&self) -> Vec<&'static ParamInfo> {
        let mut out: Vec<&'static ParamInfo> = self.common().into_iter().map(|p| &p.info).collect();
        out.extend(self.method.params());
        out
    }
    fn get(&self, key: &str) -> Option<String> {
        match self.common().into_iter().find(|p| p.info.key == key) {
            Some(p) => Some((p.get)(self)),
            None => self.method.get(key),
        }
    }
    fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
        if key == RATE.info.key && !self.has_rate() {
            let why = if self.method.poisons_data() {
                "that attacker relabels a whole sub-population, whose share is its own key"
            } else {
                "that attacker trains on clean data and poisons none"
            };
            return Some(Err(format!("link key '{key}' does not apply to attack={}: {why}", self.method.name())));
        }
        match self.common().into_iter().find(|p| p.info.key == key) {
            Some(p) => Some((p.set)(self, value).map_err(|reason| {
                if matches!(p.info.kind, Kind::Method(_)) {
                    p.info.unknown(value)
                } else {
                    p.info.unparsable(value, reason)
                }
            })),
            None => self.method.set(key, value),
        }
    }
    fn validate(&self) -> std::result::Result<(), String> {
        for p in COMMON {
            p.info.check(&(p.get)(self))?;
        }
        if self.method.selection() == Selection::TargetClass && self.label_policy != LabelPolicy::AllToOne {
            return Err(format!("{} keeps labels, so it needs label_policy all_to_one", self.method.name()));
        }
        if self.method.source_class().is_some() && self.label_policy != LabelPolicy::AllToOne {
            return Err(format!(
                "{} aims one class at the target, so it needs label_policy all_to_one",
                self.method.name()
            ));
        }
        if self.method.source_class() == Some(self.target_label) {
            return Err(format!(
                "the source class and the target are both {}: the attack would have nothing to flip",
                self.target_label
            ));
        }
        self.method.validate()
    }
}

/// A training set after poisoning, with the ground truth of what was poisoned.
#[derive(Debug, Clone)]
pub struct Poisoned {
    pub set: ImageSet,
    /// Sorted indices into `set` of the poisoned samples.
    pub poisoned: Vec<usize>,
    /// Labels before poisoning.
    pub true_labels: Vec<u8>,
    /// Sorted indices of samples changed with their labels kept, which carry no backdoor (WaNet's
    /// noise mode); not poisoned.
    pub altered: Vec<usize>,
}

impl Poisoned {
    /// Per-sample flag: is sample i poisoned?
    pub fn is_poisoned(&self) -> Vec<bool> {
        let mut flags = vec![false; self.set.len()];
        for &i in &self.poisoned {
            flags[i] = true;
        }
        flags
    }
}

impl AttackSpec {
    pub fn trigger(&self, dims: (usize, usize, usize), seed: u64) -> Result<Trigger> {
        Trigger::build(&self.method.trigger_spec(), dims, seed)
    }

    /// Poisons `train` as the spec says; `seed` drives selection and any random trigger.
    pub fn poison(&self, train: &ImageSet, seed: u64) -> Result<Poisoned> {
        let dims = (train.channels, train.height, train.width);
        let trigger = self.trigger(dims, seed)?;
        let mut rng = LabRng::new(seed, Stream::Selection);
        let (indices, relabel) = match self.method.selection() {
            Selection::Nothing => (Vec::new(), false),
            Selection::SubPopulation => {
                let members = self.method.members(train, train).unwrap_or_else(|| Ok(Vec::new()));
                (members.map_err(LabError::spec)?, true)
            }
            Selection::AnySample => (selection::any_samples(train.len(), self.poison_rate, &mut rng), true),
            Selection::TargetClass => {
                if self.label_policy != LabelPolicy::AllToOne {
                    return Err(LabError::spec("clean-label keeps labels, so it needs the all_to_one policy"));
                }
                (selection::target_class_samples(&train.labels, self.target_label, self.poison_rate, &mut rng)?, false)
            }
        };
        let mut set = train.clone();
        for &i in &indices {
            trigger.apply(set.image_mut(i), dims);
            if relabel {
                set.labels[i] = self.label_policy.target(set.labels[i], self.target_label);
            }
        }
        let altered = self.method.alter_others(&mut set, &indices, &trigger, &mut rng);
        Ok(Poisoned { set, poisoned: indices, true_labels: train.labels.clone(), altered })
    }

    /// The malicious-training loss for an attacker who trains: every training image with the trigger
    /// and the label policy's label. `None` for data poisoning.
    pub fn loss_mix(&self, train: &ImageSet, trigger: &Trigger) -> Option<LossMix> {
        let lambda = self.method.loss_weight()?;
        let dims = (train.channels, train.height, train.width);
        let mut triggered = train.clone();
        for i in 0..triggered.len() {
            trigger.apply(triggered.image_mut(i), dims);
            triggered.labels[i] = self.label_policy.target(triggered.labels[i], self.target_label);
        }
        Some(LossMix { triggered, lambda })
    }

    /// The attacker's trigger detector for the architecture it ships (`None` for an honest one).
    pub fn branch(&self, trigger: &Trigger, channels: usize) -> Option<TriggerBranch> {
        self.method.branch()?.branch(trigger, channels, self.target_label)
    }

    /// Triggered copies of the test inputs that count for ASR: those whose true label differs from the
    /// attacker's target (of the source class, for an attack that has one); for a semantic attack, the
    /// test members of its sub-population (`train` sets their cut-off), unchanged.
    pub fn triggered_test(&self, train: &ImageSet, test: &ImageSet, trigger: &Trigger) -> Result<TriggeredTest> {
        let dims = (test.channels, test.height, test.width);
        let source: Vec<usize> = match self.method.members(train, test) {
            Some(members) => members.map_err(LabError::spec)?,
            None => (0..test.len())
                .filter(|&i| self.label_policy.counts_for_asr(test.labels[i], self.target_label))
                .filter(|&i| self.method.source_class().is_none_or(|s| test.labels[i] == s))
                .collect(),
        };
        let stronger = self.method.test_trigger(trigger);
        let trigger = stronger.as_ref().unwrap_or(trigger);
        let mut set = test.select(&source);
        for i in 0..set.len() {
            trigger.apply(set.image_mut(i), dims);
        }
        let attack_labels = set.labels.iter().map(|&y| self.label_policy.target(y, self.target_label)).collect();
        Ok(TriggeredTest { set, attack_labels, source })
    }
}
