//! Label policies: which label a poisoned sample gets (BackdoorBench's all-to-one / all-to-all).

use serde::{Deserialize, Serialize};

use crate::lab::data::NUM_CLASSES;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelPolicy {
    /// Every poisoned sample is labelled `target_label`.
    #[default]
    AllToOne,
    /// A sample of class y is labelled (y + 1) mod 10.
    AllToAll,
}

crate::named_enum!(LabelPolicy {
    AllToOne = "all_to_one" / "all-to-one",
    AllToAll = "all_to_all" / "all-to-all (y → y+1)",
});

impl LabelPolicy {
    /// The label the attacker wants for an input whose true label is `label`.
    pub fn target(self, label: u8, target_label: u8) -> u8 {
        match self {
            Self::AllToOne => target_label,
            Self::AllToAll => ((label as usize + 1) % NUM_CLASSES) as u8,
        }
    }
    /// Whether a test input of true class `label` counts towards ASR: inputs already of the target
    /// class cannot show an attack's success.
    pub fn counts_for_asr(self, label: u8, target_label: u8) -> bool {
        self.target(label, target_label) != label
    }
}
