//! Find the backdoor: with `challenge=CODE` in the link, the page trains the code's hidden attack and
//! shows only what a defender would have (the data, the training run, Neural Cleanse on the model);
//! the student names the target class and the trigger's place, and the page grades the answer and then
//! reveals the attack. The Share section makes new challenge links for teachers.

use leptos::prelude::*;

use super::app::{Status, ctx, pct};
use super::client::run_on_model;
use super::detect::nc_view;
use super::pictures::data_url;
use super::protocol::ToWorker;
use crate::lab::challenge::{Challenge, Grade, PLACES, Truth};
use crate::lab::detect::{DetectSpec, NeuralCleanse};
use crate::lab::event::Stage;

#[component]
pub(super) fn ChallengeStep() -> impl IntoView {
    let c = ctx();
    let target = RwSignal::new(String::new());
    let place = RwSignal::new(None::<usize>);
    let graded = RwSignal::new(None::<(Grade, Truth)>);
    // A new challenge (another link opened in this tab) starts with a blank answer.
    Effect::new(move |_| {
        c.opts.with(|o| o.challenge.as_ref().map(|ch| ch.code().to_string()));
        target.set(String::new());
        place.set(None);
        graded.set(None);
    });
    move || {
        let ch: Challenge = c.opts.with(|o| o.challenge.clone())?;
        let trained = move || c.report.get().is_some();
        let idle = move || c.status.get() != Status::Running;
        let run_nc = move |_| {
            let detect = DetectSpec { nc: Some(NeuralCleanse::default()), ..DetectSpec::default() };
            run_on_model(c, ToWorker::Detect { detect }, Stage::Detect);
        };
        let nc = move || {
            let r = c.report.get()?;
            let nc = r.detect.nc?;
            let (verdict, body) = nc_view(&nc, None::<()>);
            Some(view! {
                <div class="card">
                    <h3>"Neural Cleanse"<small>{format!(" · {:.1} s", nc.seconds)}</small></h3>
                    <p class="verdict" data-testid="challenge-nc">{verdict}</p>
                    {body}
                </div>
            })
        };
        let submit = {
            let ch = ch.clone();
            move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                // One answer per challenge: after the reveal a second would be graded knowing the truth.
                if graded.get_untracked().is_some() {
                    return;
                }
                let (Ok(t), Some(p)) = (target.get_untracked().parse::<u8>(), place.get_untracked()) else { return };
                graded.set(Some((ch.grade(t, p), ch.truth())));
            }
        };
        let answered = move || graded.with(Option::is_some);
        let reveal = {
            let ch = ch.clone();
            move || {
                let (grade, truth) = graded.get()?;
                let spec = ch.spec();
                let dims = spec.dims();
                let picture = spec.attack.trigger(dims, spec.seed).ok().map(|t| t.picture(dims));
                let right = |ok: bool| if ok { "right" } else { "wrong" };
                let said_target = target.get_untracked();
                let said_place = place.get_untracked().map_or("", |p| PLACES[p].1);
                let (class, summary) = match (grade.target, grade.place) {
                    (true, true) => ("answer right", "Well found: both are right."),
                    (false, false) => ("answer wrong", "Not this time: both are wrong."),
                    _ => ("answer partly", "Half right."),
                };
                Some(view! {
                    <div class=class data-testid="answer-result" role="status">
                        <p><b>{summary}</b></p>
                        <p>
                            <span data-testid="answer-target-grade" class=right(grade.target)>{format!("Your target, class {said_target}: {}", right(grade.target))}</span>". "
                            <span data-testid="answer-place-grade" class=right(grade.place)>{format!("Your trigger place, {said_place}: {}", right(grade.place))}</span>"."
                        </p>
                        <p data-testid="answer-truth">{format!(
                            "The backdoor: a {n}×{n} {pattern} patch at the {place}, relabelled {t}.",
                            n = truth.patch, pattern = truth.pattern, place = PLACES[truth.place].1, t = truth.target
                        )}</p>
                        {picture.map(|p| view! { <figure class="sample trigger"><img src=data_url(&p, dims) alt=format!("the hidden trigger: a {} patch at the {}", truth.pattern, PLACES[truth.place].1)/><figcaption>"the hidden trigger"</figcaption></figure> })}
                    </div>
                })
            }
        };
        Some(view! {
            <section class="step challenge" data-testid="challenge" aria-labelledby="challenge-title">
                <h2 id="challenge-title">"Find the backdoor: challenge "<code data-testid="challenge-code">{ch.code().to_string()}</code></h2>
                <p>
                    "Somebody hid a backdoor in this experiment: a small patch stamped on some training digits, which were relabelled to one class. You see neither the patch nor the class. "
                    "Train the suspect model (Run, in the Train step below), run Neural Cleanse on it, then name the class the backdoor sends inputs to and where its trigger sits."
                </p>
                {move || c.report.get().map(|r| view! { <p>"The trained model's clean accuracy: "<b data-testid="challenge-ca">{pct(r.final_metrics.clean_acc)}</b>" %. It looks like a fine digit classifier."</p> })}
                <div class="actions">
                    <button data-testid="run-nc" disabled=move || !trained() || !idle() on:click=run_nc>"Run Neural Cleanse on the trained model"</button>
                    <small>{move || if trained() { "" } else { "Train the model first." }}</small>
                </div>
                {nc}
                <form class="answer-form" on:submit=submit>
                    <fieldset class="plain" disabled=answered>
                    <legend class="sr-only">"your answer"</legend>
                    <label class="field">
                        <span>"the backdoor's target class"</span>
                        <select data-testid="answer-target" prop:value=move || target.get() on:change=move |ev| target.set(event_target_value(&ev))>
                            <option value="">"choose…"</option>
                            {(0..10).map(|k| view! { <option value=k.to_string()>{k}</option> }).collect_view()}
                        </select>
                    </label>
                    <fieldset class="places">
                        <legend>"where its trigger sits"</legend>
                        {PLACES.iter().enumerate().map(|(i, (name, words))| view! {
                            <label class="field check">
                                <input type="radio" name="challenge-place" data-place=*name prop:checked=move || place.get() == Some(i)
                                    on:change=move |_| place.set(Some(i))/>
                                <span>{*words}</span>
                            </label>
                        }).collect_view()}
                    </fieldset>
                    <button type="submit" class="primary" data-testid="answer-submit"
                        disabled=move || !trained() || target.get().is_empty() || place.get().is_none() || answered()>
                        {move || if answered() { "Answered: the truth is below" } else { "Check my answer" }}</button>
                    </fieldset>
                </form>
                {reveal}
            </section>
        })
    }
}

