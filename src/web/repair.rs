//! Step 6, Repair: choose repairs, run them on the trained model, and compare every repaired model
//! with the suspect one in a table, a chart and a sentence per repair.

use leptos::prelude::*;

use super::app::{Place, Status, ctx, pct};
use super::chart;
use super::client::run_on_model;
use super::controls::{JobNote, MethodParams, ParamFields, Step};
use super::pictures::data_url;
use super::protocol::ToWorker;
use crate::lab::event::Stage;
use crate::lab::params::Family;
use crate::lab::repair::{DEFENDER_CLEAN, REPAIR, RepairSpec};
use crate::lab::run::Report;

/// The name a student reads for a repair's link name (from the registry).
pub(super) fn repair_title(name: &str) -> &'static str {
    Family(RepairSpec::REGISTRY).method(name).map_or("(unknown)", |m| m.title)
}

fn repair_explain(name: &str) -> &'static str {
    Family(RepairSpec::REGISTRY).method(name).map_or("", |m| m.explain)
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
            view! { <li><b>{repair_title(w.name)}</b>": "{repair_explain(w.name)}" "<span class="detail">{w.detail.clone()}</span></li> }
        })
        .collect_view();
    let curve = rep.fp.as_ref().map(|f| {
        let points: Vec<(f64, f64, f64)> =
            f.detail.curve.iter().map(|p| (p.fraction, 100.0 * p.clean_acc, 100.0 * p.asr)).collect();
        let svg = chart::pruning_curve(&points, f.detail.pruned_fraction, (100.0 * f.clean_acc, 100.0 * f.asr));
        view! { <div class="chart" role="img" aria-label=chart::pruning_text(&points) inner_html=svg></div> }
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
            <div class="chart" role="img" aria-label="Bar chart of CA and ASR of the suspect model and each repaired one: the numbers are in the table above." inner_html=chart::repair_bars(&bars)></div>
            {curve}
            {reversed}
        </div>
        <ul class="repair-notes">{notes}</ul>
    }
}

#[component]
pub(super) fn RepairStep() -> impl IntoView {
    let c = ctx();
    let chosen = move || c.spec.with(|s| s.repair.chosen());
    let toggle = move |name: &'static str, on: bool| {
        let mut names = chosen();
        names.retain(|n| *n != name);
        if on {
            names.push(name);
        }
        let list: Vec<&str> = RepairSpec::NAMES.iter().copied().filter(|n| names.contains(n)).collect();
        let joined = list.join(",");
        c.apply(REPAIR.key, if list.is_empty() { "none" } else { &joined });
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
    let has_results = move || c.report.with(|r| r.as_ref().is_some_and(|r| !r.repair.is_empty()));
    view! {
        <Step id=Place::Repair.name() n=6 title="Repair" explain="The defender tries to remove the backdoor with a small clean set (a few hundred training images the attack did not touch). Each repaired model is measured exactly like the original: what it gains in ASR and what it costs in CA.">
            <div class="row">{boxes}</div>
            <div class="row">
                <ParamFields params=Signal::derive(|| vec![&DEFENDER_CLEAN.info])/>
            </div>
            <MethodParams registry=RepairSpec::REGISTRY chosen=Signal::derive(chosen)/>
            <div class="actions">
                <button data-testid="run-repair" disabled=move || !can_repair() || c.blocked().is_some()
                    on:click=move |_| run_on_model(c, ToWorker::Repair { repair: c.spec.get_untracked().repair }, Stage::Repair)>"Repair the trained model"</button>
                <small>"Chosen repairs also run after training when you press Run; the link keeps the choice."</small>
            </div>
            <JobNote place=Place::Repair available=Signal::derive(can_repair)/>
            <Show when=has_results>
                {move || c.report.get().map(|r| repair_results(&r))}
            </Show>
            <super::sanitize::SanitizePanel/>
        </Step>
    }
}
