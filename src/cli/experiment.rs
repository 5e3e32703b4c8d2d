//! `backdoor-lab run` and `backdoor-lab scan`: one experiment (or one model file) with a progress bar,
//! its table and report; the device it runs on (`--device`); the CLI's host for the lab's events.

use super::*;

pub(super) fn cmd_scan(args: ScanArgs) -> Result<()> {
    let spec = args.spec.build()?;
    check_out(args.out.as_ref())?;
    let device = Device::flex();
    let model = model_file::import_path(&args.model_file, spec.model, spec.dims(), &device)?;
    let source = DataSource::load_first(spec.data.dataset, &data_dirs(&args.data_dir))?;
    let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg} ({eta} left)")
            .expect("static template")
            .progress_chars("=> "),
    );
    let mut host = CliHost { bar, epochs: 0, quiet: args.quiet };
    let bytes_kind = std::fs::read(&args.model_file)
        .ok()
        .and_then(|b| model_file::FileFormat::sniff(&b, "").ok())
        .map_or("model file", |f| f.name());
    let scanned = run::Scanned { file: args.model_file.display().to_string(), format: bytes_kind.to_string() };
    let outcome = pollster::block_on(run::scan(&spec, &source, model, scanned, &device, DeviceKind::Cpu, &mut host))?;
    host.bar.finish_and_clear();
    println!("{}", table::render(&outcome.report));
    if let Some(out) = &args.out {
        let json = serde_json::to_string_pretty(&outcome.report).expect("a report always serialises");
        write_whole(out, json.as_bytes())?;
        println!("report written to {}", out.display());
    }
    Ok(())
}

pub(super) fn cmd_run(args: RunArgs) -> Result<()> {
    let spec = args.spec.build()?;
    check_out(args.out.as_ref())?;
    check_out(args.save_model.as_ref())?;
    let source = DataSource::load_first(spec.data.dataset, &data_dirs(&args.data_dir))?;
    if !args.quiet {
        eprintln!("link: #{}", spec.to_link());
    }
    let (device, kind) = match args.device {
        DeviceArg::Flex => (Device::flex(), DeviceKind::Cpu),
        DeviceArg::Ndarray => open_ndarray()?,
        DeviceArg::Wgpu => {
            let chosen =
                pollster::block_on(device::trust(open_wgpu(), DeviceKind::Wgpu, spec.model, spec.dims(), &clock));
            match &chosen.refused {
                Some(_) => eprintln!("warning: {}", chosen.notice),
                None => eprintln!("device: {}", chosen.notice),
            }
            (chosen.device, chosen.kind)
        }
    };
    let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg} ({eta} left)")
            .expect("static template")
            .progress_chars("=> "),
    );
    let mut host = CliHost { bar, epochs: spec.train.epochs, quiet: args.quiet };
    let bar = host.bar.clone();
    let (outcome, ..) = pollster::block_on(run::run_or_cpu(&spec, &source, (device, kind), &mut host, |e| {
        bar.suspend(|| eprintln!("warning: the GPU failed during the run ({e}); restarting on the CPU (flex)"))
    }))?;
    host.bar.finish_and_clear();
    let report = &outcome.report;
    println!("{}", table::render(report));
    if let Some(out) = &args.out {
        let json = serde_json::to_string_pretty(report).expect("a report always serialises");
        write_whole(out, json.as_bytes())?;
        println!("report written to {}", out.display());
    }
    if let Some(mb) = peak_memory_mb() {
        println!("peak memory {mb:.0} MB");
    }
    if let Some(path) = &args.save_model {
        let cpu = pollster::block_on(model_file::to_cpu(&outcome.model, spec.model, spec.dims()))?;
        write_whole(path, &model_file::export_safetensors(&cpu, spec.model, spec.dims())?)?;
        println!("model written to {}", path.display());
    }
    Ok(())
}

