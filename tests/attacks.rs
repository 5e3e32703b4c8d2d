//! Attacks: exact trigger pixels, exact poisoning rate and indices, label policies, and a registry
//! test over every attack variant.

use backdoor_lab::lab::ExperimentSpec;
use backdoor_lab::lab::attack::{
    AttackMethod, AttackSpec, BlendPattern, BlendTrigger, CleanLabel, LabelPolicy, PatchPattern, PatchPosition,
    PatchTrigger, Selection, Trigger, TriggerSpec,
};
use backdoor_lab::lab::data::ImageSet;
use backdoor_lab::lab::params::Params;
use base64::Engine;

/// A synthetic set: `n` images of `dims`, pixel values and labels from a simple formula.
fn synthetic(n: usize, dims: (usize, usize, usize)) -> ImageSet {
    let (c, h, w) = dims;
    let mut set = ImageSet::empty(c, h, w);
    for i in 0..n {
        set.labels.push((i % 10) as u8);
        set.pixels.extend((0..c * h * w).map(|p| ((i * 31 + p * 7) % 200) as u8));
    }
    set
}

fn badnets(rate: f64, target: u8) -> AttackSpec {
    AttackSpec { poison_rate: rate, target_label: target, ..AttackSpec::default() }
}

#[test]
fn badnets_default_patch_is_3x3_white_at_rows_and_cols_24_to_26() {
    let dims = (1, 28, 28);
    let trigger = Trigger::build(&TriggerSpec::Patch(PatchTrigger::default()), dims, 0).unwrap();
    let mut img = vec![7u8; 784];
    trigger.apply(&mut img, dims);
    for r in 0..28 {
        for c in 0..28 {
            let inside = (24..=26).contains(&r) && (24..=26).contains(&c);
            assert_eq!(img[r * 28 + c], if inside { 255 } else { 7 }, "pixel ({r}, {c})");
        }
    }
}

#[test]
fn patch_positions_patterns_and_colour_channels() {
    let dims = (3, 32, 32);
    let at = |position, pattern| {
        let p = PatchTrigger { size: 2, position, margin: 0, pattern, ..PatchTrigger::default() };
        let t = Trigger::build(&TriggerSpec::Patch(p), dims, 5).unwrap();
        let mut img = vec![1u8; 3 * 32 * 32];
        t.apply(&mut img, dims);
        img
    };
    let img = at(PatchPosition::TopLeft, PatchPattern::Checkerboard);
    for ch in 0..3 {
        let o = ch * 1024;
        assert_eq!([img[o], img[o + 1], img[o + 32], img[o + 33], img[o + 2]], [255, 0, 0, 255, 1]);
    }
    let img = at(PatchPosition::Xy { x: 10, y: 20 }, PatchPattern::White);
    assert_eq!((img[20 * 32 + 10], img[21 * 32 + 11], img[20 * 32 + 12], img[22 * 32 + 10]), (255, 255, 1, 1));
    let img = at(PatchPosition::Center, PatchPattern::White);
    assert_eq!((img[15 * 32 + 15], img[16 * 32 + 16], img[14 * 32 + 14]), (255, 255, 1));
    // A random pattern is fixed by the seed.
    assert_eq!(
        at(PatchPosition::BottomLeft, PatchPattern::Random),
        at(PatchPosition::BottomLeft, PatchPattern::Random)
    );
}

#[test]
fn blend_is_exact_alpha_mix() {
    let dims = (1, 2, 2);
    let pattern = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([200u8, 0, 100, 255]);
    let spec = TriggerSpec::Blend(BlendTrigger { alpha: 0.25, pattern: BlendPattern::Image { pixels: pattern } });
    let t = Trigger::build(&spec, dims, 0).unwrap();
    let mut img = vec![100u8, 100, 100, 100];
    t.apply(&mut img, dims);
    // 0.75·100 + 0.25·p, rounded.
    assert_eq!(img, vec![125, 75, 100, 139]);
}

