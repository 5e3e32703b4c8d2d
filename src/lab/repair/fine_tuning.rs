//! Fine-tuning on the defender's small clean set, the baseline every repair is compared with (Liu
//! et al., RAID 2018, show it alone rarely removes a backdoor: the clean data never activates it).

use crate::lab::params::int;
use burn::module::Module;
use serde::{Deserialize, Serialize};

use super::{Cx, Defended, Fit, Fixed, Objective, Repair, Repaired, fit};
use crate::lab::error::Result;

crate::params! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct FineTuning {
        /// Epochs on the defender's clean set.
        pub epochs: usize = 10, int("ft_epochs", 1, 200).label("epochs on the clean set");
    }
}

/// Nothing beyond the common fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FtDetail {}

impl Repair for FineTuning {
    const TITLE: &'static str = "Fine-tuning";
    const EXPLAIN: &'static str =
        "Fine-tuning on the defender's small clean set: the baseline every paper compares against.";
    type Detail = FtDetail;

    fn summary(f: &Repaired<Self, FtDetail>) -> String {
        format!("{} epochs on {} clean images.", f.params.epochs, f.clean_samples)
    }

    async fn repair(&self, cx: &mut Cx<'_>) -> Result<Fixed<FtDetail>> {
        let clean = cx.clean.clone();
        let model = cx.trainable();
        let model =
            fit(cx, model, Fit { set: &clean, epochs: self.epochs, objective: Objective::Labels, keep: None }).await?;
        Ok(Fixed { defended: Defended::Model(model.valid()), clean_samples: clean.len(), detail: FtDetail {} })
    }
}
