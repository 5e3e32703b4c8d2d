//! Messages between the page and the lab worker, sent as JSON strings through `postMessage`.

use serde::{Deserialize, Serialize};

use crate::lab::event::Event;
use crate::lab::run::Report;
use crate::lab::spec::ExperimentSpec;

/// Page → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    /// Run an experiment.
    Run { spec: ExperimentSpec },
    /// Stop the current run at the next batch.
    Cancel,
}

/// Worker → page.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWorker {
    /// The worker has loaded and chosen its device.
    Ready {
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
