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
use crate::lab::detect::{DETECT, DetectSpec, NcReport};
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

/// The poison's share of the target class from which the Activation Clustering and Spectral Signatures
/// cards add why their rule fails: the poison is then about as large as the class's clean part, or larger.
/// 0.45 lies between the two MNIST dirty-label rates docs/measured.md gives: ρ = 5 % gives a share near 0.35
/// (AC finds the poison, SS ranks it above chance), ρ = 10 % near 0.53 (both at or below chance); the
/// margin under a half keeps small splits, whose share scatters, on the failing side.
const POISON_MAJORITY: f64 = 0.45;

fn pct0(x: f64) -> String {
    format!("{:.0}", 100.0 * x)
}

/// Why a data-level detector has no poisoned sample to find in `r`'s training set, if it has none.
fn clean_data(r: &Report) -> Option<String> {
    if r.poison.count > 0 {
        return None;
    }
    let why = if r.scanned.is_some() {
        "the model was scanned from a file, so the lab's clean split stands in for the data it was trained on"
    } else if r.spec.attack.method.loss_weight().is_some() {
        "the attacker changed the training loss, not the data, so no data audit can find this backdoor; only the model can give it away"
    } else if r.spec.attack.method.branch().is_some() {
        "the backdoor is a branch of the architecture, not in the data or the weights; only inspecting the model's graph finds it"
    } else {
        "no attack poisoned it"
    };
    Some(format!("Nothing to find: the training set holds no poisoned sample ({why})."))
}

/// The verdict of a data-level detector that flagged `flagged` samples of a clean training set.
fn clean_verdict(why: &str, flagged: usize) -> String {
    format!("{why} The {flagged} samples it flags are all clean.")
}

