//! One parameter swept in the page: the current experiment at each value of the attack's strength, λ
//! (the attacker who trains) or ρ (who poisons data), with BadNets at ρ = λ beside λ; or of a
//! defense's strength (DP-SGD's σ, an augmentation's, a sanitizer's), its trade-off curve. CA and ASR
//! against the value, as a chart and a table.

use leptos::prelude::*;

use super::app::{Place, Status, ctx, pct};
use super::chart;
use super::client::run_sweep;
use super::controls::JobNote;
use crate::lab::ExperimentSpec;
use crate::lab::attack::AttackMethod;

/// A sweep's plan and what has come back.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sweep {
    /// The swept link key.
    pub(super) key: &'static str,
    pub(super) values: Vec<f64>,
    /// Series names, in order; run `i` is series `i / values.len()` at value `i % values.len()`.
    pub(super) series: Vec<String>,
    /// (CA, ASR) of each run, as it arrives.
    pub(super) points: Vec<Option<(f64, f64)>>,
    pub(super) running: bool,
}

impl Sweep {
    pub(super) fn record(&mut self, index: usize, clean_acc: f64, asr: f64) {
        if let Some(p) = self.points.get_mut(index) {
            *p = Some((clean_acc, asr));
        }
    }
}

/// The runs of a sweep of `spec`'s strength over `values` (and BadNets at ρ = λ beside the attacker
/// who trains, when `twin`): the specs in run order, or the first value the spec refuses.
fn plan(
    spec: &ExperimentSpec,
    key: &'static str,
    text: &str,
    twin: bool,
) -> Result<(Sweep, Vec<ExperimentSpec>), String> {
    let values: Vec<f64> = text
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| v.parse::<f64>().map_err(|_| format!("sweep value '{v}' is not a number")))
        .collect::<Result<_, _>>()?;
    if values.is_empty() {
        return Err("give the values to sweep, comma-separated".into());
    }
    let mut specs = Vec::new();
    let mut series = vec![spec.attack.method.info().title.to_string()];
    // A defense's strength at 0 may mean "off" (dp_sigma) or "its default" (sanitize_k): the link says which.
    for v in &values {
        specs.push(spec.clone().with_overrides(&[(key, &v.to_string())]).map_err(|e| e.to_string())?);
    }
    if twin && spec.attack.method.loss_weight().is_some() {
        let mut badnets = spec.clone();
        badnets.attack.method = AttackMethod::default_named("badnets").expect("BadNets is registered");
        let rate = badnets.attack.strength_key().expect("BadNets poisons data");
        series.push(format!("BadNets data poisoning ({rate} = {key})"));
        for v in &values {
            specs.push(badnets.clone().with_overrides(&[(rate, &v.to_string())]).map_err(|e| e.to_string())?);
        }
    }
    let sweep = Sweep { key, values, series, points: vec![None; specs.len()], running: true };
    Ok((sweep, specs))
}

/// The values a sweep of `key` starts with: the attack's strength, or a defense's.
fn default_values(spec: &ExperimentSpec, key: &str) -> String {
    use crate::lab::augment::{AUG_CUTMIX, AUG_ERASE, AUG_SHIFT};
    use crate::lab::train::DP_SIGMA;
    match key {
        k if k == DP_SIGMA => "0,0.1,0.2,0.5,1,2".into(),
        k if k == AUG_ERASE => "0.1,0.25,0.5,0.75,1".into(),
        k if k == AUG_CUTMIX => "0.2,0.5,1,2,5".into(),
        k if k == AUG_SHIFT => "1,2,3,4,6".into(),
        k if k == crate::lab::defense::SANITIZE_K => {
            spec.sanitize.sweep_values().iter().map(u32::to_string).collect::<Vec<_>>().join(",")
        }
        _ => "0,0.01,0.05,0.1,0.2,0.5".into(),
    }
}

/// The Poison step's sweep of the attack's strength.
#[component]
pub(super) fn SweepPanel() -> impl IntoView {
    let c = ctx();
    let key = Signal::derive(move || c.spec.with(|s| s.attack.strength_key()));
    view! {
        <StrengthSweep key=key what="the attack's strength" place=Place::Poison/>
    }
}

