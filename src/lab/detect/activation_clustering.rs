//! Activation Clustering (Chen et al., 2018): per training label, reduce the penultimate activations
//! (PCA), split them with 2-means, and decide which cluster is poison. The common rule flags the
//! smaller cluster when it is small and well separated; its blind spot: when poison outnumbers the
//! clean samples of the target class, the smaller cluster is the clean one. The paper's own
//! exclusionary reclassification (`ac_rule=reclassify`) assumes nothing about sizes: a model trained
//! without a cluster classifies the cluster's samples; legitimate samples mostly get their label back,
//! poisons get the class they really show.

use crate::lab::device::fresh_model;
use crate::lab::eval::{TriggeredTest, probabilities};
use crate::lab::event::{Event, Relay};
use crate::lab::params::{Hint, choice, float, int};
use crate::lab::train::train;
use serde::{Deserialize, Serialize};

use super::linalg::{centre, covariance, project, silhouette, top_eigen, two_means};
use super::metrics::DataScore;
use super::{
    About, Cx, DataFilter, Detector, Filtered, GroundTruth, Summary, Truth, Verdict, clean_verdict, data_figures, pct0,
};
use crate::lab::data::NUM_CLASSES;
use crate::lab::error::Result;
use crate::lab::model::FEATURES;

/// How Activation Clustering decides which of a class's two clusters is poison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AcRule {
    /// The smaller cluster, when small and well separated.
    Size,
    /// Exclusionary reclassification: the cluster whose samples a model trained without it does not
    /// give their label back.
    Reclassify,
}

crate::named_enum!(AcRule {
    Size = "size" / "the smaller cluster",
    Reclassify = "reclassify" / "exclusionary reclassification",
});

crate::params! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct ActivationClustering {
        /// Which cluster is poison: size (the smaller one, when small and well separated) or reclassify (Chen et al.'s exclusionary reclassification: two retrainings, each without one cluster of every class; a class whose two clusters are not recognised from each other is poisoned).
        #[serde(skip_serializing_if = "AcRule::is_size")]
        pub rule: AcRule = AcRule::Size, choice("ac_rule", AcRule::CHOICES).selector().label("decision rule");
        /// PCA dimensions before clustering (the paper's 10).
        pub dims: usize = 10, int("ac_dims", 2, FEATURES as i128).label("PCA dimensions");
        /// The smaller cluster is flagged only below this share of its class (the paper's 35 %).
        pub max_share: f64 = 0.35, float("ac_size", 0.0, 0.5).open_min().label("largest flagged share").hint(Hint::Percent);
        /// ... and only with at least this silhouette: Kaufman & Rousseeuw's 0.25, below which a split
        /// has no substantial structure.
        pub min_silhouette: f64 = 0.25, float("ac_sil", -1.0, 1.0).flag("ac-silhouette").label("smallest silhouette");
    }
    applies(ActivationClustering::applies_now);
}

impl AcRule {
    fn is_size(&self) -> bool {
        *self == Self::Size
    }
}

impl ActivationClustering {
    /// The size and silhouette thresholds belong to the size rule.
    fn applies_now(&self, key: &str) -> Result<(), &'static str> {
        // Rows: rule (0), dims (1), max_share (2), min_silhouette (3).
        let row = <Self as crate::lab::params::Table>::PARAMS.iter().position(|p| p.info.key == key);
        match row {
            Some(2 | 3) if self.rule == AcRule::Reclassify => Err("applies only with ac_rule=size"),
            _ => Ok(()),
        }
    }
}

