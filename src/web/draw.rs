//! The pixel editor of the Poison step: draw the trigger on the data's own grid (MNIST 28×28 grey,
//! CIFAR-10 32×32 colour). For a drawn patch (`pattern=drawn`) the strokes are the patch's pixels and
//! the rest of the image stays the input's; for the blended attack the whole picture is the blend
//! image. Either way the drawing goes into the link when a stroke ends, through the same path as any
//! control, so it reproduces exactly and a bad one shows the link's message.

use base64::Engine;
use leptos::prelude::*;

use super::app::ctx;
use super::client::page_data;
use super::pictures::data_url;
use crate::lab::attack::{Drawing, Trigger};
use crate::lab::data::DataSource;
use crate::lab::params::{Kind, Params};

/// What the editor edits: the link key and whether strokes are a patch over the input or the whole blend image.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Patch(&'static str),
    Blend(&'static str),
}

/// The editor's working copy: the picture (channel-planar) and which pixels the patch sets.
#[derive(Clone, PartialEq, Debug, Default)]
struct Canvas {
    dims: (usize, usize, usize),
    picture: Vec<u8>,
    set: Vec<bool>,
}

fn parse_colour(hex: &str) -> [u8; 3] {
    let hex = hex.trim_start_matches('#');
    let byte = |i: usize| hex.get(i..i + 2).and_then(|s| u8::from_str_radix(s, 16).ok()).unwrap_or(255);
    [byte(0), byte(2), byte(4)]
}

