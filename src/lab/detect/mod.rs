//! Backdoor detectors, one file each, behind one small trait per kind: model inspection (does this
//! model hide a backdoor, and where), training-data filtering (which training samples are poisoned)
//! and run-time input filtering (is this input triggered). Every detector is scored against the
//! ground truth the attack recorded, and returns the data of the picture that explains it.

pub mod activation_clustering;
pub mod linalg;
pub mod loss_isolation;
pub mod metrics;
pub mod neural_cleanse;
pub mod occlusion;
pub mod spectral;
pub mod strip;

use std::rc::Rc;

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

pub use activation_clustering::{AcReport, ActivationClustering};
pub use loss_isolation::{LossIsolation, LossReport};
pub use metrics::{DataScore, Histogram};
pub use neural_cleanse::{NcReport, NeuralCleanse};
pub use occlusion::{Occlusion, OcclusionReport};
pub use spectral::{SpectralSignatures, SsReport};
pub use strip::{Strip, StripReport};

use crate::lab::attack::{Poisoned, Trigger};
use crate::lab::data::ImageSet;
use crate::lab::error::{LabError, Result};
use crate::lab::eval::{TriggeredTest, batched};
use crate::lab::event::{Event, Host};
use crate::lab::model::Model;
use crate::lab::params::{Family, Hint, Kind, ParamInfo, Params, Table, method_list, other};
use crate::lab::rng::{LabRng, Stream};
use crate::lab::setting::Setting;

/// One detector: its own file declares its parameters (`params!`), words and run; one line in
/// `detectors!` below registers it.
#[allow(async_fn_in_trait)] // the lab runs on one thread (the browser worker): no Send bound needed
pub trait Detector: Table + Params + Default + Clone {
    /// The name a student reads.
    const TITLE: &'static str;
    /// One sentence on the method, with its paper.
    const EXPLAIN: &'static str;
    /// What it decided, before scoring: all that `detect` computes, without the ground truth.
    type Found;
    /// What it found and how well, as written to REPORT.json.
    type Report;
    /// Runs the detector on what a defender holds (`Cx` never holds the attack's truth, so no
    /// detector can decide by it).
    async fn detect(&self, cx: &mut Cx<'_>) -> Result<Self::Found>;
    /// Scores what it decided against the attack's ground truth (the picture's truth too); `run_all`
    /// calls it once the detector is done.
    fn score(&self, found: Self::Found, truth: &GroundTruth<'_>) -> Self::Report;
    /// What it said, in a few words, and how well that found the backdoor the run really has (the
    /// grid's matrix shows these, one cell per run).
    fn verdict(report: &Self::Report, truth: &Truth) -> Verdict;
    /// What it found, in words and figures: the CLI's table and the page's card print this for every
    /// detector in the registry (the page adds a picture where it has one).
    fn summary(report: &Self::Report, about: &About) -> Summary;
}

/// A detector's result for people: its verdict in a sentence or two, the figures behind it, its time.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub verdict: String,
    /// (what, value) pairs, in the order tables print them.
    pub figures: Vec<(&'static str, String)>,
    pub seconds: f64,
}

/// What a summary may say of the run beyond the detector's own report. It is written after detection,
/// on the scoring side, like the verdict: a detector never sees it.
#[derive(Debug, Clone, Default)]
pub struct About {
    /// Why the training set holds no poisoned sample, when it holds none.
    pub no_poison: Option<String>,
    /// The attack's target class, and the poison's share of it.
    pub target: u8,
    pub target_share: f64,
}

/// The poison's share of the target class from which the Activation Clustering and Spectral Signatures
/// summaries add why their rule fails: the poison is then about as large as the class's clean part, or
/// larger. 0.45 lies between the two MNIST dirty-label rates docs/measured.md gives: ρ = 5 % gives a share
/// near 0.35 (AC finds the poison, SS ranks it above chance), ρ = 10 % near 0.53 (both at or below
/// chance); the margin under a half keeps small splits, whose share scatters, on the failing side.
pub const POISON_MAJORITY: f64 = 0.45;

impl About {
    /// Whether the poison is about half of the target class or more (see `POISON_MAJORITY`).
    pub fn poison_majority(&self) -> bool {
        self.target_share >= POISON_MAJORITY
    }
}

/// A percentage without decimals, as the summaries print shares.
pub fn pct0(x: f64) -> String {
    format!("{:.0}", 100.0 * x)
}

/// An optional AUROC as summaries print it.
pub fn auroc_text(a: Option<f64>, digits: usize) -> String {
    a.map_or_else(|| "—".into(), |a| format!("{a:.digits$}"))
}

/// A training-data filter's figures: its rates against the poison, or, with none to find, how many
/// clean samples it flagged.
pub fn data_figures(s: &DataScore) -> Vec<(&'static str, String)> {
    if s.poisoned == 0 {
        return vec![("flagged (all clean)", s.flagged.to_string())];
    }
    vec![
        ("flagged", s.flagged.to_string()),
        ("TPR", format!("{:.3}", s.tpr)),
        ("FPR", format!("{:.3}", s.fpr)),
        ("precision", format!("{:.3}", s.precision)),
        ("F1", format!("{:.3}", s.f1)),
        ("AUROC", auroc_text(s.auroc, 3)),
    ]
}

/// The verdict of a training-data filter that flagged `flagged` samples of a clean training set.
pub fn clean_verdict(why: &str, flagged: usize) -> String {
    format!("{why} The {flagged} samples it flags are all clean.")
}

/// The attack's ground truth, for scoring and pictures only: `run_all` builds it from the run's
/// input and hands it to `Detector::score` after the detector has decided.
pub struct GroundTruth<'a> {
    /// Per training sample: poisoned?
    pub poisoned: &'a [bool],
    /// The training labels the victim trained on, and the labels the samples truly have.
    pub labels: &'a [u8],
    pub true_labels: &'a [u8],
    pub answers: &'a Answers,
}

/// What the matrix needs to judge a detector: the attack's target, and whether there is a backdoor.
#[derive(Debug, Clone, Copy)]
pub struct Truth {
    pub target: u8,
    /// False for `attack=none`: then flagging nothing is the right answer.
    pub backdoored: bool,
}

/// A detector's result in one line, for tables that compare many runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// What it said, e.g. "flags class 0" or "flags 812 samples".
    pub said: String,
    /// How right that was, from 0 (missed, or raised a false alarm) to 1 (found exactly the backdoor,
    /// or rightly found nothing); `None` where the detector's answer cannot be judged (STRIP on a clean
    /// model: no triggered input exists).
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auroc: Option<f64>,
}

