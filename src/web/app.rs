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
use crate::lab::data::SizeProblem;
use crate::lab::event::EpochRecord;
use crate::lab::params::{Kind, ParamInfo, Params, clip};
use crate::lab::run::Report;
use crate::lab::{ExperimentSpec, LabError};

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

/// Where the user starts work: a job's messages appear there, not in a banner far away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    Poison,
    Train,
    Results,
    /// The Results step's measuring of a scanned model with the user's guess of its trigger.
    Measure,
    Detect,
    /// The Detect step's model file scan.
    Scan,
    Repair,
    Transfer,
    Compare,
}

impl Place {
    /// The step's section id (`hide=` names it too); tests read `job-error-<name>`.
    pub(super) fn name(self) -> &'static str {
        match self {
            Place::Poison => "poison",
            Place::Train => "train",
            Place::Results => "results",
            Place::Measure => "measure",
            Place::Detect => "detect",
            Place::Scan => "scan",
            Place::Repair => "repair",
            Place::Transfer => "transfer",
            Place::Compare => "compare",
        }
    }
}

/// A value typed into a control that the lab refused: the field keeps showing it, marked, with why,
/// and nothing runs until it is fixed (a control never shows one value and runs another).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FieldError {
    pub(super) key: &'static str,
    pub(super) typed: String,
    pub(super) message: String,
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
    /// Values typed into controls that the lab refused.
    pub(super) field_errors: RwSignal<Vec<FieldError>>,
    /// The spec's split does not fit the data the page holds: said beside the sizes that cause it.
    pub(super) size_problem: Memo<Option<SizeProblem>>,
    /// Where the current (or last) job was started.
    pub(super) place: RwSignal<Place>,
    /// The last job's failure, shown where it was started.
    pub(super) failure: RwSignal<Option<(Place, String)>>,
    /// A job has started whose results have not arrived yet: the last results stay until they do.
    pub(super) replacing: RwSignal<bool>,
    /// The lesson whose card is open (kept while the student explores its experiments).
    pub(super) lesson: RwSignal<Option<&'static str>>,
}

impl Ctx {
    /// Applies one control's value in the link vocabulary. A value the lab refuses stays in its field,
    /// marked with the reason, and blocks every job until it is fixed; the spec keeps its last value.
    pub(super) fn apply(self, key: &str, value: &str) {
        let current = self.spec.get_untracked();
        let info = ExperimentSpec::param_info(key);
        match current.with_overrides(&[(key, value)]) {
            Ok(spec) => {
                self.field_errors.update(|errors| errors.retain(|e| e.key != key));
                self.spec.set(spec);
            }
            Err(e) => match info {
                Some(info) => {
                    let message = field_message(info, value, &e);
                    let error = FieldError { key: info.key, typed: value.to_string(), message };
                    self.field_errors.update(|errors| {
                        errors.retain(|e| e.key != key);
                        errors.push(error);
                    });
                }
                None => self.error.set(Some(said(&e))),
            },
        }
    }

    /// The refused value of a control, if it holds one (only for parameters the spec now has).
    pub(super) fn field_error(self, key: &str) -> Option<FieldError> {
        let applies = self.spec.with(|s| s.get(key).is_some());
        self.field_errors.with(|errors| errors.iter().find(|e| e.key == key).cloned()).filter(|_| applies)
    }

    /// Why no job can start now, if something blocks it: a refused value, or a split the data cannot give.
    pub(super) fn blocked(self) -> Option<String> {
        let refused: Vec<&'static str> = self.spec.with(|s| {
            self.field_errors.with(|errors| {
                errors
                    .iter()
                    .filter(|e| s.get(e.key).is_some())
                    .map(|e| ExperimentSpec::param_info(e.key).map_or(e.key, |p| p.title()))
                    .collect()
            })
        });
        if !refused.is_empty() {
            return Some(format!("Fix the marked value first: {}.", refused.join(", ")));
        }
        self.size_problem.get().map(|p| p.message)
    }

    /// `blocked`, read outside the page's reactive tracking (when a job is about to start).
    pub(super) fn blocked_untracked(self) -> Option<String> {
        untrack(|| self.blocked())
    }

    /// Starts a job at `place`: its messages go there, and the last job's failure and the banner
    /// (about the link the page opened with) are cleared.
    pub(super) fn begin(self, place: Place) {
        self.place.set(place);
        self.failure.set(None);
        self.error.set(None);
    }

    /// A job started at `place` failed: the message appears there.
    pub(super) fn fail(self, place: Place, message: String) {
        self.failure.set(Some((place, message)));
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
        format!("#{}{}{}", self.spec.get().to_link(), opts.fragment(), self.lesson_part())
    }

    /// `&lesson=ID` while a lesson's card is open, so the link reopens it.
    fn lesson_part(self) -> String {
        self.lesson.get().map(|id| format!("&lesson={id}")).unwrap_or_default()
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
        format!("{base}#{}{}{}", self.spec.get().to_link(), opts.fragment(), self.lesson_part())
    }
}

