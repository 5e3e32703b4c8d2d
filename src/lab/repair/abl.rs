//! Anti-Backdoor Learning, unlearning stage (Li et al., NeurIPS 2021): isolate the training samples
//! the model learns fastest (lowest loss after a short training: the poisoned ones), then fine-tune
//! with gradient ascent on them (−λ·L) while keeping the clean loss low.
//!
//! The clean loss is taken on the defender's clean set, not on the rest of the training set as the
//! paper's Eq. 4 writes it: isolating 1 % recalls only ~10 % of the poison, so the rest still holds
//! ~90 % of it and re-teaches the backdoor as fast as the ascent removes it (measured: ASR stayed
//! 100 % on seed 0). The authors' code likewise ascends on the isolated samples alone.

use crate::lab::params::{Hint, float, int};
use serde::{Deserialize, Serialize};

use super::{Cx, Defended, Fit, Fixed, GroundTruth, Objective, Repair, Repaired, fit};
use crate::lab::data::NUM_CLASSES;
use crate::lab::detect::{DataFilter, LossIsolation};
use crate::lab::error::Result;

crate::params! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct Abl {
        /// Unlearning epochs over the defender's clean set.
        pub epochs: usize = 5, int("abl_epochs", 1, 50).label("unlearning epochs");
        /// Weight of the gradient ascent on the isolated samples.
        pub lambda: f64 = 1.0, float("abl_lambda", 0.0, 100.0).open_min().label("ascent weight λ");
        /// Share of the training set isolated (lowest loss first).
        pub frac: f64 = 0.01, float("abl_frac", 0.0, 0.5).open_min().label("share isolated").hint(Hint::Percent);
        /// Epochs of the isolation training.
        pub isolation_epochs: usize = 2, int("abl_iso_epochs", 1, 20).label("isolation epochs");
    }
}

/// Ascent on an isolated sample stops once its loss passes twice that of a uniform guess over the
/// 10 classes (2·ln 10): the model then clearly rejects the attacker's label, and unbounded ascent
/// only blows up the logits.
const ASCENT_CAP: f64 = 2.0 * std::f64::consts::LN_10;
const _: () = assert!(NUM_CLASSES == 10);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AblDetail {
    /// Samples isolated, and how many of them were poisoned (ground truth, for the picture).
    pub isolated: usize,
    pub isolated_poisoned: usize,
    /// Isolated poisoned samples whose true label already was the target (a stamped zero labelled
    /// 0): both content and trigger say "target", so they have the lowest loss of all, and ascent
    /// on them teaches little about the trigger on other classes.
    pub isolated_true_target: usize,
    /// The isolated training samples, for scoring (not in the report).
    #[serde(skip)]
    pub isolated_indices: Vec<usize>,
}

impl Repair for Abl {
    const TITLE: &'static str = "Anti-Backdoor Learning";
    const EXPLAIN: &'static str = "Anti-Backdoor Learning (Li et al., NeurIPS 2021) isolates the lowest-loss samples and unlearns them by gradient ascent while keeping the clean loss low.";
    type Detail = AblDetail;

    fn summary(f: &Repaired<Self, AblDetail>) -> String {
        format!(
            "Isolated {} samples, {} of them poisoned ({} were already of the target class, so unlearning them teaches little).",
            f.detail.isolated, f.detail.isolated_poisoned, f.detail.isolated_true_target
        )
    }

    fn score(&self, d: &mut AblDetail, truth: &GroundTruth<'_>) {
        let target = truth.answers.target;
        let poisoned: Vec<usize> = d.isolated_indices.iter().copied().filter(|&i| truth.poisoned[i]).collect();
        d.isolated_poisoned = poisoned.len();
        d.isolated_true_target = poisoned.iter().filter(|&&i| truth.true_labels[i] == target).count();
        d.isolated_indices.clear();
    }

    async fn repair(&self, cx: &mut Cx<'_>) -> Result<Fixed<AblDetail>> {
        let iso = LossIsolation { frac: self.frac, epochs: self.isolation_epochs };
        let clean = cx.clean.clone();
        let flagged = cx.detector("loss", &clean, async |dcx| Ok(iso.filter(dcx).await?.flagged)).await?;
        let isolated_idx: Vec<usize> = (0..flagged.len()).filter(|&i| flagged[i]).collect();
        let isolated = cx.train().select(&isolated_idx);

        let model = cx.trainable();
        let objective = Objective::Unlearn { isolated: &isolated, weight: self.lambda, cap: ASCENT_CAP };
        let model = fit(cx, model, Fit { set: &clean, epochs: self.epochs, objective, keep: None }).await?;
        Ok(Fixed {
            defended: Defended::Model(burn::module::Module::valid(&model)),
            clean_samples: clean.len(),
            detail: AblDetail { isolated: isolated_idx.len(), isolated_indices: isolated_idx, ..AblDetail::default() },
        })
    }
}