/// A model trained without one cluster of each class gives the cluster's samples their label back
/// for at least this share when the cluster is recognised: Chen et al.'s l/p > T with T = 1, where p
/// counts every other label (the poisons of an all-to-one attack come from many classes, so no single
/// other class needs to outnumber l).
const OWN_LABEL_SHARE: f64 = 0.5;

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
    /// Whether a cluster was flagged as poison (the smaller one, unless `flagged_larger`).
    pub flagged: bool,
    /// Exclusionary reclassification: the larger cluster was the one flagged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flagged_larger: bool,
    /// Exclusionary reclassification: the share of the smaller and of the larger cluster that a
    /// model trained without it classified as their label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_label: Option<[f64; 2]>,
    /// Exclusionary reclassification: per cluster, the mean probability of the likeliest other class
    /// under the model trained without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed: Option<[f64; 2]>,
    /// Scatter: (PC1, PC2) of up to 300 samples of the class.
    pub points: Vec<[f32; 2]>,
    /// Per point: in the smaller cluster?
    pub in_small: Vec<bool>,
    /// Per point: truly poisoned? (ground truth, filled in when the report is scored; for the picture only)
    pub poisoned: Vec<bool>,
    /// Per point: its training sample (for scoring the picture; not in the report).
    #[serde(skip)]
    pub shown: Vec<usize>,
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
        let mut classes = f.picture;
        // The picture's truth: which shown points are poisoned.
        for k in &mut classes {
            k.poisoned = k.shown.iter().map(|&i| truth[i]).collect();
            k.shown.clear();
        }
        Self { params: params.clone(), seconds, score: DataScore::new(&f.scores, &f.flagged, truth), classes }
    }
}

/// Per class: which cluster is flagged (`Some(true)`: the smaller), and under reclassification each
/// cluster's share given its label back and how confidently other classes claim it.
type Decision = (Option<bool>, Option<[f64; 2]>, Option<[f64; 2]>);

/// One class's 2-means split.
struct Split {
    class: usize,
    members: Vec<usize>,
    /// Per member: in the smaller cluster?
    in_small: Vec<bool>,
    small_share: f64,
    silhouette: f64,
    reduced: Vec<f64>,
}

impl DataFilter for ActivationClustering {
    type Picture = Vec<ClassClusters>;

    async fn filter(&self, cx: &mut Cx<'_>) -> Result<Filtered<Vec<ClassClusters>>> {
        let features = cx.train_features().await?;
        let n = cx.train.len();
        let d = FEATURES;
        let mut rng = cx.rng();
        let mut splits = Vec::with_capacity(NUM_CLASSES);
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
            let in_small: Vec<bool> = assign.iter().map(|&a| a == small).collect();
            let small_share = in_small.iter().filter(|&&s| s).count() as f64 / m as f64;
            let sample: Vec<usize> = if m > SILHOUETTE_POINTS {
                rng.choose_sorted(&(0..m).collect::<Vec<_>>(), SILHOUETTE_POINTS)
            } else {
                (0..m).collect()
            };
            let sub: Vec<f64> =
                sample.iter().flat_map(|&j| reduced[j * self.dims..(j + 1) * self.dims].iter().copied()).collect();
            let sub_assign: Vec<u8> = sample.iter().map(|&j| assign[j]).collect();
            let silhouette = silhouette(&sub, self.dims, &sub_assign);
            splits.push(Split { class, members, in_small, small_share, silhouette, reduced });
            cx.progress(class + 1, NUM_CLASSES).await?;
        }

