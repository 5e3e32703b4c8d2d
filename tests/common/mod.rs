//! What the integration tests share: a monotonic clock, the shipped MNIST (loaded once) and a quiet host.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use backdoor_lab::lab::data::{DataSource, DatasetKind};
use backdoor_lab::lab::event::{Event, Host};

#[allow(dead_code)] // not every test file needs the clock
pub fn clock() -> f64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

#[allow(dead_code)] // not every test file trains
pub fn mnist() -> &'static DataSource {
    static DATA: OnceLock<DataSource> = OnceLock::new();
    DATA.get_or_init(|| {
        DataSource::load(DatasetKind::Mnist, &Path::new(env!("CARGO_MANIFEST_DIR")).join("static/data"))
            .expect("the repository ships static/data/mnist.bin")
    })
}

/// Whether a test that reads the example model beside the clone (../shared/reference) should skip:
/// only where the environment says ../shared may be absent (the public deployment workflow sets
/// `BDL_SHARED_OPTIONAL=1`) and it is. Everywhere else a missing file fails the test.
#[allow(dead_code)] // only the tests that read ../shared use it
pub fn skip_without_shared() -> bool {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/example");
    let skip = std::env::var_os("BDL_SHARED_OPTIONAL").is_some_and(|v| v == "1") && !example.exists();
    if skip {
        eprintln!("skipped: {} is absent and BDL_SHARED_OPTIONAL=1", example.display());
    }
    skip
}

/// A host that keeps every event and never cancels: runs whose events a test reads afterwards.
#[allow(dead_code)] // not every test file reads events
#[derive(Default)]
pub struct Recorder(pub Vec<Event>);

impl Host for Recorder {
    fn now(&self) -> f64 {
        clock()
    }
    fn emit(&mut self, e: &Event) -> ControlFlow<()> {
        self.0.push(e.clone());
        ControlFlow::Continue(())
    }
}

/// A host that shows nothing and never cancels: runs whose events a test does not read.
#[allow(dead_code)] // not every test file runs the pipeline
pub struct Quiet;

impl Host for Quiet {
    fn now(&self) -> f64 {
        clock()
    }
    fn emit(&mut self, _: &Event) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}
