//! The generic controls every step is built from: each parameter's control is generated from its
//! declaration (`ParamField`), so a new method's parameters appear without page code; and the
//! numbered `Step` section. Each hides itself when its key or id is in `hide=`.

use leptos::prelude::*;

use super::app::{Place, Status, ctx};
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
    // A refused value stays in its field as typed: the field never shows one value while the spec
    // holds another unnoticed.
    let refused = move || c.field_error(key);
    let value = move || refused().map(|e| e.typed).unwrap_or_else(|| c.spec.with(|s| s.get(key)).unwrap_or_default());
    let apply = move |ev: leptos::ev::Event| c.apply(key, &event_target_value(&ev));
    // Beside a size the data cannot give (the split, the transfer victim's images), before Run.
    let size_problem = move || c.size_problem.get().filter(|p| p.keys.contains(&key)).map(|p| p.message);
    let problem = move || refused().map(|e| e.message).or_else(size_problem);
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
        _ => {
            let described = format!("{key}-error");
            // Applied as typed, so Run always uses what the field shows (or is blocked with the reason).
            view! { <input data-key=key type="text" inputmode="decimal" prop:value=value on:input=apply on:change=apply
                aria-invalid=move || if problem().is_some() { "true" } else { "false" }
                aria-describedby=move || problem().is_some().then(|| described.clone())/> }.into_any()
        }
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
    // The doc line, and the key that a link or the CLI uses for this control.
    let tooltip = format!("{} (link key: {key})", info.doc_line());
    // A drop-down whose longest choice would be cut in one column of the row takes two.
    let longest = match info.kind {
        Kind::Choice(names) => names.iter().map(|n| n.label.chars().count()).max().unwrap_or(0),
        Kind::Method(family) => family.registry().iter().map(|m| m.title.chars().count()).max().unwrap_or(0),
        _ => 0,
    };
    let wide = longest > 18;
    // A group of check boxes holds labels of its own, and a label may not hold another.
    let group = matches!(info.kind, Kind::Choices(_));
    view! {
        <Show when=move || !hidden()>
            {if group {
                view! {
                    <div class="field" role="group" title=tooltip.clone()>
                        <span>{info.title()}</span>
                        {widget}
                    </div>
                }
                .into_any()
            } else {
                view! {
                    <label class="field" class:wide=wide class:invalid=move || problem().is_some() title=tooltip.clone()>
                        <span>{info.title()}</span>
                        {widget}
                        <small>{note}</small>
                        {move || problem().map(|m| view! { <small class="field-error" id=format!("{key}-error") role="alert" data-testid=format!("field-error-{key}")>{m}</small> })}
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
            // The number is the step's place among those shown (a CSS counter): a challenge or an
            // embedded page that hides steps does not skip numbers. `n` is the full page's.
            <h2><span class="num" data-step=n></span>{title}</h2>
            <p class="explain">{explain}</p>
            {children()}
        </section>
    }
}

/// Beside a step's action: why it cannot start (a refused value, a split the data cannot give), or how
/// the last job started here failed. Messages appear where the user acted, not in a banner far away.
#[component]
pub(super) fn JobNote(
    /// The step whose action this note sits beside.
    place: Place,
    /// Whether the action could start but for what blocks it (only then is the block worth saying).
    #[prop(into)]
    available: Signal<bool>,
) -> impl IntoView {
    let c = ctx();
    let failure = move || c.failure.get().filter(|(p, _)| *p == place).map(|(_, m)| m);
    let blocked = move || (c.status.get() != Status::Running && available.get()).then(|| c.blocked()).flatten();
    view! {
        {move || failure().map(|m| view! { <p class="job-error" role="alert" data-testid=format!("job-error-{}", place.name())>{m}</p> })}
        {move || blocked().map(|m| view! { <p class="job-blocked" data-testid=format!("blocked-{}", place.name())>{m}</p> })}
    }
}
