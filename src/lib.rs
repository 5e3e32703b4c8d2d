//! Backdoor Lab: the lab core (`lab`, pure Rust), the lessons built on it (`lessons`) and, in wasm
//! builds, the browser app (`web`).

pub mod lab;
pub mod lessons;

#[cfg(target_arch = "wasm32")]
pub mod web;
