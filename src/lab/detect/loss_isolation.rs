//! Loss-based isolation, stage 1 of Anti-Backdoor Learning (Li et al., NeurIPS 2021): a backdoor is
//! learned faster than the clean task, so after a short training the poisoned samples have the
//! lowest loss; isolate the lowest-loss fraction.

use crate::lab::params::{Hint, float, int};

use burn::tensor::activation::log_softmax;
use serde::{Deserialize, Serialize};

use super::metrics::{DataScore, Histogram};
use super::{
    About, Cx, DataFilter, Detector, Filtered, GroundTruth, Summary, Truth, Verdict, clean_verdict, data_figures, pct0,
};
use crate::lab::data::NUM_CLASSES;
use crate::lab::device::fresh_model;
use crate::lab::error::Result;
use crate::lab::eval::{EVAL_BATCH, TriggeredTest, batched};
use crate::lab::event::{Event, Relay};
use crate::lab::train::train;

crate::params! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct LossIsolation {
        /// Share of the training set isolated (lowest loss first).
        pub frac: f64 = 0.01, float("loss_frac", 0.0, 0.5).open_min().label("share isolated").hint(Hint::Percent);
        /// Epochs of the fresh short training whose per-sample losses are read.
        pub epochs: usize = 2, int("loss_epochs", 1, 20).label("training epochs");
    }
}

const BINS: usize = 40;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LossReport {
    pub params: LossIsolation,
    pub seconds: f64,
    #[serde(flatten)]
    pub score: DataScore,
    /// Largest loss among the isolated samples.
    pub threshold: f64,
    /// log10 of each training sample's loss, clean vs poisoned.
    pub histogram: Histogram,
}

impl LossReport {
    /// The filter's scores are negated losses.
    pub fn new(params: &LossIsolation, f: Filtered<()>, truth: &[bool], seconds: f64) -> Self {
        let log_loss: Vec<f64> = f.scores.iter().map(|s| (-s).max(1e-12).log10()).collect();
        let threshold = f.scores.iter().zip(&f.flagged).filter(|(_, f)| **f).map(|(s, _)| -s).fold(0.0, f64::max);
        Self {
            params: params.clone(),
            seconds,
            score: DataScore::new(&f.scores, &f.flagged, truth),
            threshold,
            histogram: Histogram::new(&log_loss, truth, BINS),
        }
    }
}

impl DataFilter for LossIsolation {
    type Picture = ();

    async fn filter(&self, cx: &mut Cx<'_>) -> Result<Filtered<()>> {
        // A fresh short training with the run's own seed and settings (the defender trains on the data
        // it was given); the main training loop stays untouched.
        let setting = cx.setting;
        let device = cx.device.clone();
        let train_device = device.clone().autodiff();
        // The architecture the suspect model came with, branch and all.
        let model = fresh_model(setting.model, setting.dims(), setting.seed, &train_device)
            .with_branch(cx.model.branch().cloned());
        let mut short = setting.train.clone();
        short.epochs = self.epochs;
        // The detector wants the poisons' fast fitting that DP-SGD exists to blunt.
        short.dp_sigma = 0.0;
        let (c, h, w) = setting.dims();
        // No per-epoch evaluation: empty test sets cost nothing.
        let none = TriggeredTest::none(c, h, w);
        let batches = cx.train.len().div_ceil(short.batch_size);
        let set = cx.train;
        let progress = |done, total| Event::Detect { detector: "loss".into(), done, total };
        let total = batches * self.epochs + set.len().div_ceil(EVAL_BATCH);
        let mut relay = Relay { inner: cx.host(), done: 0, total, progress: Box::new(&progress) };
        let (model, _) =
            train(model, set, &short, setting.seed, &train_device, &none.set, &none, &device, None, &mut relay).await?;
        let (done, total) = (relay.done, relay.total);
        drop(relay); // it holds the host

        let model = burn::module::Module::valid(&model);
        let logp = batched(
            set,
            &device,
            |x| log_softmax(model.forward(x), 1),
            async |k, _| cx.progress(done + k, total).await,
        );
        let logp = logp.await?;
        let losses: Vec<f64> =
            logp.chunks_exact(NUM_CLASSES).zip(&set.labels).map(|(row, &y)| -f64::from(row[y as usize])).collect();
        let all: Vec<usize> = (0..set.len()).collect();
        let count = ((self.frac * set.len() as f64).round() as usize).clamp(1, set.len());
        let mut order = all;
        order.sort_by(|&a, &b| losses[a].total_cmp(&losses[b]));
        let mut flagged = vec![false; set.len()];
        order[..count].iter().for_each(|&i| flagged[i] = true);
        Ok(Filtered { scores: losses.iter().map(|l| -l).collect(), flagged, picture: () })
    }
}

impl Detector for LossIsolation {
    const TITLE: &'static str = "Loss-based isolation";
    const EXPLAIN: &'static str = "Loss-based isolation (Anti-Backdoor Learning, Li et al., NeurIPS 2021): a backdoor is learned faster than the task, so after a short training the poisoned samples have the lowest loss.";
    /// The filter's verdict and how long it took.
    type Found = (Filtered<()>, f64);
    type Report = LossReport;
    fn score(&self, (f, seconds): Self::Found, truth: &GroundTruth<'_>) -> LossReport {
        LossReport::new(self, f, truth.poisoned, seconds)
    }
    fn verdict(r: &LossReport, _: &Truth) -> Verdict {
        Verdict::data(&r.score)
    }
    fn summary(l: &LossReport, about: &About) -> Summary {
        let s = &l.score;
        let verdict = match &about.no_poison {
            Some(why) => clean_verdict(why, s.flagged),
            None => format!(
                "Isolated the {} lowest-loss samples ({} %): {} % of them are poisoned (recall {} %).",
                s.flagged,
                100.0 * l.params.frac,
                pct0(s.precision),
                pct0(s.tpr)
            ),
        };
        Summary { verdict, figures: data_figures(s), seconds: l.seconds }
    }
    async fn detect(&self, cx: &mut Cx<'_>) -> Result<Self::Found> {
        let t = cx.now();
        let f = self.filter(cx).await?;
        Ok((f, cx.now() - t))
    }
}
