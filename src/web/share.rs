//! The URL fragment and the Share section: the fragment holds the spec plus the page's own options
//! (`embed`, `hide`, `device`), and the Share section shows the link and the past runs.

use leptos::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};

use super::app::{ctx, pct};
use crate::lab::ExperimentSpec;
use crate::lab::challenge::Challenge;

/// Page-only options read from the fragment: embed mode and hidden controls or sections.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct PageOptions {
    pub(super) embed: bool,
    pub(super) hide: Vec<String>,
    /// Run on the CPU even when WebGPU is available (`device=cpu`).
    pub(super) cpu: bool,
    /// A find-the-backdoor challenge (`challenge=CODE`): the experiment is the code's hidden attack.
    pub(super) challenge: Option<Challenge>,
    /// The lesson the link opens (`lesson=ID`); the page keeps the open one in `Ctx::lesson` and
    /// writes it back to the link from there.
    pub(super) lesson: Option<String>,
}

impl PageOptions {
    pub(super) fn fragment(&self) -> String {
        let mut s = String::new();
        if let Some(c) = &self.challenge {
            s.push_str("&challenge=");
            s.push_str(c.code());
        }
        if self.embed {
            s.push_str("&embed=1");
        }
        if !self.hide.is_empty() {
            s.push_str("&hide=");
            s.push_str(&self.hide.join(","));
        }
        if self.cpu {
            s.push_str("&device=cpu");
        }
        s
    }
    /// Whether a control (by its link key) is hidden. A challenge hides every control: each would show
    /// or change the hidden attack.
    pub(super) fn hidden(&self, key: &str) -> bool {
        self.challenge.is_some() || self.hide.iter().any(|h| h == key)
    }

    /// Whether a step (by its section id) is hidden. (A challenge does not build the steps that would
    /// show its attack at all: see `App`.)
    pub(super) fn step_hidden(&self, id: &str) -> bool {
        self.hide.iter().any(|h| h == id)
    }
}

/// Splits a fragment into the spec (or the error and defaults) and the page options (`embed`,
/// `hide`), which are the page's own keys and never reach the lab's link codec.
pub(super) fn parse_fragment(hash: &str) -> (ExperimentSpec, PageOptions, Option<String>) {
    let hash = hash.trim_start_matches('#');
    let mut opts = PageOptions::default();
    let mut spec_parts = Vec::new();
    for part in hash.split('&').filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some(("embed", v)) => opts.embed = v != "0",
            Some(("hide", v)) => opts.hide = v.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
            Some(("device", v)) => opts.cpu = v == "cpu",
            Some(("lesson", v)) => opts.lesson = Some(v.to_string()),
            Some(("challenge", v)) => match Challenge::parse(v) {
                Ok(c) => opts.challenge = Some(c),
                Err(e) => {
                    return (
                        ExperimentSpec::default(),
                        opts,
                        Some(format!(
                            "This challenge link could not be read ({e}); showing the default experiment instead."
                        )),
                    );
                }
            },
            _ => spec_parts.push(part),
        }
    }
    // A challenge's experiment is its code's; anything else in the link is ignored.
    if let Some(c) = &opts.challenge {
        return (c.spec(), opts, None);
    }
    // A grid link (`g=1&...`) is the Compare step's; the experiment starts from the defaults.
    if spec_parts.is_empty() || spec_parts.iter().any(|p| p.starts_with("g=")) {
        return (ExperimentSpec::default(), opts, None);
    }
    // Every valid key is kept; what could not be used is named, with why.
    let (spec, dropped) = ExperimentSpec::from_link_partial(&spec_parts.join("&"));
    let note = match dropped.len() {
        0 => None,
        1 => Some(format!(
            "Part of this link could not be used and was left out: {}. The rest of it is kept.",
            dropped[0]
        )),
        n => Some(format!(
            "{n} parts of this link could not be used and were left out: {}. The rest of it is kept.",
            dropped.join("; ")
        )),
    };
    (spec, opts, note)
}

#[component]
pub(super) fn ShareBar() -> impl IntoView {
    let c = ctx();
    let copied = RwSignal::new(String::new());
    let full_link = move || {
        let href = web_sys::window().and_then(|w| w.location().href().ok()).unwrap_or_default();
        let base = href.split('#').next().unwrap_or_default().to_string();
        format!("{base}{}", c.link())
    };
    let copy = move |_| {
        let link = full_link();
        let Some(clipboard) = web_sys::window().map(|w| w.navigator().clipboard()) else { return };
        spawn_local(async move {
            match JsFuture::from(clipboard.write_text(&link)).await {
                Ok(_) => copied.set("Link copied.".into()),
                Err(_) => copied.set("Copy blocked by the browser: select the link and copy it.".into()),
            }
        });
    };
    let open = move |link: String| {
        if let Some(w) = web_sys::window() {
            let _ = w.location().set_hash(&link);
        }
    };
    view! {
        <section class="step share" class:hidden=move || c.opts.with(|o| o.embed || o.challenge.is_some())>
            <h2>"Share and reproduce"</h2>
            <p class="explain">"This link holds the whole experiment: opening it restores every control, and Run reproduces the result."</p>
            <div class="actions">
                <input class="link" readonly aria-label="link to this experiment" data-testid="link" prop:value=full_link/>
                <button data-testid="copy-link" on:click=copy>"Copy link"</button>
                <span>{move || copied.get()}</span>
            </div>
            <super::challenge::NewChallenge/>
            <Show when=move || !c.runs.get().is_empty()>
                <h3>"Past runs (kept in this browser)"</h3>
                <table class="runs">
                    <tr><th>"when"</th><th>"CA"</th><th>"ASR"</th><th>"RA"</th><th>"device"</th><th>"experiment"</th></tr>
                    {move || c.runs.get().into_iter().map(|r| {
                        let link = r.link.clone();
                        view! {
                            <tr>
                                <td>{r.when.clone()}</td><td>{pct(r.clean_acc)}</td><td>{pct(r.asr)}</td><td>{pct(r.robust_acc)}</td><td>{r.device.clone()}</td>
                                <td><a href=r.link.clone() on:click=move |_| open(link.clone())>{r.link.clone()}</a></td>
                            </tr>
                        }
                    }).collect_view()}
                </table>
            </Show>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_keys_are_split_from_the_spec() {
        let (spec, opts, err) = parse_fragment("#v=1&epochs=2&embed=1&hide=poison,lr");
        assert_eq!(spec.train.epochs, 2);
        assert!(opts.embed && opts.hidden("poison") && opts.hidden("lr"));
        assert!(err.is_none());
        let (spec, _, err) = parse_fragment("#v=1&attack=trojan&epochs=2&lesson=badnets");
        assert_eq!(spec.train.epochs, 2);
        assert!(err.unwrap().contains("unknown attack"));
    }
}
