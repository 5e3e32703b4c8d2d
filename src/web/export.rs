//! Files the page hands to the browser to save: the JSON report and PNGs of the SVG charts.
//! Failures land in the page's error line, never in a panic.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};

use super::app::Ctx;

fn document() -> Result<web_sys::Document, JsValue> {
    web_sys::window().and_then(|w| w.document()).ok_or_else(|| JsValue::from_str("no document"))
}

/// A `blob:` URL of `text` with MIME type `mime` (revoke it when done).
fn blob_url(text: &str, mime: &str) -> Result<String, JsValue> {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let bag = web_sys::BlobPropertyBag::new();
    bag.set_type(mime);
    web_sys::Url::create_object_url_with_blob(&web_sys::Blob::new_with_str_sequence_and_options(&parts, &bag)?)
}

/// Lets the browser save `href` as `file`.
fn download(href: &str, file: &str) -> Result<(), JsValue> {
    let a: web_sys::HtmlAnchorElement = document()?.create_element("a")?.unchecked_into();
    a.set_href(href);
    a.set_download(file);
    a.click();
    Ok(())
}

/// Lets the browser save `bytes` as `file`; a failure lands in the page's error line.
pub(super) fn save_bytes(c: Ctx, bytes: &js_sys::Uint8Array, mime: &str, file: &str) {
    let result = (|| {
        let bag = web_sys::BlobPropertyBag::new();
        bag.set_type(mime);
        let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&js_sys::Array::of1(bytes), &bag)?;
        let url = web_sys::Url::create_object_url_with_blob(&blob)?;
        download(&url, file)?;
        web_sys::Url::revoke_object_url(&url)
    })();
    if let Err(e) = result {
        c.error.set(Some(format!("{file} could not be saved: {e:?}")));
    }
}

pub(super) fn export_report(c: Ctx) {
    let Some(r) = c.report.get_untracked() else { return };
    save_text(
        c,
        serde_json::to_string_pretty(&r).expect("a report always serialises"),
        "application/json",
        "backdoor-lab-report.json",
    );
}

/// Lets the browser save `text` as `file`; a failure lands in the page's error line.
pub(super) fn save_text(c: Ctx, text: String, mime: &str, file: &str) {
    let result =
        blob_url(&text, mime).and_then(|url| download(&url, file).and_then(|_| web_sys::Url::revoke_object_url(&url)));
    if let Err(e) = result {
        c.error.set(Some(format!("{file} could not be saved: {e:?}")));
    }
}

/// Saves an SVG chart as a PNG at twice its size: the browser rasterises it through an image and a canvas.
pub(super) fn export_png(c: Ctx, svg: String, file: &'static str) {
    spawn_local(async move {
        let result: Result<(), JsValue> = async {
            let url = blob_url(&svg, "image/svg+xml")?;
            let img: web_sys::HtmlImageElement = document()?.create_element("img")?.unchecked_into();
            img.set_src(&url);
            let decoded = JsFuture::from(img.decode()).await;
            web_sys::Url::revoke_object_url(&url)?;
            decoded?;
            let (w, h) = (img.natural_width(), img.natural_height());
            let canvas: web_sys::HtmlCanvasElement = document()?.create_element("canvas")?.unchecked_into();
            canvas.set_width(2 * w);
            canvas.set_height(2 * h);
            let g: web_sys::CanvasRenderingContext2d =
                canvas.get_context("2d")?.ok_or_else(|| JsValue::from_str("no 2D canvas"))?.unchecked_into();
            g.set_fill_style_str("white");
            g.fill_rect(0.0, 0.0, 2.0 * w as f64, 2.0 * h as f64);
            g.scale(2.0, 2.0)?;
            g.draw_image_with_html_image_element(&img, 0.0, 0.0)?;
            download(&canvas.to_data_url_with_type("image/png")?, file)
        }
        .await;
        if let Err(e) = result {
            c.error.set(Some(format!("The chart could not be saved: {e:?}")));
        }
    });
}
