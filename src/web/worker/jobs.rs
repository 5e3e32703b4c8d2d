//! The worker's jobs: a run, a scan, a sweep, a grid's share, saving the model, and the on-demand steps
//! on the last run's model (detect, repair, measure, transfer); each posts its events and its end.

use super::*;

pub(super) async fn run_one(
    state: Rc<RefCell<State>>,
    cancel: Rc<Cell<bool>>,
    spec: ExperimentSpec,
    pref: DevicePreference,
) {
    let result = async {
        let data = load(&state, spec.data.dataset).await?;
        let mut host = WorkerHost { cancel: cancel.clone(), last_pause: now() };
        let (device, kind, note) = choose_device(&state, &spec, pref, &mut host).await?;
        post(&FromWorker::Device { device: kind.name().into(), note });
        let gpu_state = state.clone();
        run::run_or_cpu(&spec, &data, (device, kind), &mut host, move |e| {
            let why = format!("WebGPU failed during the run ({e})");
            gpu_state.borrow_mut().gpu = Gpu::Distrusted(why.clone());
            let note = format!("{why}; restarted on the CPU.");
            post(&FromWorker::Device { device: DeviceKind::Cpu.name().into(), note });
        })
        .await
    }
    .await;
    finish_run(&state, result);
}

/// Tells the page how a run or a scan ended; its model becomes the one detectors and repairs work on.
pub(super) fn finish_run(state: &RefCell<State>, result: Result<(run::Outcome, Device, DeviceKind), LabError>) {
    state.borrow_mut().busy = false;
    post(&match result {
        Ok((outcome, device, kind)) => {
            let report = Box::new(outcome.report.clone());
            let mut state = state.borrow_mut();
            state.last = Some(Rc::new((outcome, device, kind)));
            state.detected = None;
            drop(state);
            FromWorker::Done { report }
        }
        Err(LabError::Cancelled) => FromWorker::Cancelled,
        Err(e) => FromWorker::Failed { message: e.plain() },
    });
}

/// Scans the model file the user picked: read in the browser (never uploaded), checked against the
/// spec's architecture tensor by tensor, then evaluated, detected and repaired like a trained model.
pub(super) async fn scan_one(
    state: Rc<RefCell<State>>,
    cancel: Rc<Cell<bool>>,
    spec: ExperimentSpec,
    pref: DevicePreference,
    files: js_sys::Array,
) {
    let result = async {
        spec.validate()?;
        let (name, bytes) =
            read_files(&files).await?.into_iter().next().ok_or_else(|| LabError::spec("no model file was chosen"))?;
        let format = FileFormat::sniff(&bytes, &name)?;
        // Files the lab wrote name their architecture: say which to choose rather than list tensors.
        if let Some(kind) = model_file::declared_arch(&bytes).filter(|k| *k != spec.model) {
            return Err(LabError::data(
                name.as_str(),
                format!(
                    "it holds a {} (model={}), not the {} chosen in the Train step: choose that model and scan again",
                    kind.label(),
                    kind.name(),
                    spec.model.label()
                ),
            ));
        }
        let data = load(&state, spec.data.dataset).await?;
        let mut host = WorkerHost { cancel: cancel.clone(), last_pause: now() };
        let (device, kind, note) = choose_device(&state, &spec, pref, &mut host).await?;
        post(&FromWorker::Device { device: kind.name().into(), note });
        let model = model_file::import_safetensors(bytes, &name, spec.model, spec.dims(), &device)?;
        let scanned = run::Scanned { file: name, format: format.name().into() };
        let outcome = run::scan(&spec, &data, model, scanned, &device, kind, &mut host).await?;
        Ok((outcome, device, kind))
    }
    .await;
    finish_run(&state, result);
}

/// Runs the sweep's experiments one after the other on the chosen device (the last run's model stays
/// the one detectors and repairs work on); cancel stops at the next batch.
pub(super) async fn sweep(
    state: Rc<RefCell<State>>,
    cancel: Rc<Cell<bool>>,
    specs: Vec<ExperimentSpec>,
    pref: DevicePreference,
) {
    let result = async {
        for (index, spec) in specs.iter().enumerate() {
            let data = load(&state, spec.data.dataset).await?;
            let mut host = WorkerHost { cancel: cancel.clone(), last_pause: now() };
            let (device, kind, note) = choose_device(&state, spec, pref, &mut host).await?;
            post(&FromWorker::Device { device: kind.name().into(), note });
            let m = run::run(spec, &data, &device, kind, &mut host).await?.report.final_metrics;
            post(&FromWorker::SweepPoint { index, clean_acc: m.clean_acc, asr: m.asr });
        }
        Ok::<_, LabError>(())
    }
    .await;
    state.borrow_mut().busy = false;
    post(&match result {
        Ok(()) => FromWorker::SweepDone,
        Err(LabError::Cancelled) => FromWorker::Cancelled,
        Err(e) => FromWorker::Failed { message: e.plain() },
    });
}