impl Verdict {
    /// A training-data filter's verdict: F1 against the poisoned samples, or, with none to find, the
    /// share of clean samples it left alone.
    pub fn data(score: &DataScore) -> Self {
        let said = format!("flags {} samples", score.flagged);
        if score.poisoned == 0 {
            return Self { said, score: Some(1.0 - score.fpr), f1: None, auroc: None };
        }
        Self { said, score: Some(score.f1), f1: Some(score.f1), auroc: score.auroc }
    }
}

/// The detectors to run, a comma list of link names.
pub const DETECT: ParamInfo = other("detect", Kind::Methods(Family(DetectSpec::REGISTRY)), Hint::Checkboxes)
    .selector()
    .label("detectors")
    .doc("Detectors to run after training, comma-separated (or none).");

/// The registry: `link_name: Type`, in the order detectors run and appear in links and reports.
/// The link name is also the key in the spec's JSON and in REPORT.json.
macro_rules! detectors {
    ($($name:ident: $ty:ty),+ $(,)?) => {
        /// The detectors a spec chose, each with its parameters (`None` = not chosen).
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct DetectSpec {
            $(#[serde(skip_serializing_if = "Option::is_none")] pub $name: Option<$ty>,)+
        }

        /// What the chosen detectors found, as written to REPORT.json under `detect`.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct DetectReport {
            $(#[serde(skip_serializing_if = "Option::is_none")] pub $name: Option<<$ty as Detector>::Report>,)+
            /// Wall time of all detectors together, seconds.
            #[serde(skip_serializing_if = "is_zero")]
            pub seconds: f64,
        }

        crate::method_set!(DetectSpec, Detector, $($name: $ty),+);

        impl DetectReport {
            pub fn is_empty(&self) -> bool {
                true $(&& self.$name.is_none())+
            }

            /// Each detector that ran, in registry order: its link name, title and summary.
            pub fn summaries(&self, about: &About) -> Vec<(&'static str, &'static str, Summary)> {
                let mut out = Vec::new();
                $(if let Some(r) = &self.$name {
                    out.push((stringify!($name), <$ty as Detector>::TITLE, <$ty as Detector>::summary(r, about)));
                })+
                out
            }

            /// Each detector that ran, by link name, with its verdict.
            pub fn verdicts(&self, truth: &Truth) -> Vec<(&'static str, Verdict)> {
                let mut out = Vec::new();
                $(if let Some(r) = &self.$name { out.push((stringify!($name), <$ty as Detector>::verdict(r, truth))); })+
                out
            }
        }

        /// Runs the detectors `chosen` on a trained model, reporting `Event::Detect` progress; the browser
        /// worker calls this on its own to run detection on demand after training.
        pub async fn run_all(
            chosen: &DetectSpec,
            input: &DetectInput<'_>,
            device: &Device,
            host: &mut dyn Host,
        ) -> Result<DetectReport> {
            chosen.validate().map_err(LabError::spec)?;
            let start = host.now();
            let mut cx = Cx::new(input, device, host, "")?;
            let poisoned = input.poisoned.is_poisoned();
            let truth = GroundTruth {
                poisoned: &poisoned,
                labels: &input.poisoned.set.labels,
                true_labels: &input.poisoned.true_labels,
                answers: &input.answers,
            };
            let mut report = DetectReport::default();
            $(if let Some(d) = &chosen.$name {
                cx.detector = stringify!($name);
                let found = d.detect(&mut cx).await?;
                report.$name = Some(d.score(found, &truth));
            })+
            report.seconds = cx.host.now() - start;
            Ok(report)
        }
    };
}

detectors! {
    nc: NeuralCleanse,
    ac: ActivationClustering,
    ss: SpectralSignatures,
    strip: Strip,
    loss: LossIsolation,
    occlusion: Occlusion,
}

impl DetectSpec {
    pub fn is_empty(&self) -> bool {
        self.chosen().is_empty()
    }

    /// Chooses exactly the detectors `names` (comma-separated link names; empty or `none` for none),
    /// keeping the parameters of those already chosen.
    pub fn choose(&mut self, names: &str) -> Result<()> {
        let names = method_list(names, Self::NAMES, "detector").map_err(LabError::spec)?;
        self.keep_only(&names);
        Ok(())
    }
}

impl Params for DetectSpec {
    fn params(&self) -> Vec<&'static ParamInfo> {
        let mut out = vec![&DETECT];
        out.extend(self.chosen_params().into_iter().flat_map(|d| d.params()));
        out
    }
    fn get(&self, key: &str) -> Option<String> {
        if key == DETECT.key {
            return Some(self.chosen().join(","));
        }
        self.chosen_params().into_iter().find_map(|d| d.get(key))
    }
    /// A key of a detector that is not chosen says which one to choose.
    fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
        if key == DETECT.key {
            return Some(self.choose(value).map_err(|e| e.to_string()));
        }
        if let Some(done) = self.chosen_params_mut().into_iter().find_map(|d| d.set(key, value)) {
            return Some(done);
        }
        let owner = Self::REGISTRY.iter().find(|m| (m.params)().iter().any(|p| p.key == key))?;
        let name = owner.name;
        Some(Err(format!("link key '{key}' applies only when {name} is chosen (detect={name})")))
    }
    fn validate(&self) -> std::result::Result<(), String> {
        self.chosen_params().into_iter().try_for_each(|d| d.validate())
    }
}

