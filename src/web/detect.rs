//! Step 5, Detect: choose detectors, run them on the trained model, and read one card per detector:
//! its verdict scored against the true poison, a sentence on the method, and its picture.

use leptos::prelude::*;

use super::app::{Place, Status, ctx, said};
use super::chart;
use super::client::{measure_guess, run_on_model, scan_model_file};
use super::controls::{JobNote, MethodParams, Step};
use super::pictures::data_url;
use super::protocol::ToWorker;
use crate::lab::attack::{AttackMethod, Badnets, Drawing, LabelPolicy, PatchPattern, PatchTrigger};
use crate::lab::detect::activation_clustering::AcRule;
use crate::lab::detect::{About, AcReport, DETECT, DetectSpec, Detector, NcReport, NeuralCleanse, pct0};
use crate::lab::event::Stage;
use crate::lab::params::Family;
use crate::lab::run::Report;

/// The name a student reads for a detector's link name (from the registry).
pub(super) fn detector_title(name: &str) -> &'static str {
    Family(DetectSpec::REGISTRY).method(name).map_or("(unknown)", |m| m.title)
}

fn detector_explain(name: &str) -> &'static str {
    Family(DetectSpec::REGISTRY).method(name).map_or("", |m| m.explain)
}

/// A detector's result: its verdict (read by tests), a sentence on the method, and its picture.
#[component]
fn DetectCard(
    /// Link name of the detector.
    name: &'static str,
    /// The verdict in one sentence.
    verdict: String,
    /// Wall time, seconds.
    seconds: f64,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="card">
            <h3>{detector_title(name)}<small>{format!(" · {seconds:.1} s")}</small></h3>
            <p class="verdict" data-testid=format!("detect-{name}")>{verdict}</p>
            <p class="explain">{detector_explain(name)}</p>
            {children()}
        </div>
    }
}

/// Neural Cleanse's verdict and picture: the anomaly index of every class's mask and every reversed
/// trigger (with its mask's centre in the text alternative), beside `truth` (the attacker's trigger) when
/// the page may show it. The challenge step shows it without.
pub(super) fn nc_view<T: IntoView + 'static>(nc: &NcReport, truth: Option<T>) -> (String, impl IntoView + use<T>) {
    let verdict = NeuralCleanse::summary(nc, &About::default()).verdict;
    // A class far above the median mask size is an outlier too, but the wrong way round: a
    // backdoor makes its target's trigger small, so only small-side outliers are flagged.
    let large_side =
        nc.anomaly_index.iter().enumerate().any(|(k, &v)| v > 2.0 && !nc.flagged_classes.contains(&(k as u8)));
    let large_note = large_side.then_some("grey: mask unusually large, not small; only small masks reveal a trigger");
    let (h, w) = (nc.height, nc.width);
    let reversed = (0..nc.masks.len())
        .map(|k| {
            let mask = &nc.masks[k];
            let pattern = &nc.patterns[k];
            let stamp: Vec<u8> = (0..nc.channels * h * w)
                .map(|i| ((pattern[i] as u32 * mask[i % (h * w)] as u32) / 255) as u8)
                .collect();
            let flagged = nc.flagged_classes.contains(&(k as u8));
            let alt = format!("reversed trigger of class {k}: {:.0} pixels of mask, {}", nc.mask_l1[k], mask_centre(nc, k));
            view! { <figure class="sample" class:flagged=flagged><img src=data_url(&stamp, (nc.channels, h, w)) alt=alt/><figcaption>{format!("{k}: {:.0} px", nc.mask_l1[k])}</figcaption></figure> }
        })
        .collect_view();
    let bars = chart::class_bars(
        "anomaly index of each class's mask size",
        &nc.anomaly_index,
        2.0,
        &nc.flagged_classes,
        large_note,
    );
    let bars_text = format!(
        "Anomaly index per class: {}.",
        nc.anomaly_index.iter().enumerate().map(|(k, v)| format!("{k}: {v:.1}")).collect::<Vec<_>>().join(", ")
    );
    let body = view! {
        <div class="chart" role="img" aria-label=bars_text inner_html=bars></div>
        <h4>"Reversed trigger of each class (mask × pattern, mask size in pixels)"{truth.is_some().then_some(" beside the trigger ASR is measured with")}</h4>
        <div class="grid">{reversed}{truth}</div>
    };
    (verdict, body)
}