#[component]
pub(super) fn TriggerEditor() -> impl IntoView {
    let c = ctx();
    // The attack's drawable parameter, found by its kind so the editor names no link key.
    let target = Memo::new(move |_| {
        c.spec.with(|s| {
            let dims = s.dims();
            let trigger = s.attack.trigger(dims, s.seed).ok()?;
            let key = |kind: Kind| s.attack.params().into_iter().find(|p| p.kind == kind).map(|p| p.key);
            match trigger {
                Trigger::Stamp { .. } => key(Kind::Drawing).map(Target::Patch),
                Trigger::Blend { .. } => key(Kind::Image).map(Target::Blend),
                _ => None,
            }
        })
    });
    // The committed drawing, as the link holds it: the editor reloads when it changes.
    let committed = Memo::new(move |_| {
        let t = target.get()?;
        c.spec.with(|s| {
            let dims = s.dims();
            let trigger = s.attack.trigger(dims, s.seed).ok()?;
            let (_, h, w) = dims;
            let set = match (&trigger, t) {
                (_, Target::Blend(_)) => vec![true; h * w],
                (Trigger::Stamp { pixels }, _) => {
                    let mut set = vec![false; h * w];
                    pixels.iter().for_each(|(at, _)| set[*at] = true);
                    set
                }
                _ => return None,
            };
            Some(Canvas { dims, picture: trigger.picture(dims), set })
        })
    });
    let canvas = RwSignal::new(Canvas::default());
    Effect::new(move |_| {
        if let Some(k) = committed.get() {
            canvas.set(k);
        }
    });
    let grey = RwSignal::new(255u8);
    let colour = RwSignal::new("#ffffff".to_string());
    let erase = RwSignal::new(false);
    let brush = RwSignal::new(1usize);
    let stroking = RwSignal::new(false);
    // An empty drawing is not applied (the link keeps the last one): said under the editor.
    let empty = RwSignal::new(false);

    let paint_at = move |ev: &web_sys::PointerEvent| {
        let Some(el) = ev.current_target().and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
        else {
            return;
        };
        let (cw, ch) = (el.client_width().max(1) as f64, el.client_height().max(1) as f64);
        let blend = matches!(target.get_untracked(), Some(Target::Blend(_)));
        canvas.update(|k| {
            let (c, h, w) = k.dims;
            if k.picture.len() != c * h * w {
                return;
            }
            let col = (f64::from(ev.offset_x()) * w as f64 / cw).floor().clamp(0.0, w as f64 - 1.0) as usize;
            let row = (f64::from(ev.offset_y()) * h as f64 / ch).floor().clamp(0.0, h as f64 - 1.0) as usize;
            let value = if c == 1 { [grey.get_untracked(); 3] } else { parse_colour(&colour.get_untracked()) };
            let b = brush.get_untracked();
            for r in row..(row + b).min(h) {
                for x in col..(col + b).min(w) {
                    let at = r * w + x;
                    if erase.get_untracked() && !blend {
                        k.set[at] = false;
                        (0..c).for_each(|ch| k.picture[ch * h * w + at] = 0);
                    } else {
                        k.set[at] = true;
                        let v = if erase.get_untracked() { [0; 3] } else { value };
                        (0..c).for_each(|ch| k.picture[ch * h * w + at] = v[ch]);
                    }
                }
            }
        });
    };
    let commit = move || {
        let Some(t) = target.get_untracked() else { return };
        let k = canvas.get_untracked();
        let (ch, h, w) = k.dims;
        match t {
            Target::Blend(key) => {
                c.apply(key, &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&k.picture));
            }
            Target::Patch(key) => {
                let pixels: Vec<(usize, usize, Vec<u8>)> = (0..h * w)
                    .filter(|&at| k.set[at])
                    .map(|at| (at / w, at % w, (0..ch).map(|p| k.picture[p * h * w + at]).collect()))
                    .collect();
                if pixels.is_empty() {
                    empty.set(true);
                    return;
                }
                empty.set(false);
                c.apply(key, &Drawing::encode(&pixels).0);
            }
        }
    };
    let end = move || {
        if stroking.get_untracked() {
            stroking.set(false);
            commit();
        }
    };
    let clear = move |_| {
        canvas.update(|k| {
            k.picture.fill(0);
            let blend = matches!(target.get_untracked(), Some(Target::Blend(_)));
            k.set.fill(blend);
        });
        if matches!(target.get_untracked(), Some(Target::Blend(_))) {
            commit();
        }
    };
    // What the editor shows: for a patch, the strokes over a dimmed training image, so the student
    // sees where the trigger sits on a real input.
    let shown = move || {
        c.data_ready.get();
        c.data_version.get();
        let k = canvas.get();
        let (ch, h, w) = k.dims;
        if k.picture.len() != ch * h * w || k.picture.is_empty() {
            return String::new();
        }
        let mut img = k.picture.clone();
        if matches!(target.get(), Some(Target::Patch(_))) {
            let background = c.spec.with_untracked(|s| page_data(s.data.dataset)).and_then(|d| {
                let pool = match &*d {
                    DataSource::Pool(pool) => pool.clone(),
                    DataSource::TrainTest { train, .. } => train.clone(),
                };
                (pool.len() > 3 && pool.image(3).len() == img.len()).then(|| pool.image(3).to_vec())
            });
            for at in 0..h * w {
                if !k.set[at] {
                    for p in 0..ch {
                        img[p * h * w + at] = background.as_ref().map_or(24, |b| 24 + b[p * h * w + at] / 3);
                    }
                }
            }
        }
        data_url(&img, k.dims)
    };
    let is_colour = move || canvas.with(|k| k.dims.0 == 3);
    let heading = move || match target.get() {
        Some(Target::Patch(_)) => {
            "Draw the patch: strokes replace those pixels of every poisoned image (dimmed: a training image under it)"
        }
        _ => "Draw the blend image: the whole picture is mixed in with strength α",
    };
    view! {
        <Show when=move || target.get().is_some()>
            <div class="editor" data-testid="trigger-editor">
                <h3>{heading}</h3>
                <div class="editor-body">
                    <img class="editor-canvas" data-testid="editor-canvas" src=shown alt="the trigger you draw" draggable="false"
                        on:pointerdown=move |ev: web_sys::PointerEvent| {
                            ev.prevent_default();
                            if let Some(el) = ev.current_target().and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok()) {
                                let _ = el.set_pointer_capture(ev.pointer_id());
                            }
                            stroking.set(true);
                            paint_at(&ev);
                        }
                        on:pointermove=move |ev: web_sys::PointerEvent| if stroking.get_untracked() { paint_at(&ev) }
                        on:pointerup=move |_| end()
                        on:pointercancel=move |_| end()/>
                    <div class="editor-tools">
                        <Show when=is_colour fallback=move || view! {
                            <label class="field"><span>"ink"</span>
                                <span class="slider">
                                    <input type="range" min="0" max="255" step="1" data-testid="editor-grey" prop:value=move || grey.get().to_string()
                                        on:input=move |ev| grey.set(event_target_value(&ev).parse().unwrap_or(255))/>
                                    <output>{move || grey.get()}</output>
                                </span>
                            </label>
                        }>
                            <label class="field"><span>"ink colour"</span>
                                <input type="color" data-testid="editor-colour" prop:value=move || colour.get() on:input=move |ev| colour.set(event_target_value(&ev))/>
                            </label>
                        </Show>
                        <label class="field"><span>"brush"</span>
                            <select data-testid="editor-brush" on:change=move |ev| brush.set(event_target_value(&ev).parse().unwrap_or(1))>
                                <option value="1" selected=true>"1 pixel"</option>
                                <option value="2">"2×2"</option>
                                <option value="3">"3×3"</option>
                            </select>
                        </label>
                        <label class="check"><input type="checkbox" data-testid="editor-erase" prop:checked=move || erase.get() on:change=move |ev| erase.set(event_target_checked(&ev))/>
                            <span>{move || if matches!(target.get(), Some(Target::Blend(_))) { "paint black" } else { "erase" }}</span>
                        </label>
                        <button type="button" data-testid="editor-clear" on:click=clear>"clear"</button>
                        <small>{move || canvas.with(|k| {
                            let n = k.set.iter().filter(|s| **s).count();
                            let (ch, h, w) = k.dims;
                            if matches!(target.get(), Some(Target::Patch(_))) {
                                format!("{n} pixels drawn on the {w}×{h} grid; the link holds only those")
                            } else {
                                format!("{w}×{h}, {} channel{}; the link holds every pixel", ch, if ch == 1 { "" } else { "s" })
                            }
                        })}</small>
                    </div>
                </div>
                <Show when=move || empty.get()>
                    <p class="job-error" role="alert" data-testid="editor-empty">"The drawn trigger is empty, so the last one is kept: draw at least one pixel."</p>
                </Show>
            </div>
        </Show>
    }
}
