//! The page: steps Data → Poison → Train → Results, every control bound to the spec (and so to the
//! URL fragment), the lab running in a Web Worker. Logic lives in plain functions; components read
//! signals and call them.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{MessageEvent, Worker};

use super::chart;
use super::pictures::data_url;
use super::protocol::{DevicePreference, FromWorker, ToWorker};
use crate::lab::ExperimentSpec;
use crate::lab::attack::{AttackMethod, TriggerSpec};
use crate::lab::data::{DataSource, DatasetKind, cifar, mnist};
use crate::lab::detect::DetectSpec;
use crate::lab::event::{EpochRecord, Event, Stage};
use crate::lab::repair::{RepairReport, RepairSpec};
use crate::lab::run::Report;
use crate::lab::spec::{optimizer_name, pattern_name, policy_name, position_name};

const STORAGE_RUNS: &str = "backdoor-lab.runs";
const STORAGE_SPEC: &str = "backdoor-lab.spec";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Idle,
    Running,
    Done,
    Cancelled,
    Failed,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Idle => "idle",
            Status::Running => "running",
            Status::Done => "done",
            Status::Cancelled => "cancelled",
            Status::Failed => "failed",
        }
    }
}

/// Page-only options read from the fragment: embed mode and hidden controls or sections.
#[derive(Debug, Clone, Default, PartialEq)]
struct PageOptions {
    embed: bool,
    hide: Vec<String>,
    /// Run on the CPU even when WebGPU is available (`device=cpu`).
    cpu: bool,
}

impl PageOptions {
    fn fragment(&self) -> String {
        let mut s = String::new();
        if self.embed {
            s.push_str("&embed=1");
        }
        if !self.hide.is_empty() {
            s.push_str("&hide=");
            s.push_str(&self.hide.join(","));
        }
        if self.cpu {
            s.push_str("&device=cpu");
        }
        s
    }
    fn hidden(&self, key: &str) -> bool {
        self.hide.iter().any(|h| h == key)
    }
}

/// Splits a fragment into the spec (or the error and defaults) and the page options (`embed`,
/// `hide`), which are the page's own keys and never reach the lab's link codec.
fn parse_fragment(hash: &str) -> (ExperimentSpec, PageOptions, Option<String>) {
    let hash = hash.trim_start_matches('#');
    let mut opts = PageOptions::default();
    let mut spec_parts = Vec::new();
    for part in hash.split('&').filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some(("embed", v)) => opts.embed = v != "0",
            Some(("hide", v)) => opts.hide = v.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
            Some(("device", v)) => opts.cpu = v == "cpu",
            _ => spec_parts.push(part),
        }
    }
    if spec_parts.is_empty() {
        return (ExperimentSpec::default(), opts, None);
    }
    match ExperimentSpec::from_link(&spec_parts.join("&")) {
        Ok(spec) => (spec, opts, None),
        Err(e) => (
            ExperimentSpec::default(),
            opts,
            Some(format!("This link could not be read ({e}); showing the default experiment instead.")),
        ),
    }
}

/// The page's shared state: a small `Copy` bundle of signals.
#[derive(Clone, Copy)]
struct Ctx {
    spec: RwSignal<ExperimentSpec>,
    opts: RwSignal<PageOptions>,
    status: RwSignal<Status>,
    error: RwSignal<Option<String>>,
    notice: RwSignal<String>,
    /// The device a run with the default preference uses (the worker's answer, or `cpu` after a GPU failure).
    auto_device: RwSignal<String>,
    /// The device of the current or last run.
    run_device: RwSignal<String>,
    worker_ready: RwSignal<bool>,
    progress: RwSignal<f64>,
    progress_text: RwSignal<String>,
    started: RwSignal<f64>,
    epochs: RwSignal<Vec<EpochRecord>>,
    report: RwSignal<Option<Report>>,
    data_ready: RwSignal<bool>,
    /// Bumped when a dataset arrives, so previews redraw.
    data_version: RwSignal<u32>,
    cifar: RwSignal<CifarState>,
    runs: RwSignal<Vec<SavedRun>>,
}

impl Ctx {
    /// Applies one control's value in the link vocabulary; an invalid value shows the error and
    /// keeps the previous spec.
    fn apply(self, key: &str, value: &str) {
        let current = self.spec.get_untracked();
        match current.with_overrides(&[(key, value)]) {
            Ok(spec) => {
                self.error.set(None);
                self.spec.set(spec);
            }
            Err(e) => self.error.set(Some(e.to_string())),
        }
    }

    /// The device badge: the running run's device, else what Run would use.
    fn device(self) -> String {
        if self.status.get() == Status::Running {
            self.run_device.get()
        } else if self.opts.get().cpu {
            "cpu".into()
        } else {
            self.auto_device.get()
        }
    }

    fn preference(self) -> DevicePreference {
        if self.opts.get_untracked().cpu { DevicePreference::Cpu } else { DevicePreference::Auto }
    }

    fn link(self) -> String {
        format!("#{}{}", self.spec.get().to_link(), self.opts.get().fragment())
    }
}