/// A reversed trigger as the Poison step's drawn patch: the pixels where its mask is at least half its
/// strongest, with the reversed pattern's values there.
pub(super) fn reversed_drawing(nc: &NcReport, k: usize) -> Option<Drawing> {
    let (mask, pattern) = (nc.masks.get(k)?, nc.patterns.get(k)?);
    let top = *mask.iter().max()?;
    if top == 0 {
        return None;
    }
    let plane = nc.height * nc.width;
    let pixels: Vec<(usize, usize, Vec<u8>)> = (0..plane)
        .filter(|&at| 2 * u32::from(mask[at]) >= u32::from(top))
        .map(|at| (at / nc.width, at % nc.width, (0..nc.channels).map(|ch| pattern[ch * plane + at]).collect()))
        .collect();
    Some(Drawing::encode(&pixels))
}

/// For a scanned model: each flagged class's reversed trigger offered as the guess ASR is measured
/// with (it becomes the Poison step's drawn trigger and target; Results then measure it).
fn guess_buttons(nc: &NcReport) -> impl IntoView + use<> {
    let c = ctx();
    let offers: Vec<(u8, Drawing)> =
        nc.flagged_classes.iter().filter_map(|&k| reversed_drawing(nc, k as usize).map(|d| (k, d))).collect();
    (!offers.is_empty()).then(|| {
        let buttons = offers
            .into_iter()
            .map(|(k, drawing)| {
                let use_it = move |_| {
                    // One change of the spec: the drawn patch and its class (all-to-one) together.
                    let mut next = c.spec.get_untracked();
                    let patch = PatchTrigger { pattern: PatchPattern::Drawn, drawing: drawing.clone(), ..PatchTrigger::default() };
                    next.attack.method = AttackMethod::Badnets(Badnets { patch });
                    next.attack.label_policy = LabelPolicy::AllToOne;
                    next.attack.target_label = k;
                    match next.validate() {
                        Ok(()) => {
                            c.spec.set(next);
                            measure_guess(c);
                        }
                        Err(e) => c.fail(Place::Detect, said(&e)),
                    }
                };
                view! { <button data-testid=format!("use-reversed-{k}") disabled=move || c.status.get() == Status::Running on:click=use_it>
                    {format!("Measure ASR with class {k}'s reversed trigger")}</button> }
            })
            .collect_view();
        view! {
            <p class="explain">"The true trigger of a model trained elsewhere is unknown: ASR in Results is measured with the Poison step's trigger, your guess. Neural Cleanse's reversed trigger is a better guess:"</p>
            <div class="actions">{buttons}</div>
        }
    })
}

/// Where a reversed mask is strong, in words a screen reader can give.
fn mask_centre(nc: &NcReport, k: usize) -> String {
    match nc.mask_centre(k) {
        Some((r, c)) => format!("strongest around row {r:.0}, column {c:.0} of {}×{}", nc.height, nc.width),
        None => "empty".into(),
    }
}

