//! The page's side of the lab worker: starting (and restarting) it, sending it jobs, turning its
//! messages into page state, and the page's own copy of each dataset for previews. Everything the page
//! knows about a run arrives through `on_worker_message`.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{MessageEvent, Worker};

use super::app::{Ctx, Place, Status};
use super::detect::detector_title;
use super::export::save_bytes;
use super::protocol::{DevicePreference, FromWorker, ToWorker};
use super::repair::repair_title;
use super::storage::{SavedRun, save_runs};
use crate::lab::data::{DataSource, DatasetKind, cifar, mnist};
use crate::lab::event::{Event, Stage};
use crate::lab::run::Report;

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
    /// A run to start as soon as a restarted worker is ready (after the old one crashed on WebGPU).
    static PENDING_RUN: RefCell<Option<ToWorker>> = const { RefCell::new(None) };
    /// The page's own copy of each dataset (MNIST, CIFAR-10), for previews.
    static DATA: RefCell<[Option<Rc<DataSource>>; 2]> = const { RefCell::new([None, None]) };
}

fn now() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now() / 1000.0).unwrap_or(0.0)
}

pub(super) fn send(msg: &ToWorker) -> Result<(), String> {
    WORKER.with(|w| match &*w.borrow() {
        Some(worker) => worker.post_message(&JsValue::from_str(&msg.to_json())).map_err(|e| format!("{e:?}")),
        None => Err("the lab worker is not running".into()),
    })
}

/// Starts the lab worker and routes its messages into the page state.
pub(super) fn start_worker(ctx: Ctx) {
    // Trunk builds the worker as a classic script plus a loader shim (no hashed names, see Trunk.toml).
    let worker = match Worker::new("./worker_loader.js") {
        Ok(w) => w,
        Err(e) => {
            ctx.error.set(Some(format!("The lab worker could not start: {e:?}")));
            return;
        }
    };
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        // A JSON string, or {msg: JSON, train, test} when a dataset's records come along.
        let data = e.data();
        let get = |k: &str| js_sys::Reflect::get(&data, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED);
        let text = data.as_string().or_else(|| get("msg").as_string()).unwrap_or_default();
        match serde_json::from_str::<FromWorker>(&text) {
            Ok(FromWorker::DataLoaded { dataset, note, .. }) => {
                let records = |k: &str| js_sys::Uint8Array::new(&get(k)).to_vec();
                let parsed = cifar::parse_records(&records("train_records"), "training set").and_then(|train| {
                    Ok(DataSource::TrainTest {
                        train,
                        test: cifar::parse_records(&records("test_records"), "test set")?,
                    })
                });
                match parsed {
                    Ok(source) => {
                        set_page_data(dataset, source);
                        ctx.cifar.set(CifarState::Ready(note));
                        ctx.data_ready.set(true);
                        ctx.data_version.update(|v| *v += 1);
                    }
                    Err(e) => ctx.cifar.set(CifarState::Missing(e.to_string())),
                }
            }
            Ok(FromWorker::ModelFile { file }) => {
                let bytes = js_sys::Uint8Array::new(&get("bytes"));
                save_bytes(ctx, &bytes, "application/octet-stream", &file);
                ctx.progress_text.set(format!("model saved as {file}"));
            }
            Ok(msg) => on_worker_message(ctx, msg),
            Err(err) => ctx.error.set(Some(format!("unreadable message from the worker: {err}"))),
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    let on_error = Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |e: web_sys::ErrorEvent| {
        on_worker_crash(ctx, e.message());
    });
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    WORKER.with(|w| *w.borrow_mut() = Some(worker));
}

/// An uncaught error ends the worker's WebAssembly instance (a GPU fault surfaces this way): start a
/// fresh worker, and if the run was on WebGPU, run it again there on the CPU.
fn on_worker_crash(ctx: Ctx, message: String) {
    WORKER.with(|w| {
        if let Some(old) = w.borrow_mut().take() {
            old.terminate();
        }
    });
    if !ctx.worker_ready.get_untracked() {
        // It never started (e.g. its files are missing): restarting would only fail again.
        ctx.status.set(Status::Failed);
        ctx.notice.set("The lab engine is not available.".into());
        ctx.error.set(Some(format!("The lab engine could not start: {message}")));
        return;
    }
    ctx.worker_ready.set(false);
    let running = ctx.status.get_untracked() == Status::Running;
    if running && ctx.run_device.get_untracked() == "webgpu" {
        ctx.auto_device.set("cpu".into());
        ctx.opts.update(|o| o.cpu = true);
        ctx.notice.set(format!("WebGPU failed during the run ({message}); restarting it on the CPU."));
        ctx.epochs.set(Vec::new());
        let spec = ctx.spec.get_untracked();
        PENDING_RUN.with(|p| *p.borrow_mut() = Some(ToWorker::Run { spec, device: DevicePreference::Cpu }));
    } else {
        let text = format!("The lab engine stopped ({message}); it has been restarted.");
        if running {
            ctx.status.set(Status::Failed);
            ctx.replacing.set(false);
            ctx.progress_text.set(String::new());
            ctx.fail(ctx.place.get_untracked(), text);
        } else {
            ctx.error.set(Some(text));
        }
    }
    start_worker(ctx);
}

