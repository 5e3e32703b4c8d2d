//! Step 8, Compare: grids of experiments built from the current one, the attack × defense matrix
//! (BackdoorBench's leaderboard) or one parameter swept over values, over seeds. The runs go to several
//! lab workers at once (one per core, up to four), each training its share of the models once; the
//! matrix fills in as runs arrive. A grid is a link (`#g=1&...`), the same the CLI's `grid` reads, and
//! its results export as RESULTS.json (which `grid merge` also writes, and this step opens), CSV and PNG.

use std::cell::RefCell;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{MessageEvent, Worker};

use super::app::{Ctx, Place, ctx};
use super::chart;
use super::controls::{JobNote, Step};
use super::export::{export_png, save_text};
use super::protocol::{FromWorker, ToWorker};
use crate::lab::ExperimentSpec;
use crate::lab::attack::AttackMethod;
use crate::lab::detect::DetectSpec;
use crate::lab::grid::{Axis, Cell, ColumnKind, Grid, GridResults, Matrix, RESULTS_VERSION};
use crate::lab::params::{Kind, Params};
use crate::lab::repair::RepairSpec;

mod pool;

use pool::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Matrix,
    Sweep,
}

/// A grid on the page: its results so far and how its workers stand.
#[derive(Debug, Clone, PartialEq)]
struct Job {
    results: GridResults,
    planned: usize,
    workers: usize,
    finished: usize,
    running: bool,
    started: f64,
    seconds: f64,
    /// Runs that could not run, with why (they stay in `results.missing`).
    failed: Vec<(usize, String)>,
}