/// Every detector parameter and the choice of detectors, each key once (CLI flags, docs).
pub fn every_param() -> Vec<&'static ParamInfo> {
    let mut out = vec![&DETECT];
    out.extend(DetectSpec::REGISTRY.iter().flat_map(|m| (m.params)()));
    out
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// Model inspection: looks at the trained model itself (and a few clean images).
#[allow(async_fn_in_trait)] // the lab runs on one thread (the browser worker): no Send bound needed
pub trait ModelInspector {
    type Report;
    async fn inspect(&self, cx: &mut Cx<'_>) -> Result<Self::Report>;
}

/// A data-level verdict: a suspicion score for every training sample (higher = more suspicious),
/// the samples flagged, and the picture that explains them.
#[derive(Debug, Clone)]
pub struct Filtered<P> {
    pub scores: Vec<f64>,
    pub flagged: Vec<bool>,
    pub picture: P,
}

/// Training-data filtering: which training samples look poisoned.
#[allow(async_fn_in_trait)]
pub trait DataFilter {
    type Picture;
    async fn filter(&self, cx: &mut Cx<'_>) -> Result<Filtered<Self::Picture>>;
}

/// Run-time input filtering: which inputs carry a trigger.
#[allow(async_fn_in_trait)]
pub trait InputFilter {
    type Report;
    async fn screen(&self, cx: &mut Cx<'_>) -> Result<Self::Report>;
}

/// What detectors may look at: how the model was trained (not the experiment's spec), the trained
/// model, the (poisoned) training set, the clean test set (the defender's held-out clean images) and
/// its triggered copies. The ground truth (`poisoned` indices, `answers`) is only for scoring and
/// pictures, never for decisions. A finished run builds one with `run::Outcome::detect_input`.
pub struct DetectInput<'a> {
    pub setting: Setting,
    pub model: &'a Model,
    pub poisoned: &'a Poisoned,
    pub test: &'a ImageSet,
    pub triggered: &'a TriggeredTest,
    pub answers: Answers,
}

/// What the attacker did, as far as scoring needs it: the trigger and the target. For scores and
/// pictures only; a detector's verdict must not depend on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    pub trigger: Trigger,
    pub target: u8,
}

/// A detector's working context: the input, the device, progress reporting and shared features.
pub struct Cx<'a> {
    pub setting: &'a Setting,
    /// The model without autodiff (detectors that need gradients wrap only their own inputs).
    pub model: Model,
    pub train: &'a ImageSet,
    pub test: &'a ImageSet,
    /// The suspicious inputs a defender meets at run time (the test images with the trigger; their
    /// labels are the true ones), and the clean test image each was made from. Not the target.
    pub triggered: &'a ImageSet,
    pub triggered_source: &'a [usize],
    pub device: &'a Device,
    host: &'a mut dyn Host,
    detector: &'static str,
    features: Option<Rc<Vec<f64>>>,
}