/// A lab error in the page's words: a spec problem without the code's "invalid spec" heading.
pub(super) fn said(e: &LabError) -> String {
    e.plain()
}

/// Why a typed value was refused, for the line under its field: the allowed range in the page's words
/// for a number out of range or not a number at all, else the lab's own reason.
fn field_message(info: &ParamInfo, value: &str, e: &LabError) -> String {
    let numeric = matches!(info.kind, Kind::Int { .. } | Kind::Float { .. } | Kind::Size { .. });
    if numeric && info.check(value).is_err() {
        let shown = value.trim();
        let number = shown.parse::<f64>().is_ok_and(f64::is_finite);
        return match (shown.is_empty(), number) {
            (true, _) => format!("Enter a value: {}.", info.range_text()),
            (false, false) => format!("“{}” is not a number: enter {}.", clip(shown), info.range_text()),
            (false, true) => format!("{shown} is out of range: enter {}.", info.range_text()),
        };
    }
    said(e)
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
    let opts_lesson = opts.lesson.clone();
    let grid_link = hash.trim_start_matches('#').split('&').any(|p| p.starts_with("g=")).then(|| hash.clone());
    let grid_spec = spec.clone();
    let from_grid = grid_link.is_some();
    let spec = RwSignal::new(spec);
    let data_ready = RwSignal::new(false);
    let data_version = RwSignal::new(0);
    let ctx = Ctx {
        spec,
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
        data_ready,
        data_version,
        cifar: RwSignal::new(CifarState::Unknown),
        runs: RwSignal::new(load_runs()),
        sweep: RwSignal::new(None),
        field_errors: RwSignal::new(Vec::new()),
        size_problem: size_problem(spec, data_ready, data_version),
        place: RwSignal::new(Place::Train),
        failure: RwSignal::new(None),
        replacing: RwSignal::new(false),
        lesson: RwSignal::new(open_lesson(&opts_lesson, &spec.get_untracked())),
    };
    provide_context(ctx);
    start_worker(ctx);
    load_page_data(ctx);

    // The URL fragment always holds the spec (and the page options); localStorage keeps it too. A grid
    // link stays in the address until the experiment is changed, so reloading it shows the grid again.
    Effect::new(move |_| {
        let link = ctx.link();
        if from_grid && ctx.spec.with(|s| *s == grid_spec) {
            return;
        }
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
        // The Compare step is built from the grid link the page opened with: another grid link opens
        // as a new page.
        if hash.trim_start_matches('#').split('&').any(|p| p.starts_with("g=")) {
            if let Some(w) = web_sys::window() {
                let _ = w.location().reload();
            }
            return;
        }
        let (spec, opts, err) = parse_fragment(&hash);
        // A lesson's comparison links name their lesson; any other link closes the card unless it
        // is one of the open lesson's experiments.
        let lesson = open_lesson(&opts.lesson, &spec).or_else(|| {
            ctx.lesson
                .get_untracked()
                .filter(|id| crate::lessons::by_id(id).is_some_and(|l| l.has_link(&spec.to_link())))
        });
        ctx.field_errors.set(Vec::new());
        ctx.spec.set(spec);
        ctx.opts.set(opts);
        ctx.error.set(err);
        ctx.lesson.set(lesson);
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

/// The split check of the spec against the data the page holds, recomputed when either changes.
fn size_problem(
    spec: RwSignal<ExperimentSpec>,
    data_ready: RwSignal<bool>,
    data_version: RwSignal<u32>,
) -> Memo<Option<SizeProblem>> {
    Memo::new(move |_| {
        data_version.get();
        data_ready.get();
        let spec = spec.get();
        let data = super::client::page_data(spec.data.dataset)?;
        data.size_problem(&spec.data, (!spec.finetune.is_off()).then_some(spec.finetune.size))
    })
}

/// The lesson a link opens: the one it names (`lesson=`), else (a link written before lessons named
/// themselves) the lesson whose experiment it is, unless that experiment is the default one: the
/// page at its defaults is no lesson.
fn open_lesson(named: &Option<String>, spec: &ExperimentSpec) -> Option<&'static str> {
    match named {
        Some(id) => crate::lessons::by_id(id).map(|l| l.id),
        None if *spec == ExperimentSpec::default() => None,
        None => crate::lessons::for_link(&spec.to_link()).map(|l| l.id),
    }
}

/// The page state, for any component under `App` (which provides it).
pub(super) fn ctx() -> Ctx {
    expect_context::<Ctx>()
}
