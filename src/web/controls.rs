//! The generic controls every step is built from: a `<select>` (`Choice`) or an input (`Field`) bound
//! to one link key, and the numbered `Step` section. Each hides itself when its key or id is in `hide=`.

use leptos::prelude::*;

use super::app::ctx;

/// A labelled `<select>` bound to one link key.
#[component]
pub(super) fn Choice(
    /// Visible label.
    label: &'static str,
    /// Link key the choice edits.
    key: &'static str,
    /// (value, text) pairs.
    options: Vec<(&'static str, &'static str)>,
    /// The current value, from the spec.
    value: Signal<String>,
) -> impl IntoView {
    let c = ctx();
    let hidden = move || c.opts.get().hidden(key);
    view! {
        <Show when=move || !hidden()>
            <label class="field">
                <span>{label}</span>
                <select data-key=key prop:value=move || value.get() on:change=move |ev| c.apply(key, &event_target_value(&ev))>
                    {options.clone().into_iter().map(|(v, t)| view! { <option value=v selected=move || value.get() == v>{t}</option> }).collect_view()}
                </select>
            </label>
        </Show>
    }
}

/// A labelled text/number input bound to one link key.
#[component]
pub(super) fn Field(
    /// Visible label.
    label: &'static str,
    /// Link key the field edits.
    key: &'static str,
    /// The current value, from the spec.
    value: Signal<String>,
    /// A one-line hint under the field.
    #[prop(optional)]
    hint: &'static str,
) -> impl IntoView {
    let c = ctx();
    let hidden = move || c.opts.get().hidden(key);
    view! {
        <Show when=move || !hidden()>
            <label class="field">
                <span>{label}</span>
                <input data-key=key type="text" inputmode="decimal" prop:value=move || value.get()
                    on:change=move |ev| c.apply(key, &event_target_value(&ev)) />
                <small>{hint}</small>
            </label>
        </Show>
    }
}

/// A numbered step with a one-sentence explanation.
#[component]
pub(super) fn Step(
    /// Section id, also the name used by `hide=`.
    id: &'static str,
    /// Step number shown in the heading.
    n: u8,
    /// Heading.
    title: &'static str,
    /// One sentence for students.
    explain: &'static str,
    children: Children,
) -> impl IntoView {
    let c = ctx();
    let hidden = move || c.opts.get().hidden(id);
    view! {
        <section id=id class="step" class:hidden=hidden>
            <h2><span class="num">{n}</span>{title}</h2>
            <p class="explain">{explain}</p>
            {children()}
        </section>
    }
}