impl Cx<'_> {
    /// Reports progress of the running detector and lets the host run (and cancel).
    pub async fn progress(&mut self, done: usize, total: usize) -> Result<()> {
        let event = Event::Detect { detector: self.detector.to_string(), done, total };
        if self.host.emit(&event).is_break() {
            return Err(LabError::Cancelled);
        }
        self.host.pause().await;
        Ok(())
    }

    /// The host's clock, seconds: each detector times itself.
    pub fn now(&self) -> f64 {
        self.host.now()
    }

    /// Forwards any host event (used to relay a nested training loop).
    pub fn host(&mut self) -> &mut dyn Host {
        self.host
    }

    /// A random stream for this detector, derived from the run's seed.
    pub fn rng(&self) -> LabRng {
        let salt = self.detector.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        LabRng::new(self.setting.seed ^ salt, Stream::Detect)
    }

    /// Penultimate features of every training sample, [n, FEATURES] row-major, computed once.
    pub async fn train_features(&mut self) -> Result<Rc<Vec<f64>>> {
        if let Some(f) = &self.features {
            return Ok(f.clone());
        }
        let (model, train, device) = (self.model.clone(), self.train, self.device);
        let features =
            batched(train, device, |x| model.features(x), async |done, total| self.progress(done, total).await);
        let f = Rc::new(features.await?.into_iter().map(f64::from).collect::<Vec<_>>());
        self.features = Some(f.clone());
        Ok(f)
    }
}

impl<'a> Cx<'a> {
    /// A context for running one detector on its own (repairs reuse detectors this way); its
    /// progress is reported as `Event::Detect { detector: name }`.
    pub fn new(
        input: &'a DetectInput<'a>,
        device: &'a Device,
        host: &'a mut dyn Host,
        name: &'static str,
    ) -> Result<Self> {
        Ok(Self {
            setting: &input.setting,
            model: input.model.valid(),
            train: &input.poisoned.set,
            test: input.test,
            triggered: &input.triggered.set,
            triggered_source: &input.triggered.source,
            device,
            host,
            detector: name,
            features: None,
        })
    }
}