/// A finished run kept in localStorage.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct SavedRun {
    link: String,
    clean_acc: f64,
    asr: f64,
    robust_acc: f64,
    device: String,
    when: String,
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn load_runs() -> Vec<SavedRun> {
    storage()
        .and_then(|s| s.get_item(STORAGE_RUNS).ok().flatten())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn save_runs(runs: &[SavedRun]) {
    if let (Some(s), Ok(text)) = (storage(), serde_json::to_string(runs)) {
        let _ = s.set_item(STORAGE_RUNS, &text);
    }
}

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

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

fn send(msg: &ToWorker) -> Result<(), String> {
    WORKER.with(|w| match &*w.borrow() {
        Some(worker) => worker.post_message(&JsValue::from_str(&msg.to_json())).map_err(|e| format!("{e:?}")),
        None => Err("the lab worker is not running".into()),
    })
}

/// Starts the lab worker and routes its messages into the page state.
fn start_worker(ctx: Ctx) {
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
                let parsed = cifar::parse_records(&records("train"), "train").and_then(|train| {
                    Ok(DataSource::TrainTest { train, test: cifar::parse_records(&records("test"), "test")? })
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
        if running {
            ctx.status.set(Status::Failed);
        }
        ctx.error.set(Some(format!("The lab engine stopped ({message}); it has been restarted.")));
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
                    ctx.error.set(Some(e));
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
            Event::Epoch(record) => ctx.epochs.update(|e| e.push(record)),
            Event::Detect { detector, done, total } => {
                ctx.progress.set(done as f64 / total.max(1) as f64);
                ctx.progress_text.set(format!("{}: {done}/{total}", detector_title(&detector)));
            }
            Event::Repair { repair, done, total } => {
                ctx.progress.set(done as f64 / total.max(1) as f64);
                ctx.progress_text.set(format!("{}: {done}/{total}", repair_title(&repair)));
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
            ctx.runs.update(|r| {
                r.insert(0, saved);
                r.truncate(20);
                save_runs(r);
            });
            ctx.report.set(Some(*report));
            ctx.status.set(Status::Done);
        }
        FromWorker::Cancelled => {
            ctx.status.set(Status::Cancelled);
            ctx.progress_text.set("cancelled".into());
        }
        FromWorker::Failed { message } => {
            ctx.status.set(Status::Failed);
            ctx.error.set(Some(message));
        }
        FromWorker::DataFailed { message, .. } => ctx.cifar.set(CifarState::Missing(message)),
        FromWorker::Detected { report } => {
            ctx.progress.set(1.0);
            ctx.progress_text.set(format!("detectors done in {:.1} s", report.seconds));
            ctx.report.update(|r| {
                if let Some(r) = r {
                    r.seconds.detect = report.seconds;
                    r.detect = *report;
                }
            });
            ctx.status.set(Status::Done);
        }
        FromWorker::Repaired { report } => {
            ctx.progress.set(1.0);
            ctx.progress_text.set(format!("repairs done in {:.1} s", report.seconds));
            ctx.report.update(|r| {
                if let Some(r) = r {
                    r.seconds.repair = report.seconds;
                    r.repair = *report;
                }
            });
            ctx.status.set(Status::Done);
        }
        // Handled with its records in the message handler.
        FromWorker::DataLoaded { .. } => {}
    }
}

fn run_experiment(ctx: Ctx) {
    ctx.error.set(None);
    ctx.epochs.set(Vec::new());
    ctx.report.set(None);
    ctx.progress.set(0.0);
    ctx.progress_text.set("starting…".into());
    ctx.started.set(now());
    match send(&ToWorker::Run { spec: ctx.spec.get_untracked(), device: ctx.preference() }) {
        Ok(()) => ctx.status.set(Status::Running),
        Err(e) => {
            ctx.status.set(Status::Failed);
            ctx.error.set(Some(e));
        }
    }
}

/// Loads the MNIST bundle for the page's own previews (the worker loads its own copy).
fn load_page_data(ctx: Ctx) {
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

fn page_data(dataset: DatasetKind) -> Option<Rc<DataSource>> {
    DATA.with(|d| d.borrow()[slot(dataset)].clone())
}

fn set_page_data(dataset: DatasetKind, data: DataSource) {
    DATA.with(|d| d.borrow_mut()[slot(dataset)] = Some(Rc::new(data)));
}

/// Where CIFAR-10 stands on the page.
#[derive(Debug, Clone, PartialEq)]
enum CifarState {
    /// Not asked for yet.
    Unknown,
    Loading,
    /// Loaded, with a note of where from.
    Ready(String),
    /// Not shipped or unreadable: the message, and the page offers the file picker.
    Missing(String),
}

/// Asks the worker for CIFAR-10, from the site or from files the user picked.
fn load_cifar(ctx: Ctx, files: Option<web_sys::FileList>) {
    let msg = ToWorker::LoadData { dataset: DatasetKind::Cifar10 }.to_json();
    let envelope = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&envelope, &"msg".into(), &JsValue::from_str(&msg));
    let list = js_sys::Array::new();
    if let Some(files) = files {
        for i in 0..files.length() {
            if let Some(f) = files.get(i) {
                list.push(&f);
            }
        }
    }
    let _ = js_sys::Reflect::set(&envelope, &"files".into(), &list);
    let sent = WORKER.with(|w| match w.borrow().as_ref() {
        Some(worker) => worker.post_message(&envelope).map_err(|e| format!("{e:?}")),
        None => Err("the lab worker is not running".into()),
    });
    match sent {
        Ok(()) => ctx.cifar.set(CifarState::Loading),
        Err(e) => ctx.cifar.set(CifarState::Missing(e)),
    }
}

/// Mounts the app.
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let hash = web_sys::window().and_then(|w| w.location().hash().ok()).unwrap_or_default();
    let (spec, opts, link_error) = parse_fragment(&hash);
    let ctx = Ctx {
        spec: RwSignal::new(spec),
        opts: RwSignal::new(opts),
        status: RwSignal::new(Status::Idle),
        error: RwSignal::new(link_error),
        notice: RwSignal::new("Loading the lab engine…".into()),
        auto_device: RwSignal::new("cpu".into()),
        run_device: RwSignal::new("cpu".into()),
        worker_ready: RwSignal::new(false),
        progress: RwSignal::new(0.0),
        progress_text: RwSignal::new(String::new()),
        started: RwSignal::new(0.0),
        epochs: RwSignal::new(Vec::new()),
        report: RwSignal::new(None),
        data_ready: RwSignal::new(false),
        data_version: RwSignal::new(0),
        cifar: RwSignal::new(CifarState::Unknown),
        runs: RwSignal::new(load_runs()),
    };
    provide_context(ctx);
    start_worker(ctx);
    load_page_data(ctx);

    // The URL fragment always holds the spec (and the page options); localStorage keeps it too.
    Effect::new(move |_| {
        let link = ctx.link();
        if let Some(w) = web_sys::window() {
            if let Ok(history) = w.history() {
                let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&link));
            }
        }
        if let Some(s) = storage() {
            let _ = s.set_item(STORAGE_SPEC, &link);
        }
    });
    // Opening another link (e.g. from the list of past runs) restores every control.
    let on_hash = Closure::<dyn FnMut()>::new(move || {
        let hash = web_sys::window().and_then(|w| w.location().hash().ok()).unwrap_or_default();
        if hash == ctx.link() {
            return;
        }
        let (spec, opts, err) = parse_fragment(&hash);
        ctx.spec.set(spec);
        ctx.opts.set(opts);
        ctx.error.set(err);
    });
    if let Some(w) = web_sys::window() {
        w.set_onhashchange(Some(on_hash.as_ref().unchecked_ref()));
    }
    on_hash.forget();

    let embed = move || ctx.opts.get().embed;
    view! {
        <main class="page" class:embed=embed>
            <Show when=move || !embed()>
                <header class="top">
                    <h1>"Backdoor Lab"</h1>
                    <p class="lead">
                        "Poison a dataset, train a network on it and watch the backdoor appear — all in your browser. Nothing leaves this page."
                    </p>
                </header>
            </Show>
            <div class="statusbar">
                <span>"device: "<b data-testid="device">{move || ctx.device()}</b></span>
                <span>"status: "<b data-testid="status">{move || ctx.status.get().name()}</b></span>
                <span class="notice">{move || ctx.notice.get()}</span>
            </div>
            <Show when=move || ctx.error.get().is_some()>
                <p class="error" role="alert" data-testid="error">{move || ctx.error.get().unwrap_or_default()}</p>
            </Show>
            <DataStep/>
            <PoisonStep/>
            <TrainStep/>
            <ResultsStep/>
            <DetectStep/>
            <RepairStep/>
            <ShareBar/>
        </main>
    }
}

fn ctx() -> Ctx {
    expect_context::<Ctx>()
}

/// A labelled `<select>` bound to one link key.
#[component]
fn Choice(
    /// Visible label.
    label: &'static str,
    /// Link key the choice edits.
    key: &'static str,
    /// (value, text) pairs.
    options: Vec<(&'static str, &'static str)>,
    /// The current value, from the spec.
    value: Signal<String>,
) -> impl IntoView {
    let c = ctx();
    let hidden = move || c.opts.get().hidden(key);
    view! {
        <Show when=move || !hidden()>
            <label class="field">
                <span>{label}</span>
                <select data-key=key prop:value=move || value.get() on:change=move |ev| c.apply(key, &event_target_value(&ev))>
                    {options.clone().into_iter().map(|(v, t)| view! { <option value=v selected=move || value.get() == v>{t}</option> }).collect_view()}
                </select>
            </label>
        </Show>
    }
}

