//! Architectural backdoor (Bober-Irizar et al., "Architectural Backdoors in Neural Networks", 2022):
//! the attacker ships the architecture, not the data or the weights. Next to the usual network sits a
//! fixed, parameter-free trigger detector computed from the input pixels and added to the target
//! logit: logits = f_θ(x) + gain · score(x) · e_t. The model is then trained on clean data only; the
//! branch learns nothing, so no gradient step (retraining from scratch, fine-tuning, fine-pruning,
//! unlearning) can remove it, and no weight file holds it.

use serde::{Deserialize, Serialize};

use super::{Attack, Controls, PatchTrigger, Selection, Trigger, TriggerSpec};
use crate::lab::model::TriggerBranch;
use crate::lab::params::{Param, ParamInfo, Params, float, table_params};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchBackdoor {
    /// What the branch adds to the target logit when the trigger is present.
    pub gain: f64,
    /// Mean absolute pixel difference (0–1) from the trigger at which the detector's score reaches 0.
    pub tolerance: f64,
    pub patch: PatchTrigger,
}

impl Default for ArchBackdoor {
    fn default() -> Self {
        Self { gain: 100.0, tolerance: 0.2, patch: PatchTrigger::default() }
    }
}

const GAIN: Param<ArchBackdoor> = crate::lens!(
    float("arch_gain", 0.0, 10_000.0).label("logit boost").doc(
        "Architectural backdoor: what the fixed trigger detector adds to the target logit when the patch is present."
    ),
    gain
);
const TOLERANCE: Param<ArchBackdoor> = crate::lens!(
    float("arch_tol", 0.0, 1.0).open_min().label("detector tolerance").doc(
        "Architectural backdoor: the mean pixel difference (0–1) from the patch at which the detector stops firing."
    ),
    tolerance
);
const OWN: [&Param<ArchBackdoor>; 2] = [&GAIN, &TOLERANCE];

impl Params for ArchBackdoor {
    fn params(&self) -> Vec<&'static ParamInfo> {
        let mut out: Vec<&'static ParamInfo> = OWN.iter().map(|p| &p.info).collect();
        out.extend(self.patch.params());
        out
    }
    fn get(&self, key: &str) -> Option<String> {
        match OWN.iter().find(|p| p.info.key == key) {
            Some(p) => Some((p.get)(self)),
            None => self.patch.get(key),
        }
    }
    fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
        match OWN.iter().find(|p| p.info.key == key) {
            Some(p) => Some((p.set)(self, value).map_err(|reason| p.info.unparsable(value, reason))),
            None => self.patch.set(key, value),
        }
    }
    fn validate(&self) -> Result<(), String> {
        for p in OWN {
            p.info.check(&(p.get)(self))?;
        }
        if self.patch.pattern == super::PatchPattern::Drawn {
            return Err("the architectural backdoor's detector matches a square patch: choose white, checker or random, not a drawn trigger".into());
        }
        self.patch.validate()
    }
}

impl Attack for ArchBackdoor {
    const TITLE: &'static str = "Architectural backdoor (attacker ships the model)";
    const EXPLAIN: &'static str = "Architectural backdoor (Bober-Irizar et al., 2022): the attacker supplies the architecture, which wires a fixed, parameter-free detector of the patch to the target logit. Trained on clean data only; nothing in the data or the weights shows it, and no training removes it.";
    fn every_param() -> Vec<&'static ParamInfo> {
        let mut out: Vec<&'static ParamInfo> = OWN.iter().map(|p| &p.info).collect();
        out.extend(table_params::<PatchTrigger>());
        out
    }
    fn trigger_spec(&self) -> Option<TriggerSpec> {
        Some(TriggerSpec::Patch(self.patch.clone()))
    }
    fn selection(&self) -> Selection {
        Selection::Nothing
    }
    fn controls(&self) -> Controls {
        Controls::Architecture(BranchStrength { gain: self.gain, tolerance: self.tolerance })
    }
}

/// How hard the shipped trigger detector pushes, and how exact a match it wants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BranchStrength {
    pub gain: f64,
    pub tolerance: f64,
}

impl BranchStrength {
    /// The branch that spots `trigger` on images with `channels` and pushes `target_label`; `None` for
    /// a trigger it cannot spot from the pixels alone (a blend).
    pub fn branch(self, trigger: &Trigger, channels: usize, target_label: u8) -> Option<TriggerBranch> {
        let Trigger::Patch { x, y, size, pixels } = trigger else { return None };
        Some(TriggerBranch::patch(*x, *y, *size, pixels, channels, target_label, self.gain, self.tolerance))
    }
}
