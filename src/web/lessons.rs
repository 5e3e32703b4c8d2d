//! The Lessons menu (curated experiments, `crate::lessons`) and, while a lesson's experiment is open,
//! its card: the paragraph, the question, the comparisons, and each claim checked against the
//! student's own run once it has finished.

use leptos::prelude::*;

use super::app::{Place, Status, ctx};
use super::client::run_experiment;
use crate::lab::run::Report;
use crate::lessons::{Bound, Claim, LESSONS, Lesson, LessonRun, by_id};

/// The claim's number as the report holds it: shares as percentages, counts and classes as they are.
fn shown(c: &Claim, v: f64) -> String {
    let share = matches!(c.bound, Bound::AtLeast(b) | Bound::AtMost(b) if b > 0.0 && b < 1.0);
    if share { format!("{:.1} %", 100.0 * v) } else { format!("{v}") }
}

/// The menu: every lesson with its paragraph and a link that opens its experiment.
#[component]
pub(super) fn LessonsMenu() -> impl IntoView {
    // Opening a lesson closes the menu, so its card (above the steps) is in view.
    let open = RwSignal::new(false);
    view! {
        <details class="lessons" data-testid="lessons" prop:open=move || open.get()
            on:toggle=move |ev| open.set(event_target::<web_sys::Element>(&ev).has_attribute("open"))>
            <summary>"Lessons"</summary>
            <p class="explain">
                "Curated experiments for a course: open one, press Run, read, and answer its question. Every claim in these paragraphs is checked by the lab's tests on the same experiment."
            </p>
            <ol>
                {LESSONS.iter().map(|l| view! {
                    <li data-lesson=l.id>
                        <a href=format!("#{}&lesson={}", l.runs[0].link, l.id) on:click=move |_| open.set(false)><b>{l.title}</b></a>
                        <p>{l.text}</p>
                    </li>
                }).collect_view()}
            </ol>
        </details>
    }
}

/// One claim checked against a run: its words, the number read, and whether it holds.
#[derive(Debug, Clone, PartialEq)]
struct CheckedClaim {
    says: &'static str,
    value: String,
    holds: bool,
}

/// The claims of `run` checked against a finished run's report.
fn check_run(run: &LessonRun, report: &Report) -> Vec<CheckedClaim> {
    let Ok(json) = serde_json::to_value(report) else { return Vec::new() };
    run.claims
        .iter()
        .map(|claim| {
            let got = claim.check(&json);
            let value = got.value.map(|v| shown(claim, v)).unwrap_or_else(|| "none".into());
            CheckedClaim { says: claim.says, value, holds: got.holds }
        })
        .collect()
}

/// The open lesson's card: it stays while the student explores the lesson's experiments (its own and
/// its comparisons), checks the claims of each of them the student has run, and closes with its ✕.
#[component]
pub(super) fn LessonCard() -> impl IntoView {
    let c = ctx();
    move || {
        let id = c.lesson.get()?;
        let l: &'static Lesson = by_id(id)?;
        // The lesson's experiments the student has run in this tab, each with its claims checked.
        let checked = RwSignal::new(Vec::<(&'static str, Vec<CheckedClaim>)>::new());
        Effect::new(move |_| {
            let Some(report) = c.report.get() else { return };
            if let Some(run) = l.run_of(&report.link) {
                let claims = check_run(run, &report);
                checked.update(|all| {
                    all.retain(|(link, _)| *link != run.link);
                    all.push((run.link, claims));
                });
            }
        });
        let here = move || c.spec.with(|s| l.has_link(&s.to_link()));
        let last_elsewhere =
            move || c.report.with(|r| r.as_ref().filter(|r| !l.has_link(&r.link)).map(|r| r.link.clone()));
        let link_to = move |run: &LessonRun| format!("#{}&lesson={}", run.link, l.id);
        let results = move || {
            checked.get().into_iter().map(|(link, claims)| view! {
                <h3>"In your run of "<code>{link}</code></h3>
                <ul class="claims" data-testid="claims" data-link=link>
                    {claims.into_iter().map(|k| {
                        let (mark, class) = if k.holds { ("✓", "holds") } else { ("✗", "fails") };
                        view! { <li class=class><span aria-hidden="true">{mark}" "</span>{k.says}": "<b>{k.value}</b>
                            <span class="sr-only">{if k.holds { " (holds)" } else { " (does not hold in this run)" }}</span></li> }
                    }).collect_view()}
                </ul>
            }).collect_view()
        };
        Some(view! {
            <section class="step lesson" data-testid="lesson" aria-labelledby="lesson-title">
                <button class="close" data-testid="close-lesson" aria-label="close the lesson" title="Close the lesson"
                    on:click=move |_| c.lesson.set(None)>"✕"</button>
                <h2 id="lesson-title">"Lesson: "{l.title}</h2>
                <p>{l.text}</p>
                <p>"The lesson's experiment: "<a href=link_to(&l.runs[0])><code>{l.runs[0].link}</code></a>
                    {(l.runs.len() > 1).then(|| view! {
                        "; compare: "{l.runs[1..].iter().map(|r| view! { <a href=link_to(r)><code>{r.link}</code></a>" " }).collect_view()}
                    })}
                </p>
                <p class="question"><b>"Question. "</b>{l.question}</p>
                <div class="actions">
                    <button class="primary" data-testid="lesson-run"
                        disabled=move || c.status.get() == Status::Running || !c.worker_ready.get() || c.blocked().is_some()
                        on:click=move |_| run_experiment(c)>"Run this experiment"</button>
                    // Not a `#train` link: the fragment holds the experiment.
                    <button type="button" class="link-button" on:click=move |_| {
                        if let Some(step) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id(Place::Train.name())) {
                            step.scroll_into_view();
                        }
                    }>"Go to the Train step"</button>
                    <small>{move || (!here()).then_some("The experiment on the page is not one of this lesson's: its claims are checked on the lesson's links above.")}</small>
                </div>
                {results}
                {move || match (checked.with(Vec::is_empty), last_elsewhere()) {
                    (_, Some(link)) => Some(view! { <p class="explain" data-testid="lesson-elsewhere">"Your last run ("<code class="link">{link}</code>") is not one of this lesson's experiments, so the lesson's claims do not apply to it."</p> }.into_any()),
                    (true, None) => Some(view! { <p class="explain">"Press Run this experiment (or Run in the Train step); the claims above are then checked against your run."</p> }.into_any()),
                    (false, None) => None,
                }}
            </section>
        })
    }
}
