//! Backdoor attacks as data poisoning, split the way BackdoorBench does: a trigger (how pixels change,
//! `trigger.rs` and one file per trigger family), a label policy (`label_policy.rs`) and an index
//! selection (`selection.rs`). Poisoning returns the poisoned indices as ground truth for detectors.

pub mod badnets;
pub mod blended;
pub mod clean_label;
pub mod label_policy;
pub mod selection;
pub mod trigger;

use serde::{Deserialize, Serialize};

pub use badnets::{PatchPattern, PatchPosition, PatchTrigger};
pub use blended::{BlendPattern, BlendTrigger};
pub use label_policy::LabelPolicy;
pub use trigger::{Trigger, TriggerSpec};

use crate::lab::data::ImageSet;
use crate::lab::error::{LabError, Result};
use crate::lab::rng::{LabRng, Stream};

/// The random stream triggers draw their patterns from.
pub(crate) type TriggerRng = LabRng;

/// The attack method and its own parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttackMethod {
    /// No poisoning; ASR is still measured with the default BadNets patch, as a control.
    None,
    /// BadNets (Gu et al., 2017): patch + relabel.
    Badnets { patch: PatchTrigger },
    /// Blended (Chen et al., 2017): alpha-blended pattern + relabel.
    Blended { blend: BlendTrigger },
    /// Clean-label (Turner et al., 2019): trigger on target-class samples, labels unchanged.
    CleanLabel { trigger: TriggerSpec },
}

impl AttackMethod {
    pub fn name(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Badnets { .. } => "badnets",
            Self::Blended { .. } => "blended",
            Self::CleanLabel { .. } => "clean_label",
        }
    }
    /// The trigger used to poison (and, for `None`, to measure ASR).
    pub fn trigger_spec(&self) -> TriggerSpec {
        match self {
            Self::None => TriggerSpec::Patch(PatchTrigger::default()),
            Self::Badnets { patch } => TriggerSpec::Patch(*patch),
            Self::Blended { blend } => TriggerSpec::Blend(blend.clone()),
            Self::CleanLabel { trigger } => trigger.clone(),
        }
    }
    /// The method named `name` with default parameters.
    pub fn default_named(name: &str) -> Option<Self> {
        Some(match name {
            "none" => Self::None,
            "badnets" => Self::Badnets { patch: PatchTrigger::default() },
            "blended" => Self::Blended { blend: BlendTrigger::default() },
            "clean_label" => Self::CleanLabel { trigger: clean_label::default_trigger() },
            _ => return None,
        })
    }
    pub const NAMES: [&'static str; 4] = ["none", "badnets", "blended", "clean_label"];
}

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
        Self {
            method: AttackMethod::Badnets { patch: PatchTrigger::default() },
            poison_rate: 0.1,
            target_label: 0,
            label_policy: LabelPolicy::AllToOne,
        }
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

/// Test inputs with the trigger, for ASR and RA.
#[derive(Debug, Clone)]
pub struct TriggeredTest {
    /// Triggered copies of the test inputs that count for ASR; `set.labels` are the true labels.
    pub set: ImageSet,
    /// The label the attacker wants for each.
    pub attack_labels: Vec<u8>,
    /// Index of each in the clean test set.
    pub source: Vec<usize>,
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
        let (indices, relabel) = match &self.method {
            AttackMethod::None => (Vec::new(), false),
            AttackMethod::Badnets { .. } | AttackMethod::Blended { .. } => {
                (selection::any_samples(train.len(), self.poison_rate, &mut rng), true)
            }
            AttackMethod::CleanLabel { .. } => {
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
        Ok(Poisoned { set, poisoned: indices, true_labels: train.labels.clone() })
    }

    /// Triggered copies of the test inputs whose true label differs from the attacker's target.
    pub fn triggered_test(&self, test: &ImageSet, trigger: &Trigger) -> TriggeredTest {
        let dims = (test.channels, test.height, test.width);
        let source: Vec<usize> =
            (0..test.len()).filter(|&i| self.label_policy.counts_for_asr(test.labels[i], self.target_label)).collect();
        let mut set = test.select(&source);
        for i in 0..set.len() {
            trigger.apply(set.image_mut(i), dims);
        }
        let attack_labels = set.labels.iter().map(|&y| self.label_policy.target(y, self.target_label)).collect();
        TriggeredTest { set, attack_labels, source }
    }
}
