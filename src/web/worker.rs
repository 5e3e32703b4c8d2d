//! The lab worker: loads the data once, picks the device (WebGPU after a self-check, else the CPU),
//! runs experiments, streams events to the page and stops at the next batch when the page cancels.

use std::cell::{Cell, RefCell};
use std::ops::ControlFlow;
use std::pin::Pin;
use std::rc::Rc;

use burn::tensor::Device;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use super::protocol::{DevicePreference, FromWorker, ToWorker};
use crate::lab::attack::AttackSpec;
use crate::lab::data::{DataSource, DatasetKind, cifar, mnist};
use crate::lab::detect::{self, DetectSpec};
use crate::lab::device::self_check;
use crate::lab::event::{Event, Host, Stage};
use crate::lab::grid;
use crate::lab::model::ModelKind;
use crate::lab::model_file::{self, FileFormat};
use crate::lab::repair::{self, RepairInput, RepairSpec};
use crate::lab::transfer::{self, TransferSpec};
use crate::lab::{ExperimentSpec, LabError, run};

/// Where the page serves the MNIST bundle, relative to the worker script.
const MNIST_URL: &str = "data/mnist.bin";
/// Where a build that found CIFAR-10 ships it (scripts/stage_cifar.py).
const CIFAR_URLS: [&str; 2] = ["data/cifar10/train.bin", "data/cifar10/test.bin"];

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn post(msg: &FromWorker) {
    // A failed post means the page is gone; nothing is left to tell.
    let _ = scope().post_message(&JsValue::from_str(&msg.to_json()));
}

fn now() -> f64 {
    scope().performance().map(|p| p.now() / 1000.0).unwrap_or(0.0)
}

struct WorkerHost {
    cancel: Rc<Cell<bool>>,
    last_pause: f64,
}

impl Host for WorkerHost {
    fn now(&self) -> f64 {
        now()
    }
    fn emit(&mut self, event: &Event) -> ControlFlow<()> {
        post(&FromWorker::Event { event: event.clone() });
        if self.cancel.get() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }
    fn pause(&mut self) -> Pin<Box<dyn Future<Output = ()> + '_>> {
        // Yield to the worker's event loop every 50 ms so a Cancel message can be delivered.
        Box::pin(async move {
            if now() - self.last_pause > 0.05 {
                gloo_timers::future::TimeoutFuture::new(0).await;
                self.last_pause = now();
            }
        })
    }
}

async fn fetch_bytes(url: &str) -> Result<Vec<u8>, LabError> {
    let fail = |e: JsValue| LabError::io(url, format!("{e:?}"));
    let resp: web_sys::Response = JsFuture::from(scope().fetch_with_str(url)).await.map_err(fail)?.unchecked_into();
    if resp.status() == 404 {
        return Err(LabError::DataMissing(format!("{url} is not on this site")));
    }
    if !resp.ok() {
        return Err(LabError::io(url, format!("HTTP {}", resp.status())));
    }
    let buf = JsFuture::from(resp.array_buffer().map_err(fail)?).await.map_err(fail)?;
    Ok(js_sys::Uint8Array::new(&buf).to_vec())
}

/// The WebGPU device as far as the worker knows it. burn initialises a WebGPU runtime once per
/// worker, so the device is made at start-up and kept.
enum Gpu {
    Unavailable(String),
    /// Made; trusted for the model kinds that passed the self-check (kernels differ per model).
    Ready {
        device: Device,
        checked: Vec<ModelKind>,
    },
    /// Failed the self-check or a run: the CPU does the work from now on.
    Distrusted(String),
}

