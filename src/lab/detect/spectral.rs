//! Spectral Signatures (Tran et al., NeurIPS 2018): per training label, score each sample by its
//! squared projection on the top singular vector of the centred penultimate representations, and
//! remove the top 1.5·ε of each class, ε being the defender's assumed poison-rate budget.

use crate::lab::params::{Hint, float};
use serde::{Deserialize, Serialize};

use super::linalg::{centre, covariance, project, top_eigen};
use super::metrics::{DataScore, Histogram, auroc};
use super::{
    About, Cx, DataFilter, Detector, Filtered, GroundTruth, Summary, Truth, Verdict, auroc_text, clean_verdict,
    data_figures, pct0,
};
use crate::lab::data::NUM_CLASSES;
use crate::lab::error::Result;
use crate::lab::model::FEATURES;

crate::params! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct SpectralSignatures {
        /// ε: the poison rate the defender budgets for (1.5·ε of each class is removed; an assumption, not read from the attack).
        pub eps: f64 = 0.1, float("ss_eps", 0.0, 0.6).open_min().label("budget ε").hint(Hint::Percent);
    }
}

/// Bins of the score histograms.
const BINS: usize = 40;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SsReport {
    pub params: SpectralSignatures,
    pub seconds: f64,
    /// Scored over all training samples; the score is the squared projection divided by its class's
    /// top eigenvalue, so classes share one scale.
    #[serde(flatten)]
    pub score: DataScore,
    /// AUROC of the score within the attack's target class (ground truth for scoring only).
    pub in_class_auroc: Option<f64>,
    /// Samples removed per class.
    pub removed: Vec<usize>,
    /// Scores of all training samples, clean vs poisoned.
    pub histogram: Histogram,
    /// Scores within the target class, clean vs poisoned.
    pub target_histogram: Histogram,
}

impl SsReport {
    pub fn new(
        params: &SpectralSignatures,
        f: Filtered<Vec<usize>>,
        truth: &[bool],
        labels: &[u8],
        target: u8,
        seconds: f64,
    ) -> Self {
        let in_target: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == target).collect();
        let target_scores: Vec<f64> = in_target.iter().map(|&i| f.scores[i]).collect();
        let target_truth: Vec<bool> = in_target.iter().map(|&i| truth[i]).collect();
        Self {
            params: params.clone(),
            seconds,
            score: DataScore::new(&f.scores, &f.flagged, truth),
            in_class_auroc: auroc(&target_scores, &target_truth),
            removed: f.picture,
            histogram: Histogram::new(&f.scores, truth, BINS),
            target_histogram: Histogram::new(&target_scores, &target_truth, BINS),
        }
    }
}

impl DataFilter for SpectralSignatures {
    /// Samples removed per class.
    type Picture = Vec<usize>;

    async fn filter(&self, cx: &mut Cx<'_>) -> Result<Filtered<Vec<usize>>> {
        let features = cx.train_features().await?;
        let n = cx.train.len();
        let d = FEATURES;
        let mut scores = vec![0.0; n];
        let mut flagged = vec![false; n];
        let mut removed = vec![0; NUM_CLASSES];
        for (class, removed) in removed.iter_mut().enumerate() {
            let members: Vec<usize> = (0..n).filter(|&i| cx.train.labels[i] as usize == class).collect();
            let m = members.len();
            if m == 0 {
                continue;
            }
            let x: Vec<f64> = members.iter().flat_map(|&i| features[i * d..(i + 1) * d].iter().copied()).collect();
            let (centred, _) = centre(&x, m, d);
            let (top, values) = top_eigen(&covariance(&centred, m, d), d, 1);
            let scale = values[0].max(1e-12);
            let proj = project(&centred, d, &top, 1);
            for (j, &i) in members.iter().enumerate() {
                scores[i] = proj[j] * proj[j] / scale;
            }
            let k = ((1.5 * self.eps * m as f64).round() as usize).min(m);
            let mut order = members.clone();
            order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
            for &i in &order[..k] {
                flagged[i] = true;
            }
            *removed = k;
            cx.progress(class + 1, NUM_CLASSES).await?;
        }
        Ok(Filtered { scores, flagged, picture: removed })
    }
}

impl Detector for SpectralSignatures {
    const TITLE: &'static str = "Spectral Signatures";
    const EXPLAIN: &'static str = "Spectral Signatures (Tran et al., NeurIPS 2018) scores each training sample by its projection on the top singular vector of its class's representations and removes the top 1.5·ε.";
    /// The filter's verdict and how long it took.
    type Found = (Filtered<Vec<usize>>, f64);
    type Report = SsReport;
    fn score(&self, (f, seconds): Self::Found, truth: &GroundTruth<'_>) -> SsReport {
        SsReport::new(self, f, truth.poisoned, truth.labels, truth.answers.target, seconds)
    }
    fn verdict(r: &SsReport, _: &Truth) -> Verdict {
        Verdict::data(&r.score)
    }
    fn summary(ss: &SsReport, about: &About) -> Summary {
        let s = &ss.score;
        let mut verdict = format!(
            "Removed {} samples (top 1.5·ε = {:.0} % of each class): precision {} %, recall {} %, F1 {:.2}; in-class AUROC {}.",
            s.flagged,
            150.0 * ss.params.eps,
            pct0(s.precision),
            pct0(s.tpr),
            s.f1,
            auroc_text(ss.in_class_auroc, 2)
        );
        if let Some(why) = &about.no_poison {
            verdict = clean_verdict(why, s.flagged);
        } else if about.poison_majority() {
            // The same reason Activation Clustering fails here, seen from the score's side.
            verdict.push_str(&format!(
                " Here the poison is {} % of class {}: the class mean lies about halfway between the poisoned and the clean images, a little nearer the poisoned majority, so the score (squared distance from the mean along the top direction) ranks the clean images as far out as the poisoned ones or further: an in-class AUROC near or below 0.5 is what this rule gives at this poisoning rate.",
                pct0(about.target_share),
                about.target
            ));
        }
        let mut figures = data_figures(s);
        figures.push(("in-class AUROC (target class)", auroc_text(ss.in_class_auroc, 3)));
        Summary { verdict, figures, seconds: ss.seconds }
    }
    async fn detect(&self, cx: &mut Cx<'_>) -> Result<Self::Found> {
        let t = cx.now();
        let f = self.filter(cx).await?;
        Ok((f, cx.now() - t))
    }
}
