//! Activation Clustering (Chen et al., 2018): per training label, reduce the penultimate activations
//! (PCA), split them with 2-means, and flag the smaller cluster when it is small and well separated.
//! Its known blind spot: when poison outnumbers the clean samples of the target class, the smaller
//! cluster is the clean one.

use crate::lab::params::{Hint, float, int};
use serde::{Deserialize, Serialize};

use super::linalg::{centre, covariance, project, silhouette, top_eigen, two_means};
use super::metrics::DataScore;
use super::{Cx, DataFilter, Detector, Filtered, Truth, Verdict};
use crate::lab::data::NUM_CLASSES;
use crate::lab::error::Result;
use crate::lab::model::FEATURES;

crate::params! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct ActivationClustering {
        /// PCA dimensions before clustering (the paper's 10).
        pub dims: usize = 10, int("ac_dims", 2, FEATURES as i128).label("PCA dimensions");
        /// The smaller cluster is flagged only below this share of its class (the paper's 35 %).
        pub max_share: f64 = 0.35, float("ac_size", 0.0, 0.5).open_min().label("largest flagged share").hint(Hint::Percent);
        /// ... and only with at least this silhouette: Kaufman & Rousseeuw's 0.25, below which a split
        /// has no substantial structure.
        pub min_silhouette: f64 = 0.25, float("ac_sil", -1.0, 1.0).flag("ac-silhouette").label("smallest silhouette");
    }
}

/// Points per class in the scatter picture, so the report stays small.
const SCATTER_POINTS: usize = 300;
/// Points per class the silhouette is computed on (it is quadratic).
const SILHOUETTE_POINTS: usize = 1000;

/// One training label's clustering, with a 2-D scatter (first two principal components).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassClusters {
    pub class: u8,
    pub size: usize,
    /// Share of the class in the smaller cluster.
    pub small_share: f64,
    pub silhouette: f64,
    /// Whether the smaller cluster was flagged as poison.
    pub flagged: bool,
    /// Scatter: (PC1, PC2) of up to 300 samples of the class.
    pub points: Vec<[f32; 2]>,
    /// Per point: in the smaller cluster?
    pub in_small: Vec<bool>,
    /// Per point: truly poisoned? (ground truth, for the picture only)
    pub poisoned: Vec<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AcReport {
    pub params: ActivationClustering,
    pub seconds: f64,
    #[serde(flatten)]
    pub score: DataScore,
    pub classes: Vec<ClassClusters>,
}

impl AcReport {
    pub fn new(params: &ActivationClustering, f: Filtered<Vec<ClassClusters>>, truth: &[bool], seconds: f64) -> Self {
        Self {
            params: params.clone(),
            seconds,
            score: DataScore::new(&f.scores, &f.flagged, truth),
            classes: f.picture,
        }
    }
}

impl DataFilter for ActivationClustering {
    type Picture = Vec<ClassClusters>;

    async fn filter(&self, cx: &mut Cx<'_>) -> Result<Filtered<Vec<ClassClusters>>> {
        let features = cx.train_features().await?;
        let n = cx.train.len();
        let d = FEATURES;
        let mut rng = cx.rng();
        let truth = cx.truth.clone();
        let mut scores = vec![0.0; n];
        let mut flagged = vec![false; n];
        let mut classes = Vec::with_capacity(NUM_CLASSES);
        for class in 0..NUM_CLASSES {
            let members: Vec<usize> = (0..n).filter(|&i| cx.train.labels[i] as usize == class).collect();
            let m = members.len();
            if m < 2 {
                continue;
            }
            let x: Vec<f64> = members.iter().flat_map(|&i| features[i * d..(i + 1) * d].iter().copied()).collect();
            let (centred, _) = centre(&x, m, d);
            let (basis, _) = top_eigen(&covariance(&centred, m, d), d, self.dims);
            let reduced = project(&centred, d, &basis, self.dims);
            let assign = two_means(&reduced, m, self.dims, 3, &mut rng);
            let ones = assign.iter().filter(|&&a| a == 1).count();
            let small = u8::from(ones * 2 < m);
            let small_count = if small == 1 { ones } else { m - ones };
            let small_share = small_count as f64 / m as f64;
            let sample: Vec<usize> = if m > SILHOUETTE_POINTS {
                rng.choose_sorted(&(0..m).collect::<Vec<_>>(), SILHOUETTE_POINTS)
            } else {
                (0..m).collect()
            };
            let sub: Vec<f64> =
                sample.iter().flat_map(|&j| reduced[j * self.dims..(j + 1) * self.dims].iter().copied()).collect();
            let sub_assign: Vec<u8> = sample.iter().map(|&j| assign[j]).collect();
            let sil = silhouette(&sub, self.dims, &sub_assign);
            let class_flagged = small_share < self.max_share && sil >= self.min_silhouette;
            for (j, &i) in members.iter().enumerate() {
                let in_small = assign[j] == small;
                // The smaller a sample's cluster, the more suspicious (coarse, but the rule's own view).
                let own_share = if in_small { small_share } else { 1.0 - small_share };
                scores[i] = 1.0 - own_share;
                flagged[i] = class_flagged && in_small;
            }
            let shown: Vec<usize> = if m > SCATTER_POINTS {
                rng.choose_sorted(&(0..m).collect::<Vec<_>>(), SCATTER_POINTS)
            } else {
                (0..m).collect()
            };
            classes.push(ClassClusters {
                class: class as u8,
                size: m,
                small_share,
                silhouette: sil,
                flagged: class_flagged,
                points: shown
                    .iter()
                    .map(|&j| [round2(reduced[j * self.dims]), round2(reduced[j * self.dims + 1])])
                    .collect(),
                in_small: shown.iter().map(|&j| assign[j] == small).collect(),
                poisoned: shown.iter().map(|&j| truth[members[j]]).collect(),
            });
            cx.progress(class + 1, NUM_CLASSES).await?;
        }
        Ok(Filtered { scores, flagged, picture: classes })
    }
}

/// Two decimals are plenty for a scatter and keep the report small.
fn round2(x: f64) -> f32 {
    ((x * 100.0).round() / 100.0) as f32
}

impl Detector for ActivationClustering {
    const TITLE: &'static str = "Activation Clustering";
    const EXPLAIN: &'static str = "Activation Clustering (Chen et al., 2018) splits each class's penultimate activations in two; a small, well-separated cluster is flagged as poison.";
    type Report = AcReport;
    fn verdict(r: &AcReport, _: &Truth) -> Verdict {
        Verdict::data(&r.score)
    }
    async fn detect(&self, cx: &mut Cx<'_>) -> Result<AcReport> {
        let t = cx.now();
        let f = self.filter(cx).await?;
        Ok(AcReport::new(self, f, &cx.truth, cx.now() - t))
    }
}