/// A labelled text/number input bound to one link key.
#[component]
fn Field(
    /// Visible label.
    label: &'static str,
    /// Link key the field edits.
    key: &'static str,
    /// The current value, from the spec.
    value: Signal<String>,
    /// A one-line hint under the field.
    #[prop(optional)]
    hint: &'static str,
) -> impl IntoView {
    let c = ctx();
    let hidden = move || c.opts.get().hidden(key);
    view! {
        <Show when=move || !hidden()>
            <label class="field">
                <span>{label}</span>
                <input data-key=key type="text" inputmode="decimal" prop:value=move || value.get()
                    on:change=move |ev| c.apply(key, &event_target_value(&ev)) />
                <small>{hint}</small>
            </label>
        </Show>
    }
}

/// A numbered step with a one-sentence explanation.
#[component]
fn Step(
    /// Section id, also the name used by `hide=`.
    id: &'static str,
    /// Step number shown in the heading.
    n: u8,
    /// Heading.
    title: &'static str,
    /// One sentence for students.
    explain: &'static str,
    children: Children,
) -> impl IntoView {
    let c = ctx();
    let hidden = move || c.opts.get().hidden(id);
    view! {
        <section id=id class="step" class:hidden=hidden>
            <h2><span class="num">{n}</span>{title}</h2>
            <p class="explain">{explain}</p>
            {children()}
        </section>
    }
}

#[component]
fn DataStep() -> impl IntoView {
    let c = ctx();
    let s = move || c.spec.get();
    // Only the data part of the spec decides the samples: other controls must not re-split the pool.
    let data_spec = Memo::new(move |_| c.spec.with(|s| (s.data.clone(), s.seed)));
    let samples = move || {
        c.data_ready.get();
        c.data_version.get();
        let (data_spec, seed) = data_spec.get();
        let dims = data_spec.dataset.shape();
        let data = page_data(data_spec.dataset)?;
        let split = data.split(&data_spec, seed).ok()?;
        Some(
            (0..16.min(split.train.len()))
                .map(|i| {
                    let url = data_url(split.train.image(i), dims);
                    let label = split.train.labels[i];
                    view! { <figure class="sample"><img src=url alt="training image"/><figcaption>{label}</figcaption></figure> }
                })
                .collect_view(),
        )
    };
    // CIFAR-10 is fetched (or asked for) only when chosen: it is 37 MB or more.
    Effect::new(move |_| {
        let wants = c.spec.with(|s| s.data.dataset == DatasetKind::Cifar10);
        if wants && c.worker_ready.get() && c.cifar.get_untracked() == CifarState::Unknown {
            load_cifar(c, None);
        }
    });
    let cifar_panel = move || {
        if c.spec.with(|s| s.data.dataset) != DatasetKind::Cifar10 {
            return None;
        }
        let picker = move |ev: leptos::ev::Event| {
            let input: web_sys::HtmlInputElement = event_target(&ev);
            load_cifar(c, input.files());
        };
        let (note, show_picker) = match c.cifar.get() {
            CifarState::Unknown => ("CIFAR-10 is loaded when the lab engine is ready…".to_string(), false),
            CifarState::Loading => ("Reading CIFAR-10…".to_string(), false),
            CifarState::Ready(note) => (format!("{note}."), true),
            CifarState::Missing(why) => (why, true),
        };
        Some(view! {
            <div class="cifar">
                <p class="explain" data-testid="cifar-status">{note}</p>
                <Show when=move || show_picker>
                    <label class="field file">
                        <span>"your own copy: cifar-10-binary.tar.gz or CIFAR-format .bin files (read here, never uploaded)"</span>
                        <input type="file" data-testid="cifar-file" accept=".gz,.tgz,.bin" multiple on:change=picker/>
                    </label>
                </Show>
            </div>
        })
    };
    view! {
        <Step id="data" n=1 title="Data" explain="MNIST handwritten digits ship with this page (10,000 real digits, split by the seed); CIFAR-10 (Krizhevsky, 2009) comes with the site when its build had it, or from your own copy of the official release.">
            <div class="row">
                <Choice label="dataset" key="data" options=vec![("mnist", "MNIST"), ("cifar10", "CIFAR-10")]
                    value=Signal::derive(move || s().data.dataset.name().to_string())/>
                <Field label="training images" key="train" value=Signal::derive(move || s().data.train_size.to_string())/>
                <Field label="test images" key="test" value=Signal::derive(move || s().data.test_size.to_string())/>
                <Field label="seed" key="seed" value=Signal::derive(move || s().seed.to_string())/>
            </div>
            {cifar_panel}
            <div class="grid">{samples}</div>
        </Step>
    }
}

fn attack_explain(method: &AttackMethod) -> &'static str {
    match method {
        AttackMethod::None => "No attack: a clean model, with ASR still measured using the BadNets patch as a control.",
        AttackMethod::Badnets { .. } => {
            "BadNets (Gu et al., 2017): stamp a small patch on some training images and relabel them as the target."
        }
        AttackMethod::Blended { .. } => {
            "Blended (Chen et al., 2017): mix a faint full-image pattern into some images, x' = (1−α)·x + α·pattern, and relabel them."
        }
        AttackMethod::CleanLabel { .. } => {
            "Clean-label (Turner et al., 2019): add the trigger only to images that already belong to the target class, so every label stays correct."
        }
    }
}

#[component]
fn PoisonStep() -> impl IntoView {
    let c = ctx();
    let s = move || c.spec.get();
    let is_patch = move || {
        matches!(s().attack.method.trigger_spec(), TriggerSpec::Patch(_))
            && !matches!(s().attack.method, AttackMethod::None)
    };
    let is_blend = move || matches!(s().attack.method.trigger_spec(), TriggerSpec::Blend(_));
    let patch = move || match s().attack.method.trigger_spec() {
        TriggerSpec::Patch(p) => Some(p),
        TriggerSpec::Blend(_) => None,
    };
    let preview = move || {
        c.data_ready.get();
        c.data_version.get();
        let spec = s();
        let dims = spec.dims();
        let data = page_data(spec.data.dataset)?;
        let pool = match &*data {
            DataSource::Pool(pool) => pool,
            DataSource::TrainTest { train, .. } => train,
        };
        let trigger = spec.attack.trigger(dims, spec.seed).ok()?;
        let mut views = vec![view! { <figure class="sample trigger"><img src=data_url(&trigger.picture(dims), dims) alt="the trigger"/><figcaption>"trigger"</figcaption></figure> }.into_any()];
        for i in [3usize, 1500, 4200, 7100].map(|i| i % pool.len().max(1)) {
            if pool.is_empty() {
                break;
            }
            let clean = pool.image(i).to_vec();
            let mut poisoned = clean.clone();
            trigger.apply(&mut poisoned, dims);
            let y = pool.labels[i];
            let to = spec.attack.label_policy.target(y, spec.attack.target_label);
            let to = if matches!(spec.attack.method, AttackMethod::CleanLabel { .. }) { y } else { to };
            views.push(
                view! {
                    <figure class="pair">
                        <img src=data_url(&clean, dims) alt="clean"/><img src=data_url(&poisoned, dims) alt="poisoned"/>
                        <figcaption>{format!("{y} → {to}")}</figcaption>
                    </figure>
                }
                .into_any(),
            );
        }
        Some(views)
    };
    let count = move || {
        let spec = s();
        let n = crate::lab::attack::selection::poison_count(spec.data.train_size, spec.attack.poison_rate);
        if matches!(spec.attack.method, AttackMethod::None) {
            "no samples poisoned".to_string()
        } else {
            format!("{n} of {} training images poisoned", spec.data.train_size)
        }
    };
    view! {
        <Step id="poison" n=2 title="Poison" explain="An attacker who controls part of the training data hides a trigger in it; the poisoning rate ρ = |Dp| / (|Dc| + |Dp|) is the share of poisoned samples.">
            <div class="row">
                <Choice label="attack" key="attack" options=vec![("badnets", "BadNets patch"), ("blended", "Blended"), ("clean_label", "Clean-label"), ("none", "None (clean)")]
                    value=Signal::derive(move || s().attack.method.name().to_string())/>
                <Field label="poisoning rate ρ" key="rate" value=Signal::derive(move || s().attack.poison_rate.to_string()) hint="0 to 0.9"/>
                <Field label="target label" key="target" value=Signal::derive(move || s().attack.target_label.to_string())/>
                <Choice label="label policy" key="policy" options=vec![("all_to_one", "all-to-one"), ("all_to_all", "all-to-all (y → y+1)")]
                    value=Signal::derive(move || policy_name(s().attack.label_policy).to_string())/>
                <Show when=move || matches!(s().attack.method, AttackMethod::CleanLabel { .. })>
                    <Choice label="trigger" key="trigger" options=vec![("patch", "patch"), ("blend", "blend")]
                        value=Signal::derive(move || if is_blend() { "blend".to_string() } else { "patch".to_string() })/>
                </Show>
                <Show when=is_patch>
                    <Field label="patch size" key="patch" value=Signal::derive(move || patch().map(|p| p.size.to_string()).unwrap_or_default())/>
                    <Field label="position" key="pos" value=Signal::derive(move || patch().map(|p| position_name(p.position)).unwrap_or_default()) hint="br, bl, tr, tl, center or x,y"/>
                    <Choice label="pattern" key="pattern" options=vec![("white", "white"), ("checker", "checkerboard"), ("random", "random")]
                        value=Signal::derive(move || patch().map(|p| pattern_name(p.pattern).to_string()).unwrap_or_default())/>
                </Show>
                <Show when=is_blend>
                    <Field label="blend α" key="alpha" value=Signal::derive(move || match s().attack.method.trigger_spec() { TriggerSpec::Blend(b) => b.alpha.to_string(), _ => String::new() }) hint="0 < α ≤ 1"/>
                </Show>
            </div>
            <p class="explain">{move || attack_explain(&s().attack.method)}" "<b>{count}</b></p>
            <div class="grid">{preview}</div>
        </Step>
    }
}

