//! Step 7, Transfer: a victim takes the trained (or scanned) model as a pre-trained base and
//! fine-tunes it on clean images of its own, once per freeze mode; CA and ASR after every epoch show
//! how much of the backdoor each mode keeps.

use leptos::prelude::*;

use super::app::{Place, Status, ctx, pct};
use super::chart;
use super::client::run_on_model;
use super::controls::{JobNote, ParamFields, Step};
use super::protocol::ToWorker;
use crate::lab::event::Stage;
use crate::lab::params::Params;
use crate::lab::run::Report;

fn transfer_results(r: &Report) -> Option<impl IntoView + use<>> {
    let t = r.transfer.clone()?;
    let base = r.final_metrics.clone();
    let rows = t
        .runs
        .iter()
        .map(|run| {
            let last = run.epochs.last();
            let name = run.freeze.name();
            view! {
                <tr data-testid=format!("transfer-{name}")>
                    <th>{run.freeze.label()}</th>
                    <td data-label="parameters trained">{run.trainable_params}</td>
                    <td data-label="CA %" data-metric="clean_acc">{last.map(|e| pct(e.clean_acc))}</td>
                    <td data-label="ASR %" data-metric="asr">{last.map(|e| pct(e.asr))}</td>
                    <td data-label="ASR % after each epoch" class="wrap">{run.epochs.iter().map(|e| pct(e.asr)).collect::<Vec<_>>().join(" · ")}</td>
                </tr>
            }
        })
        .collect_view();
    let asr = chart::transfer_chart("ASR (%) while the victim fine-tunes", base.asr, &t.runs, |e| e.asr);
    let ca = chart::transfer_chart("CA (%) while the victim fine-tunes", base.clean_acc, &t.runs, |e| e.clean_acc);
    let asr_text = chart::transfer_text("ASR after each fine-tuning epoch", base.asr, &t.runs, |e| e.asr);
    let ca_text = chart::transfer_text("CA after each fine-tuning epoch", base.clean_acc, &t.runs, |e| e.clean_acc);
    Some(view! {
        <p class="explain">{format!(
            "The base model: CA {} %, ASR {} %. The victim fine-tuned it on {} clean images the base never saw ({:.1} s in all).",
            pct(base.clean_acc), pct(base.asr), t.clean_samples, t.seconds
        )}</p>
        <table class="repairs stack">
            <thead><tr><th>"victim"</th><th>"parameters trained"</th><th>"CA %"</th><th>"ASR %"</th><th>"ASR % after each epoch"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
        <div class="charts">
            <div class="chart" role="img" aria-label=asr_text inner_html=asr></div>
            <div class="chart" role="img" aria-label=ca_text inner_html=ca></div>
        </div>
    })
}

/// A count with thousands separated, as the page writes numbers of images.
fn thousands(n: usize) -> String {
    crate::lab::data::source::count(n)
}

#[component]
pub(super) fn TransferStep() -> impl IntoView {
    let c = ctx();
    let on = move || c.spec.with(|s| !s.finetune.is_off());
    // The freeze modes always; epochs, data size and learning rate once a mode is chosen.
    let params = Signal::derive(move || {
        let all = c.spec.with(|s| s.finetune.params());
        if on() { all } else { all.into_iter().take(1).collect() }
    });
    let can_run = move || c.report.get().is_some() && c.status.get() != Status::Running && on();
    // The on-demand victim draws from what the last run's split left unused.
    let no_room = move || {
        let r = c.report.get()?;
        let size = c.spec.with(|s| s.finetune.size);
        let data = super::client::page_data(r.spec.data.dataset)?;
        data.size_problem(&r.spec.data, Some(size)).map(|p| p.message)
    };
    view! {
        <Step id=Place::Transfer.name() n=7 title="Transfer" explain="The attacker publishes a poisoned pre-trained model; a victim fine-tunes it on clean data of its own, with the feature layers frozen or fully (Gu et al., 2017, BadNets' transfer experiment; Yao et al., 2019, latent backdoors). Does the backdoor survive?">
            <div class="row"><ParamFields params=params/></div>
            <div class="actions">
                <button data-testid="run-transfer" disabled=move || !can_run() || no_room().is_some() || c.blocked().is_some()
                    on:click=move |_| run_on_model(c, ToWorker::Transfer { finetune: c.spec.get_untracked().finetune }, Stage::Transfer)>"Fine-tune the trained model"</button>
                <small>{move || c.spec.with(|s| if s.finetune.is_off() {
                    "Tick a victim above: it fine-tunes after training when you press Run, or here on the trained model.".to_string()
                } else {
                    format!(
                        "The victim's {} images come from those the split leaves unused (the model never saw them): {} training and {} test images of {} are taken.",
                        thousands(s.finetune.size),
                        if s.data.train_size == crate::lab::spec::ALL { s.data.train_text() } else { thousands(s.data.train_size) },
                        thousands(s.data.test_size), s.data.dataset.label()
                    )
                })}</small>
            </div>
            {move || can_run().then(no_room).flatten().map(|m| view! { <p class="job-blocked" data-testid="transfer-no-room">{format!("The trained model's split leaves too few images for this victim: {m}")}</p> })}
            <JobNote place=Place::Transfer available=Signal::derive(can_run)/>
            {move || c.report.get().and_then(|r| transfer_results(&r))}
        </Step>
    }
}