struct State {
    /// The last finished run, its device and the device's name, kept for detection and repair on demand.
    last: Option<Rc<(run::Outcome, Device, &'static str)>>,
    /// Detectors run on demand on the last model (repairs then use their verdicts).
    detected: Option<detect::DetectReport>,
    mnist: Option<Rc<DataSource>>,
    cifar: Option<Rc<DataSource>>,
    busy: bool,
    gpu: Gpu,
}

/// Asks the browser for a WebGPU adapter, then makes burn's device on it.
#[cfg(feature = "webgpu")]
async fn open_webgpu() -> Result<Device, String> {
    use burn::tensor::wgpu::WgpuBackend;
    let get =
        |obj: &JsValue, key: &str| js_sys::Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED);
    let gpu = get(&get(&js_sys::global(), "navigator"), "gpu");
    if gpu.is_undefined() {
        return Err("this browser does not offer WebGPU".into());
    }
    let request: js_sys::Function =
        get(&gpu, "requestAdapter").dyn_into().map_err(|_| "navigator.gpu.requestAdapter is missing".to_string())?;
    let promise: js_sys::Promise = request
        .call0(&gpu)
        .and_then(|p| p.dyn_into().map_err(JsValue::from))
        .map_err(|e| format!("requestAdapter failed: {e:?}"))?;
    let adapter = JsFuture::from(promise).await.map_err(|e| format!("requestAdapter failed: {e:?}"))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err("the browser has WebGPU but no adapter for it (disabled or blocklisted GPU)".into());
    }
    Device::wgpu_options()
        .graphics_api(WgpuBackend::WebGpu)
        .init_async()
        .await
        .map_err(|e| format!("WebGPU could not start: {e}"))
}

#[cfg(not(feature = "webgpu"))]
async fn open_webgpu() -> Result<Device, String> {
    Err("this build of the lab engine has no WebGPU support".into())
}

/// Picks the device for a run of `spec`: WebGPU when asked for, present and checked for this
/// model (the check runs here the first time, as the `warmup` stage), else the CPU.
async fn choose_device(
    state: &Rc<RefCell<State>>,
    spec: &ExperimentSpec,
    preference: DevicePreference,
    host: &mut WorkerHost,
) -> Result<(Device, &'static str, String), LabError> {
    let cpu = |why: String| Ok((Device::flex(), "cpu", why));
    if preference == DevicePreference::Cpu {
        return cpu("Running on this computer's processor, as chosen in the Train step.".into());
    }
    let (device, checked) = match &state.borrow().gpu {
        Gpu::Unavailable(why) | Gpu::Distrusted(why) => return cpu(format!("Running on the CPU: {why}.")),
        Gpu::Ready { device, checked } => (device.clone(), checked.contains(&spec.model)),
    };
    if !checked {
        if host.emit(&Event::Stage { stage: Stage::Warmup }).is_break() {
            return Err(LabError::Cancelled);
        }
        let started = now();
        match self_check(spec.model, spec.dims(), &device).await {
            Ok(check) => {
                log::info!("WebGPU self-check passed: relative difference {:.1e}", check.max_rel_diff);
                if let Gpu::Ready { checked, .. } = &mut state.borrow_mut().gpu {
                    checked.push(spec.model);
                }
                let note = format!(
                    "WebGPU checked against the CPU for this model in {:.1} s (relative difference {:.0e}).",
                    now() - started,
                    check.max_rel_diff
                );
                return Ok((device, "webgpu", note));
            }
            Err(e) => {
                let why = format!("WebGPU failed its self-check: {e}");
                state.borrow_mut().gpu = Gpu::Distrusted(why.clone());
                return cpu(format!("Running on the CPU: {why}."));
            }
        }
    }
    Ok((device, "webgpu", "WebGPU (checked against the CPU for this model).".into()))
}

async fn load(state: &Rc<RefCell<State>>, dataset: DatasetKind) -> Result<Rc<DataSource>, LabError> {
    match dataset {
        DatasetKind::Mnist => {
            if let Some(d) = state.borrow().mnist.clone() {
                return Ok(d);
            }
            let bytes = fetch_bytes(MNIST_URL).await?;
            let data = Rc::new(DataSource::Pool(mnist::decode_bundle(&bytes, MNIST_URL)?));
            state.borrow_mut().mnist = Some(data.clone());
            Ok(data)
        }
        DatasetKind::Cifar10 => {
            if let Some(d) = state.borrow().cifar.clone() {
                return Ok(d);
            }
            let mut sets = Vec::new();
            for url in CIFAR_URLS {
                let bytes = fetch_bytes(url).await.map_err(|e| match e {
                    LabError::DataMissing(_) => LabError::DataMissing(CIFAR_MISSING.into()),
                    other => other,
                })?;
                sets.push(cifar::parse_records(&bytes, url)?);
            }
            let test = sets.pop().expect("two sets were read");
            let train = sets.pop().expect("two sets were read");
            let data = Rc::new(DataSource::TrainTest { train, test });
            state.borrow_mut().cifar = Some(data.clone());
            Ok(data)
        }
    }
}