        let mut decisions: Vec<Decision> = Vec::with_capacity(splits.len());
        match self.rule {
            AcRule::Size => {
                for k in &splits {
                    let flag = k.small_share < self.max_share && k.silhouette >= self.min_silhouette;
                    decisions.push((flag.then_some(true), None, None));
                }
            }
            AcRule::Reclassify => {
                // Two retrainings: one without every class's smaller cluster, one without every
                // class's larger cluster; each classifies the samples it left out.
                let mut own = vec![[0.0f64; 2]; splits.len()];
                // Per cluster: the mean probability of the likeliest other class.
                let mut other = vec![[0.0f64; 2]; splits.len()];
                // Both retrainings together see every sample once per epoch.
                let total = (n.div_ceil(cx.setting.train.batch_size) + 2) * cx.setting.train.epochs;
                let mut done = 0;
                for (pass, leave_small) in [true, false].into_iter().enumerate() {
                    let mut left_out = vec![false; n];
                    for k in &splits {
                        for (j, &i) in k.members.iter().enumerate() {
                            left_out[i] = k.in_small[j] == leave_small;
                        }
                    }
                    let keep: Vec<usize> = (0..n).filter(|&i| !left_out[i]).collect();
                    let test: Vec<usize> = (0..n).filter(|&i| left_out[i]).collect();
                    let probs = self.retrain_and_predict(cx, &keep, &test, pass, &mut done, total).await?;
                    let mut right = [0usize; NUM_CLASSES];
                    let mut count = [0usize; NUM_CLASSES];
                    let mut elsewhere = [0f64; NUM_CLASSES];
                    for (&i, row) in test.iter().zip(probs.chunks_exact(NUM_CLASSES)) {
                        let y = cx.train.labels[i] as usize;
                        let p = (0..NUM_CLASSES).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap_or(0);
                        count[y] += 1;
                        right[y] += usize::from(p == y);
                        elsewhere[y] +=
                            (0..NUM_CLASSES).filter(|&c| c != y).map(|c| f64::from(row[c])).fold(0.0, f64::max);
                    }
                    for ((slot, conf), k) in own.iter_mut().zip(other.iter_mut()).zip(&splits) {
                        slot[pass] = right[k.class] as f64 / count[k.class].max(1) as f64;
                        conf[pass] = elsewhere[k.class] / count[k.class].max(1) as f64;
                    }
                }
                for (o, conf) in own.into_iter().zip(other) {
                    // A class is poisoned when neither cluster is recognised from the other: poisons
                    // teach "trigger ⇒ label" and the true members "shape ⇒ label", so a model trained
                    // without either one does not give it its label back (Chen et al.'s test, failed
                    // both ways), whatever the sizes. Two sub-styles of a clean class share the class's
                    // shape, so at least one way works (given retrained models about as good as the
                    // run's: on a small, short training both ways can fail for a clean class too). The
                    // poison is then the cluster the other classes claim more confidently: poisons are
                    // other classes' images, while the true members, taken away, resemble no remaining
                    // class well.
                    let fails = |share: f64| share < OWN_LABEL_SHARE;
                    let flag = (fails(o[0]) && fails(o[1])).then_some(conf[0] >= conf[1]);
                    decisions.push((flag, Some(o), Some(conf)));
                }
            }
        }

        let mut scores = vec![0.0; n];
        let mut flagged = vec![false; n];
        let mut classes = Vec::with_capacity(splits.len());
        for (k, (flag, own, claimed)) in splits.into_iter().zip(decisions) {
            for (j, &i) in k.members.iter().enumerate() {
                let in_small = k.in_small[j];
                scores[i] = match own {
                    // The less of a sample's cluster got its label back, the more suspicious.
                    Some(o) => 1.0 - if in_small { o[0] } else { o[1] },
                    // The smaller a sample's cluster, the more suspicious (coarse, but the rule's own view).
                    None => 1.0 - if in_small { 1.0 - k.small_share } else { k.small_share },
                };
                flagged[i] = flag == Some(in_small);
            }
            let m = k.members.len();
            let shown: Vec<usize> = if m > SCATTER_POINTS {
                rng.choose_sorted(&(0..m).collect::<Vec<_>>(), SCATTER_POINTS)
            } else {
                (0..m).collect()
            };
            classes.push(ClassClusters {
                class: k.class as u8,
                size: m,
                small_share: k.small_share,
                silhouette: k.silhouette,
                flagged: flag.is_some(),
                flagged_larger: flag == Some(false),
                own_label: own,
                claimed,
                points: shown
                    .iter()
                    .map(|&j| [round2(k.reduced[j * self.dims]), round2(k.reduced[j * self.dims + 1])])
                    .collect(),
                in_small: shown.iter().map(|&j| k.in_small[j]).collect(),
                poisoned: Vec::new(),
                shown: shown.iter().map(|&j| k.members[j]).collect(),
            });
        }
        Ok(Filtered { scores, flagged, picture: classes })
    }
}