fn stage_text(stage: Stage) -> &'static str {
    match stage {
        Stage::Warmup => "warming up WebGPU: compiling kernels and checking their answers against the CPU…",
        Stage::Data => "splitting the data…",
        Stage::Poison => "poisoning the training set…",
        Stage::Train => "training…",
        Stage::Evaluate => "evaluating…",
        Stage::Detect => "looking for the backdoor…",
        Stage::Repair => "repairing the model…",
        Stage::Transfer => "the victim fine-tunes the model on its own clean data…",
    }
}

fn on_worker_message(ctx: Ctx, msg: FromWorker) {
    match msg {
        FromWorker::Ready { device, note } => {
            ctx.auto_device.set(device);
            ctx.notice.set(note);
            ctx.worker_ready.set(true);
            if let Some(run) = PENDING_RUN.with(|p| p.borrow_mut().take()) {
                if let Err(e) = send(&run) {
                    ctx.status.set(Status::Failed);
                    ctx.fail(Place::Train, e);
                }
            }
        }
        FromWorker::Device { device, note } => {
            if device == "cpu" && ctx.preference() == DevicePreference::Auto {
                ctx.auto_device.set("cpu".into());
            }
            ctx.run_device.set(device);
            ctx.notice.set(note);
        }
        FromWorker::Event { event } => match event {
            Event::Stage { stage } => ctx.progress_text.set(stage_text(stage).into()),
            Event::Batch { epoch, batch, batches, loss } => {
                let epochs = ctx.spec.with_untracked(|s| s.train.epochs).max(1);
                let done = ((epoch - 1) * batches + batch) as f64 / (epochs * batches) as f64;
                let elapsed = now() - ctx.started.get_untracked();
                let left = if done > 0.0 { elapsed / done * (1.0 - done) } else { 0.0 };
                ctx.progress.set(done);
                ctx.progress_text.set(format!(
                    "epoch {epoch}/{epochs} · batch {batch}/{batches} · loss {loss:.3} · {left:.0} s left"
                ));
            }
            // A sweep's runs have no place on the training chart.
            Event::Epoch(_) if ctx.sweep.with_untracked(|s| s.as_ref().is_some_and(|s| s.running)) => {}
            // The new run's first epoch replaces the last run's results.
            Event::Epoch(record) if ctx.replacing.get_untracked() => {
                ctx.replacing.set(false);
                ctx.report.set(None);
                ctx.epochs.set(vec![record]);
            }
            Event::Epoch(record) => ctx.epochs.update(|e| e.push(record)),
            Event::Detect { detector, done, total } => {
                ctx.progress.set(done as f64 / total.max(1) as f64);
                ctx.progress_text.set(format!("{}: {done}/{total}", detector_title(&detector)));
            }
            Event::Repair { repair, done, total } => {
                ctx.progress.set(done as f64 / total.max(1) as f64);
                ctx.progress_text.set(format!("{}: {done}/{total}", repair_title(&repair)));
            }
            Event::Transfer { freeze, done, total } => {
                ctx.progress.set(done as f64 / total.max(1) as f64);
                ctx.progress_text.set(format!("victim fine-tuning (freeze {freeze}): batch {done}/{total}"));
            }
            Event::Craft { what, done, total } => {
                ctx.progress.set(done as f64 / total.max(1) as f64);
                ctx.progress_text.set(format!("{what}: {done}/{total}"));
            }
        },
        FromWorker::Done { report } => {
            ctx.progress.set(1.0);
            ctx.progress_text.set(format!("done in {:.1} s", report.seconds.total));
            let saved = SavedRun {
                link: format!("#{}", report.link),
                clean_acc: report.final_metrics.clean_acc,
                asr: report.final_metrics.asr,
                robust_acc: report.final_metrics.robust_acc,
                device: report.device.clone(),
                when: js_sys::Date::new_0()
                    .to_locale_string("en-GB", &JsValue::UNDEFINED)
                    .as_string()
                    .unwrap_or_default(),
            };
            // A scanned file is not in the link, so the link would not bring that run back; a
            // challenge's run would show its hidden attack in the list.
            if report.scanned.is_none() && ctx.opts.with_untracked(|o| o.challenge.is_none()) {
                ctx.runs.update(|r| {
                    r.insert(0, saved);
                    r.truncate(20);
                    save_runs(r);
                });
            }
            if ctx.replacing.get_untracked() {
                // A scan trains nothing: its report alone replaces the last run's results.
                ctx.epochs.set(report.epochs.clone());
                ctx.replacing.set(false);
            }
            ctx.report.set(Some(*report));
            ctx.status.set(Status::Done);
        }
        FromWorker::SweepPoint { index, clean_acc, asr } => ctx.sweep.update(|s| {
            if let Some(s) = s {
                s.record(index, clean_acc, asr);
            }
        }),
        FromWorker::SweepDone => {
            end_sweep(ctx);
            ctx.progress.set(1.0);
            ctx.progress_text.set(format!("sweep done in {:.0} s", now() - ctx.started.get_untracked()));
            ctx.status.set(Status::Done);
        }
        FromWorker::Cancelled => {
            end_sweep(ctx);
            ctx.replacing.set(false);
            ctx.status.set(Status::Cancelled);
            ctx.progress_text.set("cancelled".into());
        }
        FromWorker::Failed { message } => {
            end_sweep(ctx);
            // The last results stay; the message appears where the job was started.
            ctx.replacing.set(false);
            ctx.status.set(Status::Failed);
            ctx.progress.set(0.0);
            ctx.progress_text.set("stopped: see the message".into());
            ctx.fail(ctx.place.get_untracked(), message);
        }
        FromWorker::Measured { report } => {
            ctx.progress.set(1.0);
            ctx.progress_text.set("measured with your guess".into());
            ctx.report.set(Some(*report));
            ctx.status.set(Status::Done);
        }
        FromWorker::DataFailed { message, .. } => ctx.cifar.set(CifarState::Missing(message)),
        FromWorker::Detected { report } => finish_on_demand(ctx, "detectors", report.seconds, |r| {
            r.seconds.detect = report.seconds;
            r.detect = *report;
        }),
        FromWorker::Repaired { report } => finish_on_demand(ctx, "repairs", report.seconds, |r| {
            r.seconds.repair = report.seconds;
            r.repair = *report;
        }),
        FromWorker::Transferred { report } => finish_on_demand(ctx, "fine-tuning", report.seconds, |r| {
            r.seconds.transfer = report.seconds;
            r.transfer = Some(*report);
        }),
        // Handled with their bytes in the message handler.
        FromWorker::DataLoaded { .. } | FromWorker::ModelFile { .. } => {}
        // Grid jobs run in the Compare step's own workers.
        FromWorker::GridRun { .. } | FromWorker::GridRunFailed { .. } | FromWorker::GridDone { .. } => {}
    }
}

