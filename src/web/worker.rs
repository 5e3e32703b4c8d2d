//! The lab worker: loads the data once, runs experiments on the CPU device, streams events to the page
//! and stops at the next batch when the page cancels.

use std::cell::{Cell, RefCell};
use std::ops::ControlFlow;
use std::pin::Pin;
use std::rc::Rc;

use burn::tensor::Device;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use super::protocol::{FromWorker, ToWorker};
use crate::lab::data::{DataSource, DatasetKind, mnist};
use crate::lab::event::{Event, Host};
use crate::lab::{LabError, run};

/// Where the page serves the MNIST bundle, relative to the worker script.
const MNIST_URL: &str = "data/mnist.bin";

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
    if !resp.ok() {
        return Err(LabError::io(url, format!("HTTP {}", resp.status())));
    }
    let buf = JsFuture::from(resp.array_buffer().map_err(fail)?).await.map_err(fail)?;
    Ok(js_sys::Uint8Array::new(&buf).to_vec())
}

#[derive(Default)]
struct State {
    mnist: Option<Rc<DataSource>>,
    busy: bool,
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
        DatasetKind::Cifar10 => Err(LabError::DataMissing(
            "CIFAR-10 does not run in the browser yet: use the CLI (backdoor-lab run --dataset cifar10)".into(),
        )),
    }
}

async fn run_one(state: Rc<RefCell<State>>, cancel: Rc<Cell<bool>>, spec: crate::lab::ExperimentSpec) {
    let result = async {
        let data = load(&state, spec.data.dataset).await?;
        let mut host = WorkerHost { cancel: cancel.clone(), last_pause: now() };
        run::run(&spec, &data, &Device::flex(), "cpu", &mut host).await
    }
    .await;
    state.borrow_mut().busy = false;
    post(&match result {
        Ok(outcome) => FromWorker::Done { report: Box::new(outcome.report) },
        Err(LabError::Cancelled) => FromWorker::Cancelled,
        Err(e) => FromWorker::Failed { message: e.to_string() },
    });
}

/// Installs the message handler and announces the device.
pub fn start() {
    console_error_panic_hook::set_once();
    let state = Rc::new(RefCell::new(State::default()));
    let cancel = Rc::new(Cell::new(false));
    let on_message = {
        let (state, cancel) = (state.clone(), cancel.clone());
        Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let text = e.data().as_string().unwrap_or_default();
            match serde_json::from_str::<ToWorker>(&text) {
                Ok(ToWorker::Run { spec }) => {
                    if std::mem::replace(&mut state.borrow_mut().busy, true) {
                        post(&FromWorker::Failed { message: "a run is already in progress".into() });
                        return;
                    }
                    cancel.set(false);
                    spawn_local(run_one(state.clone(), cancel.clone(), spec));
                }
                Ok(ToWorker::Cancel) => cancel.set(true),
                Err(err) => post(&FromWorker::Failed { message: format!("bad message from the page: {err}") }),
            }
        })
    };
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    // Warm the data cache while the user sets up the experiment.
    let preload = state.clone();
    spawn_local(async move {
        let note = match load(&preload, DatasetKind::Mnist).await {
            Ok(_) => {
                "WebGPU is not enabled in this build yet; training runs on the CPU (burn flex, WebAssembly).".into()
            }
            Err(e) => format!("MNIST could not be loaded: {e}"),
        };
        post(&FromWorker::Ready { device: "cpu".into(), note });
    });
}
