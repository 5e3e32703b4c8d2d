//! Old links keep working: a corpus of links and JSON specs written by the build before parameters
//! moved into tables (tests/corpus/links.json, from `freeze_link_corpus` in spec_link.rs) must decode
//! to the same JSON and encode to the same links with every later build.

use backdoor_lab::lab::ExperimentSpec;

#[test]
fn frozen_links_decode_and_encode_unchanged() {
    let text = include_str!("corpus/links.json");
    let corpus: Vec<serde_json::Value> = serde_json::from_str(text).expect("the corpus is JSON");
    assert!(corpus.len() >= 300, "the corpus holds {} entries", corpus.len());
    for entry in &corpus {
        let link = entry["link"].as_str().expect("link");
        let json = entry["json"].as_str().expect("json");
        let decoded = ExperimentSpec::from_link(link).unwrap_or_else(|e| panic!("{link}: {e}"));
        assert_eq!(decoded.to_json(), json, "decoding {link}");
        let parsed = ExperimentSpec::from_json(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(parsed.to_link(), link, "encoding {json}");
        assert_eq!(ExperimentSpec::from_link(&parsed.to_json_link()).unwrap(), parsed);
    }
}