/// A defense's trade-off curve: CA and ASR against its strength `key` (when the experiment has one),
/// for the experiment's attack.
#[component]
pub(super) fn TradeOff(key: Signal<Option<&'static str>>) -> impl IntoView {
    view! { <StrengthSweep key=key what="the defense's strength" place=Place::Train/> }
}

/// Values, Run, and the chart and table of a sweep of `key`; with the BadNets comparison for λ.
#[component]
fn StrengthSweep(
    /// The link key swept.
    key: Signal<Option<&'static str>>,
    /// What it is, in words.
    what: &'static str,
    /// The step the sweep sits in: its messages appear there.
    place: Place,
) -> impl IntoView {
    let c = ctx();
    let values = RwSignal::new(String::new());
    // The values follow the key (and a sanitizer's range) until the user edits them.
    Effect::new(move || {
        if let Some(k) = key.get() {
            values.set(c.spec.with(|s| default_values(s, k)));
        }
    });
    let twin = RwSignal::new(true);
    let trains = move || {
        c.spec.with(|s| s.attack.method.loss_weight().is_some())
            && key.get() == c.spec.with(|s| s.attack.strength_key())
    };
    let start = move |_| {
        let Some(k) = key.get_untracked() else { return };
        match plan(&c.spec.get_untracked(), k, &values.get_untracked(), twin.get_untracked() && trains()) {
            Ok((sweep, specs)) => {
                c.sweep.set(Some(sweep));
                run_sweep(c, place, specs);
            }
            Err(e) => {
                c.begin(place);
                c.fail(place, e);
            }
        }
    };
    let results = move || {
        c.sweep.get().filter(|s| Some(s.key) == key.get()).map(|s| {            let n = s.values.len();
            let per_series: Vec<(String, Vec<Option<(f64, f64)>>)> =
                s.series.iter().enumerate().map(|(k, name)| (name.clone(), s.points[k * n..(k + 1) * n].to_vec())).collect();
            let svg = chart::sweep_chart(s.key, &s.values, &per_series);
            let head = s.series.iter().map(|name| view! { <th>{format!("{name}: CA %")}</th><th>"ASR %"</th> }).collect_view();
            let rows = s
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let cells = per_series
                        .iter()
                        .map(|(_, pts)| match pts[i] {
                            Some((ca, asr)) => view! { <td data-metric="clean_acc">{pct(ca)}</td><td data-metric="asr">{pct(asr)}</td> }.into_any(),
                            None => view! { <td>"…"</td><td>"…"</td> }.into_any(),
                        })
                        .collect_view();
                    view! { <tr data-testid=format!("sweep-{i}")><th>{v.to_string()}</th>{cells}</tr> }
                })
                .collect_view();
            view! {
                <table class="repairs"><thead><tr><th>{s.key}</th>{head}</tr></thead><tbody>{rows}</tbody></table>
                <div class="chart" role="img" aria-label="Chart of CA and ASR against the attack's strength: the numbers are in the table above." inner_html=svg></div>
            }
        })
    };
    view! {
        <Show when=move || key.get().is_some()>
            <details class="sweep">
                <summary>{move || format!("Sweep {what} ({}): CA and ASR against it", key.get().unwrap_or_default())}</summary>
                <div class="row">
                    <label class="field">
                        <span>"values"</span>
                        <input type="text" data-testid=move || format!("sweep-values-{}", key.get().unwrap_or_default()) prop:value=move || values.get()
                            on:change=move |ev| values.set(event_target_value(&ev))/>
                        <small>"comma-separated; each is a full run of this experiment"</small>
                    </label>
                    <Show when=trains>
                        <label class="field check">
                            <input type="checkbox" prop:checked=move || twin.get() on:change=move |ev| twin.set(event_target_checked(&ev))/>
                            <span>"beside BadNets data poisoning at ρ = λ"</span>
                        </label>
                    </Show>
                </div>
                <div class="actions">
                    <button data-testid=move || format!("run-sweep-{}", key.get().unwrap_or_default()) disabled=move || c.status.get() == Status::Running || !c.worker_ready.get() || c.blocked().is_some()
                        on:click=start>"Run the sweep"</button>
                    <small>"Uses this experiment's other settings and seed; Cancel in the Train step stops it."</small>
                </div>
                <JobNote place=place available=Signal::derive(move || c.worker_ready.get())/>
                {results}
            </details>
        </Show>
    }
}