#[test]
fn poisoning_rate_and_indices_are_exact() {
    let set = synthetic(1000, (1, 28, 28));
    let p = badnets(0.1, 3).poison(&set, 42).unwrap();
    assert_eq!(p.poisoned.len(), 100);
    assert!(p.poisoned.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
    let flags = p.is_poisoned();
    for i in 0..set.len() {
        if flags[i] {
            assert_eq!(p.set.labels[i], 3);
            assert_eq!(p.set.image(i)[26 * 28 + 26], 255);
        } else {
            assert_eq!(p.set.labels[i], set.labels[i]);
            assert_eq!(p.set.image(i), set.image(i));
        }
    }
    assert_eq!(p.true_labels, set.labels);
    // Same seed, same indices; another seed, other indices.
    assert_eq!(badnets(0.1, 3).poison(&set, 42).unwrap().poisoned, p.poisoned);
    assert_ne!(badnets(0.1, 3).poison(&set, 43).unwrap().poisoned, p.poisoned);
    assert_eq!(badnets(0.0, 3).poison(&set, 42).unwrap().poisoned.len(), 0);
    assert_eq!(badnets(0.0125, 3).poison(&set, 42).unwrap().poisoned.len(), 13);
}

#[test]
fn all_to_all_shifts_every_label_by_one() {
    let set = synthetic(500, (1, 28, 28));
    let spec = AttackSpec { label_policy: LabelPolicy::AllToAll, ..badnets(0.2, 0) };
    let p = spec.poison(&set, 1).unwrap();
    for &i in &p.poisoned {
        assert_eq!(p.set.labels[i], (set.labels[i] + 1) % 10);
    }
    let trigger = spec.trigger((1, 28, 28), 1).unwrap();
    let t = spec.triggered_test(&set, &set, &trigger).unwrap();
    assert_eq!(t.set.len(), set.len(), "every class counts for an all-to-all ASR");
    assert!(t.attack_labels.iter().zip(&t.set.labels).all(|(a, y)| *a == (y + 1) % 10));
}

#[test]
fn triggered_test_excludes_the_target_class() {
    let set = synthetic(200, (1, 28, 28));
    let spec = badnets(0.1, 4);
    let t = spec.triggered_test(&set, &set, &spec.trigger((1, 28, 28), 0).unwrap()).unwrap();
    assert_eq!(t.set.len(), 180);
    assert!(t.set.labels.iter().all(|&y| y != 4));
    assert!(t.attack_labels.iter().all(|&y| y == 4));
    assert!(t.source.iter().zip(&t.set.labels).all(|(&i, &y)| set.labels[i] == y));
}

#[test]
fn clean_label_touches_only_target_class_and_keeps_labels() {
    let set = synthetic(1000, (3, 32, 32));
    let spec = AttackSpec {
        method: AttackMethod::CleanLabel(CleanLabel { trigger: TriggerSpec::Patch(PatchTrigger::default()) }),
        ..badnets(0.05, 7)
    };
    let p = spec.poison(&set, 9).unwrap();
    assert_eq!(p.poisoned.len(), 50);
    assert!(p.poisoned.iter().all(|&i| set.labels[i] == 7));
    assert_eq!(p.set.labels, set.labels);
    // 10 % of 1000 is the whole class; more than that cannot be clean-label.
    let err = AttackSpec { poison_rate: 0.2, ..spec.clone() }.poison(&set, 9).unwrap_err();
    assert!(err.to_string().contains("only 100"), "{err}");
}

/// Every attack variant: pixels change only on the selected samples, deterministically for a seed,
/// and the selection has the requested size.
#[test]
fn registry_every_attack_behaves() {
    let methods: Vec<AttackMethod> =
        AttackMethod::NAMES.iter().map(|n| AttackMethod::default_named(n).expect("every listed name builds")).collect();
    for dims in [(1, 28, 28), (3, 32, 32)] {
        let set = synthetic(400, dims);
        for method in &methods {
            let spec = AttackSpec { method: method.clone(), ..badnets(0.05, 2) };
            let a = spec.poison(&set, 11).unwrap();
            let b = spec.poison(&set, 11).unwrap();
            assert_eq!(a.set, b.set, "{method:?} is deterministic");
            assert_eq!(a.poisoned, b.poisoned);
            // Attacks that poison nothing: the clean control, and the attacker who trains instead. A
            // semantic attack relabels its whole sub-population of one class, whatever ρ says.
            let expected = match method.selection() {
                Selection::Nothing => 0,
                Selection::SubPopulation => {
                    let class = method.source_class().expect("a sub-population has a class");
                    let of_class = set.labels.iter().filter(|&&y| y == class).count();
                    assert!(a.poisoned.iter().all(|&i| set.labels[i] == class), "{method:?}");
                    assert!(a.poisoned.iter().all(|&i| a.set.labels[i] == 2), "{method:?} relabels to the target");
                    assert_eq!(a.poisoned, method.members(&set, &set).unwrap().unwrap(), "{method:?}");
                    (0.2 * of_class as f64).round() as usize
                }
                _ => 20,
            };
            assert_eq!(a.poisoned.len(), expected, "{method:?}");
            let flags = a.is_poisoned();
            for i in 0..set.len() {
                let changed = a.set.image(i) != set.image(i) || a.set.labels[i] != set.labels[i];
                let altered = a.altered.binary_search(&i).is_ok();
                assert!(!(altered && flags[i]), "{method:?} sample {i} is poisoned or altered, not both");
                if altered {
                    assert_eq!(a.set.labels[i], set.labels[i], "{method:?} keeps an altered sample's label");
                } else {
                    assert_eq!(changed, flags[i], "{method:?} sample {i}");
                }
            }
            // The attacker who trains adds a triggered, relabelled copy of every sample to the loss.
            let trigger = spec.trigger(dims, 11).unwrap();
            match (method.loss_weight(), spec.loss_mix(&set, &trigger)) {
                (None, None) => {}
                (Some(lambda), Some(mix)) => {
                    assert_eq!(mix.lambda, lambda);
                    assert!(mix.triggered.labels.iter().all(|&y| y == 2), "{method:?} labels every copy as the target");
                    for i in 0..set.len() {
                        let mut stamped = set.image(i).to_vec();
                        trigger.apply(&mut stamped, dims);
                        assert_eq!(mix.triggered.image(i), &stamped[..], "{method:?} copy {i}");
                    }
                }
                _ => panic!("{method:?}: a loss weight and a loss mix go together"),
            }
        }
    }
}

/// The parameter a sweep of the attack's strength varies: λ when the attacker trains, ρ when it poisons
/// data, nothing when it ships the architecture.
#[test]
fn each_attack_names_its_strength() {
    let key = |link: &str| ExperimentSpec::from_link(link).unwrap().attack.strength_key();
    assert_eq!(key("v=1&attack=malicious_loss"), Some("lambda"));
    assert_eq!(key("v=1&attack=badnets"), Some("rate"));
    assert_eq!(key("v=1&attack=clean_label"), Some("rate"));
    assert_eq!(key("v=1&attack=arch_backdoor"), None);
}

/// SIG's test-time amplitude: the poisons carry Δ, the triggered test inputs the stronger signal when
/// one is set, and the training Δ otherwise.
#[test]
fn sig_test_time_signal_is_stronger_only_when_set() {
    let dims = (1, 28, 28);
    // Mid-grey images, so the signal is never clipped and its amplitude is the largest change.
    let mut set = synthetic(100, dims);
    set.pixels.fill(128);
    let peak = |spec: &AttackSpec| {
        let t = spec.triggered_test(&set, &set, &spec.trigger(dims, 0).unwrap()).unwrap();
        t.set.pixels.iter().map(|&p| (i32::from(p) - 128).abs()).max().unwrap()
    };
    let mut spec = AttackSpec::default();
    spec.set("attack", "sig").unwrap().unwrap();
    let trained = spec.poison(&set, 0).unwrap();
    let poison_peak = |p: &backdoor_lab::lab::attack::Poisoned| {
        p.poisoned.iter().flat_map(|&i| p.set.image(i).iter()).map(|&v| (i32::from(v) - 128).abs()).max().unwrap()
    };
    // The columns sample the sine at multiples of 3π/7, whose largest |sin| is 0.975.
    let near = |got: i32, delta: f64| (got as f64 - 0.975 * delta).abs() <= 1.0;
    assert!(near(poison_peak(&trained), 20.0), "{}", poison_peak(&trained));
    assert!(near(peak(&spec), 20.0), "{}", peak(&spec));
    spec.set("sig_test_delta", "60").unwrap().unwrap();
    assert!(near(peak(&spec), 60.0), "{}", peak(&spec));
    let again = spec.poison(&set, 0).unwrap();
    assert!(near(poison_peak(&again), 20.0), "the poisons keep the training Δ: {}", poison_peak(&again));
}

/// The crossed style scores a 7 with a bar through its middle above the same 7 without it; neither the
/// top bar (which every 7 has) nor a bold stroke crossing the middle counts.
#[test]
fn semantic_crossed_scores_the_middle_bar() {
    use backdoor_lab::lab::attack::{Semantic, Style};
    let dims = (1, 28, 28);
    // A 7: top bar on rows 4-5 (columns 8-21), a stroke falling from (6, 20) to (23, 12).
    let mut plain = vec![0u8; 784];
    for y in 4..6 {
        for x in 8..22 {
            plain[y * 28 + x] = 255;
        }
    }
    for y in 6..24 {
        let x = 20 - (y - 6) * 8 / 17;
        plain[y * 28 + x] = 255;
        plain[y * 28 + x + 1] = 255;
    }
    let mut crossed = plain.clone();
    for x in 11..20 {
        crossed[14 * 28 + x] = 255;
    }
    let semantic = Semantic { style: Style::Crossed, ..Semantic::default() };
    let (p, c) = (semantic.score(&plain, dims), semantic.score(&crossed, dims));
    assert!(p < 0.1, "the plain 7's longest middle run is its stroke: {p}");
    assert!(c > 0.4, "the bar reaches half the ink's width beyond the stroke: {c}");
    // The same 7 written with a stroke four pixels wide: longer middle runs, still no bar.
    let mut bold = plain.clone();
    for y in 6..24 {
        let x = 20 - (y - 6) * 8 / 17;
        (x - 1..x + 3).for_each(|x| bold[y * 28 + x] = 255);
    }
    let b = semantic.score(&bold, dims);
    assert!(b < 0.1, "a bold stroke is no bar: {b}");
    assert_eq!(semantic.score(&[0u8; 784], dims), 0.0, "an empty image has no bar");
}
