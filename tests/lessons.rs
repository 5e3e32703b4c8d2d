//! The lessons: every lesson's experiments run here as their links say, and every claim the lesson's
//! paragraph makes holds on the report (in the extended suite: about 3.5 minutes); the links are canonical (the page recognises a lesson by its
//! link); LESSONS.md is exactly what `backdoor-lab lessons --markdown` prints.

use crate::common;

use std::collections::BTreeSet;

use backdoor_lab::lab::ExperimentSpec;
use backdoor_lab::lab::device::DeviceKind;
use backdoor_lab::lab::grid::training_key;
use backdoor_lab::lab::run::{finish, train_model};
use backdoor_lab::lessons::{Bound, Claim, LESSONS, LessonRun, markdown};
use burn::tensor::Device;
use common::{Quiet, mnist};
use serde_json::json;

/// Runs every experiment of the named lessons and checks every claim, reporting all that fail at once.
/// Experiments that differ only after training (detectors, repairs) share one trained model, as a
/// grid's runs do.
fn lessons(ids: &[&str]) {
    let runs: Vec<(&str, &LessonRun)> = ids
        .iter()
        .flat_map(|id| {
            let lesson = LESSONS.iter().find(|l| l.id == *id).expect("a lesson of that name");
            lesson.runs.iter().map(move |r| (*id, r))
        })
        .collect();
    let specs: Vec<ExperimentSpec> =
        runs.iter().map(|(_, r)| ExperimentSpec::from_link(r.link).expect("lesson links are valid")).collect();
    let keys: BTreeSet<String> = specs.iter().map(training_key).collect();
    let device = Device::flex();
    let mut failed = Vec::new();
    for key in &keys {
        let group: Vec<usize> = (0..runs.len()).filter(|&i| training_key(&specs[i]) == *key).collect();
        let trained =
            pollster::block_on(train_model(&specs[group[0]], mnist(), &device, &mut Quiet)).expect("training succeeds");
        for i in group {
            let (id, r) = runs[i];
            let report = pollster::block_on(finish(&specs[i], &trained, mnist(), &device, DeviceKind::Cpu, &mut Quiet))
                .expect("the run succeeds");
            let report = serde_json::to_value(&report).unwrap();
            for c in r.claims {
                let got = c.check(&report);
                eprintln!(
                    "{id} #{}: {} ({}): {:?} → {}",
                    r.link,
                    c.says,
                    c.pointer,
                    got.value,
                    if got.holds { "holds" } else { "FAILS" }
                );
                if !got.holds {
                    failed.push(format!("{id}: {} on #{}: {} is {:?}", c.says, r.link, c.pointer, got.value));
                }
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("; "));
}

macro_rules! lesson_tests {
    ($($name:ident => [$($id:literal),+]),+ $(,)?) => {
        // Minutes of training: the extended suite runs them (scripts/test-extended.sh, `--include-ignored`).
        $(#[test] #[ignore = "extended suite"] fn $name() { lessons(&[$($id),+]); })+
        /// Every lesson has its test above.
        const TESTED: &[&str] = &[$($($id),+),+];
    };
}

lesson_tests! {
    // The first three share the default experiment's trained model.
    lessons_on_the_default_model => ["badnets", "ac-majority", "fine-pruning"],
    lesson_few_poisons => ["few-poisons"],
    lesson_outsourced_training => ["outsourced-training"],
    lesson_architecture => ["architecture"],
    lesson_semantic => ["semantic"],
}

#[test]
fn every_lesson_is_tested_and_links_are_canonical() {
    let mut ids: Vec<&str> = LESSONS.iter().map(|l| l.id).collect();
    let mut tested = TESTED.to_vec();
    ids.sort_unstable();
    tested.sort_unstable();
    assert_eq!(ids, tested, "a lesson without its test (or a test of no lesson)");
    for l in LESSONS {
        assert!(!l.runs.is_empty() && l.runs.iter().all(|r| !r.claims.is_empty()), "{}: a run without claims", l.id);
        for r in l.runs {
            let spec = ExperimentSpec::from_link(r.link).unwrap_or_else(|e| panic!("{}: {e}", l.id));
            assert_eq!(spec.to_link(), r.link, "{}: the page recognises a lesson by its canonical link", l.id);
        }
    }
}

#[test]
fn claims_fail_when_the_report_disagrees() {
    let report = json!({ "final": { "asr": 0.42 }, "detect": { "nc": { "flagged_classes": [] } } });
    let at_least = Claim { says: "", pointer: "/final/asr", bound: Bound::AtLeast(0.5) };
    let at_most = Claim { says: "", pointer: "/final/asr", bound: Bound::AtMost(0.5) };
    assert!(!at_least.check(&report).holds);
    assert!(at_most.check(&report).holds);
    assert_eq!(at_most.check(&report).value, Some(0.42));
    // A number that is not in the report never satisfies a bound.
    let missing = Claim { says: "", pointer: "/repair/fp/asr", bound: Bound::AtMost(1.0) };
    assert!(!missing.check(&report).holds);
    let none_flagged = Claim { says: "", pointer: "/detect/nc/flagged_classes/0", bound: Bound::Absent };
    assert!(none_flagged.check(&report).holds);
    assert!(!none_flagged.check(&json!({ "detect": { "nc": { "flagged_classes": [3] } } })).holds);
}

#[test]
fn lessons_md_is_the_cli_output() {
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/LESSONS.md")).unwrap();
    assert!(
        file == markdown("http://127.0.0.1:8080/"),
        "LESSONS.md differs: run `cargo run --release -- lessons --markdown > LESSONS.md`"
    );
}