/// Starts a job at `place` whose results replace the last run's once they arrive (a failed or
/// cancelled job leaves them), and shows the outcome of sending it. Nothing starts while a control
/// holds a refused value or the split does not fit the data: the job would not run what the page shows.
fn start_job(ctx: Ctx, place: Place, replaces: bool, text: &str, sent: impl FnOnce() -> Result<(), String>) {
    ctx.begin(place);
    if let Some(why) = ctx.blocked_untracked() {
        ctx.fail(place, why);
        return;
    }
    ctx.replacing.set(replaces);
    ctx.progress.set(0.0);
    ctx.progress_text.set(text.into());
    ctx.started.set(now());
    match sent() {
        Ok(()) => ctx.status.set(Status::Running),
        Err(e) => {
            ctx.replacing.set(false);
            ctx.status.set(Status::Failed);
            ctx.fail(place, e);
        }
    }
}

pub(super) fn run_experiment(ctx: Ctx) {
    let msg = ToWorker::Run { spec: ctx.spec.get_untracked(), device: ctx.preference() };
    start_job(ctx, Place::Train, true, "starting…", || send(&msg));
}

/// A sweep's last message arrived (done, cancelled or failed): its epochs reach the chart again.
fn end_sweep(ctx: Ctx) {
    ctx.sweep.update(|s| {
        if let Some(s) = s {
            s.running = false;
        }
    });
}

/// Starts a sweep at `place`: `specs` run one after the other in the worker; the page's last run stays.
pub(super) fn run_sweep(ctx: Ctx, place: Place, specs: Vec<crate::lab::ExperimentSpec>) {
    let msg = ToWorker::Sweep { specs, device: ctx.preference() };
    start_job(ctx, place, false, "starting the sweep…", || send(&msg));
}

/// Scans `file` (a model trained elsewhere) with the current spec: the worker reads it, the page never
/// uploads it anywhere. The last results stay until the scan's arrive.
pub(super) fn scan_model_file(ctx: Ctx, file: web_sys::File) {
    let msg = ToWorker::Scan { spec: ctx.spec.get_untracked(), device: ctx.preference() };
    start_job(ctx, Place::Scan, true, "reading the model file…", || {
        send_with_files(&msg, &js_sys::Array::of1(&file))
    });
}

