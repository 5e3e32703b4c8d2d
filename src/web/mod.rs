//! The browser app: a Leptos page (`app` and the modules below it) and the lab engine in a Web Worker
//! (`worker`), talking through serde messages (`protocol`). Only the worker links burn; the page stays small.

pub mod app;
pub mod chart;
pub mod pictures;
pub mod protocol;
pub mod worker;

// The page, one module per concern; only `app::start` is reached from outside.
mod challenge;
mod client;
mod controls;
mod data;
mod detect;
mod draw;
mod export;
mod grid;
mod lessons;
mod poison;
mod repair;
mod results;
mod sanitize;
mod share;
mod storage;
mod sweep;
mod train;
mod transfer;