const CIFAR_MISSING: &str = "CIFAR-10 is not shipped with this site: choose the official cifar-10-binary.tar.gz \
     (or CIFAR-format .bin files) in the Data step; it is read in your browser and never uploaded";

/// Reads files the user picked on the page (they never leave the browser).
async fn read_files(files: &js_sys::Array) -> Result<Vec<(String, Vec<u8>)>, LabError> {
    let mut out = Vec::new();
    for f in files.iter() {
        let file: web_sys::File =
            f.dyn_into().map_err(|_| LabError::spec("the page sent something that is not a file"))?;
        let name = file.name();
        let buf = JsFuture::from(file.array_buffer()).await.map_err(|e| LabError::io(&name, format!("{e:?}")))?;
        out.push((name, js_sys::Uint8Array::new(&buf).to_vec()));
    }
    Ok(out)
}

/// Loads CIFAR-10 (from the picked files, else from the site) and hands the page a copy of the
/// records for its previews, moving the buffers rather than copying them.
async fn load_cifar(state: Rc<RefCell<State>>, files: js_sys::Array) {
    let result = async {
        let note = if files.length() > 0 {
            let picked = read_files(&files).await?;
            let splits = cifar::from_files(picked)?;
            let note = format!("CIFAR-10 from {}", splits.source);
            state.borrow_mut().cifar = Some(Rc::new(DataSource::TrainTest { train: splits.train, test: splits.test }));
            note
        } else {
            load(&state, DatasetKind::Cifar10).await?;
            "CIFAR-10 shipped with this site".to_string()
        };
        let data = state.borrow().cifar.clone().expect("loaded above");
        let DataSource::TrainTest { train, test } = &*data else { unreachable!("CIFAR-10 is a train/test source") };
        Ok::<_, LabError>((note, train.len(), test.len(), cifar::encode_records(train), cifar::encode_records(test)))
    }
    .await;
    match result {
        Ok((note, n_train, n_test, train, test)) => {
            let msg = FromWorker::DataLoaded { dataset: DatasetKind::Cifar10, note, train: n_train, test: n_test };
            let (train, test) =
                (js_sys::Uint8Array::from(&train[..]).buffer(), js_sys::Uint8Array::from(&test[..]).buffer());
            let envelope = js_sys::Object::new();
            let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&envelope, &JsValue::from_str(k), v);
            let _ = set("msg", &JsValue::from_str(&msg.to_json()));
            let _ = set("train_records", &train);
            let _ = set("test_records", &test);
            let _ = scope().post_message_with_transfer(&envelope, &js_sys::Array::of2(&train, &test));
        }
        Err(e) => post(&FromWorker::DataFailed { dataset: DatasetKind::Cifar10, message: e.plain() }),
    }
}

async fn run_one(state: Rc<RefCell<State>>, cancel: Rc<Cell<bool>>, spec: ExperimentSpec, pref: DevicePreference) {
    let result = async {
        let data = load(&state, spec.data.dataset).await?;
        let mut host = WorkerHost { cancel: cancel.clone(), last_pause: now() };
        let (device, name, note) = choose_device(&state, &spec, pref, &mut host).await?;
        post(&FromWorker::Device { device: name.into(), note });
        let gpu_state = state.clone();
        run::run_or_cpu(&spec, &data, (device, name), "cpu", &mut host, move |e| {
            let why = format!("WebGPU failed during the run ({e})");
            gpu_state.borrow_mut().gpu = Gpu::Distrusted(why.clone());
            post(&FromWorker::Device { device: "cpu".into(), note: format!("{why}; restarted on the CPU.") });
        })
        .await
    }
    .await;
    finish_run(&state, result);
}

