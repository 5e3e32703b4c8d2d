//! The lab core: pure Rust, no web crates. It compiles and tests natively and for wasm32.

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
pub mod spec;
pub mod train;
pub mod transfer;

pub use error::{LabError, Result};
pub use spec::ExperimentSpec;