/// The cards of every detector in `r.detect`.
fn detect_cards(r: &Report) -> impl IntoView + use<> {
    let d = r.detect.clone();
    let spec = r.spec.clone();
    let dims = spec.dims();
    let target = spec.attack.target_label;
    let trigger = spec.attack.trigger(dims, spec.seed).ok().map(|t| t.picture(dims));
    // A model trained here has a true trigger; a scanned one only the user's guess (the Poison step's).
    let scanned = r.scanned.is_some();
    let (truth_alt, truth_caption) = if scanned {
        ("your guess of the trigger: the Poison step's", "your guess (Poison step)")
    } else {
        ("the attacker's trigger", "true trigger")
    };
    let truth = move || {
        trigger.clone().map(|t| view! { <figure class="sample trigger"><img src=data_url(&t, dims) alt=truth_alt/><figcaption>{truth_caption}</figcaption></figure> })
    };
    // One card per detector that ran, from its summary (registry order); the detectors that have a
    // picture add it, any other shows its figures.
    d.summaries(&r.about())
        .into_iter()
        .map(|(name, _, summary)| {
            let picture = match name {
                "nc" => d.nc.as_ref().map(|nc| {
                    let guesses = scanned.then(|| guess_buttons(nc));
                    let (_, body) = nc_view(nc, truth());
                    view! { {body}{guesses} }.into_any()
                }),
                "ac" => d.ac.as_ref().map(|ac| ac_picture(ac, target).into_any()),
                "ss" => d.ss.as_ref().map(|ss| {
                    let title = format!("class {target}: outlier score");
                    view! { <div class="chart" role="img" aria-label=chart::histogram_text(&title, "score", &ss.target_histogram, "poisoned") inner_html=chart::histogram(&title, "score", &ss.target_histogram, "poisoned")></div> }.into_any()
                }),
                "strip" => d.strip.as_ref().map(|st| {
                    view! { <div class="chart" role="img" aria-label=chart::histogram_text("prediction entropy under blending", "entropy", &st.histogram, "triggered") inner_html=chart::histogram("prediction entropy under blending", "entropy", &st.histogram, "triggered")></div> }.into_any()
                }),
                "loss" => d.loss.as_ref().map(|l| {
                    let title = format!("training loss after {} epochs", l.params.epochs);
                    view! { <div class="chart" role="img" aria-label=chart::histogram_text(&title, "log10 loss", &l.histogram, "poisoned") inner_html=chart::histogram(&title, "log10 loss", &l.histogram, "poisoned")></div> }.into_any()
                }),
                "occlusion" => d.occlusion.as_ref().map(|o| {
                    let top = o.heat.iter().copied().fold(1e-9f32, f32::max);
                    let plane = o.height * o.width;
                    let heat: Vec<u8> = (0..3 * plane)
                        .map(|i| if i < plane { 255 } else { (255.0 * (1.0 - (o.heat[i % plane] / top).clamp(0.0, 1.0))) as u8 })
                        .collect();
                    view! {
                        <div class="grid">
                            <figure class="sample big"><img src=data_url(&heat, (3, o.height, o.width)) alt="occlusion heat map"/><figcaption>"sensitivity (red = hot)"</figcaption></figure>
                            {truth()}
                        </div>
                    }.into_any()
                }),
                _ => None,
            };
            let body = picture.unwrap_or_else(|| figures_table(&summary.figures).into_any());
            view! { <DetectCard name=name verdict=summary.verdict seconds=summary.seconds>{body}</DetectCard> }.into_any()
        })
        .collect::<Vec<_>>()
}

