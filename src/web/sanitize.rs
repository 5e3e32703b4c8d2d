//! The Repair step's input-sanitization panel: choose a sanitizer that every test input passes
//! through at deployment, see a few test images before and after it (with and without the trigger),
//! and, after a run, the model measured through it beside the raw figures.

use leptos::prelude::*;

use super::app::{ctx, pct};
use super::client::page_data;
use super::controls::ParamFields;
use super::pictures::data_url;
use crate::lab::data::DataSource;
use crate::lab::params::Params;
use crate::lab::rng::{LabRng, Stream};

#[component]
pub(super) fn SanitizePanel() -> impl IntoView {
    let c = ctx();
    let row = move || {
        c.data_ready.get();
        c.data_version.get();
        let spec = c.spec.get();
        if spec.sanitize.is_off() {
            return None;
        }
        let dims = spec.dims();
        let data = page_data(spec.data.dataset)?;
        let pool = match &*data {
            DataSource::Pool(pool) => pool,
            DataSource::TrainTest { test, .. } => test,
        };
        let trigger = spec.attack.trigger(dims, spec.seed).ok()?;
        let mut rng = LabRng::new(spec.seed, Stream::Sanitize);
        let views: Vec<_> = [11usize, 2300, 5100]
            .map(|i| i % pool.len().max(1))
            .into_iter()
            .filter(|_| !pool.is_empty())
            .map(|i| {
                let clean = pool.image(i).to_vec();
                let mut triggered = clean.clone();
                trigger.apply(&mut triggered, dims);
                let (mut a, mut b) = (clean.clone(), triggered.clone());
                spec.sanitize.sanitize_one(&mut a, dims, &mut rng);
                spec.sanitize.sanitize_one(&mut b, dims, &mut rng);
                view! {
                    <figure class="pair" data-testid="sanitized">
                        <img src=data_url(&clean, dims) alt="clean"/><img src=data_url(&a, dims) alt="clean, sanitized"/>
                        <img src=data_url(&triggered, dims) alt="with the trigger"/><img src=data_url(&b, dims) alt="with the trigger, sanitized"/>
                        <figcaption>"clean → sanitized · triggered → sanitized"</figcaption>
                    </figure>
                }
            })
            .collect();
        Some(views)
    };
    let measured = move || {
        let r = c.report.get()?;
        let raw = r.final_unsanitized.as_ref()?;
        let der = r.sanitize.as_ref().map_or(0.5, |s| s.der);
        Some(view! {
            <p data-testid="sanitize-result">
                {format!(
                    "Through the {}: CA {} %, ASR {} %, RA {} % (DER {:.2}); on the raw inputs: CA {} %, ASR {} %, RA {} %.",
                    r.spec.sanitize.method.label(),
                    pct(r.final_metrics.clean_acc),
                    pct(r.final_metrics.asr),
                    pct(r.final_metrics.robust_acc),
                    der,
                    pct(raw.clean_acc),
                    pct(raw.asr),
                    pct(raw.robust_acc)
                )}
            </p>
        })
    };
    view! {
        <fieldset class="method-params" data-testid="sanitize-panel">
            <legend>"Input sanitization at deployment"</legend>
            <div class="row"><ParamFields params=Signal::derive(move || c.spec.with(|s| s.sanitize.params()))/></div>
            <p class="explain">{move || c.spec.with(|s| s.sanitize.method.explain())}" The Results step shows the model measured through it; Run measures it after training."</p>
            <div class="grid">{row}</div>
            {measured}
            <super::sweep::TradeOff key=Signal::derive(move || c.spec.with(|s| (!s.sanitize.is_off()).then_some(crate::lab::defense::SANITIZE_K)))/>
        </fieldset>
    }
}
