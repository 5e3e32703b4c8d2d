//! What a run reports (REPORT.json): its spec and link, the poison, the metrics per epoch and at the
//! end, the detectors' and repairs' reports, the transfer, and the time each stage took.

use serde::{Deserialize, Serialize};

use crate::lab::detect::{self, DetectReport};
use crate::lab::eval::Metrics;
use crate::lab::event::EpochRecord;
use crate::lab::repair::RepairReport;
use crate::lab::spec::ExperimentSpec;
use crate::lab::transfer::TransferReport;

/// Wall time per stage, seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageSeconds {
    pub data: f64,
    pub poison: f64,
    pub train: f64,
    pub evaluate: f64,
    /// All chosen detectors together (0 when none ran).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub detect: f64,
    /// All chosen repairs together (0 when none ran).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub repair: f64,
    /// The transfer victim's fine-tuning, every freeze mode (0 when there was none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub transfer: f64,
    pub total: f64,
}

/// What was poisoned (the ground truth detectors are scored against).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoisonSummary {
    pub count: usize,
    /// Indices into the spec's training split.
    pub indices: Vec<usize>,
    /// Share of the training samples labelled with the target class that are poisoned.
    pub target_class_share: f64,
}

/// One test image shown with and without the trigger, with the model's predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub test_index: usize,
    pub label: u8,
    pub clean_pred: u8,
    pub triggered_pred: u8,
}

/// The result of a run, as written to REPORT.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub spec: ExperimentSpec,
    pub link: String,
    #[serde(rename = "final")]
    pub final_metrics: Metrics,
    pub epochs: Vec<EpochRecord>,
    pub device: String,
    pub seconds: StageSeconds,
    /// Training throughput over all epochs (excluding per-epoch evaluation).
    pub train_samples_per_second: f64,
    pub poison: PoisonSummary,
    pub examples: Vec<Example>,
    pub version: String,
    /// What the spec's detectors found; absent when none was chosen.
    #[serde(default, skip_serializing_if = "DetectReport::is_empty")]
    pub detect: DetectReport,
    /// What the spec's repairs achieved against the suspect model; absent when none was chosen.
    #[serde(default, skip_serializing_if = "RepairReport::is_empty")]
    pub repair: RepairReport,
    /// The model file scanned in place of training (`backdoor-lab scan`, the page's model import).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanned: Option<Scanned>,
    /// A victim's fine-tuning of the model as a pre-trained base; absent when the spec has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferReport>,
    /// With an input sanitizer: the same model measured on the raw test inputs (`final` is measured
    /// through the sanitizer, as deployed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_unsanitized: Option<Metrics>,
    /// With an input sanitizer: its defense-effectiveness rating against the raw inputs and its cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sanitize: Option<SanitizeReport>,
    /// For a semantic attack: how the rest of the sub-population's class fares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_class: Option<SourceClass>,
    /// With DP-SGD: the privacy the training spent, (ε, δ = 1/N) from the RDP accountant. Per
    /// sample: by group privacy a set of k poisons gets only (kε, k·e^{(k−1)ε}δ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<crate::lab::dp::Privacy>,
}

impl Report {
    /// What detector summaries may say of this run beyond their own reports: why its training set holds
    /// no poison (when it holds none), and the poison's share of the target class.
    pub fn about(&self) -> detect::About {
        let no_poison = (self.poison.count == 0).then(|| {
            let why = if self.scanned.is_some() {
                "the model was scanned from a file, so the lab's clean split stands in for the data it was trained on"
            } else if self.spec.attack.method.loss_weight().is_some() {
                "the attacker changed the training loss, not the data, so no data audit can find this backdoor; only the model can give it away"
            } else if self.spec.attack.method.branch().is_some() {
                "the backdoor is a branch of the architecture, not in the data or the weights; only inspecting the model's graph finds it"
            } else {
                "no attack poisoned it"
            };
            format!("Nothing to find: the training set holds no poisoned sample ({why}).")
        });
        detect::About { no_poison, target: self.spec.attack.target_label, target_share: self.poison.target_class_share }
    }
}

/// What an input sanitizer achieved, measured like a repair against the unsanitized model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SanitizeReport {
    pub der: f64,
    /// Sanitizing the test inputs and predicting them again.
    pub seconds: f64,
}

/// The class a semantic (or source-specific) attack aims from: its members in training and test, and
/// the clean accuracy on the test images of the class that are not members (the ASR's inputs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceClass {
    pub class: u8,
    /// Poisoned training samples of the class.
    pub train_members: usize,
    /// Test inputs ASR is measured on.
    pub test_members: usize,
    /// Test images of the class outside those.
    pub rest: usize,
    /// Clean accuracy on them.
    pub rest_ca: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// Where a scanned model came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scanned {
    /// The file's name as the user gave it.
    pub file: String,
    pub format: String,
}