/// Measures the scanned model again with the Poison step's trigger and target as the guess.
pub(super) fn measure_guess(ctx: Ctx) {
    let msg = ToWorker::Measure { attack: ctx.spec.get_untracked().attack };
    start_job(ctx, Place::Measure, false, "measuring with your guess…", || send(&msg));
}

/// Asks the worker for the last run's model as a file; it arrives as `FromWorker::ModelFile`.
pub(super) fn save_model(ctx: Ctx) {
    ctx.begin(Place::Results);
    if let Err(e) = send(&ToWorker::SaveModel) {
        ctx.fail(Place::Results, format!("The model could not be saved: {e}"));
    }
}

/// Sends `msg` with `files` beside it, as `{msg, files}`.
fn send_with_files(msg: &ToWorker, files: &js_sys::Array) -> Result<(), String> {
    let envelope = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&envelope, &"msg".into(), &JsValue::from_str(&msg.to_json()));
    let _ = js_sys::Reflect::set(&envelope, &"files".into(), files);
    WORKER.with(|w| match w.borrow().as_ref() {
        Some(worker) => worker.post_message(&envelope).map_err(|e| format!("{e:?}")),
        None => Err("the lab worker is not running".into()),
    })
}

/// Starts detectors, repairs or a transfer (`job`) on the model of the last run.
pub(super) fn run_on_model(ctx: Ctx, job: ToWorker, what: Stage) {
    let place = match what {
        Stage::Repair => Place::Repair,
        Stage::Transfer => Place::Transfer,
        _ => Place::Detect,
    };
    start_job(ctx, place, false, stage_text(what), || send(&job));
}

/// Loads the MNIST bundle for the page's own previews (the worker loads its own copy).
pub(super) fn load_page_data(ctx: Ctx) {
    spawn_local(async move {
        let result: Result<Vec<u8>, String> = async {
            let window = web_sys::window().ok_or("no window")?;
            let resp: web_sys::Response = JsFuture::from(window.fetch_with_str("data/mnist.bin"))
                .await
                .map_err(|e| format!("{e:?}"))?
                .unchecked_into();
            if !resp.ok() {
                return Err(format!("HTTP {}", resp.status()));
            }
            let buf = JsFuture::from(resp.array_buffer().map_err(|e| format!("{e:?}"))?)
                .await
                .map_err(|e| format!("{e:?}"))?;
            Ok(js_sys::Uint8Array::new(&buf).to_vec())
        }
        .await;
        match result
            .map_err(|e| e.to_string())
            .and_then(|b| mnist::decode_bundle(&b, "data/mnist.bin").map_err(|e| e.to_string()))
        {
            Ok(set) => {
                set_page_data(DatasetKind::Mnist, DataSource::Pool(set));
                ctx.data_ready.set(true);
            }
            Err(e) => ctx.error.set(Some(format!("MNIST could not be loaded: {e}"))),
        }
    });
}

fn slot(dataset: DatasetKind) -> usize {
    match dataset {
        DatasetKind::Mnist => 0,
        DatasetKind::Cifar10 => 1,
    }
}

pub(super) fn page_data(dataset: DatasetKind) -> Option<Rc<DataSource>> {
    DATA.with(|d| d.borrow()[slot(dataset)].clone())
}

fn set_page_data(dataset: DatasetKind, data: DataSource) {
    DATA.with(|d| d.borrow_mut()[slot(dataset)] = Some(Rc::new(data)));
}

/// Where CIFAR-10 stands on the page.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum CifarState {
    /// Not asked for yet.
    Unknown,
    Loading,
    /// Loaded, with a note of where from.
    Ready(String),
    /// Not shipped or unreadable: the message, and the page offers the file picker.
    Missing(String),
}

/// Asks the worker for CIFAR-10, from the site or from files the user picked.
pub(super) fn load_cifar(ctx: Ctx, files: Option<web_sys::FileList>) {
    let list = js_sys::Array::new();
    if let Some(files) = files {
        for i in 0..files.length() {
            if let Some(f) = files.get(i) {
                list.push(&f);
            }
        }
    }
    match send_with_files(&ToWorker::LoadData { dataset: DatasetKind::Cifar10 }, &list) {
        Ok(()) => ctx.cifar.set(CifarState::Loading),
        Err(e) => ctx.cifar.set(CifarState::Missing(e)),
    }
}

/// Detectors or repairs run on demand finished: their report takes its place in the run's report.
fn finish_on_demand(ctx: Ctx, what: &str, seconds: f64, merge: impl FnOnce(&mut Report)) {
    ctx.progress.set(1.0);
    ctx.progress_text.set(format!("{what} done in {seconds:.1} s"));
    ctx.report.update(|r| {
        if let Some(r) = r {
            merge(r);
        }
    });
    ctx.status.set(Status::Done);
}