#[component]
fn TrainStep() -> impl IntoView {
    let c = ctx();
    let s = move || c.spec.get();
    let running = move || c.status.get() == Status::Running;
    let epochs_total = move || s().train.epochs;
    view! {
        <Step id="train" n=3 title="Train" explain="The network learns the task and, silently, the trigger; clean accuracy (CA) and attack success rate (ASR) are measured after every epoch.">
            <div class="row">
                <Choice label="model" key="model" options=vec![("cnn", "reference CNN"), ("mlp", "MLP"), ("cifar_cnn", "small VGG-style CNN")]
                    value=Signal::derive(move || s().model.name().to_string())/>
                <Field label="epochs" key="epochs" value=Signal::derive(move || s().train.epochs.to_string())/>
                <Field label="learning rate" key="lr" value=Signal::derive(move || s().train.lr.to_string())/>
                <Field label="batch size" key="batch" value=Signal::derive(move || s().train.batch_size.to_string())/>
                <Choice label="optimizer" key="opt" options=vec![("adam", "Adam"), ("sgd", "SGD")]
                    value=Signal::derive(move || optimizer_name(s().train.optimizer).to_string())/>
                <label class="field check">
                    <input type="checkbox" data-testid="force-cpu" prop:checked=move || c.opts.get().cpu
                        on:change=move |ev| { let on = event_target_checked(&ev); c.opts.update(|o| o.cpu = on); }/>
                    <span>"run on the CPU even if WebGPU is available"</span>
                </label>
            </div>
            <div class="actions">
                <button class="primary" data-testid="run" disabled=move || running() || !c.worker_ready.get() on:click=move |_| run_experiment(c)>
                    {move || if c.worker_ready.get() { "Run" } else { "Loading…" }}
                </button>
                <button data-testid="cancel" disabled=move || !running() on:click=move |_| { let _ = send(&ToWorker::Cancel); }>"Cancel"</button>
                <progress data-testid="progress" max="1" prop:value=move || c.progress.get()></progress>
                <span class="progress-text">{move || c.progress_text.get()}</span>
            </div>
            <div class="charts">
                <div class="chart" inner_html=move || chart::loss_chart(&c.epochs.get(), epochs_total())></div>
                <div class="chart" inner_html=move || chart::accuracy_chart(&c.epochs.get(), epochs_total())></div>
            </div>
            <Show when=move || !c.epochs.get().is_empty()>
                <div class="actions">
                    <button data-testid="save-loss-png" on:click=move |_| export_png(c, chart::loss_chart(&c.epochs.get_untracked(), epochs_total()), "backdoor-lab-loss.png")>"Save loss chart (PNG)"</button>
                    <button data-testid="save-acc-png" on:click=move |_| export_png(c, chart::accuracy_chart(&c.epochs.get_untracked(), epochs_total()), "backdoor-lab-ca-asr.png")>"Save CA/ASR chart (PNG)"</button>
                </div>
            </Show>
        </Step>
    }
}

#[component]
fn ResultsStep() -> impl IntoView {
    let c = ctx();
    let metric = move |f: fn(&Report) -> f64| move || c.report.get().map(|r| pct(f(&r))).unwrap_or_else(|| "—".into());
    let per_class = move || {
        c.report.get().map(|r| {
            r.final_metrics.per_class_acc.iter().enumerate().map(|(k, a)| {
                let w = format!("width: {:.0}%", 100.0 * a);
                view! { <div class="bar"><span class="k">{k}</span><span class="fill" style=w></span><span class="v">{pct(*a)}</span></div> }
            }).collect_view()
        })
    };
    let confusion = move || {
        c.report.get().map(|r| {
            let rows = r.final_metrics.confusion.clone();
            view! {
                <table class="confusion">
                    <tr><th>"true ↓ / predicted →"</th>{(0..10).map(|k| view! { <th>{k}</th> }).collect_view()}</tr>
                    {rows.into_iter().enumerate().map(|(t, row)| view! {
                        <tr><th>{t}</th>{row.into_iter().enumerate().map(|(p, n)| { let (diag, hot) = (p == t, p != t && n > 0); view! { <td class:diag=diag class:hot=hot>{n}</td> } }).collect_view()}</tr>
                    }).collect_view()}
                </table>
            }
        })
    };
    let examples = move || {
        c.data_ready.get();
        c.data_version.get();
        let r = c.report.get()?;
        let data = page_data(r.spec.data.dataset)?;
        let spec = r.spec.clone();
        let dims = spec.dims();
        let split = data.split(&spec.data, spec.seed).ok()?;
        let trigger = spec.attack.trigger(dims, spec.seed).ok()?;
        Some(r.examples.iter().map(|e| {
            let clean = split.test.image(e.test_index).to_vec();
            let mut triggered = clean.clone();
            trigger.apply(&mut triggered, dims);
            view! {
                <figure class="pair">
                    <img src=data_url(&clean, dims) alt="clean test image"/><img src=data_url(&triggered, dims) alt="with trigger"/>
                    <figcaption>{format!("{} → {}", e.clean_pred, e.triggered_pred)}</figcaption>
                </figure>
            }
        }).collect_view())
    };
    view! {
        <Step id="results" n=4 title="Results" explain="CA: accuracy on clean test images. ASR: share of triggered test images (not already of the target class) classified as the target. RA: accuracy on those triggered images against their true labels.">
            <div class="metrics">
                <div class="metric"><span>"clean accuracy"</span><b data-testid="clean-acc">{metric(|r| r.final_metrics.clean_acc)}</b>"%"</div>
                <div class="metric bad"><span>"attack success"</span><b data-testid="asr">{metric(|r| r.final_metrics.asr)}</b>"%"</div>
                <div class="metric"><span>"robust accuracy"</span><b data-testid="robust-acc">{metric(|r| r.final_metrics.robust_acc)}</b>"%"</div>
            </div>
            <Show when=move || c.report.get().is_some()>
                <h3>"Test images without and with the trigger (prediction clean → triggered)"</h3>
                <div class="grid">{examples}</div>
                <div class="two">
                    <div><h3>"Per-class clean accuracy (%)"</h3>{per_class}</div>
                    <div><h3>"Confusion matrix (clean test set)"</h3>{confusion}</div>
                </div>
                <div class="actions">
                    <button on:click=move |_| export_report(c)>"Export report (JSON)"</button>
                </div>
            </Show>
        </Step>
    }
}