/// Tells the page how a run or a scan ended; its model becomes the one detectors and repairs work on.
fn finish_run(state: &RefCell<State>, result: Result<(run::Outcome, Device, &'static str), LabError>) {
    state.borrow_mut().busy = false;
    post(&match result {
        Ok((outcome, device, name)) => {
            let report = Box::new(outcome.report.clone());
            let mut state = state.borrow_mut();
            state.last = Some(Rc::new((outcome, device, name)));
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
async fn scan_one(
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
        let (device, device_name, note) = choose_device(&state, &spec, pref, &mut host).await?;
        post(&FromWorker::Device { device: device_name.into(), note });
        let model = model_file::import_safetensors(bytes, &name, spec.model, spec.dims(), &device)?;
        let scanned = run::Scanned { file: name, format: format.name().into() };
        let outcome = run::scan(&spec, &data, model, scanned, &device, device_name, &mut host).await?;
        Ok((outcome, device, device_name))
    }
    .await;
    finish_run(&state, result);
}

/// Runs the sweep's experiments one after the other on the chosen device (the last run's model stays
/// the one detectors and repairs work on); cancel stops at the next batch.
async fn sweep(state: Rc<RefCell<State>>, cancel: Rc<Cell<bool>>, specs: Vec<ExperimentSpec>, pref: DevicePreference) {
    let result = async {
        for (index, spec) in specs.iter().enumerate() {
            let data = load(&state, spec.data.dataset).await?;
            let mut host = WorkerHost { cancel: cancel.clone(), last_pause: now() };
            let (device, device_name, note) = choose_device(&state, spec, pref, &mut host).await?;
            post(&FromWorker::Device { device: device_name.into(), note });
            let m = run::run(spec, &data, &device, device_name, &mut host).await?.report.final_metrics;
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
async fn grid_job(
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
        let (device, device_name, note) = choose_device(&state, &first.spec, pref, &mut host).await?;
        post(&FromWorker::Device { device: device_name.into(), note });
        let mut done = |r: &grid::PlannedRun, report: Result<run::Report, LabError>| {
            post(&match report {
                Ok(report) => FromWorker::GridRun { result: Box::new(grid::RunResult::new(r, &report)) },
                Err(e) => FromWorker::GridRunFailed { index: r.index, message: e.plain() },
            });
            Ok(())
        };
        grid::execute(&mine, &data, &device, device_name, &mut host, &mut done).await
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
async fn save_model(state: Rc<RefCell<State>>) {
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
enum OnDemand {
    Detect(DetectSpec),
    Repair(RepairSpec),
    Transfer(TransferSpec),
    /// A scanned model measured again with another guess of its attack.
    Measure(AttackSpec),
}

/// Runs `job` on the last run's model, on the device it was trained on.
async fn on_last_model(state: Rc<RefCell<State>>, cancel: Rc<Cell<bool>>, job: OnDemand) {
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
                        let (_, device, name) = &*last;
                        state.borrow_mut().last = Some(Rc::new((again, device.clone(), name)));
                        Ok(FromWorker::Measured { report })
                    }
                    Err(e) => Err(e),
                },
                OnDemand::Transfer(finetune) => {
                    async {
                        // The victim's images: what the last run's split left unused.
                        let spec = &outcome.report.spec;
                        let data = load(&state, spec.data.dataset).await?;
                        let victim = data.held_out(&spec.data, spec.seed, finetune.size)?;
                        let t = &outcome.split.test;
                        let report = transfer::fine_tune(
                            &finetune,
                            &spec.train,
                            spec.seed,
                            &outcome.model,
                            &victim,
                            t,
                            &outcome.triggered,
                            device,
                            &mut host,
                        )
                        .await?;
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

/// Marks the worker busy; false (and the page told) if it already was: one job at a time.
fn claim(state: &RefCell<State>) -> bool {
    if std::mem::replace(&mut state.borrow_mut().busy, true) {
        post(&FromWorker::Failed { message: "a run is already in progress".into() });
        return false;
    }
    true
}

fn start_on_demand(state: &Rc<RefCell<State>>, cancel: &Rc<Cell<bool>>, job: OnDemand) {
    if claim(state) {
        cancel.set(false);
        spawn_local(on_last_model(state.clone(), cancel.clone(), job));
    }
}

/// Installs the message handler and announces the device.
pub fn start() {
    console_error_panic_hook::set_once();
    // cubecl reports shader compilation failures only through `log`.
    let _ = console_log::init_with_level(log::Level::Warn);
    let state = Rc::new(RefCell::new(State {
        last: None,
        detected: None,
        mnist: None,
        cifar: None,
        busy: false,
        gpu: Gpu::Unavailable("not probed yet".into()),
    }));
    let cancel = Rc::new(Cell::new(false));
    let on_message = {
        let (state, cancel) = (state.clone(), cancel.clone());
        Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            // A message is a JSON string, or {msg: JSON, files: [File]} when it carries files.
            let data = e.data();
            let (text, files) = match data.as_string() {
                Some(text) => (text, js_sys::Array::new()),
                None => (
                    js_sys::Reflect::get(&data, &JsValue::from_str("msg"))
                        .ok()
                        .and_then(|m| m.as_string())
                        .unwrap_or_default(),
                    js_sys::Reflect::get(&data, &JsValue::from_str("files"))
                        .ok()
                        .and_then(|f| f.dyn_into::<js_sys::Array>().ok())
                        .unwrap_or_default(),
                ),
            };
            match serde_json::from_str::<ToWorker>(&text) {
                Ok(ToWorker::LoadData { dataset: DatasetKind::Cifar10 }) => {
                    spawn_local(load_cifar(state.clone(), files))
                }
                Ok(ToWorker::LoadData { dataset: DatasetKind::Mnist }) => {}
                Ok(ToWorker::Run { spec, device }) => {
                    if !claim(&state) {
                        return;
                    }
                    cancel.set(false);
                    spawn_local(run_one(state.clone(), cancel.clone(), spec, device));
                }
                Ok(ToWorker::Cancel) => cancel.set(true),
                Ok(ToWorker::Detect { detect }) => start_on_demand(&state, &cancel, OnDemand::Detect(detect)),
                Ok(ToWorker::Repair { repair }) => start_on_demand(&state, &cancel, OnDemand::Repair(repair)),
                Ok(ToWorker::Transfer { finetune }) => start_on_demand(&state, &cancel, OnDemand::Transfer(finetune)),
                Ok(ToWorker::Measure { attack }) => start_on_demand(&state, &cancel, OnDemand::Measure(attack)),
                Ok(ToWorker::Scan { spec, device }) => {
                    if !claim(&state) {
                        return;
                    }
                    cancel.set(false);
                    spawn_local(scan_one(state.clone(), cancel.clone(), spec, device, files));
                }
                Ok(ToWorker::SaveModel) => spawn_local(save_model(state.clone())),
                Ok(ToWorker::Grid { grid, runs, device }) => {
                    if !claim(&state) {
                        return;
                    }
                    cancel.set(false);
                    spawn_local(grid_job(state.clone(), cancel.clone(), grid, runs, device));
                }
                Ok(ToWorker::Sweep { specs, device }) => {
                    if !claim(&state) {
                        return;
                    }
                    cancel.set(false);
                    spawn_local(sweep(state.clone(), cancel.clone(), specs, device));
                }
                Err(err) => post(&FromWorker::Failed { message: format!("bad message from the page: {err}") }),
            }
        })
    };
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    // Warm the data cache while the user sets up the experiment.
    let preload = state.clone();
    spawn_local(async move {
        let gpu = match open_webgpu().await {
            Ok(device) => Gpu::Ready { device, checked: Vec::new() },
            Err(why) => Gpu::Unavailable(why),
        };
        let (device, mut note) = match &gpu {
            Gpu::Ready { .. } => {
                ("webgpu", "WebGPU found; it is checked against the CPU before its first run.".to_string())
            }
            Gpu::Unavailable(why) | Gpu::Distrusted(why) => {
                ("cpu", format!("Running on this computer's processor (no usable graphics card here: {why})."))
            }
        };
        preload.borrow_mut().gpu = gpu;
        if let Err(e) = load(&preload, DatasetKind::Mnist).await {
            note = format!("MNIST could not be loaded: {e}");
        }
        post(&FromWorker::Ready { device: device.into(), note });
    });
}
