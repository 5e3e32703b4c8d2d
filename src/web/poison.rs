//! Step 2, Poison: the attack controls, a sentence on the chosen attack, and the trigger beside a few
//! images before and after poisoning.

use leptos::prelude::*;

use super::app::ctx;
use super::client::page_data;
use super::controls::{ParamFields, Step};
use super::pictures::data_url;
use crate::lab::attack::Selection;
use crate::lab::data::DataSource;
use crate::lab::params::Params;

#[component]
pub(super) fn PoisonStep() -> impl IntoView {
    let c = ctx();
    let s = move || c.spec.get();
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
            let to = if spec.attack.method.selection() == Selection::TargetClass { y } else { to };
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
        if spec.attack.method.loss_weight().is_some() {
            "No training sample is poisoned: the triggered copies above exist only inside the attacker's training loop."
                .to_string()
        } else if spec.attack.method.branch().is_some() {
            "No training sample is poisoned: the model trains on clean data, and a fixed branch of its architecture adds to the target's logit whenever the trigger is in the input.".to_string()
        } else if spec.attack.method.selection() == Selection::Nothing {
            "no samples poisoned".to_string()
        } else if spec.data.train_size == crate::lab::spec::ALL {
            format!("{:.1} % of all training images poisoned", 100.0 * spec.attack.poison_rate)
        } else {
            format!("{n} of {} training images poisoned", spec.data.train_size)
        }
    };
    view! {
        <Step id="poison" n=2 title="Poison" explain="How the backdoor gets in depends on what the attacker controls. With part of the training data, they hide a trigger in it: the poisoning rate ρ = |Dp| / (|Dc| + |Dp|) is the share of poisoned samples. With the training itself, they change the loss and leave the data clean.">
            <div class="row">
                <ParamFields params=Signal::derive(move || c.spec.with(|s| s.attack.params()))/>
            </div>
            <p class="explain">{move || s().attack.method.info().explain}" "<b>{count}</b></p>
            {move || {
                let spec = s();
                spec.attack.method.branch().map(|b| view! {
                    <h3>"The architecture the attacker ships: the red branch has no weights, so training on clean data, fine-tuning and pruning never touch it"</h3>
                    <div class="chart" data-testid="architecture" inner_html=super::chart::architecture(spec.model, spec.attack.target_label, b.gain)></div>
                })
            }}
            <div class="grid">{preview}</div>
            <super::sweep::SweepPanel/>
        </Step>
    }
}
