//! The browser's lab engine: a dedicated Web Worker that runs experiments off the page's thread.

#[cfg(target_arch = "wasm32")]
fn main() {
    backdoor_lab::web::worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {}
