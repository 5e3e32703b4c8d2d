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

use crate::lab::attack::{Poisoned, Trigger, TriggeredTest};
use crate::lab::data::{ImageSet, batch};
use crate::lab::error::{LabError, Result};
use crate::lab::eval::EVAL_BATCH;
use crate::lab::event::{Event, Host};
use crate::lab::model::{FEATURES, Model};
use crate::lab::rng::{LabRng, Stream};
use crate::lab::spec::ExperimentSpec;

/// The detectors a spec chose, each with its parameters (`None` = not chosen).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nc: Option<NeuralCleanse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ac: Option<ActivationClustering>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ss: Option<SpectralSignatures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strip: Option<Strip>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<LossIsolation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occlusion: Option<Occlusion>,
}

impl DetectSpec {
    /// Link names of the detectors, in the order they run and appear in links.
    pub const NAMES: [&'static str; 6] = ["nc", "ac", "ss", "strip", "loss", "occlusion"];

    pub fn is_empty(&self) -> bool {
        self.chosen().is_empty()
    }

    /// Names of the chosen detectors, in `NAMES` order.
    pub fn chosen(&self) -> Vec<&'static str> {
        let on = [
            self.nc.is_some(),
            self.ac.is_some(),
            self.ss.is_some(),
            self.strip.is_some(),
            self.loss.is_some(),
            self.occlusion.is_some(),
        ];
        Self::NAMES.iter().zip(on).filter(|(_, on)| *on).map(|(n, _)| *n).collect()
    }

    /// Every detector with its default parameters (for registry tests and "run all" buttons).
    pub fn all() -> Self {
        Self {
            nc: Some(NeuralCleanse::default()),
            ac: Some(ActivationClustering::default()),
            ss: Some(SpectralSignatures::default()),
            strip: Some(Strip::default()),
            loss: Some(LossIsolation::default()),
            occlusion: Some(Occlusion::default()),
        }
    }

    /// Chooses exactly the detectors `names` (comma-separated link names; empty or `none` for none),
    /// keeping the parameters of those already chosen.
    pub fn choose(&mut self, names: &str) -> Result<()> {
        let names: Vec<&str> = names.split(',').map(str::trim).filter(|n| !n.is_empty() && *n != "none").collect();
        if let Some(bad) = names.iter().find(|n| !Self::NAMES.contains(n)) {
            return Err(LabError::spec(format!("unknown detector '{bad}' (one of {})", Self::NAMES.join(", "))));
        }
        let wants = |n: &str| names.contains(&n);
        fn keep<T: Default>(slot: &mut Option<T>, on: bool) {
            *slot = if on { slot.take().or_else(|| Some(T::default())) } else { None };
        }
        keep(&mut self.nc, wants("nc"));
        keep(&mut self.ac, wants("ac"));
        keep(&mut self.ss, wants("ss"));
        keep(&mut self.strip, wants("strip"));
        keep(&mut self.loss, wants("loss"));
        keep(&mut self.occlusion, wants("occlusion"));
        Ok(())
    }

    /// Checks every chosen detector's parameters; messages name the link key and the range.
    pub fn validate(&self) -> Result<()> {
        let checks: [Option<std::result::Result<(), String>>; 6] = [
            self.nc.as_ref().map(NeuralCleanse::validate),
            self.ac.as_ref().map(ActivationClustering::validate),
            self.ss.as_ref().map(SpectralSignatures::validate),
            self.strip.as_ref().map(Strip::validate),
            self.loss.as_ref().map(LossIsolation::validate),
            self.occlusion.as_ref().map(Occlusion::validate),
        ];
        checks.into_iter().flatten().collect::<std::result::Result<(), String>>().map_err(LabError::spec)
    }
}

/// What the chosen detectors found, as written to REPORT.json under `detect`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DetectReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nc: Option<NcReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ac: Option<AcReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ss: Option<SsReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strip: Option<StripReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<LossReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occlusion: Option<OcclusionReport>,
    /// Wall time of all detectors together, seconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub seconds: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl DetectReport {
    pub fn is_empty(&self) -> bool {
        self.nc.is_none()
            && self.ac.is_none()
            && self.ss.is_none()
            && self.strip.is_none()
            && self.loss.is_none()
            && self.occlusion.is_none()
    }
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

/// What detectors may look at: the trained model, the (poisoned) training set, the clean test set
/// (the defender's held-out clean images) and its triggered copies. The ground truth (`poisoned`
/// indices, the trigger) is only for scoring and pictures, never for decisions.
pub struct DetectInput<'a> {
    pub spec: &'a ExperimentSpec,
    pub model: &'a Model,
    pub poisoned: &'a Poisoned,
    pub test: &'a ImageSet,
    pub triggered: &'a TriggeredTest,
}

impl<'a> DetectInput<'a> {
    /// The input of a finished run.
    pub fn of(outcome: &'a crate::lab::run::Outcome) -> Self {
        Self {
            spec: &outcome.report.spec,
            model: &outcome.model,
            poisoned: &outcome.poisoned,
            test: &outcome.split.test,
            triggered: &outcome.triggered,
        }
    }
}