impl ActivationClustering {
    /// Trains a fresh model of the run's architecture and settings on the training samples `keep`
    /// and predicts the samples `test`; `pass` keeps the two retrainings on different seeds. Progress
    /// counts training batches from `done` of `total`.
    #[allow(clippy::too_many_arguments)]
    async fn retrain_and_predict(
        &self,
        cx: &mut Cx<'_>,
        keep: &[usize],
        test: &[usize],
        pass: usize,
        done: &mut usize,
        total: usize,
    ) -> Result<Vec<f32>> {
        let setting = cx.setting;
        let device = cx.device.clone();
        let train_device = device.clone().autodiff();
        let seed = setting.seed.wrapping_add(1 + pass as u64);
        let model =
            fresh_model(setting.model, setting.dims(), seed, &train_device).with_branch(cx.model.branch().cloned());
        let mut settings = setting.train.clone();
        // The defender's own retraining: plain, whatever the run's training was.
        settings.dp_sigma = 0.0;
        let set = cx.train.select(keep);
        let held = cx.train.select(test);
        let (c, h, w) = setting.dims();
        let none = TriggeredTest::none(c, h, w);
        let progress = |done, total| Event::Detect { detector: "ac".into(), done, total };
        let mut relay = Relay { inner: cx.host(), done: *done, total, progress: Box::new(&progress) };
        let (model, _) =
            train(model, &set, &settings, seed, &train_device, &none.set, &none, &device, None, &mut relay).await?;
        *done = relay.done;
        let model = burn::module::Module::valid(&model);
        probabilities(&model, &held, 1.0, &device).await
    }
}

/// Two decimals are plenty for a scatter and keep the report small.
fn round2(x: f64) -> f32 {
    ((x * 100.0).round() / 100.0) as f32
}

impl Detector for ActivationClustering {
    const TITLE: &'static str = "Activation Clustering";
    const EXPLAIN: &'static str = "Activation Clustering (Chen et al., 2018) splits each class's penultimate activations in two; by the size rule a small, well-separated cluster is flagged as poison; by exclusionary reclassification a cluster is poison when a model trained without it does not give most of its samples their label back.";
    /// The filter's verdict and how long it took.
    type Found = (Filtered<Vec<ClassClusters>>, f64);
    type Report = AcReport;
    fn score(&self, (f, seconds): Self::Found, truth: &GroundTruth<'_>) -> AcReport {
        AcReport::new(self, f, truth.poisoned, seconds)
    }
    fn verdict(r: &AcReport, _: &Truth) -> Verdict {
        Verdict::data(&r.score)
    }
    fn summary(ac: &AcReport, about: &About) -> Summary {
        let s = &ac.score;
        let mut verdict = format!(
            "Flagged {} training samples: precision {} %, recall {} %, F1 {:.2} against the true poison.",
            s.flagged,
            pct0(s.precision),
            pct0(s.tpr),
            s.f1
        );
        if let Some(why) = &about.no_poison {
            verdict = clean_verdict(why, s.flagged);
        } else if about.poison_majority() && ac.params.rule != AcRule::Reclassify {
            verdict.push_str(&format!(
                " Here the poison is {} % of class {}, so the “smaller cluster” is the clean images: the textbook rule cannot work at this poisoning rate (try the rule “exclusionary reclassification”).",
                pct0(about.target_share),
                about.target
            ));
        }
        Summary { verdict, figures: data_figures(s), seconds: ac.seconds }
    }
    async fn detect(&self, cx: &mut Cx<'_>) -> Result<Self::Found> {
        let t = cx.now();
        let f = self.filter(cx).await?;
        Ok((f, cx.now() - t))
    }
}
