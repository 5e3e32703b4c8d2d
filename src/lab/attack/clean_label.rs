//! Clean-label poisoning (Turner et al., "Label-Consistent Backdoor Attacks", 2019): the trigger goes only
//! on training samples already of the target class and labels stay unchanged, so a human audit of the
//! labels finds nothing wrong.

use serde::{Deserialize, Serialize};

use super::{Attack, BlendTrigger, PatchTrigger, Selection, TriggerSpec};
use crate::lab::params::{Hint, Kind, Named, ParamInfo, Params, other, table_params};

/// Which trigger family the clean-label attack stamps.
const TRIGGER: ParamInfo = other("trigger", Kind::Choice(TRIGGERS), Hint::Select)
    .selector()
    .doc("Clean-label trigger family: the BadNets patch or the blended pattern.");
const TRIGGERS: &[Named] =
    &[Named { value: "patch", label: "BadNets patch" }, Named { value: "blend", label: "blended pattern" }];

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

impl CleanLabel {
    fn family(&self) -> &'static str {
        match self.trigger {
            TriggerSpec::Patch(_) => TRIGGERS[0].value,
            TriggerSpec::Blend(_) => TRIGGERS[1].value,
        }
    }
}

impl Params for CleanLabel {
    fn params(&self) -> Vec<&'static ParamInfo> {
        let mut out = vec![&TRIGGER];
        out.extend(self.trigger.params());
        out
    }
    fn get(&self, key: &str) -> Option<String> {
        if key == TRIGGER.key { Some(self.family().to_string()) } else { self.trigger.get(key) }
    }
    fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
        if key != TRIGGER.key {
            return self.trigger.set(key, value);
        }
        // Switching family starts from that family's defaults; naming the current one keeps its values.
        Some(match value {
            v if v == self.family() => Ok(()),
            v if v == TRIGGERS[0].value => Ok(self.trigger = TriggerSpec::Patch(PatchTrigger::default())),
            v if v == TRIGGERS[1].value => Ok(self.trigger = TriggerSpec::Blend(BlendTrigger::default())),
            v => Err(TRIGGER.unknown(v)),
        })
    }
    fn validate(&self) -> Result<(), String> {
        self.trigger.validate()
    }
}

impl Attack for CleanLabel {
    const TITLE: &'static str = "Clean-label";
    const EXPLAIN: &'static str = "Clean-label (Turner et al., 2019): add the trigger only to images that already belong to the target class, so every label stays correct.";
    fn every_param() -> Vec<&'static ParamInfo> {
        let mut out = vec![&TRIGGER];
        out.extend(table_params::<PatchTrigger>());
        out.extend(table_params::<BlendTrigger>());
        out
    }
    fn trigger_spec(&self) -> Option<TriggerSpec> {
        Some(self.trigger.clone())
    }
    fn selection(&self) -> Selection {
        Selection::TargetClass
    }
}
