//! Backdoor Lab: the lab core (`lab`, pure Rust) and, in wasm builds, the browser app (`web`).

pub mod lab;

#[cfg(target_arch = "wasm32")]
pub mod web;
