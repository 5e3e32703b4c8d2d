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
use crate::lab::device::{self, DeviceKind};
use crate::lab::event::{Event, Host, Stage};
use crate::lab::grid;
use crate::lab::model::ModelKind;
use crate::lab::model_file::{self, FileFormat};
use crate::lab::repair::{self, RepairInput, RepairSpec};
use crate::lab::transfer::TransferSpec;
use crate::lab::{ExperimentSpec, LabError, run};

mod data;
mod gpu;
mod jobs;

use data::*;
use gpu::*;
use jobs::*;

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
    last: Option<Rc<(run::Outcome, Device, DeviceKind)>>,
    /// Detectors run on demand on the last model (repairs then use their verdicts).
    detected: Option<detect::DetectReport>,
    mnist: Option<Rc<DataSource>>,
    cifar: Option<Rc<DataSource>>,
    busy: bool,
    gpu: Gpu,
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
                (DeviceKind::WebGpu, "WebGPU found; it is checked against the CPU before its first run.".to_string())
            }
            Gpu::Unavailable(why) | Gpu::Distrusted(why) => (
                DeviceKind::Cpu,
                format!("Running on this computer's processor (no usable graphics card here: {why})."),
            ),
        };
        preload.borrow_mut().gpu = gpu;
        if let Err(e) = load(&preload, DatasetKind::Mnist).await {
            note = format!("MNIST could not be loaded: {e}");
        }
        post(&FromWorker::Ready { device: device.name().into(), note });
    });
}