fn document() -> Result<web_sys::Document, JsValue> {
    web_sys::window().and_then(|w| w.document()).ok_or_else(|| JsValue::from_str("no document"))
}

/// A `blob:` URL of `text` with MIME type `mime` (revoke it when done).
fn blob_url(text: &str, mime: &str) -> Result<String, JsValue> {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let bag = web_sys::BlobPropertyBag::new();
    bag.set_type(mime);
    web_sys::Url::create_object_url_with_blob(&web_sys::Blob::new_with_str_sequence_and_options(&parts, &bag)?)
}

/// Lets the browser save `href` as `file`.
fn download(href: &str, file: &str) -> Result<(), JsValue> {
    let a: web_sys::HtmlAnchorElement = document()?.create_element("a")?.unchecked_into();
    a.set_href(href);
    a.set_download(file);
    a.click();
    Ok(())
}

/// The name a student reads for a detector's link name.
fn detector_title(name: &str) -> &'static str {
    match name {
        "nc" => "Neural Cleanse",
        "ac" => "Activation Clustering",
        "ss" => "Spectral Signatures",
        "strip" => "STRIP",
        "loss" => "Loss-based isolation",
        "occlusion" => "Occlusion sensitivity",
        _ => "detector",
    }
}

fn detector_explain(name: &str) -> &'static str {
    match name {
        "nc" => {
            "Neural Cleanse (Wang et al., S&P 2019) searches, for every class, the smallest patch that sends clean images to it; a class reachable by an unusually small patch (anomaly index > 2) is a backdoor target."
        }
        "ac" => {
            "Activation Clustering (Chen et al., 2018) splits each class's penultimate activations in two; a small, well-separated cluster is flagged as poison."
        }
        "ss" => {
            "Spectral Signatures (Tran et al., NeurIPS 2018) scores each training sample by its projection on the top singular vector of its class's representations and removes the top 1.5·ε."
        }
        "strip" => {
            "STRIP (Gao et al., ACSAC 2019) blends an input with random clean images: a triggered input keeps its (target) prediction, so its predictions have low entropy."
        }
        "loss" => {
            "Loss-based isolation (Anti-Backdoor Learning, Li et al., NeurIPS 2021): a backdoor is learned faster than the task, so after a short training the poisoned samples have the lowest loss."
        }
        "occlusion" => {
            "Occlusion sensitivity greys out one small patch at a time: where hiding the patch breaks the target prediction, the trigger is."
        }
        _ => "",
    }
}

/// Starts detectors or repairs (`job`) on the model of the last run.
fn run_on_model(ctx: Ctx, job: ToWorker, what: Stage) {
    ctx.error.set(None);
    ctx.progress.set(0.0);
    ctx.progress_text.set(stage_text(what).into());
    ctx.started.set(now());
    match send(&job) {
        Ok(()) => ctx.status.set(Status::Running),
        Err(e) => {
            ctx.status.set(Status::Failed);
            ctx.error.set(Some(e));
        }
    }
}

/// A detector's result: its verdict (read by tests), a sentence on the method, and its picture.
#[component]
fn DetectCard(
    /// Link name of the detector.
    name: &'static str,
    /// The verdict in one sentence.
    verdict: String,
    /// Wall time, seconds.
    seconds: f64,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="card">
            <h3>{detector_title(name)}<small>{format!(" · {seconds:.1} s")}</small></h3>
            <p class="verdict" data-testid=format!("detect-{name}")>{verdict}</p>
            <p class="explain">{detector_explain(name)}</p>
            {children()}
        </div>
    }
}

fn pct0(x: f64) -> String {
    format!("{:.0}", 100.0 * x)
}

