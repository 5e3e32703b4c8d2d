//! Messages between the page and the lab worker, sent as JSON strings through `postMessage`.

use serde::{Deserialize, Serialize};

use crate::lab::attack::AttackSpec;
use crate::lab::data::DatasetKind;
use crate::lab::detect::{DetectReport, DetectSpec};
use crate::lab::event::Event;
use crate::lab::grid::RunResult;
use crate::lab::repair::{RepairReport, RepairSpec};
use crate::lab::run::Report;
use crate::lab::spec::ExperimentSpec;
use crate::lab::transfer::{TransferReport, TransferSpec};

/// Which device the page asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DevicePreference {
    /// WebGPU when the browser offers it and it passes the self-check, else the CPU.
    #[default]
    Auto,
    /// The CPU even when WebGPU is there.
    Cpu,
}

/// Page → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    /// Run an experiment.
    Run {
        spec: ExperimentSpec,
        #[serde(default)]
        device: DevicePreference,
    },
    /// Stop the current run at the next batch.
    Cancel,
    /// Load a dataset that does not ship with the page bundle (CIFAR-10): from the site, or from
    /// files the user picked, which travel beside the message (`{msg, files}`).
    LoadData { dataset: DatasetKind },
    /// Run detectors on the model of the last finished run (no retraining).
    Detect { detect: DetectSpec },
    /// Run repairs on the model of the last finished run (no retraining of the suspect model).
    Repair { repair: RepairSpec },
    /// Scan a model file the user picked (it travels beside the message, `{msg, files}`): evaluate it
    /// and run the spec's detectors and repairs on it; `spec.model` names its architecture.
    Scan {
        spec: ExperimentSpec,
        #[serde(default)]
        device: DevicePreference,
    },
    /// Send the last run's model back as a safetensors file.
    SaveModel,
    /// A transfer victim fine-tunes the last run's model (no retraining of the base).
    Transfer { finetune: TransferSpec },
    /// Measure the scanned model again with this guess of its attack (trigger and target).
    Measure { attack: AttackSpec },
    /// Run the runs `runs` (plan indices) of the grid `grid` (its link), training each shared model
    /// once, and report each run as it finishes (the page's Compare step: one job per worker).
    Grid {
        grid: String,
        runs: Vec<usize>,
        #[serde(default)]
        device: DevicePreference,
    },
    /// Run these experiments one after the other, reporting CA and ASR of each (a sweep).
    Sweep {
        specs: Vec<ExperimentSpec>,
        #[serde(default)]
        device: DevicePreference,
    },
}

/// Worker → page.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWorker {
    /// The worker has loaded; `device` is what a run with `Auto` would use, `note` says why.
    Ready {
        device: String,
        note: String,
    },
    /// The device of the run starting now, or a switch mid-run (e.g. to the CPU after a GPU failure).
    Device {
        device: String,
        note: String,
    },
    /// A lab event (stage, batch, epoch).
    Event {
        event: Event,
    },
    Done {
        report: Box<Report>,
    },
    Cancelled,
    Failed {
        message: String,
    },
    /// A dataset is loaded; its records (CIFAR format) travel beside the message (`{msg, train, test}`)
    /// for the page's previews.
    DataLoaded {
        dataset: DatasetKind,
        note: String,
        train: usize,
        test: usize,
    },
    /// What on-demand detectors found on the last run's model.
    Detected {
        report: Box<DetectReport>,
    },
    /// What on-demand repairs achieved on the last run's model.
    Repaired {
        report: Box<RepairReport>,
    },
    /// One experiment of a sweep is done.
    SweepPoint {
        index: usize,
        clean_acc: f64,
        asr: f64,
    },
    /// Every experiment of the sweep is done.
    SweepDone,
    /// One run of a grid job is done.
    GridRun {
        result: Box<RunResult>,
    },
    /// One run of a grid job could not run (its message says why); the job goes on.
    GridRunFailed {
        index: usize,
        message: String,
    },
    /// The grid job is done; it trained this many models.
    GridDone {
        trainings: usize,
    },
    /// How the last run's model fared as a transfer victim's base.
    Transferred {
        report: Box<TransferReport>,
    },
    /// The scanned model's report, measured again with the page's guess of its attack.
    Measured {
        report: Box<Report>,
    },
    /// The last run's model as a safetensors file; its bytes travel beside the message (`{msg, bytes}`).
    ModelFile {
        file: String,
    },
    /// A dataset could not be loaded (not shipped, or the picked files are not CIFAR-10).
    DataFailed {
        dataset: DatasetKind,
        message: String,
    },
}

impl ToWorker {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("messages always serialise")
    }
}

impl FromWorker {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("messages always serialise")
    }
}