/// A summary's figures as a small table: the card of a detector without a picture of its own.
fn figures_table(figures: &[(&'static str, String)]) -> impl IntoView + use<> {
    let rows =
        figures.iter().map(|(what, value)| view! { <tr><th>{*what}</th><td>{value.clone()}</td></tr> }).collect_view();
    view! { <table class="repairs"><tbody>{rows}</tbody></table> }
}

/// Activation Clustering's rule in words and the target class's activations, clustered.
fn ac_picture(ac: &AcReport, target: u8) -> impl IntoView + use<> {
    let reclassify = ac.params.rule == AcRule::Reclassify;
    let rule = if reclassify {
        let shares: Vec<String> = ac
            .classes
            .iter()
            .filter_map(|k| {
                k.own_label.map(|o| {
                    format!("{}: {} % / {} %{}", k.class, pct0(o[0]), pct0(o[1]), if k.flagged { " ⚑" } else { "" })
                })
            })
            .collect();
        format!(
            "Rule: exclusionary reclassification (Chen et al., 2018). Two fresh models were trained, one without the smaller cluster of every class and one without the larger; each classified the samples it left out. A class is poisoned when neither of its clusters gets its label back from a model trained without it (under {} %): poisons teach “trigger ⇒ label” and the true members “shape ⇒ label”, so neither explains the other, whatever their sizes. The flagged cluster is the one the other classes claim more confidently. Share given its label back (smaller / larger cluster) per class: {}.",
            pct0(0.5),
            shares.join("; ")
        )
    } else {
        format!(
            "Rule: the smaller cluster, flagged when under {} % of its class with a silhouette of at least {:.2}.",
            pct0(ac.params.max_share),
            ac.params.min_silhouette
        )
    };
    let scatter = ac.classes.iter().find(|k| k.class == target).map(|k| {
        let title = format!(
            "class {} activations (small share {:.0} %, silhouette {:.2})",
            k.class,
            100.0 * k.small_share,
            k.silhouette
        );
        view! { <div class="chart" role="img" aria-label=chart::scatter_text(&title, &k.poisoned, &k.in_small) inner_html=chart::scatter(&title, &k.points, &k.poisoned, &k.in_small)></div> }
    });
    view! { <p class="explain" data-testid="ac-rule">{rule}</p>{scatter} }
}

/// A model trained elsewhere, scanned here: a file picker and drop zone. The file is read in the
/// worker and never leaves the browser.
#[component]
fn ScanPanel() -> impl IntoView {
    let c = ctx();
    let busy = move || c.status.get() == Status::Running || !c.worker_ready.get() || c.blocked().is_some();
    let dragging = RwSignal::new(false);
    let take = move |files: Option<web_sys::FileList>| {
        if let Some(file) = files.and_then(|f| f.get(0)) {
            scan_model_file(c, file);
        }
    };
    let arch = move || {
        c.spec.with(|s| {
            format!(
                "Architecture: {} ({}) on {}, as chosen in the Data and Train steps; ASR uses the Poison step's trigger and target, a guess unless you know the attacker's.",
                s.model.label(),
                s.model.name(),
                s.data.dataset.label()
            )
        })
    };
    view! {
        <div class="scan" class:dragging=move || dragging.get()
            on:dragover=move |ev: leptos::ev::DragEvent| { ev.prevent_default(); dragging.set(true); }
            on:dragleave=move |_| dragging.set(false)
            on:drop=move |ev: leptos::ev::DragEvent| {
                ev.prevent_default();
                dragging.set(false);
                if !busy() { take(ev.data_transfer().and_then(|d| d.files())); }
            }>
            <h3>"Scan a model trained elsewhere"</h3>
            <p class="explain">"Have you tested a third-party model for hidden triggers before deploying it? Choose or drop its weights: a safetensors file of the lab's architecture, from this page's model download or from PyTorch's "<code>"safetensors.torch.save_file(model.state_dict(), …)"</code>". It is read in your browser, never uploaded. The chosen detectors and repairs then run on it, with the lab's clean training split as your clean data."</p>
            <label class="field file">
                <span>"model file (.safetensors)"</span>
                <input type="file" data-testid="scan-file" accept=".safetensors,.pt,.pth" disabled=busy
                    on:change=move |ev| {
                        let input: web_sys::HtmlInputElement = event_target(&ev);
                        take(input.files());
                        // Choosing the same file again scans it again.
                        input.set_value("");
                    }/>
            </label>
            <small>{arch}</small>
            <JobNote place=Place::Scan available=Signal::derive(move || c.worker_ready.get())/>
        </div>
    }
}

#[component]
pub(super) fn DetectStep() -> impl IntoView {
    let c = ctx();
    let chosen = move || c.spec.with(|s| s.detect.chosen());
    let toggle = move |name: &'static str, on: bool| {
        let mut names = chosen();
        names.retain(|n| *n != name);
        if on {
            names.push(name);
        }
        let list: Vec<&str> = DetectSpec::NAMES.iter().copied().filter(|n| names.contains(n)).collect();
        let joined = list.join(",");
        c.apply(DETECT.key, if list.is_empty() { "none" } else { &joined });
    };
    let can_detect = move || c.report.get().is_some() && c.status.get() != Status::Running && !chosen().is_empty();
    let boxes = DetectSpec::NAMES
        .iter()
        .map(|&name| {
            view! {
                <label class="field check">
                    <input type="checkbox" data-detector=name prop:checked=move || chosen().contains(&name)
                        on:change=move |ev| toggle(name, event_target_checked(&ev))/>
                    <span>{detector_title(name)}</span>
                </label>
            }
        })
        .collect_view();
    view! {
        <Step id=Place::Detect.name() n=5 title="Detect" explain="A defender who suspects a backdoor inspects the model, filters the training data or screens inputs at run time. Each verdict is scored against the samples the attack really poisoned (which the detectors never see).">
            <div class="row">{boxes}</div>
            <MethodParams registry=DetectSpec::REGISTRY chosen=Signal::derive(chosen)/>
            <div class="actions">
                <button data-testid="run-detect" disabled=move || !can_detect() || c.blocked().is_some() on:click=move |_| run_on_model(c, ToWorker::Detect { detect: c.spec.get_untracked().detect }, Stage::Detect)>"Run detectors on the trained model"</button>
                <small>"Chosen detectors also run after training when you press Run; the link keeps the choice."</small>
            </div>
            <JobNote place=Place::Detect available=Signal::derive(can_detect)/>
            <ScanPanel/>
            <div class="cards">{move || c.report.get().map(|r| detect_cards(&r))}</div>
        </Step>
    }
}
