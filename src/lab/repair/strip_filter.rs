//! STRIP as a deployment filter (Gao et al., ACSAC 2019): every input is superimposed with clean
//! images; a triggered input keeps its (target) prediction whatever it is mixed with, so a low mean
//! prediction entropy rejects it. The threshold is set at a 1 % false rejection rate on the
//! defender's clean data; rejected inputs count as wrong for CA and not the target for ASR.

use crate::lab::params::int;
use burn::tensor::activation::{log_softmax, softmax};
use serde::{Deserialize, Serialize};

use super::{Cx, Defended, Fixed, Repair, Repaired, pct1};
use crate::lab::data::{ImageSet, batch};
use crate::lab::device::read_floats;
use crate::lab::error::Result;
use crate::lab::eval::EVAL_BATCH;
use crate::lab::rng::LabRng;

/// The false rejection rate the threshold is set at, on the defender's clean data.
pub const TARGET_FRR: f64 = 0.01;

crate::params! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct StripFilter {
        /// Overlays per input.
        pub n: usize = 20, int("sf_n", 2, EVAL_BATCH as i128).label("overlays per input");
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StripDetail {
    /// Inputs with a mean entropy below this are rejected.
    pub threshold: f64,
    /// Share of the clean test inputs rejected (the real FRR) and of the triggered ones (detection rate).
    pub rejected_clean: f64,
    pub rejected_triggered: f64,
}

impl Repair for StripFilter {
    const TITLE: &'static str = "STRIP filter";
    const EXPLAIN: &'static str = "STRIP as a filter (Gao et al., ACSAC 2019) keeps the model and rejects inputs whose blended predictions are too confident; rejected inputs count as wrong.";
    type Detail = StripDetail;

    fn summary(f: &Repaired<Self, StripDetail>) -> String {
        format!(
            "Rejects {} % of clean and {} % of triggered test inputs.",
            pct1(f.detail.rejected_clean),
            pct1(f.detail.rejected_triggered)
        )
    }

    async fn repair(&self, cx: &mut Cx<'_>) -> Result<Fixed<StripDetail>> {
        let clean = cx.clean.clone();
        let mut rng = cx.rng();
        let (test, triggered) = cx.run_time_inputs();
        let total = clean.len() + test.len() + triggered.len();
        let mut done = 0;
        let mut defender = self.entropies(cx, &clean, &clean, &mut rng, &mut done, total).await?;
        defender.sort_by(f64::total_cmp);
        let k = (TARGET_FRR * defender.len() as f64).floor() as usize;
        let threshold = defender.get(k).copied().unwrap_or(0.0);
        // Deployment: every incoming input is screened with overlays from the defender's clean set.
        let on_clean = self.entropies(cx, test, &clean, &mut rng, &mut done, total).await?;
        let on_triggered = self.entropies(cx, triggered, &clean, &mut rng, &mut done, total).await?;
        let rejected_clean: Vec<bool> = on_clean.iter().map(|&e| e < threshold).collect();
        let rejected_triggered: Vec<bool> = on_triggered.iter().map(|&e| e < threshold).collect();
        let share = |r: &[bool]| r.iter().filter(|&&x| x).count() as f64 / r.len().max(1) as f64;
        let detail = StripDetail {
            threshold,
            rejected_clean: share(&rejected_clean),
            rejected_triggered: share(&rejected_triggered),
        };
        Ok(Fixed {
            defended: Defended::Filtered { model: cx.model.clone(), rejected_clean, rejected_triggered },
            clean_samples: clean.len(),
            detail,
        })
    }
}

impl StripFilter {
    /// Mean prediction entropy of each image of `set` superimposed with `n` random images of `pool`.
    async fn entropies(
        &self,
        cx: &mut Cx<'_>,
        set: &ImageSet,
        pool: &ImageSet,
        rng: &mut LabRng,
        done: &mut usize,
        total: usize,
    ) -> Result<Vec<f64>> {
        let per_pass = (EVAL_BATCH / self.n).max(1);
        let all: Vec<usize> = (0..set.len()).collect();
        let mut out = Vec::with_capacity(set.len());
        for group in all.chunks(per_pass) {
            let mut mixed = ImageSet::empty(set.channels, set.height, set.width);
            for &i in group {
                for _ in 0..self.n {
                    let other = pool.image(rng.below(pool.len()));
                    // The paper's superimposition: a saturating pixel sum (cv2.addWeighted(a, 1, b, 1, 0)).
                    mixed.pixels.extend(set.image(i).iter().zip(other).map(|(a, b)| a.saturating_add(*b)));
                    mixed.labels.push(0);
                }
            }
            let rows: Vec<usize> = (0..mixed.len()).collect();
            let logits = cx.model.forward(batch::images(&mixed, &rows, cx.device));
            let entropy = (softmax(logits.clone(), 1) * log_softmax(logits, 1)).sum_dim(1).neg(); // [rows, 1]
            let mean = entropy.reshape([group.len(), self.n]).mean_dim(1);
            out.extend(read_floats(mean).await?.into_iter().map(f64::from));
            *done += group.len();
            cx.progress(*done, total).await?;
        }
        Ok(out)
    }
}
