//! STRIP (Gao et al., ACSAC 2019): at run time, superimpose an input on N random held-out clean
//! images; a triggered input keeps its (target) prediction whatever it is mixed with, so the mean
//! entropy of the N predictions is low. The threshold comes from clean inputs at a 1 % false-rejection rate.

use crate::lab::params::int;
use burn::tensor::activation::{log_softmax, softmax};
use serde::{Deserialize, Serialize};

use super::metrics::{Histogram, auroc};
use super::{About, Cx, Detector, GroundTruth, InputFilter, Summary, Truth, Verdict, auroc_text};
use crate::lab::data::batch;
use crate::lab::device::read_floats;
use crate::lab::error::Result;
use crate::lab::eval::EVAL_BATCH;

crate::params! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct Strip {
        /// Overlays per input (the paper's N = 100).
        pub n: usize = 100, int("strip_n", 2, EVAL_BATCH as i128).label("overlays per input");
        /// Clean and triggered test inputs screened (each).
        pub inputs: usize = 200, int("strip_inputs", 10, 5000).label("inputs screened");
    }
}

/// The false-rejection rate the threshold is set at.
pub const TARGET_FRR: f64 = 0.01;
const BINS: usize = 40;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StripReport {
    pub params: Strip,
    pub seconds: f64,
    /// Share of triggered inputs accepted (entropy at or above the threshold).
    pub far_at_frr_1pct: f64,
    /// The false-rejection rate the threshold actually gives on the clean inputs.
    pub frr: f64,
    /// Entropy threshold: inputs below it are rejected as triggered.
    pub threshold: f64,
    /// AUROC of low entropy for triggered vs clean inputs (`None` without triggered inputs).
    pub auroc: Option<f64>,
    pub clean_inputs: usize,
    pub triggered_inputs: usize,
    /// Mean entropies; `poisoned` counts the triggered inputs.
    pub histogram: Histogram,
}

impl InputFilter for Strip {
    type Report = StripReport;

    async fn screen(&self, cx: &mut Cx<'_>) -> Result<StripReport> {
        let test = cx.test;
        let mut rng = cx.rng();
        // Overlay pool, clean inputs and the sources of triggered inputs are disjoint test images.
        let order = rng.permutation(test.len());
        let pool_size = (test.len() / 3).clamp(1, 500);
        let (pool, rest) = order.split_at(pool_size.min(order.len()));
        let mut in_pool = vec![false; test.len()];
        pool.iter().for_each(|&i| in_pool[i] = true);
        let clean: Vec<usize> = rest.iter().copied().take(self.inputs).collect();
        let mut candidates: Vec<usize> =
            (0..cx.triggered_source.len()).filter(|&j| !in_pool[cx.triggered_source[j]]).collect();
        rng.shuffle(&mut candidates);
        candidates.truncate(self.inputs);

        let images: Vec<&[u8]> =
            clean.iter().map(|&i| test.image(i)).chain(candidates.iter().map(|&j| cx.triggered.image(j))).collect();
        let total = images.len();
        let per_pass = (EVAL_BATCH / self.n).max(1);
        let mut entropies = Vec::with_capacity(total);
        for (step, group) in images.chunks(per_pass).enumerate() {
            let mut mixed = crate::lab::data::ImageSet::empty(test.channels, test.height, test.width);
            for image in group {
                for _ in 0..self.n {
                    let other = test.image(pool[rng.below(pool.len())]);
                    // The paper's superimposition: a saturating pixel sum (cv2.addWeighted(a, 1, b, 1, 0)).
                    mixed.pixels.extend(image.iter().zip(other).map(|(a, b)| a.saturating_add(*b)));
                    mixed.labels.push(0);
                }
            }
            let all: Vec<usize> = (0..mixed.len()).collect();
            let logits = cx.model.forward(batch::images(&mixed, &all, cx.device));
            let entropy = (softmax(logits.clone(), 1) * log_softmax(logits, 1)).sum_dim(1).neg(); // [rows, 1]
            let mean = entropy.reshape([group.len(), self.n]).mean_dim(1);
            entropies.extend(read_floats(mean).await?.into_iter().map(f64::from));
            cx.progress(((step + 1) * per_pass).min(total), total).await?;
        }
        let is_triggered: Vec<bool> = (0..total).map(|i| i >= clean.len()).collect();
        let mut clean_sorted: Vec<f64> = entropies[..clean.len()].to_vec();
        clean_sorted.sort_by(f64::total_cmp);
        let k = (TARGET_FRR * clean_sorted.len() as f64).floor() as usize;
        let threshold = clean_sorted.get(k).copied().unwrap_or(0.0);
        let rejected = |e: &f64| *e < threshold;
        let frr = clean_sorted.iter().filter(|e| rejected(e)).count() as f64 / clean_sorted.len().max(1) as f64;
        let accepted = entropies[clean.len()..].iter().filter(|e| !rejected(e)).count();
        let low_entropy: Vec<f64> = entropies.iter().map(|e| -e).collect();
        Ok(StripReport {
            params: self.clone(),
            seconds: 0.0,
            far_at_frr_1pct: accepted as f64 / candidates.len().max(1) as f64,
            frr,
            threshold,
            auroc: auroc(&low_entropy, &is_triggered),
            clean_inputs: clean.len(),
            triggered_inputs: candidates.len(),
            histogram: Histogram::new(&entropies, &is_triggered, BINS),
        })
    }
}

impl Detector for Strip {
    const TITLE: &'static str = "STRIP";
    const EXPLAIN: &'static str = "STRIP (Gao et al., ACSAC 2019) blends an input with random clean images: a triggered input keeps its (target) prediction, so its predictions have low entropy.";
    type Found = StripReport;
    type Report = StripReport;
    /// Judged by its AUROC between clean and triggered inputs (0.5, chance, scores 0); meaningless on
    /// a clean model, where the "triggered" inputs carry no backdoor.
    fn score(&self, found: StripReport, _: &GroundTruth<'_>) -> StripReport {
        found
    }
    fn verdict(r: &StripReport, truth: &Truth) -> Verdict {
        let said = format!("lets {:.0} % of triggered inputs through", 100.0 * r.far_at_frr_1pct);
        let score = r.auroc.filter(|_| truth.backdoored).map(|a| (2.0 * (a - 0.5)).clamp(0.0, 1.0));
        Verdict { said, score, f1: None, auroc: r.auroc }
    }
    fn summary(st: &StripReport, _: &About) -> Summary {
        let verdict = format!(
            "At a false-rejection rate of {:.1} % on clean inputs, {:.1} % of triggered inputs get through (FAR); AUROC {}.",
            100.0 * st.frr,
            100.0 * st.far_at_frr_1pct,
            auroc_text(st.auroc, 3)
        );
        let figures = vec![
            ("FAR at FRR 1 %", format!("{:.1} %", 100.0 * st.far_at_frr_1pct)),
            ("AUROC", auroc_text(st.auroc, 3)),
            ("inputs (clean, triggered)", format!("{}, {}", st.clean_inputs, st.triggered_inputs)),
        ];
        Summary { verdict, figures, seconds: st.seconds }
    }
    async fn detect(&self, cx: &mut Cx<'_>) -> Result<StripReport> {
        let t = cx.now();
        let mut r = self.screen(cx).await?;
        r.seconds = cx.now() - t;
        Ok(r)
    }
}
