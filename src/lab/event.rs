//! Events that long work emits, so a UI can plot, show progress and cancel, and the CLI can draw bars.

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// The stages of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Compiling the device's kernels and checking its answers against the CPU (WebGPU only).
    Warmup,
    Data,
    Poison,
    Train,
    Evaluate,
    /// The chosen backdoor detectors run.
    Detect,
    /// The chosen repairs run, each evaluated like the original model.
    Repair,
    /// A victim fine-tunes the model on clean data of its own (transfer learning).
    Transfer,
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
    Batch { epoch: usize, batch: usize, batches: usize, loss: f64 },
    /// One epoch is done and evaluated.
    Epoch(EpochRecord),
    /// A detector made progress: `done` of `total` steps (its own unit: optimisation steps, batches, inputs).
    Detect { detector: String, done: usize, total: usize },
    /// A repair made progress: `done` of `total` steps of its current phase (batches, units pruned,
    /// inputs screened; a nested detector's own steps).
    Repair { repair: String, done: usize, total: usize },
    /// An attack crafting its poisons: `done` of `total` steps of `what` (the surrogate's batches, the
    /// optimisation's steps).
    Craft { what: String, done: usize, total: usize },
    /// The transfer victim's fine-tuning with one freeze mode: `done` of `total` batches.
    Transfer { freeze: String, done: usize, total: usize },
}

/// What long work needs from whoever runs it: a clock, somewhere to send events (and learn of a
/// cancel), and a way to let other tasks run. The CLI and the browser worker each implement it.
pub trait Host {
    /// Seconds on a monotonic clock.
    fn now(&self) -> f64;
    /// Receives an event; `Break` cancels the work.
    fn emit(&mut self, event: &Event) -> ControlFlow<()>;
    /// Called between batches: a browser worker yields to its event loop here so that a cancel
    /// message can arrive. Natively there is nothing to wait for.
    fn pause(&mut self) -> Pin<Box<dyn Future<Output = ()> + '_>> {
        Box::pin(std::future::ready(()))
    }
}

/// Relays nested work as progress of the work around it (a detector's own training, a transfer
/// victim's fine-tuning, a repair's retraining or the detector it runs): each batch of a nested
/// training loop becomes `progress(done, total)` with `done` counted here, and a nested detector's
/// progress becomes `progress` at its own count. The loop's epoch records stay inside, so they never
/// reach the run's training curve.
pub struct Relay<'a> {
    pub inner: &'a mut dyn Host,
    pub done: usize,
    pub total: usize,
    pub progress: Box<dyn Fn(usize, usize) -> Event + 'a>,
}

impl Host for Relay<'_> {
    fn now(&self) -> f64 {
        self.inner.now()
    }
    fn emit(&mut self, event: &Event) -> ControlFlow<()> {
        match event {
            Event::Batch { .. } => {
                self.done += 1;
                self.inner.emit(&(self.progress)(self.done, self.total))
            }
            Event::Detect { done, total, .. } => self.inner.emit(&(self.progress)(*done, *total)),
            _ => ControlFlow::Continue(()),
        }
    }
    fn pause(&mut self) -> Pin<Box<dyn Future<Output = ()> + '_>> {
        self.inner.pause()
    }
}
