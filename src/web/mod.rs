//! The browser app: a Leptos page (`app`) and the lab engine in a Web Worker (`worker`), talking
//! through serde messages (`protocol`). Only the worker links burn; the page stays small.

pub mod app;
pub mod chart;
pub mod pictures;
pub mod protocol;
pub mod worker;
