//! Browser tests (wasm-bindgen-test in headless Chromium): the page↔worker protocol, pictures and
//! charts as the browser decodes them, and the app mounted from a link.
//! Run: `CHROMEDRIVER=/usr/bin/chromedriver cargo test --release --target wasm32-unknown-unknown --test web`.
#![cfg(target_arch = "wasm32")]

use backdoor_lab::lab::ExperimentSpec;
use backdoor_lab::lab::event::{EpochRecord, Event, Stage};
use backdoor_lab::web::protocol::{DevicePreference, FromWorker, ToWorker};
use backdoor_lab::web::{app, chart, pictures};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn document() -> web_sys::Document {
    web_sys::window().and_then(|w| w.document()).expect("a browser document")
}

async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .expect("window")
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms)
            .expect("setTimeout");
    });
    JsFuture::from(promise).await.expect("timer");
}

#[wasm_bindgen_test]
fn every_message_survives_the_json_trip() {
    let spec = ExperimentSpec::from_link("v=1&epochs=2&rate=0.05").expect("valid link");
    for msg in [ToWorker::Run { spec: spec.clone(), device: DevicePreference::Cpu }, ToWorker::Cancel] {
        let back: ToWorker = serde_json::from_str(&msg.to_json()).expect("decodes");
        assert_eq!(back.to_json(), msg.to_json());
    }
    // A page from before device preferences existed still gets a run (on the default device).
    let old = format!(r#"{{"type":"run","spec":{}}}"#, spec.to_json());
    match serde_json::from_str::<ToWorker>(&old).expect("decodes") {
        ToWorker::Run { device, spec: s } => assert!(device == DevicePreference::Auto && s == spec),
        other => panic!("unexpected {other:?}"),
    }
    let record = EpochRecord { epoch: 1, loss: 0.5, clean_acc: 0.9, asr: 0.8, seconds: 2.0 };
    for msg in [
        FromWorker::Ready { device: "webgpu".into(), note: "n".into() },
        FromWorker::Device { device: "cpu".into(), note: "fallback".into() },
        FromWorker::Event { event: Event::Stage { stage: Stage::Warmup } },
        FromWorker::Event { event: Event::Batch { epoch: 1, batch: 2, batches: 3, loss: 0.1 } },
        FromWorker::Event { event: Event::Epoch(record) },
        FromWorker::Cancelled,
        FromWorker::Failed { message: "boom".into() },
    ] {
        let back: FromWorker = serde_json::from_str(&msg.to_json()).expect("decodes");
        assert_eq!(back.to_json(), msg.to_json());
    }
    assert!(serde_json::from_str::<ToWorker>(r#"{"type":"explode"}"#).is_err());
}

#[wasm_bindgen_test]
async fn the_browser_decodes_our_pictures_at_their_size() {
    let image: Vec<u8> = (0..3 * 32 * 30).map(|i| (i % 251) as u8).collect();
    let img: web_sys::HtmlImageElement = document().create_element("img").expect("img").unchecked_into();
    img.set_src(&pictures::data_url(&image, (3, 32, 30)));
    JsFuture::from(img.decode()).await.expect("the BMP decodes");
    assert_eq!((img.natural_width(), img.natural_height()), (30, 32));
}

#[wasm_bindgen_test]
fn charts_are_well_formed_svg() {
    let records: Vec<EpochRecord> = (1..=3)
        .map(|e| EpochRecord { epoch: e, loss: 1.0 / e as f64, clean_acc: 0.9, asr: 0.5, seconds: 1.0 })
        .collect();
    for svg in [chart::loss_chart(&records, 5), chart::accuracy_chart(&records, 5), chart::loss_chart(&[], 5)] {
        let parser = web_sys::DomParser::new().expect("DOMParser");
        let doc = parser.parse_from_string(&svg, web_sys::SupportedType::ImageSvgXml).expect("parses");
        assert!(doc.query_selector("parsererror").expect("query").is_none(), "malformed SVG: {svg}");
        assert_eq!(doc.document_element().expect("root").tag_name(), "svg");
    }
}

#[wasm_bindgen_test]
async fn a_link_restores_the_controls_and_a_bad_link_says_why() {
    let window = web_sys::window().expect("window");
    window.location().set_hash("v=1&epochs=2&rate=0.05&attack=blended&embed=1").expect("hash");
    app::start();
    sleep(200).await;
    let doc = document();
    let text = |sel: &str| doc.query_selector(sel).ok().flatten().and_then(|e| e.text_content()).unwrap_or_default();
    let value = |key: &str| {
        doc.query_selector(&format!("[data-key={key}]"))
            .ok()
            .flatten()
            .map(|e| js_sys::Reflect::get(&e, &"value".into()).ok().and_then(|v| v.as_string()).unwrap_or_default())
            .unwrap_or_default()
    };
    assert_eq!(value("epochs"), "2");
    assert_eq!(value("attack"), "blended");
    // The test server has no worker files: the page says the engine is missing instead of looping.
    assert!(["idle", "failed"].contains(&text("[data-testid=status]").as_str()));
    // Embed mode hides the page chrome.
    assert!(doc.query_selector("header.top").expect("query").is_none());
    // The fragment keeps the spec (the page rewrites it in the codec's canonical form).
    let hash = window.location().hash().expect("hash");
    assert!(hash.contains("epochs=2") && hash.contains("embed=1"), "{hash}");

    // Editing a control rewrites the link.
    let epochs: web_sys::HtmlInputElement =
        doc.query_selector("[data-key=epochs]").expect("query").expect("epochs field").unchecked_into();
    epochs.set_value("4");
    epochs.dispatch_event(&web_sys::Event::new("change").expect("event")).expect("dispatch");
    sleep(50).await;
    assert!(window.location().hash().expect("hash").contains("epochs=4"));

    // An out-of-range value stays in its field, marked, with the range under it; the spec keeps its
    // last good value (tests/e2e/page.test.mjs checks that Run waits, with a worker that runs).
    epochs.set_value("0");
    epochs.dispatch_event(&web_sys::Event::new("input").expect("event")).expect("dispatch");
    sleep(50).await;
    let refused = text("[data-testid=field-error-epochs]");
    assert!(refused.contains("0 is out of range: enter 1 to 500"), "{refused}");
    assert_eq!(value("epochs"), "0");
    assert!(window.location().hash().expect("hash").contains("epochs=4"));
    assert_eq!(epochs.get_attribute("aria-invalid").as_deref(), Some("true"));

    // A malformed link keeps what it can and says what it left out.
    window.location().set_hash("v=1&attack=trojan&epochs=3").expect("hash");
    sleep(100).await;
    assert!(text("[data-testid=error]").contains("unknown attack"), "{}", text("[data-testid=error]"));
    assert_eq!(value("attack"), "badnets");
    assert_eq!(value("epochs"), "3");
}