/// The cards of every detector in `r.detect`.
fn detect_cards(r: &Report) -> impl IntoView + use<> {
    let d = r.detect.clone();
    let spec = r.spec.clone();
    let dims = spec.dims();
    let target = spec.attack.target_label;
    let share = r.poison.target_class_share;
    let trigger = spec.attack.trigger(dims, spec.seed).ok().map(|t| t.picture(dims));
    let mut cards = Vec::new();
    if let Some(nc) = d.nc {
        let (top, top_k) = nc
            .anomaly_index
            .iter()
            .copied()
            .enumerate()
            .fold((f64::MIN, 0), |(m, k), (i, v)| if v > m { (v, i) } else { (m, k) });
        let verdict = if nc.flagged_classes.is_empty() {
            format!(
                "No class flagged: the largest anomaly index is {top:.1} (class {top_k}); above 2 on the small side would flag."
            )
        } else {
            let list: Vec<String> = nc
                .flagged_classes
                .iter()
                .map(|k| format!("{k} (index {:.1})", nc.anomaly_index[*k as usize]))
                .collect();
            format!("Flags class {}: a trigger this small is a backdoor.", list.join(", "))
        };
        let reversed = (0..nc.masks.len()).map(|k| {
            let mask = &nc.masks[k];
            let pattern = &nc.patterns[k];
            let stamp: Vec<u8> = (0..nc.channels * nc.height * nc.width)
                .map(|i| ((pattern[i] as u32 * mask[i % (nc.height * nc.width)] as u32) / 255) as u8)
                .collect();
            let flagged = nc.flagged_classes.contains(&(k as u8));
            view! { <figure class="sample" class:flagged=flagged><img src=data_url(&stamp, (nc.channels, nc.height, nc.width)) alt="reversed trigger"/><figcaption>{format!("{k}: {:.0} px", nc.mask_l1[k])}</figcaption></figure> }
        }).collect_view();
        let truth = trigger.clone().map(|t| view! { <figure class="sample trigger"><img src=data_url(&t, dims) alt="true trigger"/><figcaption>"true trigger"</figcaption></figure> });
        cards.push(view! {
            <DetectCard name="nc" verdict=verdict seconds=nc.seconds>
                <div class="chart" inner_html=chart::class_bars("anomaly index of each class's mask size", &nc.anomaly_index, 2.0, &nc.flagged_classes)></div>
                <h4>"Reversed trigger of each class (mask × pattern, mask size in pixels) beside the attacker's"</h4>
                <div class="grid">{reversed}{truth}</div>
            </DetectCard>
        }.into_any());
    }
    if let Some(ac) = d.ac {
        let s = &ac.score;
        let mut verdict = format!(
            "Flagged {} training samples: precision {} %, recall {} %, F1 {:.2} against the true poison.",
            s.flagged,
            pct0(s.precision),
            pct0(s.tpr),
            s.f1
        );
        if share >= 0.45 {
            verdict.push_str(&format!(
                " Here the poison is {} % of class {target}, so the “smaller cluster” is the clean images: the textbook rule cannot work at this poisoning rate.",
                pct0(share)
            ));
        }
        let view_class = ac.classes.iter().find(|k| k.class == target).cloned();
        let scatter = view_class.map(|k| {
            let title = format!(
                "class {} activations (small share {:.0} %, silhouette {:.2})",
                k.class,
                100.0 * k.small_share,
                k.silhouette
            );
            view! { <div class="chart" inner_html=chart::scatter(&title, &k.points, &k.poisoned, &k.in_small)></div> }
        });
        cards
            .push(view! { <DetectCard name="ac" verdict=verdict seconds=ac.seconds>{scatter}</DetectCard> }.into_any());
    }
    if let Some(ss) = d.ss {
        let s = &ss.score;
        let mut verdict = format!(
            "Removed {} samples (top 1.5·ε = {:.0} % of each class): precision {} %, recall {} %, F1 {:.2}; in-class AUROC {}.",
            s.flagged,
            150.0 * ss.params.eps,
            pct0(s.precision),
            pct0(s.tpr),
            s.f1,
            ss.in_class_auroc.map(|a| format!("{a:.2}")).unwrap_or_else(|| "—".into())
        );
        if share >= 0.45 {
            // The same reason Activation Clustering fails here, seen from the score's side.
            verdict.push_str(&format!(
                " Here the poison is {} % of class {target}: the class mean lies about halfway between the poisoned and the clean images, a little nearer the poisoned majority, so the score (squared distance from the mean along the top direction) ranks the clean images as far out as the poisoned ones or further: an in-class AUROC near or below 0.5 is what this rule gives at this poisoning rate.",
                pct0(share)
            ));
        }
        cards.push(view! {
            <DetectCard name="ss" verdict=verdict seconds=ss.seconds>
                <div class="chart" inner_html=chart::histogram(&format!("class {target}: outlier score"), "score", &ss.target_histogram, "poisoned")></div>
            </DetectCard>
        }.into_any());
    }
    if let Some(st) = d.strip {
        let verdict = format!(
            "At a false-rejection rate of {:.1} % on clean inputs, {:.1} % of triggered inputs get through (FAR); AUROC {}.",
            100.0 * st.frr,
            100.0 * st.far_at_frr_1pct,
            st.auroc.map(|a| format!("{a:.3}")).unwrap_or_else(|| "—".into())
        );
        cards.push(view! {
            <DetectCard name="strip" verdict=verdict seconds=st.seconds>
                <div class="chart" inner_html=chart::histogram("prediction entropy under blending", "entropy", &st.histogram, "triggered")></div>
            </DetectCard>
        }.into_any());
    }
    if let Some(l) = d.loss {
        let s = &l.score;
        let verdict = format!(
            "Isolated the {} lowest-loss samples ({} %): {} % of them are poisoned (recall {} %).",
            s.flagged,
            100.0 * l.params.frac,
            pct0(s.precision),
            pct0(s.tpr)
        );
        cards.push(view! {
            <DetectCard name="loss" verdict=verdict seconds=l.seconds>
                <div class="chart" inner_html=chart::histogram(&format!("training loss after {} epochs", l.params.epochs), "log10 loss", &l.histogram, "poisoned")></div>
            </DetectCard>
        }.into_any());
    }
    if let Some(o) = d.occlusion {
        let verdict = format!(
            "Hiding the region at row {}, column {} breaks the target prediction most: {} the trigger.",
            o.max_row,
            o.max_col,
            if o.hottest_on_trigger { "on" } else { "not on" }
        );
        let top = o.heat.iter().copied().fold(1e-9f32, f32::max);
        let plane = o.height * o.width;
        let heat: Vec<u8> = (0..3 * plane)
            .map(|i| if i < plane { 255 } else { (255.0 * (1.0 - (o.heat[i % plane] / top).clamp(0.0, 1.0))) as u8 })
            .collect();
        let truth = trigger.map(|t| view! { <figure class="sample trigger"><img src=data_url(&t, dims) alt="true trigger"/><figcaption>"true trigger"</figcaption></figure> });
        cards.push(view! {
            <DetectCard name="occlusion" verdict=verdict seconds=o.seconds>
                <div class="grid">
                    <figure class="sample big"><img src=data_url(&heat, (3, o.height, o.width)) alt="occlusion heat map"/><figcaption>"sensitivity (red = hot)"</figcaption></figure>
                    {truth}
                </div>
            </DetectCard>
        }.into_any());
    }
    cards
}

#[component]
fn DetectStep() -> impl IntoView {
    let c = ctx();
    let chosen = move || c.spec.with(|s| s.detect.chosen());
    let toggle = move |name: &'static str, on: bool| {
        let mut names = chosen();
        names.retain(|n| *n != name);
        if on {
            names.push(name);
        }
        let list: Vec<&str> = DetectSpec::NAMES.iter().copied().filter(|n| names.contains(n)).collect();
        let joined = list.join(",");
        c.apply("detect", if list.is_empty() { "none" } else { &joined });
    };
    let can_detect = move || c.report.get().is_some() && c.status.get() != Status::Running && !chosen().is_empty();
    let boxes = DetectSpec::NAMES
        .iter()
        .map(|&name| {
            view! {
                <label class="field check">
                    <input type="checkbox" data-detector=name prop:checked=move || chosen().contains(&name)
                        on:change=move |ev| toggle(name, event_target_checked(&ev))/>
                    <span>{detector_title(name)}</span>
                </label>
            }
        })
        .collect_view();
    view! {
        <Step id="detect" n=5 title="Detect" explain="A defender who suspects a backdoor inspects the model, filters the training data or screens inputs at run time. Each verdict is scored against the samples the attack really poisoned (which the detectors never see).">
            <div class="row">{boxes}</div>
            <div class="actions">
                <button data-testid="run-detect" disabled=move || !can_detect() on:click=move |_| run_on_model(c, ToWorker::Detect { detect: c.spec.get_untracked().detect }, Stage::Detect)>"Run detectors on the trained model"</button>
                <small>"Chosen detectors also run after training when you press Run; the link keeps the choice."</small>
            </div>
            <div class="cards">{move || c.report.get().map(|r| detect_cards(&r))}</div>
        </Step>
    }
}

/// The name a student reads for a repair's link name.
fn repair_title(name: &str) -> &'static str {
    match name {
        "fp" => "Fine-pruning",
        "ft" => "Fine-tuning",
        "retrain" => "Retraining on sanitized data",
        "abl" => "Anti-Backdoor Learning",
        "nc_unlearn" => "Neural Cleanse unlearning",
        "distill" => "Distillation",
        "strip_filter" => "STRIP filter",
        _ => "repair",
    }
}