/// Neural Cleanse's verdict and picture: the anomaly index of every class's mask and every reversed
/// trigger (with its mask's centre in the text alternative), beside `truth` (the attacker's trigger) when
/// the page may show it. The challenge step shows it without.
pub(super) fn nc_view<T: IntoView + 'static>(nc: &NcReport, truth: Option<T>) -> (String, impl IntoView + use<T>) {
    let (top, top_k) = nc
        .anomaly_index
        .iter()
        .copied()
        .enumerate()
        .fold((f64::MIN, 0), |(m, k), (i, v)| if v > m { (v, i) } else { (m, k) });
    let verdict = if nc.flagged_classes.is_empty() {
        format!(
            "No class flagged: the largest anomaly index is {top:.1} (class {top_k}); above 2 on the small side would flag."
        )
    } else {
        let list: Vec<String> =
            nc.flagged_classes.iter().map(|k| format!("{k} (index {:.1})", nc.anomaly_index[*k as usize])).collect();
        format!("Flags class {}: a trigger this small is a backdoor.", list.join(", "))
    };
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
    let clean = clean_data(r);
    let d = r.detect.clone();
    let spec = r.spec.clone();
    let dims = spec.dims();
    let target = spec.attack.target_label;
    let share = r.poison.target_class_share;
    let poison_majority = share >= POISON_MAJORITY;
    let trigger = spec.attack.trigger(dims, spec.seed).ok().map(|t| t.picture(dims));
    // A model trained here has a true trigger; a scanned one only the user's guess (the Poison step's).
    let scanned = r.scanned.is_some();
    let (truth_alt, truth_caption) = if scanned {
        ("your guess of the trigger: the Poison step's", "your guess (Poison step)")
    } else {
        ("the attacker's trigger", "true trigger")
    };
    let mut cards = Vec::new();
    if let Some(nc) = d.nc {
        let truth = trigger.clone().map(|t| view! { <figure class="sample trigger"><img src=data_url(&t, dims) alt=truth_alt/><figcaption>{truth_caption}</figcaption></figure> });
        let guesses = scanned.then(|| guess_buttons(&nc));
        let (verdict, body) = nc_view(&nc, truth);
        cards.push(
            view! {
                <DetectCard name="nc" verdict=verdict seconds=nc.seconds>{body}{guesses}</DetectCard>
            }
            .into_any(),
        );
    }
    if let Some(ac) = d.ac {
        let s = &ac.score;
        let mut verdict = format!(
            "Flagged {} training samples: precision {} %, recall {} %, F1 {:.2} against the true poison.",
            s.flagged,
            pct0(s.precision),
            pct0(s.tpr),
            s.f1
        );
        let reclassify = ac.params.rule == crate::lab::detect::activation_clustering::AcRule::Reclassify;
        if let Some(why) = &clean {
            verdict = clean_verdict(why, s.flagged);
        } else if poison_majority && !reclassify {
            verdict.push_str(&format!(
                " Here the poison is {} % of class {target}, so the “smaller cluster” is the clean images: the textbook rule cannot work at this poisoning rate (try the rule “exclusionary reclassification”).",
                pct0(share)
            ));
        }
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
        let view_class = ac.classes.iter().find(|k| k.class == target).cloned();
        let scatter = view_class.map(|k| {
            let title = format!(
                "class {} activations (small share {:.0} %, silhouette {:.2})",
                k.class,
                100.0 * k.small_share,
                k.silhouette
            );
            view! { <div class="chart" role="img" aria-label=chart::scatter_text(&title, &k.poisoned, &k.in_small) inner_html=chart::scatter(&title, &k.points, &k.poisoned, &k.in_small)></div> }
        });
        cards
            .push(view! { <DetectCard name="ac" verdict=verdict seconds=ac.seconds><p class="explain" data-testid="ac-rule">{rule}</p>{scatter}</DetectCard> }.into_any());
    }
    if let Some(ss) = d.ss {
        let s = &ss.score;
        let mut verdict = format!(
            "Removed {} samples (top 1.5·ε = {:.0} % of each class): precision {} %, recall {} %, F1 {:.2}; in-class AUROC {}.",
            s.flagged,
            150.0 * ss.params.eps,
            pct0(s.precision),
            pct0(s.tpr),
            s.f1,
            ss.in_class_auroc.map(|a| format!("{a:.2}")).unwrap_or_else(|| "—".into())
        );
        if let Some(why) = &clean {
            verdict = clean_verdict(why, s.flagged);
        } else if poison_majority {
            // The same reason Activation Clustering fails here, seen from the score's side.
            verdict.push_str(&format!(
                " Here the poison is {} % of class {target}: the class mean lies about halfway between the poisoned and the clean images, a little nearer the poisoned majority, so the score (squared distance from the mean along the top direction) ranks the clean images as far out as the poisoned ones or further: an in-class AUROC near or below 0.5 is what this rule gives at this poisoning rate.",
                pct0(share)
            ));
        }
        cards.push(view! {
            <DetectCard name="ss" verdict=verdict seconds=ss.seconds>
                <div class="chart" role="img" aria-label=chart::histogram_text(&format!("class {target}: outlier score"), "score", &ss.target_histogram, "poisoned") inner_html=chart::histogram(&format!("class {target}: outlier score"), "score", &ss.target_histogram, "poisoned")></div>
            </DetectCard>
        }.into_any());
    }
    if let Some(st) = d.strip {
        let verdict = format!(
            "At a false-rejection rate of {:.1} % on clean inputs, {:.1} % of triggered inputs get through (FAR); AUROC {}.",
            100.0 * st.frr,
            100.0 * st.far_at_frr_1pct,
            st.auroc.map(|a| format!("{a:.3}")).unwrap_or_else(|| "—".into())
        );
        cards.push(view! {
            <DetectCard name="strip" verdict=verdict seconds=st.seconds>
                <div class="chart" role="img" aria-label=chart::histogram_text("prediction entropy under blending", "entropy", &st.histogram, "triggered") inner_html=chart::histogram("prediction entropy under blending", "entropy", &st.histogram, "triggered")></div>
            </DetectCard>
        }.into_any());
    }
    if let Some(l) = d.loss {
        let s = &l.score;
        let verdict = match &clean {
            Some(why) => clean_verdict(why, s.flagged),
            None => format!(
                "Isolated the {} lowest-loss samples ({} %): {} % of them are poisoned (recall {} %).",
                s.flagged,
                100.0 * l.params.frac,
                pct0(s.precision),
                pct0(s.tpr)
            ),
        };
        cards.push(view! {
            <DetectCard name="loss" verdict=verdict seconds=l.seconds>
                <div class="chart" role="img" aria-label=chart::histogram_text(&format!("training loss after {} epochs", l.params.epochs), "log10 loss", &l.histogram, "poisoned") inner_html=chart::histogram(&format!("training loss after {} epochs", l.params.epochs), "log10 loss", &l.histogram, "poisoned")></div>
            </DetectCard>
        }.into_any());
    }
    if let Some(o) = d.occlusion {
        let verdict = format!(
            "Hiding the region at row {}, column {} breaks the target prediction most: {} the trigger.",
            o.max_row,
            o.max_col,
            if o.hottest_on_trigger { "on" } else { "not on" }
        );
        let top = o.heat.iter().copied().fold(1e-9f32, f32::max);
        let plane = o.height * o.width;
        let heat: Vec<u8> = (0..3 * plane)
            .map(|i| if i < plane { 255 } else { (255.0 * (1.0 - (o.heat[i % plane] / top).clamp(0.0, 1.0))) as u8 })
            .collect();
        let truth = trigger.map(|t| view! { <figure class="sample trigger"><img src=data_url(&t, dims) alt=truth_alt/><figcaption>{truth_caption}</figcaption></figure> });
        cards.push(view! {
            <DetectCard name="occlusion" verdict=verdict seconds=o.seconds>
                <div class="grid">
                    <figure class="sample big"><img src=data_url(&heat, (3, o.height, o.width)) alt="occlusion heat map"/><figcaption>"sensitivity (red = hot)"</figcaption></figure>
                    {truth}
                </div>
            </DetectCard>
        }.into_any());
    }
    cards
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
