//! Events that long work emits, so a UI can plot, show progress and cancel, and the CLI can draw bars.

use serde::{Deserialize, Serialize};

/// The stages of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Data,
    Poison,
    Train,
    Evaluate,
}

/// Metrics after one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub loss: f64,
    pub clean_acc: f64,
    pub asr: f64,
    /// Wall time of the epoch's training (without evaluation), seconds.
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A stage begins.
    Stage { stage: Stage },
    /// One training batch is done.
    Batch {
        epoch: usize,
        batch: usize,
        batches: usize,
        loss: f64,
    },
    /// One epoch is done and evaluated.
    Epoch(EpochRecord),
}
