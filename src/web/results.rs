//! Step 4, Results: CA, ASR and RA of the finished run, test images with and without the trigger,
//! per-class accuracy, the confusion matrix and the JSON export.

use leptos::prelude::*;

use super::app::{Place, Status, ctx, pct};
use super::client::page_data;
use super::client::{measure_guess, save_model};
use super::controls::{JobNote, Step};
use super::export::export_report;
use super::pictures::data_url;
use crate::lab::run::Report;

#[component]
pub(super) fn ResultsStep() -> impl IntoView {
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
        <Step id=Place::Results.name() n=4 title="Results" explain="CA: accuracy on clean test images. ASR: share of triggered test images (not already of the target class) classified as the target. RA: accuracy on those triggered images against their true labels.">
            {move || c.report.get().and_then(|r| r.scanned.map(|f| (f, r.spec.attack))).map(|(f, guess)| {
                // The guess the numbers were measured with, and whether the Poison step now holds another.
                let guess_text = format!(
                    "ASR and RA are measured with your guess of its attack: the Poison step's trigger ({}), target class {}.",
                    guess.method.info().title, guess.target_label
                );
                let changed = Memo::new(move |_| c.spec.with(|s| s.attack != guess));
                view! {
                    <p class="explain scanned" data-testid="scanned">{format!("Scanned model: {} ({}), not trained here, so its true trigger is unknown. CA is measured on the lab's test split; a model trained on MNIST or CIFAR-10 may have seen some of these images. ", f.file, f.format)}{guess_text}</p>
                    <div class="actions">
                        <button data-testid="measure-guess" disabled=move || !changed.get() || c.status.get() == Status::Running || c.blocked().is_some()
                            on:click=move |_| measure_guess(c)>"Measure again with the Poison step's trigger"</button>
                        <small>"Change the trigger or the target in the Poison step (or use Neural Cleanse's reversed trigger in Detect), then measure."</small>
                    </div>
                    <JobNote place=Place::Measure available=changed/>
                }
            })}
            <div class="metrics">
                <div class="metric"><span>"clean accuracy"</span><b data-testid="clean-acc">{metric(|r| r.final_metrics.clean_acc)}</b>"%"</div>
                <div class="metric bad"><span>{move || if c.report.with(|r| r.as_ref().is_some_and(|r| r.scanned.is_some())) { "attack success (your guess)" } else { "attack success" }}</span><b data-testid="asr">{metric(|r| r.final_metrics.asr)}</b>"%"</div>
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
                    <button data-testid="save-model" disabled=move || c.status.get() == Status::Running on:click=move |_| save_model(c)
                        title="The weights as safetensors in PyTorch's tensor names and layout: scan them here or with the CLI, or load them in PyTorch.">"Download the model (safetensors)"</button>
                </div>
                <JobNote place=Place::Results available=false/>
            </Show>
        </Step>
    }
}
