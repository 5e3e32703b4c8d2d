//! Fine-tuning on the defender's small clean set, the baseline every repair is compared with (Liu
//! et al., RAID 2018, show it alone rarely removes a backdoor: the clean data never activates it).

use burn::module::Module;
use serde::{Deserialize, Serialize};

use super::{Cx, Defended, Fit, Fixed, Objective, Repair, fit};
use crate::lab::error::Result;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FineTuning {
    /// Passes over the defender's clean set (link key `ft_epochs`).
    pub epochs: usize,
}

impl Default for FineTuning {
    fn default() -> Self {
        Self { epochs: 10 }
    }
}

impl FineTuning {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(1..=200).contains(&self.epochs) {
            return Err(format!("ft_epochs {} must be between 1 and 200", self.epochs));
        }
        Ok(())
    }
}

/// Nothing beyond the common fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FtDetail {}

impl Repair for FineTuning {
    type Detail = FtDetail;

    async fn repair(&self, cx: &mut Cx<'_>) -> Result<Fixed<FtDetail>> {
        let clean = cx.clean.clone();
        let model = cx.trainable();
        let model =
            fit(cx, model, Fit { set: &clean, epochs: self.epochs, objective: Objective::Labels, keep: None }).await?;
        Ok(Fixed { defended: Defended::Model(model.valid()), clean_samples: clean.len(), detail: FtDetail {} })
    }
}
