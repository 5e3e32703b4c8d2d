//! The page's root: mounts the `App` component, which builds the shared state (`Ctx`), starts the lab
//! worker, keeps the URL fragment in step with the spec, and lays out the steps in order. Each step is
//! its own module; they all reach the state through `ctx()`.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use super::challenge::ChallengeStep;
use super::client::{CifarState, load_page_data, start_worker};
use super::data::DataStep;
use super::detect::DetectStep;
use super::grid::GridStep;
use super::lessons::{LessonCard, LessonsMenu};
use super::poison::PoisonStep;
use super::protocol::DevicePreference;
use super::repair::RepairStep;
use super::results::ResultsStep;
use super::share::{PageOptions, ShareBar, parse_fragment};
use super::storage::{STORAGE_SPEC, SavedRun, load_runs, storage};
use super::train::TrainStep;
use super::transfer::TransferStep;
use crate::lab::ExperimentSpec;
use crate::lab::event::EpochRecord;
use crate::lab::run::Report;

/// Where the current job stands; the status badge shows its name, which the end-to-end tests read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
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

/// The page's shared state: a small `Copy` bundle of signals.
#[derive(Clone, Copy)]
pub(super) struct Ctx {
    pub(super) spec: RwSignal<ExperimentSpec>,
    pub(super) opts: RwSignal<PageOptions>,
    pub(super) status: RwSignal<Status>,
    pub(super) error: RwSignal<Option<String>>,
    pub(super) notice: RwSignal<String>,
    /// The device a run with the default preference uses (the worker's answer, or `cpu` after a GPU failure).
    pub(super) auto_device: RwSignal<String>,
    /// The device of the current or last run.
    pub(super) run_device: RwSignal<String>,
    pub(super) worker_ready: RwSignal<bool>,
    pub(super) progress: RwSignal<f64>,
    pub(super) progress_text: RwSignal<String>,
    pub(super) started: RwSignal<f64>,
    pub(super) epochs: RwSignal<Vec<EpochRecord>>,
    pub(super) report: RwSignal<Option<Report>>,
    pub(super) data_ready: RwSignal<bool>,
    /// Bumped when a dataset arrives, so previews redraw.
    pub(super) data_version: RwSignal<u32>,
    pub(super) cifar: RwSignal<CifarState>,
    pub(super) runs: RwSignal<Vec<SavedRun>>,
    /// The sweep of the Poison step, while it runs and after.
    pub(super) sweep: RwSignal<Option<super::sweep::Sweep>>,
}

impl Ctx {
    /// Applies one control's value in the link vocabulary; an invalid value shows the error and
    /// keeps the previous spec.
    pub(super) fn apply(self, key: &str, value: &str) {
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

    pub(super) fn preference(self) -> DevicePreference {
        if self.opts.get_untracked().cpu { DevicePreference::Cpu } else { DevicePreference::Auto }
    }

    pub(super) fn link(self) -> String {
        let opts = self.opts.get();
        if opts.challenge.is_some() {
            // The challenge's code stands for its experiment; the spec would give the answer away.
            return format!("#{}", opts.fragment().trim_start_matches('&'));
        }
        format!("#{}{}", self.spec.get().to_link(), opts.fragment())
    }

    /// The same experiment in the full app (no `embed`, nothing hidden): where an embedded page's
    /// "Open in a new tab" goes.
    pub(super) fn full_app_link(self) -> String {
        let opts = PageOptions { embed: false, hide: Vec::new(), ..self.opts.get() };
        let href = web_sys::window().and_then(|w| w.location().href().ok()).unwrap_or_default();
        let base = href.split('#').next().unwrap_or_default();
        if opts.challenge.is_some() {
            return format!("{base}#{}", opts.fragment().trim_start_matches('&'));
        }
        format!("{base}#{}{}", self.spec.get().to_link(), opts.fragment())
    }
}

/// A share as a percentage with one decimal: how every step shows CA, ASR and RA, so they compare at a glance.
pub(super) fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
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
    let grid_link = hash.trim_start_matches('#').split('&').any(|p| p.starts_with("g=")).then(|| hash.clone());
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
        sweep: RwSignal::new(None),
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
    let challenge = Memo::new(move |_| ctx.opts.with(|o| o.challenge.is_some()));
    view! {
        <main class="page" class:embed=embed>
            // Embedded, the title is not shown but still heads the page for screen readers.
            <Show when=embed>
                <h1 class="sr-only">"Backdoor Lab"</h1>
            </Show>
            <Show when=move || !embed()>
                <header class="top">
                    <h1>"Backdoor Lab"</h1>
                    <p class="lead">
                        "Poison a dataset, train a network on it and watch the backdoor appear — all in your browser. Nothing leaves this page."
                    </p>
                    <LessonsMenu/>
                </header>
            </Show>
            <div class="statusbar">
                <span>"device: "<b data-testid="device">{move || ctx.device()}</b></span>
                <span>"status: "<b data-testid="status">{move || ctx.status.get().name()}</b></span>
                <span class="notice">{move || ctx.notice.get()}</span>
                <Show when=embed>
                    // An embedded page is small and keeps the course page around it; the full app has
                    // every step and the sharing panel.
                    <a class="open-full" data-testid="open-full" target="_blank" rel="noopener" href=move || ctx.full_app_link()>
                        "Open in a new tab ↗"
                    </a>
                </Show>
            </div>
            <Show when=move || ctx.error.get().is_some()>
                <p class="error" role="alert" data-testid="error">{move || ctx.error.get().unwrap_or_default()}</p>
            </Show>
            {move || if challenge.get() {
                // Only what a defender has: the steps that would show the hidden attack (its trigger,
                // triggered examples, verdicts scored against the true poison, the spec's link) are
                // not built at all, not merely hidden.
                view! { <ChallengeStep/><DataStep/><TrainStep/> }.into_any()
            } else {
                view! {
                    <LessonCard/>
                    <DataStep/>
                    <PoisonStep/>
                    <TrainStep/>
                    <ResultsStep/>
                    <DetectStep/>
                    <RepairStep/>
                    <TransferStep/>
                    <GridStep initial=grid_link.clone()/>
                    <ShareBar/>
                }.into_any()
            }}
        </main>
    }
}

/// The page state, for any component under `App` (which provides it).
pub(super) fn ctx() -> Ctx {
    expect_context::<Ctx>()
}