/// The link pairs of `spec`, without `v` and without `drop`'s keys.
fn pairs_of(spec: &ExperimentSpec, drop: &[&str]) -> Vec<(String, String)> {
    spec.to_link()
        .split('&')
        .filter_map(|p| p.split_once('='))
        .filter(|(k, _)| *k != "v" && !drop.contains(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_string).collect()
}

/// The matrix: the current experiment under each attack ticked, with the detectors and repairs ticked
/// (all in one run per model: each trains once, and each defense runs once on it), over the seeds.
fn matrix_grid(
    spec: &ExperimentSpec,
    attacks: &[&str],
    detect: &[&str],
    repair: &[&str],
    seeds: &str,
) -> Result<Grid, String> {
    if attacks.is_empty() {
        return Err("tick at least one attack".into());
    }
    let mut s = spec.clone();
    s.detect.choose(&detect.join(",")).map_err(|e| e.to_string())?;
    s.repair.choose(&repair.join(",")).map_err(|e| e.to_string())?;
    let axes = vec![
        Axis { key: AttackMethod::KEY.into(), values: attacks.iter().map(|a| a.to_string()).collect() },
        Axis { key: crate::lab::spec::SEED_KEY.into(), values: list(seeds) },
    ];
    let base = pairs_of(&s, &[AttackMethod::KEY, crate::lab::spec::SEED_KEY]);
    Grid::new(base, axes).and_then(Grid::prune).map_err(|e| e.to_string())
}

/// The sweep: the current experiment with `key` at each value, over the seeds.
fn sweep_grid(spec: &ExperimentSpec, key: &str, values: &str, seeds: &str) -> Result<Grid, String> {
    let axes = vec![
        Axis { key: key.into(), values: list(values) },
        Axis { key: crate::lab::spec::SEED_KEY.into(), values: list(seeds) },
    ];
    let base = pairs_of(spec, &[key, crate::lab::spec::SEED_KEY]);
    Grid::new(base, axes).and_then(Grid::prune).map_err(|e| e.to_string())
}

/// Whether the row's undefended model has a working backdoor: most of its triggered inputs (ASR at
/// least one half) go where the attacker wants. Below that the attack did not take, and a repair has no
/// backdoor to remove.
fn backdoored(undefended: &Cell) -> bool {
    undefended.asr.is_some_and(|a| a.mean >= 0.5)
}

/// A row key's value in the page's words: a method's title, a choice's label, else the value.
fn row_label(key: &str, value: &str) -> String {
    let Some(info) = ExperimentSpec::param_info(key) else { return value.to_string() };
    match info.kind {
        Kind::Method(family) => family.method(value).map_or(value, |m| m.title).to_string(),
        Kind::Choice(names) => names.iter().find(|n| n.value == value).map_or(value, |n| n.label).to_string(),
        _ => value.to_string(),
    }
}

/// A share in [0, 1] of "worked" as a background: red (0) through yellow to green (1).
fn shade(good: Option<f64>) -> String {
    match good {
        Some(g) => format!("background:hsl({:.0},70%,86%)", 120.0 * g.clamp(0.0, 1.0)),
        None => "background:#eee".into(),
    }
}

/// How well the defender fares in a cell, 0 to 1: where a model is measured, 1 − ASR times the share of
/// the row's undefended clean accuracy it keeps (a repair that kills the backdoor and the task is no win);
/// for a detector, its verdict's score.
fn goodness(kind: ColumnKind, cell: &Cell, undefended: &Cell) -> Option<f64> {
    // Without a working backdoor there is nothing for a repair to win against.
    if kind != ColumnKind::Detector && !backdoored(undefended) {
        return None;
    }
    match kind {
        ColumnKind::Undefended | ColumnKind::Repair => {
            let kept = match (cell.clean_acc, undefended.clean_acc) {
                (Some(after), Some(before)) if before.mean > 0.0 => (after.mean / before.mean).min(1.0),
                _ => 1.0,
            };
            cell.asr.map(|a| (1.0 - a.mean) * kept)
        }
        ColumnKind::Detector => cell.score.map(|s| s.mean),
    }
}

fn matrix_view(m: &Matrix) -> impl IntoView + use<> {
    let head = m
        .row_keys
        .iter()
        .map(|k| view! { <th title=format!("link key: {k}")>{ExperimentSpec::param_info(k).map_or(k.as_str(), |p| p.title()).to_string()}</th> })
        .collect_view();
    let cols = m.columns.iter().map(|c| view! { <th title=c.name.clone()>{c.title.clone()}</th> }).collect_view();
    let rows = m
        .rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let keys = m
                .row_keys
                .iter()
                .map(|k| {
                    let value = row.value(k).unwrap_or("—");
                    view! { <th title=format!("{k}={value}")>{row_label(k, value)}</th> }
                })
                .collect_view();
            let cells = m
                .columns
                .iter()
                .zip(&row.cells)
                .map(|(col, cell)| {
                    let mut text = cell.text(col.kind);
                    if cell.n > 0 && !backdoored(&row.cells[0]) {
                        text.push_str(match col.kind {
                            ColumnKind::Undefended => " · the backdoor did not take",
                            ColumnKind::Repair => " · no backdoor to remove",
                            ColumnKind::Detector => "",
                        });
                    }
                    let lines = text.split(" · ").map(|l| view! { <span>{l.to_string()}</span> }).collect_view();
                    let href = cell.links.first().map(|l| format!("#{l}")).unwrap_or_default();
                    view! {
                        <td style=shade(goodness(col.kind, cell, &row.cells[0])) data-testid=format!("cell-{i}-{}", col.name) data-label=col.title.clone()
                            data-ca=cell.clean_acc.map(|s| s.mean.to_string()) data-asr=cell.asr.map(|s| s.mean.to_string())
                            data-score=cell.score.map(|s| s.mean.to_string())>
                            <a href=href target="_blank" title="open this experiment (its first seed) in a new tab">{lines}</a>
                        </td>
                    }
                })
                .collect_view();
            view! { <tr>{keys}{cells}</tr> }
        })
        .collect_view();
    view! {
        <table class="repairs matrix stack" data-testid="matrix">
            <thead><tr>{head}{cols}</tr></thead>
            <tbody>{rows}</tbody>
        </table>
        <p class="explain">"Cells are mean ± std over the seeds; each opens its experiment. Green: the defender wins (the backdoor does not work and clean accuracy is kept, or the detector found the backdoor, or rightly nothing). Red: the attack wins. Grey: nothing to judge: the backdoor did not take (ASR under 50 % without a defense), so a repair has no backdoor to remove, or a detector's answer cannot be scored."</p>
    }
}

