//! What the integration tests share: a monotonic clock and the shipped MNIST, loaded once.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use backdoor_lab::lab::data::{DataSource, DatasetKind};

#[allow(dead_code)] // not every test file needs the clock
pub fn clock() -> f64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

pub fn mnist() -> &'static DataSource {
    static DATA: OnceLock<DataSource> = OnceLock::new();
    DATA.get_or_init(|| {
        DataSource::load(DatasetKind::Mnist, &Path::new(env!("CARGO_MANIFEST_DIR")).join("static/data"))
            .expect("the repository ships static/data/mnist.bin")
    })
}