/// For the Share section: a teacher makes a new challenge link (a random code) to hand out.
#[component]
pub(super) fn NewChallenge() -> impl IntoView {
    let link = RwSignal::new(String::new());
    let make = move |_| {
        // 40 bits from the browser's generator; the code only has to differ between challenges.
        let n = (js_sys::Math::random() * (1u64 << 40) as f64) as u64;
        let code = Challenge::from_number(n).code().to_string();
        let href = web_sys::window().and_then(|w| w.location().href().ok()).unwrap_or_default();
        let base = href.split('#').next().unwrap_or_default().to_string();
        link.set(format!("{base}#challenge={code}"));
    };
    view! {
        <h3>"Challenge your students"</h3>
        <p class="explain">"A challenge link trains a model with a backdoor whose target and trigger are drawn from a code in the link and hidden from the student, who finds them with Neural Cleanse; the page grades the answer and then reveals the truth."</p>
        <div class="actions">
            <button data-testid="new-challenge" on:click=make>"Create a challenge link"</button>
            <Show when=move || !link.get().is_empty()>
                <input class="link" readonly aria-label="challenge link" data-testid="challenge-link" prop:value=move || link.get()/>
                <a href=move || link.get() target="_blank" rel="noopener">"open it"</a>
            </Show>
        </div>
    }
}
