//! Step 2, Poison: the attack controls, a sentence on the chosen attack, and the trigger beside a few
//! images before and after poisoning.

use leptos::prelude::*;

use super::app::ctx;
use super::client::page_data;
use super::controls::{Choice, Field, Step};
use super::pictures::data_url;
use crate::lab::attack::{AttackMethod, TriggerSpec};
use crate::lab::data::DataSource;
use crate::lab::spec::{pattern_name, policy_name, position_name};

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
pub(super) fn PoisonStep() -> impl IntoView {
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