fn repair_explain(name: &str) -> &'static str {
    match name {
        "fp" => {
            "Fine-pruning (Liu et al., RAID 2018) removes the last layer's units that clean images leave idle, where a backdoor may hide, then fine-tunes on clean data."
        }
        "ft" => "Fine-tuning on the defender's small clean set: the baseline every paper compares against.",
        "retrain" => {
            "Drops the training samples a data-level detector flagged and trains a fresh model on the rest; only as good as the detector."
        }
        "abl" => {
            "Anti-Backdoor Learning (Li et al., NeurIPS 2021) isolates the lowest-loss samples and unlearns them by gradient ascent while keeping the clean loss low."
        }
        "nc_unlearn" => {
            "Neural Cleanse unlearning (Wang et al., S&P 2019) stamps the reversed trigger on clean images under their true labels and fine-tunes, so the trigger stops meaning the target."
        }
        "distill" => {
            "Distillation trains a fresh student on the suspect model's soft outputs over clean data only; the trigger never appears, so the student has no reason to learn it."
        }
        "strip_filter" => {
            "STRIP as a filter (Gao et al., ACSAC 2019) keeps the model and rejects inputs whose blended predictions are too confident; rejected inputs count as wrong."
        }
        _ => "",
    }
}

/// What a repair did, in one sentence, from its own report.
fn repair_detail(r: &RepairReport, name: &str) -> String {
    match name {
        "fp" => r.fp.as_ref().map(|f| {
            format!(
                "Pruned {} of {} units ({:.0} %): CA {} %, ASR {} % before fine-tuning for {} epochs.",
                f.detail.pruned,
                f.detail.units,
                100.0 * f.detail.pruned_fraction,
                pct(f.detail.pruned_clean_acc),
                pct(f.detail.pruned_asr),
                f.params.ft_epochs
            )
        }),
        "ft" => r.ft.as_ref().map(|f| format!("{} epochs on {} clean images.", f.params.epochs, f.clean_samples)),
        "retrain" => r.retrain.as_ref().map(|f| {
            format!(
                "{} flagged {} samples ({} poisoned); {} poisoned samples stayed in the {} retrained on.",
                f.params.by.name(),
                f.detail.removed,
                f.detail.removed_poisoned,
                f.detail.remaining_poisoned,
                f.clean_samples
            )
        }),
        "abl" => r.abl.as_ref().map(|f| {
            format!(
                "Isolated {} samples, {} of them poisoned ({} were already of the target class, so unlearning them teaches little).",
                f.detail.isolated, f.detail.isolated_poisoned, f.detail.isolated_true_target
            )
        }),
        "nc_unlearn" => r.nc_unlearn.as_ref().map(|f| {
            let why = if f.detail.flagged {
                format!("flagged by Neural Cleanse (index {:.1})", f.detail.anomaly_index)
            } else {
                format!("not flagged (index {:.1}): the class with the smallest mask, a guess", f.detail.anomaly_index)
            };
            format!("Unlearned class {}'s reversed trigger, {why}, stamped on {} clean images.", f.detail.class, f.detail.stamped)
        }),
        "distill" => r.distill.as_ref().map(|f| {
            format!(
                "The student reaches {} % on the defender's {} clean images.",
                pct(f.detail.student_defender_acc),
                f.clean_samples
            )
        }),
        "strip_filter" => r.strip_filter.as_ref().map(|f| {
            format!(
                "Rejects {} % of clean and {} % of triggered test inputs.",
                pct(f.detail.rejected_clean),
                pct(f.detail.rejected_triggered)
            )
        }),
        _ => None,
    }
    .unwrap_or_default()
}

/// The measured outcome in words: whether the backdoor survived and what clean accuracy it cost.
fn repair_verdict(before: &crate::lab::repair::Baseline, clean_acc: f64, asr: f64) -> String {
    let drop = 100.0 * (before.clean_acc - clean_acc);
    let effect = if before.asr < 0.2 {
        "little backdoor to begin with"
    } else if asr <= 0.1 {
        "backdoor removed"
    } else if asr < before.asr / 2.0 {
        "backdoor weakened"
    } else {
        "backdoor survives"
    };
    if drop > 0.05 { format!("{effect}; CA −{drop:.1} points") } else { format!("{effect}; no CA lost") }
}

/// The comparison table, its chart, the fine-pruning curve and the reversed trigger NC unlearned.
fn repair_results(r: &Report) -> impl IntoView + use<> {
    let rep = r.repair.clone();
    let rows = rep.rows();
    let before = rep.before.clone();
    let bars: Vec<(String, f64, f64)> =
        std::iter::once(("none".to_string(), 100.0 * before.clean_acc, 100.0 * before.asr))
            .chain(rows.iter().map(|w| (w.name.to_string(), 100.0 * w.clean_acc, 100.0 * w.asr)))
            .collect();
    let table_rows = rows
        .iter()
        .map(|w| {
            let verdict = repair_verdict(&before, w.clean_acc, w.asr);
            let failed = verdict.starts_with("backdoor survives");
            view! {
                <tr data-testid=format!("repair-{}", w.name) class:failed=failed>
                    <th>{repair_title(w.name)}</th>
                    <td data-metric="clean_acc">{pct(w.clean_acc)}</td>
                    <td data-metric="asr">{pct(w.asr)}</td>
                    <td data-metric="robust_acc">{pct(w.robust_acc)}</td>
                    <td data-metric="der">{format!("{:.2}", w.der)}</td>
                    <td>{w.clean_samples}</td>
                    <td>{format!("{:.1} s", w.seconds)}</td>
                    <td class="verdict">{verdict}</td>
                </tr>
            }
        })
        .collect_view();
    let notes = rows
        .iter()
        .map(|w| {
            view! { <li><b>{repair_title(w.name)}</b>": "{repair_explain(w.name)}" "<span class="detail">{repair_detail(&rep, w.name)}</span></li> }
        })
        .collect_view();
    let curve = rep.fp.as_ref().map(|f| {
        let points: Vec<(f64, f64, f64)> =
            f.detail.curve.iter().map(|p| (p.fraction, 100.0 * p.clean_acc, 100.0 * p.asr)).collect();
        let svg = chart::pruning_curve(&points, f.detail.pruned_fraction, (100.0 * f.clean_acc, 100.0 * f.asr));
        view! { <div class="chart" inner_html=svg></div> }
    });
    let reversed = rep.nc_unlearn.as_ref().map(|f| {
        let dims = r.spec.dims();
        let plane = dims.1 * dims.2;
        let stamp: Vec<u8> = (0..dims.0 * plane)
            .map(|i| ((f.detail.pattern[i] as u32 * f.detail.mask[i % plane] as u32) / 255) as u8)
            .collect();
        view! {
            <figure class="sample big"><img src=data_url(&stamp, dims) alt="reversed trigger that was unlearned"/>
                <figcaption>{format!("reversed trigger of class {} (unlearned)", f.detail.class)}</figcaption></figure>
        }
    });
    view! {
        <table class="repairs">
            <thead><tr><th>"defense"</th><th>"CA %"</th><th>"ASR %"</th><th>"RA %"</th><th>"DER"</th><th>"clean images"</th><th>"time"</th><th>"outcome"</th></tr></thead>
            <tbody>
                <tr data-testid="repair-before" class="before">
                    <th>"none (the suspect model)"</th>
                    <td data-metric="clean_acc">{pct(before.clean_acc)}</td>
                    <td data-metric="asr">{pct(before.asr)}</td>
                    <td data-metric="robust_acc">{pct(before.robust_acc)}</td>
                    <td>"—"</td><td>"—"</td><td>"—"</td><td></td>
                </tr>
                {table_rows}
            </tbody>
        </table>
        <p class="explain">"DER (BackdoorBench): [max(0, ΔASR) − max(0, ΔCA) + 1] / 2 — 1 means the backdoor is gone at no cost, 0.5 that nothing changed. Every row is measured by the same code on the same test images."</p>
        <div class="charts">
            <div class="chart" inner_html=chart::repair_bars(&bars)></div>
            {curve}
            {reversed}
        </div>
        <ul class="repair-notes">{notes}</ul>
    }
}

