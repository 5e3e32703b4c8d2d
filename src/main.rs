//! Entry point: natively the CLI; in the browser, the page (the lab itself runs in `bin/worker.rs`).

#[cfg(not(target_arch = "wasm32"))]
mod cli;

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(cli::main());
}

#[cfg(target_arch = "wasm32")]
fn main() {
    backdoor_lab::web::app::start();
}
