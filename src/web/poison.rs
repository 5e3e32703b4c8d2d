//! Step 2, Poison: the attack controls, a sentence on the chosen attack, and the trigger beside a few
//! images before and after poisoning.

use leptos::prelude::*;

use super::app::{Place, ctx};
use super::client::page_data;
use super::controls::{ParamFields, Step};
use super::pictures::data_url;
use crate::lab::attack::{AttackMethod, Selection, Style, Trigger};
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
        if pool.is_empty() {
            return None;
        }
        let method = &spec.attack.method;
        let target = spec.attack.target_label;
        // A semantic attack edits no pixel: show its sub-population in the training split, the images
        // the run relabels (the count above is the same).
        let split =
            (method.selection() == Selection::SubPopulation).then(|| data.split(&spec.data, spec.seed).ok()).flatten();
        let pool = split.as_ref().map_or(pool, |s| &s.train);
        if let Some(members) = method.members(pool, pool) {
            let mut members = match members {
                Ok(m) => m,
                Err(e) => {
                    return Some(vec![view! { <p class="explain" data-testid="members-error">{e}</p> }.into_any()]);
                }
            };
            // Strongest first: the gallery runs from the clearest members down to the cut-off.
            if let AttackMethod::Semantic(semantic) = method {
                let score = |i: usize| semantic.score(pool.image(i), dims);
                members.sort_by(|&a, &b| score(b).total_cmp(&score(a)));
            }
            let class = method.source_class().unwrap_or(0);
            let others: Vec<usize> =
                (0..pool.len()).filter(|&i| pool.labels[i] == class && !members.contains(&i)).take(4).collect();
            let total = (0..pool.len()).filter(|&i| pool.labels[i] == class).count();
            let heading = format!(
                "The sub-population: {} of the {total} images of class {class} in the training split, relabelled {target}; a few of them, and beside them images of the class that stay {class}",
                members.len()
            );
            let mut views = vec![view! { <h3 class="wide">{heading}</h3> }.into_any()];
            if matches!(method, AttackMethod::Semantic(s) if s.style == Style::Crossed) {
                views.push(view! { <p class="explain wide" data-testid="members-note">"The members are the share of the class whose longest stroke across the middle reaches furthest beyond the stroke's own width, strongest first. Not every member has a bar: fewer 7s are written crossed than the default share (20 %), so the last ones shown are plain 7s with a wide middle. Lower the share to keep only the clearest."</p> }.into_any());
            }
            views.extend(members.iter().step_by((members.len() / 12).max(1)).take(12).map(|&i| {
                view! { <figure class="sample member" data-testid="member"><img src=data_url(pool.image(i), dims) alt="a member"/><figcaption>{format!("{class} → {target}")}</figcaption></figure> }.into_any()
            }));
            views.extend(others.into_iter().map(|i| {
                view! { <figure class="sample"><img src=data_url(pool.image(i), dims) alt="not a member"/><figcaption>{format!("stays {class}")}</figcaption></figure> }.into_any()
            }));
            return Some(views);
        }
        let trigger = spec.attack.trigger(dims, spec.seed).ok()?;
        let mut views = vec![view! { <figure class="sample trigger"><img src=data_url(&trigger.picture(dims), dims) alt="the trigger"/><figcaption>{match trigger { Trigger::Warp(_) => "warp field", _ => "trigger" }}</figcaption></figure> }.into_any()];
        // Which images to show: the poisons' class for clean-label attacks; the source class for attacks
        // whose poisons carry no trigger (their pairs show the test-time input instead).
        let from = method.source_class();
        let test_time = method.crafts() && from.is_some();
        let class = if test_time {
            from
        } else if method.selection() == Selection::TargetClass {
            Some(target)
        } else {
            None
        };
        let picks: Vec<usize> = match class {
            Some(k) => (0..pool.len()).filter(|&i| pool.labels[i] == k).step_by(97).take(4).collect(),
            None => [3usize, 1500, 4200, 7100].map(|i| i % pool.len()).to_vec(),
        };
        // Invisible triggers get a third picture: the change, amplified, so it can be seen at all.
        let amplify = matches!(trigger, Trigger::Warp(_) | Trigger::Sig { .. } | Trigger::Blend { .. }).then_some(4u8);
        for i in picks {
            let clean = pool.image(i).to_vec();
            let mut poisoned = clean.clone();
            trigger.apply(&mut poisoned, dims);
            let y = pool.labels[i];
            let to = spec.attack.label_policy.target(y, target);
            let to = if method.selection() == Selection::TargetClass && !test_time { y } else { to };
            let caption = if test_time { format!("test: {y} → {to}") } else { format!("{y} → {to}") };
            let difference = amplify.map(|k| {
                let d: Vec<u8> =
                    clean.iter().zip(&poisoned).map(|(a, b)| a.abs_diff(*b).saturating_mul(k)).collect();
                view! { <img src=data_url(&d, dims) alt=format!("the difference ×{k}") title=format!("|poisoned − clean| × {k}")/> }
            });
            views.push(
                view! {
                    <figure class="pair">
                        <img src=data_url(&clean, dims) alt="clean"/><img src=data_url(&poisoned, dims) alt="poisoned"/>{difference}
                        <figcaption>{caption}</figcaption>
                    </figure>
                }
                .into_any(),
            );
        }
        if let Some(k) = amplify {
            views.push(
                view! { <p class="explain">{format!("Each pair: clean, poisoned, and their difference ×{k}.")}</p> }
                    .into_any(),
            );
        }
        if method.crafts() {
            let text = if test_time {
                "The poisons carry no trigger: they are target-class images perturbed within ε during the run, on the attacker's own model; above, the triggered inputs the backdoor answers at test time."
            } else {
                "The adversarial perturbation within ε is crafted during the run, on the attacker's own model; above, the trigger alone."
            };
            views.push(view! { <p class="explain">{text}</p> }.into_any());
        }
        Some(views)
    };
    let count = move || {
        let spec = s();
        let n = crate::lab::attack::selection::poison_count(spec.data.train_size, spec.attack.poison_rate);
        if spec.attack.method.selection() == Selection::SubPopulation {
            // No rate: every member of the sub-population is relabelled (its size is the share of the class).
            "No image is changed and there is no poisoning rate: every member of the sub-population below is relabelled.".to_string()
        } else if spec.attack.method.loss_weight().is_some() {
            "No training sample is poisoned: the triggered copies below exist only inside the attacker's training loop."
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
        <Step id=Place::Poison.name() n=2 title="Poison" explain="How the backdoor gets in depends on what the attacker controls. With part of the training data, they hide a trigger in it: the poisoning rate ρ = |Dp| / (|Dc| + |Dp|) is the share of poisoned samples. With the training itself, they change the loss and leave the data clean.">
            <div class="row">
                <ParamFields params=Signal::derive(move || c.spec.with(|s| s.attack.params()))/>
            </div>
            <super::draw::TriggerEditor/>
            <p class="explain">{move || s().attack.method.info().explain}" "<b>{count}</b></p>
            {move || {
                let spec = s();
                spec.attack.method.branch().map(|b| view! {
                    <h3>"The architecture the attacker ships: the red branch has no weights, so training on clean data, fine-tuning and pruning never touch it"</h3>
                    <div class="chart" role="img" aria-label=format!("Diagram: the network's layers, and beside them a fixed trigger detector, with no trained weights, that adds {} to the logit of class {} when the patch is present.", b.gain, spec.attack.target_label) data-testid="architecture" inner_html=super::chart::architecture(spec.model, spec.attack.target_label, b.gain)></div>
                })
            }}
            <div class="grid">{preview}</div>
            <super::sweep::SweepPanel/>
        </Step>
    }
}
