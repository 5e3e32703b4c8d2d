//! No attack: a clean model, the control every attack is measured against.

use serde::{Deserialize, Serialize};

use super::{Attack, Selection, TriggerSpec};
use crate::lab::params::{ParamInfo, Params};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoAttack {}

impl Params for NoAttack {
    fn params(&self) -> Vec<&'static ParamInfo> {
        Vec::new()
    }
    fn get(&self, _key: &str) -> Option<String> {
        None
    }
    fn set(&mut self, _key: &str, _value: &str) -> Option<Result<(), String>> {
        None
    }
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

impl Attack for NoAttack {
    const TITLE: &'static str = "None (clean)";
    const EXPLAIN: &'static str =
        "No attack: a clean model, with ASR still measured using the BadNets patch as a control.";
    fn every_param() -> Vec<&'static ParamInfo> {
        Vec::new()
    }
    fn trigger_spec(&self) -> Option<TriggerSpec> {
        None
    }
    fn selection(&self) -> Selection {
        Selection::Nothing
    }
}
