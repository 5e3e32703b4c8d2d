//! Every native integration test in one binary: the lab and burn are linked once instead of twenty times
//! (about three minutes of a cold CI run on two cores). Each file below is one module, as it was one
//! binary; `cargo test --test all <file>::` runs one of them. tests/wgpu.rs and tests/device.rs stay apart:
//! they need the `wgpu` and `ndarray` features, which the default run leaves out (the extended suite runs
//! them); tests/web.rs runs in the browser.

mod common;

mod arch_backdoor;
mod attacks;
mod augment;
mod challenge;
mod cli;
mod corpus;
mod crafted;
mod defense;
mod detect;
mod dp;
mod end_to_end;
mod full_data;
mod grid;
mod layers;
mod lessons;
mod model_file;
mod params;
mod repair;
mod spec_link;
mod transfer;