/// Runs a grid job (some runs of a grid) on the chosen device, each shared model trained once, and posts
/// each run's figures as it finishes; cancel stops at the next batch.
pub(super) async fn grid_job(
    state: Rc<RefCell<State>>,
    cancel: Rc<Cell<bool>>,
    link: String,
    runs: Vec<usize>,
    pref: DevicePreference,
) {
    let result = async {
        let plan = grid::Grid::from_link(&link)?.plan()?;
        let mine: Vec<&grid::PlannedRun> = plan.iter().filter(|r| runs.contains(&r.index)).collect();
        let Some(first) = mine.first() else { return Ok(0) };
        let data = load(&state, first.spec.data.dataset).await?;
        let mut host = WorkerHost { cancel: cancel.clone(), last_pause: now() };
        let (device, kind, note) = choose_device(&state, &first.spec, pref, &mut host).await?;
        post(&FromWorker::Device { device: kind.name().into(), note });
        let mut done = |r: &grid::PlannedRun, report: Result<run::Report, LabError>| {
            post(&match report {
                Ok(report) => FromWorker::GridRun { result: Box::new(grid::RunResult::new(r, &report)) },
                Err(e) => FromWorker::GridRunFailed { index: r.index, message: e.plain() },
            });
            Ok(())
        };
        grid::execute(&mine, &data, &device, kind, &mut host, &mut done).await
    }
    .await;
    state.borrow_mut().busy = false;
    post(&match result {
        Ok(trainings) => FromWorker::GridDone { trainings },
        Err(LabError::Cancelled) => FromWorker::Cancelled,
        Err(e) => FromWorker::Failed { message: e.plain() },
    });
}

/// Hands the page the last run's model as a safetensors file (PyTorch's names and layout).
pub(super) async fn save_model(state: Rc<RefCell<State>>) {
    let last = state.borrow().last.clone();
    let result = async {
        let last = last.ok_or_else(|| LabError::spec("train a model first: there is no model to save yet"))?;
        let (outcome, _, _) = &*last;
        let spec = &outcome.report.spec;
        let cpu = model_file::to_cpu(&outcome.model, spec.model, spec.dims()).await?;
        let bytes = model_file::export_safetensors(&cpu, spec.model, spec.dims())?;
        let file = format!(
            "backdoor-lab-{}-{}-{}-seed{}.safetensors",
            spec.data.dataset.name(),
            spec.model.name(),
            spec.attack.method.name(),
            spec.seed
        );
        Ok::<_, LabError>((file, bytes))
    }
    .await;
    match result {
        Ok((file, bytes)) => {
            let buffer = js_sys::Uint8Array::from(&bytes[..]).buffer();
            let envelope = js_sys::Object::new();
            let _ = js_sys::Reflect::set(
                &envelope,
                &JsValue::from_str("msg"),
                &JsValue::from_str(&FromWorker::ModelFile { file }.to_json()),
            );
            let _ = js_sys::Reflect::set(&envelope, &JsValue::from_str("bytes"), &buffer);
            let _ = scope().post_message_with_transfer(&envelope, &js_sys::Array::of1(&buffer));
        }
        Err(e) => post(&FromWorker::Failed { message: e.plain() }),
    }
}

/// Work on the last run's model that the page asks for after training.
pub(super) enum OnDemand {
    Detect(DetectSpec),
    Repair(RepairSpec),
    Transfer(TransferSpec),
    /// A scanned model measured again with another guess of its attack.
    Measure(AttackSpec),
}

/// Runs `job` on the last run's model, on the device it was trained on.
pub(super) async fn on_last_model(state: Rc<RefCell<State>>, cancel: Rc<Cell<bool>>, job: OnDemand) {
    let last = state.borrow().last.clone();
    let result = match last {
        None => Err(LabError::spec("train a model first: detectors and repairs work on the last trained model")),
        Some(last) => {
            let (outcome, device, _) = &*last;
            let mut host = WorkerHost { cancel, last_pause: now() };
            match job {
                OnDemand::Detect(detect) => {
                    let found = match outcome.detect_input() {
                        Ok(input) => detect::run_all(&detect, &input, device, &mut host).await,
                        Err(e) => Err(e),
                    };
                    found.map(|report| {
                        state.borrow_mut().detected = Some(report.clone());
                        FromWorker::Detected { report: Box::new(report) }
                    })
                }
                OnDemand::Repair(repair) => {
                    // Detectors run on demand after training count as the run's detection step.
                    let detected = state.borrow().detected.clone().unwrap_or_else(|| outcome.report.detect.clone());
                    let fixed = match outcome.repair_input() {
                        Ok(input) => {
                            let input = RepairInput { detected: &detected, ..input };
                            repair::run_all(&repair, &input, device, &mut host).await
                        }
                        Err(e) => Err(e),
                    };
                    fixed.map(|report| FromWorker::Repaired { report: Box::new(report) })
                }
                OnDemand::Measure(attack) => match run::remeasure(outcome, &attack, device).await {
                    Ok(again) => {
                        let report = Box::new(again.report.clone());
                        let (_, device, kind) = &*last;
                        state.borrow_mut().last = Some(Rc::new((again, device.clone(), *kind)));
                        Ok(FromWorker::Measured { report })
                    }
                    Err(e) => Err(e),
                },
                OnDemand::Transfer(finetune) => {
                    async {
                        let data = load(&state, outcome.report.spec.data.dataset).await?;
                        let report = outcome.transfer(&finetune, &data, device, &mut host).await?;
                        Ok(FromWorker::Transferred { report: Box::new(report) })
                    }
                    .await
                }
            }
        }
    };
    state.borrow_mut().busy = false;
    post(&match result {
        Ok(message) => message,
        Err(LabError::Cancelled) => FromWorker::Cancelled,
        Err(e) => FromWorker::Failed { message: e.plain() },
    });
}
