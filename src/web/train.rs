//! Step 3, Train: the model and optimiser controls, Run and Cancel, progress, and the live loss and
//! CA/ASR charts (savable as PNG).

use leptos::prelude::*;

use super::app::{Place, Status, ctx};
use super::chart;
use super::client::{run_experiment, send};
use super::controls::{JobNote, ParamFields, Step};
use super::export::export_png;
use super::protocol::ToWorker;
use crate::lab::ExperimentSpec;
use crate::lab::params::Params;
use crate::lab::spec::OptimizerKind;
use crate::lab::train::MOMENTUM;

#[component]
pub(super) fn TrainStep() -> impl IntoView {
    let c = ctx();
    let s = move || c.spec.get();
    let running = move || c.status.get() == Status::Running;
    let epochs_total = move || s().train.epochs;
    view! {
        <Step id=Place::Train.name() n=3 title="Train" explain="The network learns the task and, silently, the trigger; clean accuracy (CA) and attack success rate (ASR) are measured after every epoch.">
            <div class="row">
                <ParamFields params=Signal::derive(move || {
                    let mut params = ExperimentSpec::model_params();
                    // Adam ignores momentum: its control would show a value that changes nothing.
                    let adam = c.spec.with(|s| s.train.optimizer == OptimizerKind::Adam);
                    params.extend(c.spec.with(|s| s.train.params()).into_iter().filter(|p| !(adam && p.key == MOMENTUM)));
                    params
                })/>
                <label class="field check">
                    <input type="checkbox" data-testid="force-cpu" prop:checked=move || c.opts.get().cpu
                        on:change=move |ev| { let on = event_target_checked(&ev); c.opts.update(|o| o.cpu = on); }/>
                    <span>"run on the CPU even if WebGPU is available"</span>
                </label>
            </div>
            {move || c.spec.with(|s| s.train.aug.0.iter().map(|a| view! { <p class="explain" data-testid="aug-explain">{a.explain()}</p> }).collect_view())}
            <Show when=move || c.spec.with(|s| s.train.dp())>
                <p class="explain" data-testid="dp-explain">{crate::lab::dp::EXPLAIN}</p>
            </Show>
            {move || {
                let r = c.report.get()?;
                let p = r.privacy.as_ref()?;
                Some(view! {
                    <p data-testid="dp-privacy">{format!(
                        "This training spent (ε = {:.2}, δ = {:.1e}) per sample (RDP accountant, {} steps at sampling rate {:.4}). \
                         Its {} poisons are a group of {}: group privacy gives them ({}ε, …), no protection at all.",
                        p.epsilon, p.delta, p.steps, p.sample_rate, r.poison.count, r.poison.count, r.poison.count
                    )}</p>
                })
            }}
            <div class="actions">
                <button class="primary" data-testid="run" disabled=move || running() || !c.worker_ready.get() || c.blocked().is_some() on:click=move |_| run_experiment(c)>
                    {move || if c.worker_ready.get() { "Run" } else { "Loading…" }}
                </button>
                <button data-testid="cancel" disabled=move || !running() on:click=move |_| { let _ = send(&ToWorker::Cancel); }>"Cancel"</button>
                <progress data-testid="progress" max="1" prop:value=move || c.progress.get()></progress>
                <span class="progress-text" data-testid="progress-text">{move || c.progress_text.get()}</span>
            </div>
            <JobNote place=Place::Train available=Signal::derive(move || c.worker_ready.get())/>
            <super::sweep::TradeOff key=Signal::derive(move || c.spec.with(|s| {
                // DP-SGD's σ, else the first chosen augmentation with a strength.
                if s.train.dp() {
                    return Some(crate::lab::train::DP_SIGMA);
                }
                s.train.aug.0.iter().find_map(|a| a.strength_key())
            }))/>
            <div class="charts">
                <div class="chart" role="img" aria-label=move || chart::epochs_text("Training loss per epoch", &c.epochs.get()) inner_html=move || chart::loss_chart(&c.epochs.get(), epochs_total())></div>
                <div class="chart" role="img" aria-label=move || chart::epochs_text("CA and ASR after each epoch", &c.epochs.get()) inner_html=move || chart::accuracy_chart(&c.epochs.get(), epochs_total())></div>
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