/// A sweep's chart when the matrix has one numeric row axis: CA and ASR of each column against it.
fn sweep_svg(m: &Matrix) -> Option<(String, String)> {
    let [key] = m.row_keys.as_slice() else { return None };
    let values: Vec<f64> = m.rows.iter().map(|r| r.value(key).and_then(|v| v.parse().ok())).collect::<Option<_>>()?;
    let series: Vec<(String, Vec<Option<(f64, f64)>>)> = m
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind != ColumnKind::Detector)
        .map(|(j, c)| {
            let points = m.rows.iter().map(|r| Some((r.cells[j].clean_acc?.mean, r.cells[j].asr?.mean))).collect();
            (c.title.clone(), points)
        })
        .collect();
    Some((key.clone(), chart::sweep_chart(key, &values, &series)))
}

/// Reads a RESULTS.json the user picked.
fn open_results(c: Ctx, job: RwSignal<Option<Job>>, file: web_sys::File) {
    spawn_local(async move {
        let text = JsFuture::from(file.text()).await.ok().and_then(|t| t.as_string()).unwrap_or_default();
        match GridResults::from_json(&text).and_then(|r| r.matrix().map(|_| r)) {
            Ok(results) => {
                stop_pool();
                c.failure.set(None);
                let planned = results.runs.len() + results.missing.len();
                job.set(Some(Job {
                    results,
                    planned,
                    workers: 0,
                    finished: 0,
                    running: false,
                    started: 0.0,
                    seconds: 0.0,
                    failed: Vec::new(),
                }));
            }
            Err(e) => {
                c.begin(Place::Compare);
                c.fail(Place::Compare, format!("{} is not a grid's results file: {e}", file.name()));
            }
        }
    });
}

fn checkboxes(
    names: Vec<(&'static str, &'static str)>,
    chosen: RwSignal<Vec<&'static str>>,
    group: &'static str,
) -> impl IntoView {
    view! {
        <span class="choices" data-testid=group>
            {names.into_iter().map(|(name, title)| view! {
                <label class="check">
                    <input type="checkbox" data-choice=name prop:checked=move || chosen.with(|c| c.contains(&name))
                        on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            chosen.update(|c| { c.retain(|n| *n != name); if on { c.push(name); } });
                        }/>
                    <span>{title}</span>
                </label>
            }).collect_view()}
        </span>
    }
}

