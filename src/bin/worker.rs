//! The browser's lab engine: a dedicated Web Worker that runs experiments off the page's thread.

#[cfg(target_arch = "wasm32")]
fn main() {
    backdoor_lab::web::worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {}

/// The worker's WebAssembly memory in bytes (linear memory only grows, so this is its high-water mark):
/// tests/e2e/memory.test.mjs reads it in the worker's scope (`wasm_bindgen.lab_memory_bytes()`) to check
/// that many runs in one tab leave it flat.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn lab_memory_bytes() -> f64 {
    (core::arch::wasm32::memory_size::<0>() * 65_536) as f64
}
