//! The parameter tables and the method registries: every method builds with its defaults and round
//! trips through a link; every parameter's range refuses a value just outside it, naming the key; the
//! docs/links.md's key table is the one the tables generate; each link key is spelled once in src/.

use backdoor_lab::lab::ExperimentSpec;
use backdoor_lab::lab::attack::AttackMethod;
use backdoor_lab::lab::detect::DetectSpec;
use backdoor_lab::lab::params::{self, Kind, ParamInfo, Params};
use backdoor_lab::lab::repair::RepairSpec;

/// A spec in which `key` applies: every detector and repair chosen, and the first attack (and
/// trigger family) that has the key.
fn spec_with(key: &str) -> ExperimentSpec {
    let mut spec = ExperimentSpec { detect: DetectSpec::all(), repair: RepairSpec::all(), ..ExperimentSpec::default() };
    // A sanitizer chosen, so its strength applies.
    spec.sanitize.method = backdoor_lab::lab::defense::SanitizerKind::Median;
    // Every augmentation on, so their strengths apply.
    spec.train.aug = backdoor_lab::lab::augment::Augmentations(vec![
        backdoor_lab::lab::augment::Augmentation::Erase,
        backdoor_lab::lab::augment::Augmentation::Cutmix,
        backdoor_lab::lab::augment::Augmentation::Shift,
    ]);
    // DP-SGD on, so its clipping norm applies (without CutMix, which it refuses).
    if key == "dp_clip" {
        spec.train.dp_sigma = 1.0;
        spec.train.aug.0.retain(|a| *a != backdoor_lab::lab::augment::Augmentation::Cutmix);
    }
    for name in AttackMethod::NAMES {
        for extra in [None, Some(("trigger", "blend")), Some(("pattern", "drawn")), Some(("style", "hue"))] {
            let mut pairs = vec![("attack", *name)];
            pairs.extend(extra);
            if let Ok(s) = spec.clone().with_overrides(&pairs) {
                if s.get(key).is_some() {
                    return s;
                }
            }
        }
    }
    spec.attack.method = AttackMethod::default();
    spec
}

#[test]
fn every_registered_method_builds_and_round_trips() {
    let mut links = Vec::new();
    for name in AttackMethod::NAMES {
        links.push(format!("v=1&attack={name}"));
    }
    for name in DetectSpec::NAMES {
        links.push(format!("v=1&detect={name}"));
    }
    for name in RepairSpec::NAMES {
        links.push(format!("v=1&repair={name}"));
    }
    for link in links {
        let spec = ExperimentSpec::from_link(&link).unwrap_or_else(|e| panic!("{link}: {e}"));
        assert!(spec.to_link().len() <= link.len(), "{link}: defaults are left out");
        assert_eq!(ExperimentSpec::from_link(&spec.to_link()).unwrap(), spec);
        assert_eq!(ExperimentSpec::from_json(&spec.to_json()).unwrap(), spec);
    }
    for registry in [AttackMethod::REGISTRY, DetectSpec::REGISTRY, RepairSpec::REGISTRY] {
        for m in registry {
            assert!(!m.title.is_empty() && m.explain.len() > 40, "{} explains itself", m.name);
            for p in (m.params)() {
                assert!(!p.doc_line().is_empty(), "{}: {} has a doc line", m.name, p.key);
            }
        }
    }
}

/// A value just outside the range, in link form (or an unknown name for choices).
fn outside(p: &ParamInfo) -> Vec<String> {
    match p.kind {
        Kind::Int { min, max } => vec![(min - 1).to_string(), (max + 1).to_string()],
        Kind::Size { min, max } => vec![(min - 1).to_string(), (max + 1).to_string(), "al".into()],
        Kind::Float { min, max, min_open, max_open } => {
            let step = |x: f64| 1e-6 * x.abs().max(1.0);
            vec![
                if min_open { min.to_string() } else { (min - step(min)).to_string() },
                if max_open { max.to_string() } else { (max + step(max)).to_string() },
                "NaN".into(),
            ]
        }
        Kind::Choice(_) | Kind::Method(_) => vec!["no_such_name".into()],
        Kind::Methods(_) => vec!["nc,no_such_name".into()],
        // An unknown name, and a known one listed twice.
        Kind::Choices(names) => vec![format!("{},no_such_name", names[0].value), format!("{0},{0}", names[0].value)],
        Kind::Position => vec!["up".into()],
        Kind::Image => vec!["!!".into()],
        // Not base64url; a header that says 2 values per pixel.
        Kind::Drawing => vec!["!!".into(), "Ag".into()],
    }
}