#[component]
pub(super) fn GridStep(
    /// A grid link the page was opened with.
    initial: Option<String>,
) -> impl IntoView {
    let c = ctx();
    let mode = RwSignal::new(Mode::Matrix);
    let spec = c.spec.get_untracked();
    let attacks = RwSignal::new(vec![spec.attack.method.name(), "none"]);
    let detectors = RwSignal::new(spec.detect.chosen());
    let repairs = RwSignal::new(spec.repair.chosen());
    let seeds = RwSignal::new("0,1".to_string());
    // The attack's strength, or the default attack's (ρ) for an attack without one.
    let strength = spec.attack.strength_key().or_else(|| ExperimentSpec::default().attack.strength_key());
    let sweep_key = RwSignal::new(strength.unwrap_or_default().to_string());
    let sweep_values = RwSignal::new("0,0.01,0.02,0.05,0.1".to_string());
    let job: RwSignal<Option<Job>> = RwSignal::new(None);
    // A grid link opened directly: that grid, ready to run.
    let given: RwSignal<Option<Grid>> = RwSignal::new(None);
    if let Some(link) = initial {
        match Grid::from_link(&link).and_then(|g| g.plan().map(|_| g)) {
            Ok(g) => given.set(Some(g)),
            Err(e) => c.error.set(Some(format!("This grid link could not be read ({}).", e.plain()))),
        }
        // A grid link opens at its grid, not at the top of a long page.
        request_animation_frame(|| {
            if let Some(step) =
                web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("compare"))
            {
                step.scroll_into_view();
            }
        });
    }
    // Built (and checked) once per change of its inputs; the summary, the link and the button read it.
    let grid = Memo::new(move |_| -> Result<Grid, String> {
        if let Some(g) = given.get() {
            return Ok(g);
        }
        let spec = c.spec.get();
        match mode.get() {
            Mode::Matrix => matrix_grid(&spec, &attacks.get(), &detectors.get(), &repairs.get(), &seeds.get()),
            Mode::Sweep => sweep_grid(&spec, &sweep_key.get(), &sweep_values.get(), &seeds.get()),
        }
    });
    let summary = move || match grid.get().and_then(|g| g.plan().map_err(|e| e.to_string())) {
        Ok(plan) => {
            let models = crate::lab::grid::model_count(&plan);
            format!("{} runs, {models} models to train", plan.len())
        }
        Err(e) => e,
    };
    let running = move || job.with(|j| j.as_ref().is_some_and(|j| j.running));
    let run = move |_| {
        c.begin(Place::Compare);
        if let Err(e) = grid.get_untracked().and_then(|g| start(c, &g, job)) {
            c.fail(Place::Compare, e);
        }
    };
    let cancel = move |_| {
        stop_pool();
        job.update(|j| {
            if let Some(j) = j {
                j.running = false;
            }
        });
    };
    let sweep_keys = move || {
        c.spec.with(|s| {
            s.params()
                .into_iter()
                .filter(|p| {
                    matches!(p.kind, Kind::Int { .. } | Kind::Float { .. } | Kind::Size { .. })
                        && p.key != crate::lab::spec::SEED_KEY
                })
                .map(|p| p.key)
                .collect::<Vec<_>>()
        })
    };
    let progress = move || {
        job.with(|j| {
            j.as_ref().map(|j| {
                let done = j.results.runs.len();
                let trained = j
                    .results
                    .trainings
                    .map(|t| format!(", {t} of {} models trained", j.results.models))
                    .unwrap_or_default();
                if j.running {
                    // Workers report the models they trained only when they finish: while they run,
                    // the runs done are the progress.
                    format!(
                        "{done} of {} runs done · {} models to train · {} workers · {:.0} s",
                        j.planned,
                        j.results.models,
                        j.workers,
                        now() - j.started
                    )
                } else if j.workers == 0 {
                    format!("{done} runs opened from a results file{trained}")
                } else if j.finished < j.workers {
                    format!("stopped: {done} of {} runs done{trained}", j.planned)
                } else if !j.failed.is_empty() {
                    format!(
                        "{done} of {} runs done ({} could not run){trained} in {:.0} s",
                        j.planned,
                        j.failed.len(),
                        j.seconds
                    )
                } else {
                    format!("{done} of {} runs done{trained} in {:.0} s", j.planned, j.seconds)
                }
            })
        })
    };
    let matrix = move || job.with(|j| j.as_ref().and_then(|j| j.results.matrix().ok()));
    let results = move || {
        matrix().map(|m| {
            let chart = sweep_svg(&m);
            let svg = chart.as_ref().map_or_else(|| chart::matrix_svg(&m, goodness), |(_, s)| s.clone());
            let csv = m.csv();
            let json = job.with_untracked(|j| j.as_ref().map(|j| serde_json::to_string_pretty(&j.results).expect("results serialise")));
            let png = svg.clone();
            view! {
                {matrix_view(&m)}
                {chart.map(|(_, s)| view! { <div class="chart" role="img" aria-label="Chart of CA and ASR against the swept value: the numbers are in the table above." data-testid="sweep-chart" inner_html=s></div> })}
                <div class="actions">
                    <button data-testid="grid-json" on:click=move |_| save_text(c, json.clone().unwrap_or_default(), "application/json", "RESULTS.json")>"Export JSON"</button>
                    <button data-testid="grid-csv" on:click=move |_| save_text(c, csv.clone(), "text/csv", "RESULTS.csv")>"Export CSV"</button>
                    <button data-testid="grid-png" on:click=move |_| export_png(c, png.clone(), "backdoor-lab-grid.png")>"Export PNG"</button>
                </div>
            }
        })
    };
    let grid_link = move || grid.get().map(|g| g.to_link()).unwrap_or_default();
    view! {
        <Step id=Place::Compare.name() n=8 title="Compare" explain="One experiment answers one question; comparisons answer more. Run the current experiment under several attacks with several defenses (BackdoorBench's leaderboard: rows are attacks, columns defenses), or sweep one parameter, over seeds. Each model trains once; the runs share this machine's cores.">
            <Show when=move || given.get().is_none()>
                <div class="grid-mode">
                    <label><input type="radio" name="grid-mode" data-testid="mode-matrix" prop:checked=move || mode.get() == Mode::Matrix on:change=move |_| mode.set(Mode::Matrix)/><span>"attacks × defenses"</span></label>
                    <label><input type="radio" name="grid-mode" data-testid="mode-sweep" prop:checked=move || mode.get() == Mode::Sweep on:change=move |_| mode.set(Mode::Sweep)/><span>"sweep one parameter"</span></label>
                </div>
                <Show when=move || mode.get() == Mode::Matrix>
                    <div class="grid-pick"><span>"attacks"</span>{checkboxes(AttackMethod::REGISTRY.iter().map(|m| (m.name, m.title)).collect(), attacks, "grid-attacks")}</div>
                    <div class="grid-pick"><span>"repairs"</span>{checkboxes(RepairSpec::REGISTRY.iter().map(|m| (m.name, m.title)).collect(), repairs, "grid-repairs")}</div>
                    <div class="grid-pick"><span>"detectors"</span>{checkboxes(DetectSpec::REGISTRY.iter().map(|m| (m.name, m.title)).collect(), detectors, "grid-detectors")}</div>
                </Show>
                <Show when=move || mode.get() == Mode::Sweep>
                    <div class="row">
                        <label class="field"><span>"parameter"</span>
                            <select data-testid="sweep-key" on:change=move |ev| sweep_key.set(event_target_value(&ev))>
                                {move || sweep_keys().into_iter().map(|k| view! { <option value=k selected=move || sweep_key.get() == k>{k}</option> }).collect_view()}
                            </select>
                        </label>
                        <label class="field"><span>"values"</span>
                            <input type="text" data-testid="grid-values" prop:value=move || sweep_values.get() on:change=move |ev| sweep_values.set(event_target_value(&ev))/>
                        </label>
                    </div>
                </Show>
                <div class="row">
                    <label class="field"><span>"seeds"</span>
                        <input type="text" data-testid="grid-seeds" prop:value=move || seeds.get() on:change=move |ev| seeds.set(event_target_value(&ev))/>
                        <small>"comma-separated: cells show mean ± std over them"</small>
                    </label>
                </div>
            </Show>
            <Show when=move || given.get().is_some()>
                <p class="explain">"This page was opened with a grid link: the grid below runs as the link says. "
                    <button on:click=move |_| given.set(None)>"Build one from the current experiment instead"</button></p>
            </Show>
            <p class="explain">"grid link: "<code class="link" data-testid="grid-link">{move || format!("#{}", grid_link())}</code></p>
            <div class="actions">
                <button data-testid="run-grid" disabled=move || running() || grid.with(Result::is_err) on:click=run>"Run the grid"</button>
                <button data-testid="cancel-grid" disabled=move || !running() on:click=cancel>"Cancel"</button>
                <span data-testid="grid-summary">{summary}</span>
                <label class="field">
                    <span>"or open a RESULTS.json (from this page or `backdoor-lab grid merge`)"</span>
                    <input type="file" accept=".json,application/json" data-testid="open-results" on:change=move |ev| {
                        let input: web_sys::HtmlInputElement = event_target(&ev);
                        if let Some(f) = input.files().and_then(|l| l.get(0)) { open_results(c, job, f) }
                    }/>
                </label>
            </div>
            <JobNote place=Place::Compare available=false/>
            <p data-testid="grid-progress">{progress}</p>
            <ul class="explain" data-testid="grid-failed">
                {move || job.with(|j| j.as_ref().map(|j| j.failed.iter().map(|(i, m)| view! { <li>{format!("run {i} could not run: {m}")}</li> }).collect_view()))}
            </ul>
            {results}
        </Step>
    }
}
