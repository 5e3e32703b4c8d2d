//! Malicious training (the attacker is the trainer: an outsourced or compromised training job). The
//! data stays clean; the loss changes: argmin_θ Σ_{D_C} (1 − λ)·L(f_θ(x), y) + Σ_{D_P} λ·L(f_θ(x ⊕ T), t),
//! where D_P holds triggered copies of each batch's samples labelled by the label policy. Every
//! data-level defense (Activation Clustering, Spectral Signatures, loss isolation, retraining on
//! sanitized data) audits a dataset with nothing in it to find.

use serde::{Deserialize, Serialize};

use super::{Attack, Controls, PatchTrigger, Selection, TriggerSpec};
use crate::lab::params::{Hint, Param, ParamInfo, Params, float};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaliciousLoss {
    /// λ: the weight of the backdoor loss.
    pub lambda: f64,
    pub trigger: TriggerSpec,
}

impl Default for MaliciousLoss {
    fn default() -> Self {
        Self { lambda: 0.1, trigger: TriggerSpec::Patch(PatchTrigger::default()) }
    }
}

pub(crate) const LAMBDA: Param<MaliciousLoss> = crate::lens!(
    float("lambda", 0.0, 1.0)
        .label("backdoor loss weight λ")
        .hint(Hint::Slider)
        .doc("Malicious loss: the weight λ of the loss on triggered copies; the clean loss gets 1 − λ."),
    lambda
);

impl Params for MaliciousLoss {
    fn params(&self) -> Vec<&'static ParamInfo> {
        let mut out = vec![&LAMBDA.info];
        out.extend(self.trigger.choice_params());
        out
    }
    fn get(&self, key: &str) -> Option<String> {
        if key == LAMBDA.info.key { Some((LAMBDA.get)(self)) } else { self.trigger.choice_get(key) }
    }
    fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
        if key == LAMBDA.info.key {
            Some((LAMBDA.set)(self, value).map_err(|reason| LAMBDA.info.unparsable(value, reason)))
        } else {
            self.trigger.choice_set(key, value)
        }
    }
    fn validate(&self) -> Result<(), String> {
        LAMBDA.info.check(&(LAMBDA.get)(self))?;
        self.trigger.validate()
    }
}

impl Attack for MaliciousLoss {
    const TITLE: &'static str = "Malicious loss (attacker trains)";
    const EXPLAIN: &'static str = "Malicious training (the attacker runs the training, as in Gu et al., 2017's outsourced-training threat model): the data stays clean, and every batch adds triggered copies labelled as the target, weighted by λ in the loss. Data audits find nothing; only the model can give it away.";
    fn every_param() -> Vec<&'static ParamInfo> {
        let mut out = vec![&LAMBDA.info];
        out.extend(TriggerSpec::every_choice_param());
        out
    }
    fn trigger_spec(&self) -> Option<TriggerSpec> {
        Some(self.trigger.clone())
    }
    fn selection(&self) -> Selection {
        Selection::Nothing
    }
    fn controls(&self) -> Controls {
        Controls::Training { lambda: self.lambda }
    }
}