/// A detector's working context: the input, the device, progress reporting and shared features.
pub struct Cx<'a> {
    pub spec: &'a ExperimentSpec,
    /// The model without autodiff (detectors that need gradients wrap only their own inputs).
    pub model: Model,
    pub train: &'a ImageSet,
    pub test: &'a ImageSet,
    pub triggered: &'a TriggeredTest,
    pub trigger: Trigger,
    /// Per training sample: poisoned? Ground truth for pictures only, never for decisions.
    pub truth: Vec<bool>,
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

    /// Forwards any host event (used to relay a nested training loop).
    pub fn host(&mut self) -> &mut dyn Host {
        self.host
    }

    /// A random stream for this detector, derived from the spec's seed.
    pub fn rng(&self) -> LabRng {
        let salt = self.detector.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        LabRng::new(self.spec.seed ^ salt, Stream::Detect)
    }

    /// Penultimate features of every training sample, [n, FEATURES] row-major, computed once.
    pub async fn train_features(&mut self) -> Result<Rc<Vec<f64>>> {
        if let Some(f) = &self.features {
            return Ok(f.clone());
        }
        let all: Vec<usize> = (0..self.train.len()).collect();
        let mut out = Vec::with_capacity(all.len() * FEATURES);
        let chunks = all.len().div_ceil(EVAL_BATCH);
        for (k, chunk) in all.chunks(EVAL_BATCH).enumerate() {
            let f = self.model.features(batch::images(self.train, chunk, self.device));
            out.extend(read_floats(f).await?.into_iter().map(f64::from));
            self.progress(k + 1, chunks).await?;
        }
        let f = Rc::new(out);
        self.features = Some(f.clone());
        Ok(f)
    }
}

impl<'a> Cx<'a> {
    /// A context for running one detector on its own (repairs reuse detectors this way); its
    /// progress is reported as `Event::Detect { detector: name }`.
    pub fn new(
        input: &DetectInput<'a>,
        device: &'a Device,
        host: &'a mut dyn Host,
        name: &'static str,
    ) -> Result<Self> {
        Ok(Self {
            spec: input.spec,
            model: input.model.valid(),
            train: &input.poisoned.set,
            test: input.test,
            triggered: input.triggered,
            trigger: input.spec.attack.trigger(input.spec.dims(), input.spec.seed)?,
            truth: input.poisoned.is_poisoned(),
            device,
            host,
            detector: name,
            features: None,
        })
    }
}

/// Reads a float tensor back to the host, asynchronously (a synchronous read panics on WebGPU).
pub async fn read_floats<const D: usize>(t: burn::tensor::Tensor<D>) -> Result<Vec<f32>> {
    let data = t.into_data_async().await.map_err(|e| LabError::Device(format!("{e:?}")))?;
    data.try_into_vec::<f32>().map_err(|e| LabError::Device(format!("{e:?}")))
}

/// Runs the detectors `chosen` on a trained model, reporting `Event::Detect` progress; the browser
/// worker calls this on its own to run detection on demand after training.
pub async fn run_all(
    chosen: &DetectSpec,
    input: &DetectInput<'_>,
    device: &Device,
    host: &mut dyn Host,
) -> Result<DetectReport> {
    chosen.validate()?;
    let start = host.now();
    let trigger = input.spec.attack.trigger(input.spec.dims(), input.spec.seed)?;
    let truth = input.poisoned.is_poisoned();
    let mut cx = Cx {
        spec: input.spec,
        model: input.model.valid(),
        train: &input.poisoned.set,
        test: input.test,
        triggered: input.triggered,
        trigger,
        truth: truth.clone(),
        device,
        host,
        detector: "",
        features: None,
    };
    let mut report = DetectReport::default();
    if let Some(d) = &chosen.nc {
        let t = begin(&mut cx, "nc");
        let mut r = d.inspect(&mut cx).await?;
        r.seconds = cx.host.now() - t;
        report.nc = Some(r);
    }
    if let Some(d) = &chosen.ac {
        let t = begin(&mut cx, "ac");
        let f = d.filter(&mut cx).await?;
        report.ac = Some(AcReport::new(d, f, &truth, cx.host.now() - t));
    }
    if let Some(d) = &chosen.ss {
        let t = begin(&mut cx, "ss");
        let f = d.filter(&mut cx).await?;
        report.ss =
            Some(SsReport::new(d, f, &truth, &cx.train.labels, input.spec.attack.target_label, cx.host.now() - t));
    }
    if let Some(d) = &chosen.strip {
        let t = begin(&mut cx, "strip");
        let mut r = d.screen(&mut cx).await?;
        r.seconds = cx.host.now() - t;
        report.strip = Some(r);
    }
    if let Some(d) = &chosen.loss {
        let t = begin(&mut cx, "loss");
        let f = d.filter(&mut cx).await?;
        report.loss = Some(LossReport::new(d, f, &truth, cx.host.now() - t));
    }
    if let Some(d) = &chosen.occlusion {
        let t = begin(&mut cx, "occlusion");
        let mut r = d.inspect(&mut cx).await?;
        r.seconds = cx.host.now() - t;
        report.occlusion = Some(r);
    }
    report.seconds = cx.host.now() - start;
    Ok(report)
}

fn begin(cx: &mut Cx<'_>, name: &'static str) -> f64 {
    cx.detector = name;
    cx.host.now()
}
