//! What a defender knows of a run: how the suspect model was built and trained (the seed, the
//! architecture, the data's kind and shape, the training settings), never what was done to the data.
//! Detectors and repairs receive this, not the experiment's spec, so they cannot read the attack's
//! target or trigger; that ground truth reaches them only as `detect::Answers`, for scoring and
//! pictures.

use crate::lab::data::DatasetKind;
use crate::lab::model::ModelKind;
use crate::lab::train::TrainSpec;

#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// The run's seed; each defense derives its own random streams from it.
    pub seed: u64,
    pub model: ModelKind,
    pub dataset: DatasetKind,
    /// How the suspect model was trained; defenses that train (retraining, isolation) train the same way.
    pub train: TrainSpec,
}

impl Setting {
    /// Image shape (channels, height, width).
    pub fn dims(&self) -> (usize, usize, usize) {
        self.dataset.shape()
    }
}