#[test]
fn every_parameter_refuses_a_value_just_outside_its_range() {
    let every = ExperimentSpec::every_param();
    assert!(every.len() >= 50, "{} parameters", every.len());
    for p in &every {
        let spec = spec_with(p.key);
        let value = spec.get(p.key).unwrap_or_else(|| panic!("{} applies somewhere", p.key));
        // The default itself is in range, and survives a round trip.
        let same = spec.clone().with_overrides(&[(p.key, &value)]).unwrap_or_else(|e| panic!("{}: {e}", p.key));
        assert_eq!(same, spec, "{} = {value}", p.key);
        for bad in outside(p) {
            let err = spec.clone().with_overrides(&[(p.key, &bad)]).expect_err(&format!("{}={bad}", p.key));
            let text = err.to_string();
            let names = text.contains(p.key) || (p.kind == Kind::Image && text.contains("blend image"));
            assert!(names, "{}={bad}: '{text}' names the key", p.key);
            if matches!(p.kind, Kind::Int { .. } | Kind::Float { .. }) && text.contains("must be") {
                assert!(
                    text.contains(&p.range_text().replace(" to ", " and ")),
                    "{}={bad}: '{text}' says the range",
                    p.key
                );
            }
        }
    }
}

#[test]
fn keys_are_unique_and_flags_too() {
    let every = ExperimentSpec::every_param();
    for (i, p) in every.iter().enumerate() {
        for q in &every[i + 1..] {
            assert_ne!(p.key, q.key);
            assert_ne!(p.cli_flag(), q.cli_flag());
        }
    }
}

#[test]
fn readme_key_table_is_the_generated_one() {
    let table = params::markdown_table(&ExperimentSpec::every_param(), |p| ExperimentSpec::default_text(p.key));
    let readme = include_str!("../docs/links.md");
    let start = readme.find("<!-- keys -->\n").expect("docs/links.md marks its key table") + "<!-- keys -->\n".len();
    let end = readme.find("<!-- /keys -->").expect("docs/links.md closes its key table");
    assert_eq!(
        &readme[start..end],
        table,
        "docs/links.md's key table differs: paste `cargo run --release -- keys --markdown` between the markers"
    );
}

/// The acceptance check of "declare once": each link key's string literal appears once in src/ (the
/// dataset readers aside, where "train" and "test" name CIFAR-10's splits). A few literals are also
/// other things' names (the page's steps, the trigger families), listed here.
#[test]
fn each_link_key_is_spelled_once_in_src() {
    let also = [
        ("data", "the page's Data step (hide=data)"),
        ("train", "the page's Train step"),
        ("detect", "the page's Detect step"),
        ("repair", "the page's Repair step"),
        ("patch", "the trigger family of the attacks that choose one"),
        ("blend", "the trigger family of the attacks that choose one"),
        ("trigger", "the caption of the trigger's picture"),
        ("model", "the scan command's --model FILE flag, as the issue names it"),
    ];
    let mut sources = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("lab/data") {
                    dirs.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("src/lab/mod.rs") {
                // (src/lab/mod.rs spells module names in `LAYERS`, some of which are also keys: `data`.)
                let text = std::fs::read_to_string(&path).unwrap();
                // Unit tests inside a file may spell keys freely, and comments quote other formats.
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                let code: String = code
                    .lines()
                    .map(|l| if l.trim_start().starts_with("//") { "" } else { l })
                    .collect::<Vec<_>>()
                    .join("\n");
                sources.push((path, code));
            }
        }
    }
    for p in ExperimentSpec::every_param() {
        let literal = format!("\"{}\"", p.key);
        let places: Vec<String> = sources
            .iter()
            .flat_map(|(path, code)| {
                code.match_indices(&literal)
                    .map(move |(i, _)| format!("{}:{}", path.display(), code[..i].lines().count()))
            })
            .collect();
        let allowed = 1 + usize::from(also.iter().any(|(k, _)| *k == p.key));
        assert!(
            !places.is_empty() && places.len() <= allowed,
            "link key {literal} is spelled {} times: {places:?}",
            places.len()
        );
    }
}
