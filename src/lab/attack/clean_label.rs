//! Clean-label poisoning (Turner et al., "Label-Consistent Backdoor Attacks", 2019): the trigger goes only
//! on training samples already of the target class and labels stay unchanged, so a human audit of the
//! labels finds nothing wrong.

use serde::{Deserialize, Serialize};

use super::{Attack, PatchTrigger, Selection, TriggerSpec};
use crate::lab::params::{ParamInfo, Params};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanLabel {
    pub trigger: TriggerSpec,
}

/// The default trigger is the BadNets patch.
impl Default for CleanLabel {
    fn default() -> Self {
        Self { trigger: TriggerSpec::Patch(PatchTrigger::default()) }
    }
}

impl Params for CleanLabel {
    fn params(&self) -> Vec<&'static ParamInfo> {
        self.trigger.choice_params()
    }
    fn get(&self, key: &str) -> Option<String> {
        self.trigger.choice_get(key)
    }
    fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
        self.trigger.choice_set(key, value)
    }
    fn validate(&self) -> Result<(), String> {
        self.trigger.validate()
    }
}

impl Attack for CleanLabel {
    const TITLE: &'static str = "Clean-label";
    const EXPLAIN: &'static str = "Clean-label (Turner et al., 2019): add the trigger only to images that already belong to the target class, so every label stays correct.";
    fn every_param() -> Vec<&'static ParamInfo> {
        TriggerSpec::every_choice_param()
    }
    fn trigger_spec(&self) -> Option<TriggerSpec> {
        Some(self.trigger.clone())
    }
    fn selection(&self) -> Selection {
        Selection::TargetClass
    }
}