#[component]
fn RepairStep() -> impl IntoView {
    let c = ctx();
    let s = move || c.spec.get();
    let chosen = move || c.spec.with(|s| s.repair.chosen());
    let toggle = move |name: &'static str, on: bool| {
        let mut names = chosen();
        names.retain(|n| *n != name);
        if on {
            names.push(name);
        }
        let list: Vec<&str> = RepairSpec::NAMES.iter().copied().filter(|n| names.contains(n)).collect();
        let joined = list.join(",");
        c.apply("repair", if list.is_empty() { "none" } else { &joined });
    };
    let can_repair = move || c.report.get().is_some() && c.status.get() != Status::Running && !chosen().is_empty();
    let boxes = RepairSpec::NAMES
        .iter()
        .map(|&name| {
            view! {
                <label class="field check">
                    <input type="checkbox" data-repair=name prop:checked=move || chosen().contains(&name)
                        on:change=move |ev| toggle(name, event_target_checked(&ev))/>
                    <span>{repair_title(name)}</span>
                </label>
            }
        })
        .collect_view();
    let retrain_chosen = move || chosen().contains(&"retrain");
    let has_results = move || c.report.with(|r| r.as_ref().is_some_and(|r| !r.repair.is_empty()));
    view! {
        <Step id="repair" n=6 title="Repair" explain="The defender tries to remove the backdoor with a small clean set (a few hundred training images the attack did not touch). Each repaired model is measured exactly like the original: what it gains in ASR and what it costs in CA.">
            <div class="row">{boxes}</div>
            <div class="row">
                <Field label="defender's clean images" key="defender_clean" value=Signal::derive(move || s().repair.defender_clean.to_string())/>
                <Show when=retrain_chosen>
                    <Choice label="retrain after" key="retrain_by"
                        options=vec![("ac", "Activation Clustering"), ("ss", "Spectral Signatures"), ("loss", "loss-based isolation"), ("truth", "the true poison (oracle)")]
                        value=Signal::derive(move || s().repair.retrain.map(|r| r.by.name()).unwrap_or("ac").to_string())/>
                </Show>
            </div>
            <div class="actions">
                <button data-testid="run-repair" disabled=move || !can_repair()
                    on:click=move |_| run_on_model(c, ToWorker::Repair { repair: c.spec.get_untracked().repair }, Stage::Repair)>"Repair the trained model"</button>
                <small>"Chosen repairs also run after training when you press Run; the link keeps the choice."</small>
            </div>
            <Show when=has_results>
                {move || c.report.get().map(|r| repair_results(&r))}
            </Show>
        </Step>
    }
}

fn export_report(c: Ctx) {
    let Some(r) = c.report.get_untracked() else { return };
    let json = serde_json::to_string_pretty(&r).expect("a report always serialises");
    let result = blob_url(&json, "application/json")
        .and_then(|url| download(&url, "backdoor-lab-report.json").and_then(|_| web_sys::Url::revoke_object_url(&url)));
    if let Err(e) = result {
        c.error.set(Some(format!("The report could not be exported: {e:?}")));
    }
}

/// Saves an SVG chart as a PNG at twice its size: the browser rasterises it through an image and a canvas.
fn export_png(c: Ctx, svg: String, file: &'static str) {
    spawn_local(async move {
        let result: Result<(), JsValue> = async {
            let url = blob_url(&svg, "image/svg+xml")?;
            let img: web_sys::HtmlImageElement = document()?.create_element("img")?.unchecked_into();
            img.set_src(&url);
            let decoded = JsFuture::from(img.decode()).await;
            web_sys::Url::revoke_object_url(&url)?;
            decoded?;
            let (w, h) = (img.natural_width(), img.natural_height());
            let canvas: web_sys::HtmlCanvasElement = document()?.create_element("canvas")?.unchecked_into();
            canvas.set_width(2 * w);
            canvas.set_height(2 * h);
            let g: web_sys::CanvasRenderingContext2d =
                canvas.get_context("2d")?.ok_or_else(|| JsValue::from_str("no 2D canvas"))?.unchecked_into();
            g.set_fill_style_str("white");
            g.fill_rect(0.0, 0.0, 2.0 * w as f64, 2.0 * h as f64);
            g.scale(2.0, 2.0)?;
            g.draw_image_with_html_image_element(&img, 0.0, 0.0)?;
            download(&canvas.to_data_url_with_type("image/png")?, file)
        }
        .await;
        if let Err(e) = result {
            c.error.set(Some(format!("The chart could not be saved: {e:?}")));
        }
    });
}

#[component]
fn ShareBar() -> impl IntoView {
    let c = ctx();
    let copied = RwSignal::new(String::new());
    let full_link = move || {
        let href = web_sys::window().and_then(|w| w.location().href().ok()).unwrap_or_default();
        let base = href.split('#').next().unwrap_or_default().to_string();
        format!("{base}{}", c.link())
    };
    let copy = move |_| {
        let link = full_link();
        let Some(clipboard) = web_sys::window().map(|w| w.navigator().clipboard()) else { return };
        spawn_local(async move {
            match JsFuture::from(clipboard.write_text(&link)).await {
                Ok(_) => copied.set("Link copied.".into()),
                Err(_) => copied.set("Copy blocked by the browser: select the link and copy it.".into()),
            }
        });
    };
    let open = move |link: String| {
        if let Some(w) = web_sys::window() {
            let _ = w.location().set_hash(&link);
        }
    };
    view! {
        <section class="step share" class:hidden=move || c.opts.get().embed>
            <h2>"Share and reproduce"</h2>
            <p class="explain">"This link holds the whole experiment: opening it restores every control, and Run reproduces the result."</p>
            <div class="actions">
                <input class="link" readonly data-testid="link" prop:value=full_link/>
                <button data-testid="copy-link" on:click=copy>"Copy link"</button>
                <span>{move || copied.get()}</span>
            </div>
            <Show when=move || !c.runs.get().is_empty()>
                <h3>"Past runs (kept in this browser)"</h3>
                <table class="runs">
                    <tr><th>"when"</th><th>"CA"</th><th>"ASR"</th><th>"RA"</th><th>"device"</th><th>"experiment"</th></tr>
                    {move || c.runs.get().into_iter().map(|r| {
                        let link = r.link.clone();
                        view! {
                            <tr>
                                <td>{r.when.clone()}</td><td>{pct(r.clean_acc)}</td><td>{pct(r.asr)}</td><td>{pct(r.robust_acc)}</td><td>{r.device.clone()}</td>
                                <td><a href=r.link.clone() on:click=move |_| open(link.clone())>{r.link.clone()}</a></td>
                            </tr>
                        }
                    }).collect_view()}
                </table>
            </Show>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_keys_are_split_from_the_spec() {
        let (spec, opts, err) = parse_fragment("#v=1&epochs=2&embed=1&hide=poison,lr");
        assert_eq!(spec.train.epochs, 2);
        assert!(opts.embed && opts.hidden("poison") && opts.hidden("lr"));
        assert!(err.is_none());
        let (spec, _, err) = parse_fragment("#v=1&attack=trojan");
        assert_eq!(spec, ExperimentSpec::default());
        assert!(err.unwrap().contains("unknown attack"));
    }
}
