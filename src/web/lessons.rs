//! The Lessons menu (curated experiments, `crate::lessons`) and, while a lesson's experiment is open,
//! its card: the paragraph, the question, the comparisons, and each claim checked against the
//! student's own run once it has finished.

use leptos::prelude::*;

use super::app::ctx;
use crate::lessons::{Bound, Claim, LESSONS, Lesson, for_link};

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
                        <a href=format!("#{}", l.runs[0].link) on:click=move |_| open.set(false)><b>{l.title}</b></a>
                        <p>{l.text}</p>
                    </li>
                }).collect_view()}
            </ol>
        </details>
    }
}

/// The open lesson, when the experiment is one (its first run's link).
#[component]
pub(super) fn LessonCard() -> impl IntoView {
    let c = ctx();
    let lesson = Memo::new(move |_| for_link(&c.spec.get().to_link()).map(|l| l.id));
    move || {
        let id = lesson.get()?;
        let l: &'static Lesson = LESSONS.iter().find(|l| l.id == id)?;
        let run = &l.runs[0];
        // Checked only against a finished run of exactly this experiment.
        let checked = move || {
            let report = c.report.get().filter(|r| r.link == run.link)?;
            let json = serde_json::to_value(&report).ok()?;
            Some(
                run.claims
                    .iter()
                    .map(|claim| {
                        let got = claim.check(&json);
                        let value = got.value.map(|v| shown(claim, v)).unwrap_or_else(|| "none".into());
                        let (mark, class) = if got.holds { ("✓", "holds") } else { ("✗", "fails") };
                        view! { <li class=class><span aria-hidden="true">{mark}" "</span>{claim.says}": "<b>{value}</b>
                            <span class="sr-only">{if got.holds { " (holds)" } else { " (does not hold in this run)" }}</span></li> }
                    })
                    .collect_view(),
            )
        };
        Some(view! {
            <section class="step lesson" data-testid="lesson" aria-labelledby="lesson-title">
                <h2 id="lesson-title">"Lesson: "{l.title}</h2>
                <p>{l.text}</p>
                {(l.runs.len() > 1).then(|| view! {
                    <p>"Compare: "{l.runs[1..].iter().map(|r| view! { <a href=format!("#{}", r.link)><code>{r.link}</code></a>" " }).collect_view()}</p>
                })}
                <p class="question"><b>"Question. "</b>{l.question}</p>
                {move || match checked() {
                    Some(items) => view! { <h3>"In your run"</h3><ul class="claims" data-testid="claims">{items}</ul> }.into_any(),
                    None => view! { <p class="explain">"Press Run in the Train step; the claims above are then checked against your run."</p> }.into_any(),
                }}
            </section>
        })
    }
}