/// burn's ndarray backend, measured against flex on purpose (deprecated in burn 0.22).
#[cfg(feature = "ndarray")]
#[allow(deprecated)]
fn open_ndarray() -> Result<(Device, DeviceKind)> {
    Ok((Device::ndarray(), DeviceKind::CpuNdarray))
}

/// A build without the `ndarray` feature (the default test run's) has no second CPU backend.
#[cfg(not(feature = "ndarray"))]
fn open_ndarray() -> Result<(Device, DeviceKind)> {
    Err(LabError::spec("this build has no ndarray backend (it was built without the default `ndarray` feature)"))
}

/// burn's wgpu device on the machine's preferred adapter (`device::trust` then checks it against the CPU:
/// burn 0.22 was seen to train on garbage on a GPU without any error).
#[cfg(feature = "wgpu")]
fn open_wgpu() -> std::result::Result<Device, String> {
    Device::wgpu_options().init().map_err(|e| {
        format!("no GPU through wgpu ({e}); on Linux a Vulkan driver is needed (Debian: mesa-vulkan-drivers)")
    })
}

/// A build without the `wgpu` feature (the default test run's) has no GPU backend to open.
#[cfg(not(feature = "wgpu"))]
fn open_wgpu() -> std::result::Result<Device, String> {
    Err("this build has no wgpu backend (it was built without the default `wgpu` feature)".into())
}

/// The process's peak resident memory (Linux: VmHWM), to show that memory stays flat on full-size data.
fn peak_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Progress bar and epoch lines on stderr.
pub(crate) struct CliHost {
    bar: ProgressBar,
    epochs: usize,
    quiet: bool,
}

impl CliHost {
    /// No bar and no epoch lines (a sweep prints a line per run).
    pub(crate) fn hidden(epochs: usize) -> Self {
        Self { bar: ProgressBar::hidden(), epochs, quiet: true }
    }

    /// Progress of a phase after training (a detector, a repair, a freeze mode): `done` of `total`.
    fn phase(&mut self, name: &str, done: usize, total: usize) {
        if done <= 1 || self.bar.length() != Some(total as u64) {
            self.bar.reset();
            self.bar.set_length(total as u64);
            self.bar.set_prefix(name.to_string());
            self.bar.set_message("");
        }
        self.bar.set_position(done as u64);
    }
}

impl Host for CliHost {
    fn now(&self) -> f64 {
        clock()
    }

    fn emit(&mut self, e: &Event) -> ControlFlow<()> {
        match e {
            Event::Stage { stage } => {
                self.bar.set_prefix(format!("{stage:?}").to_lowercase());
                if *stage == Stage::Evaluate {
                    self.bar.finish_and_clear();
                }
            }
            Event::Batch { epoch, batch, batches, loss } => {
                if *batch == 1 {
                    self.bar.reset();
                    self.bar.set_length(*batches as u64);
                    self.bar.set_prefix(format!("epoch {epoch}/{}", self.epochs));
                }
                self.bar.set_position(*batch as u64);
                self.bar.set_message(format!("loss {loss:.4}"));
            }
            Event::Epoch(r) if !self.quiet => {
                let line = format!(
                    "epoch {:>3}: loss {:.4}  CA {:5.1} %  ASR {:5.1} %  ({:.1} s)",
                    r.epoch,
                    r.loss,
                    100.0 * r.clean_acc,
                    100.0 * r.asr,
                    r.seconds
                );
                // A bar that is not drawn (no terminal) would swallow its println.
                if std::io::stderr().is_terminal() { self.bar.println(line) } else { eprintln!("{line}") }
            }
            Event::Epoch(_) => {}
            Event::Detect { detector, done, total } => self.phase(&format!("detect {detector}"), *done, *total),
            Event::Repair { repair, done, total } => self.phase(&format!("repair {repair}"), *done, *total),
            Event::Transfer { freeze, done, total } => self.phase(&format!("freeze {freeze}"), *done, *total),
            Event::Craft { what, done, total } => self.phase(what, *done, *total),
        }
        ControlFlow::Continue(())
    }
}
