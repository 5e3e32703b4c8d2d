//! Retraining on sanitized data (the repair of Activation Clustering, Chen et al. 2018, and Spectral
//! Signatures, Tran et al., NeurIPS 2018): drop the training samples a data-level detector flagged
//! and train a fresh model with the spec's own settings.

use crate::lab::params::choice;
use serde::{Deserialize, Serialize};

use super::{Cx, Defended, Fixed, GroundTruth, Repair, Repaired};
use crate::lab::detect::{DataFilter, LossIsolation};
use crate::lab::device::fresh_model;
use crate::lab::error::Result;
use crate::lab::eval::TriggeredTest;
use crate::lab::train::train;

/// Which detector decides what to drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetrainBy {
    /// Activation Clustering (with the spec's `ac` parameters when detection chose it).
    #[default]
    Ac,
    /// Spectral Signatures.
    Ss,
    /// Loss-based isolation (ABL stage 1).
    Loss,
    /// The attack's ground truth: not a defense, an oracle showing what a perfect detector buys.
    Truth,
}

crate::named_enum!(RetrainBy {
    Ac = "ac" / "Activation Clustering",
    Ss = "ss" / "Spectral Signatures",
    Loss = "loss" / "loss-based isolation",
    Truth = "truth" / "the true poison (oracle)",
});

crate::params! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct Retrain {
        /// The detector whose flagged samples are dropped (truth: the oracle).
        pub by: RetrainBy = RetrainBy::Ac, choice("retrain_by", RetrainBy::CHOICES).label("retrain after");
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RetrainDetail {
    /// Training samples dropped, and how many of them were poisoned (ground truth, for the picture).
    pub removed: usize,
    pub removed_poisoned: usize,
    /// Poisoned samples left in the retraining set.
    pub remaining_poisoned: usize,
    /// Per training sample: dropped? For scoring (not in the report).
    #[serde(skip)]
    pub flagged: Vec<bool>,
}

impl Repair for Retrain {
    const TITLE: &'static str = "Retraining on sanitized data";
    const EXPLAIN: &'static str = "Drops the training samples a data-level detector flagged and trains a fresh model on the rest; only as good as the detector.";
    type Detail = RetrainDetail;

    fn summary(f: &Repaired<Self, RetrainDetail>) -> String {
        format!(
            "{} flagged {} samples ({} poisoned); {} poisoned samples stayed in the {} retrained on.",
            f.params.by.label(),
            f.detail.removed,
            f.detail.removed_poisoned,
            f.detail.remaining_poisoned,
            f.clean_samples
        )
    }

    fn score(&self, d: &mut RetrainDetail, truth: &GroundTruth<'_>) {
        d.removed_poisoned = d.flagged.iter().zip(truth.poisoned).filter(|&(&f, &t)| f && t).count();
        d.remaining_poisoned = truth.poisoned.iter().filter(|&&t| t).count() - d.removed_poisoned;
        d.flagged.clear();
    }

    async fn repair(&self, cx: &mut Cx<'_>) -> Result<Fixed<RetrainDetail>> {
        let setting = cx.setting;
        let detectors = cx.detectors();
        // Detectors see the defender's clean set as their clean images, never the test split.
        let clean = cx.clean.clone();
        let flagged = match self.by {
            RetrainBy::Ac => {
                let d = detectors.ac.clone().unwrap_or_default();
                cx.detector("ac", &clean, async |dcx| Ok(d.filter(dcx).await?.flagged)).await?
            }
            RetrainBy::Ss => {
                let d = detectors.ss.clone().unwrap_or_default();
                cx.detector("ss", &clean, async |dcx| Ok(d.filter(dcx).await?.flagged)).await?
            }
            RetrainBy::Loss => {
                let d: LossIsolation = detectors.loss.clone().unwrap_or_default();
                cx.detector("loss", &clean, async |dcx| Ok(d.filter(dcx).await?.flagged)).await?
            }
            RetrainBy::Truth => cx.oracle_poisoned(),
        };
        let kept: Vec<usize> = (0..flagged.len()).filter(|&i| !flagged[i]).collect();
        let set = cx.train().select(&kept);
        let removed = flagged.iter().filter(|&&f| f).count();

        let train_device = cx.device.clone().autodiff();
        // The architecture the suspect model came with, branch and all.
        let model = fresh_model(setting.model, setting.dims(), setting.seed, &train_device)
            .with_branch(cx.model.branch().cloned());
        let (c, h, w) = setting.dims();
        // No per-epoch evaluation: empty test sets cost nothing.
        let none = TriggeredTest::none(c, h, w);
        let total = set.len().div_ceil(setting.train.batch_size) * setting.train.epochs;
        let device = cx.device.clone();
        let mut relay = cx.relay(total);
        let (model, _) = train(
            model,
            &set,
            &setting.train,
            setting.seed,
            &train_device,
            &none.set,
            &none,
            &device,
            None,
            &mut relay,
        )
        .await?;
        Ok(Fixed {
            defended: Defended::Model(burn::module::Module::valid(&model)),
            // The samples the defender believes clean (`remaining_poisoned` says how many were not).
            clean_samples: set.len(),
            detail: RetrainDetail { removed, flagged, ..RetrainDetail::default() },
        })
    }
}
