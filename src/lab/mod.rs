//! The lab core: pure Rust, no web crates. It compiles and tests natively and for wasm32.
//!
//! Its modules stand in layers (`LAYERS`, lowest first): a module uses only modules of the layers below
//! its own, so the code reads in one direction, from the data up to the run and the grids. The page
//! (`crate::web`) and the command line (`crate::cli`) sit above all of them. `tests/layers.rs` reads
//! every `crate::lab::` path in `src/lab` and fails on one that points up or sideways.

pub mod attack;
pub mod augment;
pub mod challenge;
pub mod data;
pub mod defense;
pub mod detect;
pub mod device;
pub mod dp;
pub mod error;
pub mod eval;
pub mod event;
pub mod grid;
pub mod model;
pub mod model_file;
pub mod params;
pub mod repair;
pub mod rng;
pub mod run;
pub mod setting;
pub mod spec;
pub mod train;
pub mod transfer;

/// The lab's layers, lowest first; the modules of one layer do not use each other.
pub const LAYERS: &[&[&str]] = &[
    // Words every layer shares: errors, random streams, progress events, parameter tables.
    &["error", "rng", "event", "params"],
    // Images and labels, and where they come from.
    &["data"],
    // What is done to images and what learns from them: augmentations, input sanitizers, architectures.
    &["augment", "defense", "model"],
    // Devices (and their self-check, and reading tensors back), model files; then evaluation.
    &["device", "model_file"],
    &["eval"],
    // Training: DP-SGD's per-sample gradients, then the training loop.
    &["dp"],
    &["train"],
    // What a defender knows of a run; fine-tuning a trained model on new data.
    &["setting", "transfer"],
    // The attacks (crafting attacks train a surrogate, so they sit above training).
    &["attack"],
    // The defenses, which never see the spec (`setting`), then the spec that names them all.
    &["detect"],
    &["repair"],
    &["spec"],
    // A whole run, then what is built of runs: challenges and grids.
    &["run"],
    &["challenge", "grid"],
];

pub use error::{LabError, Result};
pub use spec::ExperimentSpec;
