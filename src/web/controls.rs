//! The generic controls every step is built from: each parameter's control is generated from its
//! declaration (`ParamField`), so a new method's parameters appear without page code; and the
//! numbered `Step` section. Each hides itself when its key or id is in `hide=`.

use leptos::prelude::*;

use super::app::ctx;
use crate::lab::params::{Hint, Kind, MethodInfo, ParamInfo, Params};

/// One parameter's control, generated from its declaration: a drop-down for names and methods, a
/// slider for `Hint::Slider`, else a text box with the allowed range under it; the doc line is its
/// tooltip. It applies on change through the link vocabulary, so a bad value shows the same message
/// as a bad link, and hides itself when `hide=` names its key.
#[component]
pub(super) fn ParamField(
    /// The parameter's declaration.
    info: &'static ParamInfo,
) -> impl IntoView {
    let c = ctx();
    let key = info.key;
    let hidden = move || c.opts.get().hidden(key);
    let value = move || c.spec.with(|s| s.get(key)).unwrap_or_default();
    let apply = move |ev: leptos::ev::Event| c.apply(key, &event_target_value(&ev));
    let widget = move || {
        let options: Option<Vec<(&'static str, &'static str)>> = match info.kind {
            Kind::Choice(names) => Some(names.iter().map(|n| (n.value, n.label)).collect()),
            Kind::Method(family) => Some(family.registry().iter().map(|m| (m.name, m.title)).collect()),
            _ => None,
        };
        match (options, info.kind) {
        (None, Kind::Choices(names)) => {
            // One box per name; the value is the ticked names in declaration order.
            let toggle = move |name: &'static str, on: bool| {
                let current = value();
                let ticked: Vec<&str> = names
                    .iter()
                    .map(|n| n.value)
                    .filter(|v| if *v == name { on } else { current.split(',').any(|x| x == *v) })
                    .collect();
                c.apply(key, &ticked.join(","));
            };
            view! {
                <span class="choices" data-key=key>
                    {names.iter().map(|n| {
                        let v = n.value;
                        view! {
                            <label class="check">
                                <input type="checkbox" data-choice=v prop:checked=move || value().split(',').any(|x| x == v)
                                    on:change=move |ev| toggle(v, event_target_checked(&ev))/>
                                <span>{n.label}</span>
                            </label>
                        }
                    }).collect_view()}
                </span>
            }
            .into_any()
        }
        (Some(options), _) => view! {
            <select data-key=key prop:value=value on:change=apply>
                {options.into_iter().map(|(v, t)| view! { <option value=v selected=move || value() == v>{t}</option> }).collect_view()}
            </select>
        }
        .into_any(),
        (None, Kind::Float { min, max, min_open, .. }) if info.hint == Hint::Slider => {
            // A slider cannot reach an open end: it starts one step inside.
            let step = (max - min) / 100.0;
            let low = if min_open { min + step } else { min };
            view! {
                <span class="slider">
                    <input data-key=key type="range" min=low max=max step=step prop:value=value on:change=apply/>
                    <output>{value}</output>
                </span>
            }
            .into_any()
        }
        _ => view! { <input data-key=key type="text" inputmode="decimal" prop:value=value on:change=apply/> }.into_any(),
        }
    };
    let note = move || match info.hint {
        Hint::Percent => match value().parse::<f64>() {
            Ok(x) => format!("{} · {:.0} %", info.range_text(), 100.0 * x),
            Err(_) => info.range_text(),
        },
        Hint::Select | Hint::Checkboxes => String::new(),
        _ => info.range_text(),
    };
    // A group of check boxes holds labels of its own, and a label may not hold another.
    let group = matches!(info.kind, Kind::Choices(_));
    view! {
        <Show when=move || !hidden()>
            {if group {
                view! {
                    <div class="field" role="group" title=info.doc_line()>
                        <span>{info.title()}</span>
                        {widget}
                    </div>
                }
                .into_any()
            } else {
                view! {
                    <label class="field" title=info.doc_line()>
                        <span>{info.title()}</span>
                        {widget}
                        <small>{note}</small>
                    </label>
                }
                .into_any()
            }}
        </Show>
    }
}

/// The controls of a list of parameters that changes with the chosen method. Method lists (the
/// detectors' and repairs' check boxes), images and drawings are drawn by their steps, not here.
#[component]
pub(super) fn ParamFields(
    /// The parameters to show, in link order.
    params: Signal<Vec<&'static ParamInfo>>,
) -> impl IntoView {
    let shown = Memo::new(move |_| {
        params
            .get()
            .into_iter()
            .filter(|p| !matches!(p.kind, Kind::Methods(_) | Kind::Image | Kind::Drawing))
            .collect::<Vec<_>>()
    });
    view! {
        <For each=move || shown.get() key=|p| p.key let:info>
            <ParamField info=info/>
        </For>
    }
}

/// Each chosen method's parameters under its title (detectors, repairs), hidden with `hide=` too.
#[component]
pub(super) fn MethodParams(
    /// The method family's registry.
    registry: &'static [MethodInfo],
    /// Link names of the chosen methods.
    chosen: Signal<Vec<&'static str>>,
) -> impl IntoView {
    let names = Memo::new(move |_| {
        let chosen = chosen.get();
        registry
            .iter()
            .filter(|m| chosen.contains(&m.name) && !(m.params)().is_empty())
            .map(|m| m.name)
            .collect::<Vec<_>>()
    });
    let groups =
        move || names.get().into_iter().filter_map(|n| registry.iter().find(|m| m.name == n)).collect::<Vec<_>>();
    view! {
        <For each=groups key=|m| m.name let:m>
            <fieldset class="method-params" data-method=m.name>
                <legend>{m.title}</legend>
                // Only the parameters that apply with the others' values (e.g. a decision rule's own).
                <div class="row"><ParamFields params=Signal::derive(move || {
                    let all = (m.params)();
                    ctx().spec.with(|s| all.into_iter().filter(|p| s.get(p.key).is_some()).collect())
                })/></div>
            </fieldset>
        </For>
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
    let hidden = move || c.opts.get().step_hidden(id);
    view! {
        <section id=id class="step" class:hidden=hidden>
            <h2><span class="num">{n}</span>{title}</h2>
            <p class="explain">{explain}</p>
            {children()}
        </section>
    }
}
