//! The spec's JSON and link codecs: lossless round trips, and clear errors (never panics) on bad input.

use backdoor_lab::lab::attack::{
    AttackMethod, Badnets, BlendPattern, BlendTrigger, Blended, CleanLabel, Drawing, LabelPolicy, NoAttack,
    PatchPattern, PatchPosition, PatchTrigger, TriggerSpec,
};
use backdoor_lab::lab::data::DatasetKind;
use backdoor_lab::lab::detect::activation_clustering::AcRule;
use backdoor_lab::lab::detect::{
    ActivationClustering, DetectSpec, LossIsolation, NeuralCleanse, Occlusion, SpectralSignatures, Strip,
};
use backdoor_lab::lab::model::ModelKind;
use backdoor_lab::lab::repair::{
    Abl, Distill, DistillStudent, FinePruning, FineTuning, NcUnlearn, RepairSpec, Retrain, RetrainBy, StripFilter,
};
use backdoor_lab::lab::spec::OptimizerKind;
use backdoor_lab::lab::{ExperimentSpec, LabError};
use base64::Engine;
use proptest::prelude::*;

fn patch() -> impl Strategy<Value = PatchTrigger> {
    let position = prop_oneof![
        Just(PatchPosition::BottomRight),
        Just(PatchPosition::BottomLeft),
        Just(PatchPosition::TopRight),
        Just(PatchPosition::TopLeft),
        Just(PatchPosition::Center),
        (0usize..20, 0usize..20).prop_map(|(x, y)| PatchPosition::Xy { x, y }),
    ];
    let pattern = prop_oneof![Just(PatchPattern::White), Just(PatchPattern::Checkerboard), Just(PatchPattern::Random)];
    let square = (1usize..8, position, 0usize..4, pattern).prop_map(|(size, position, margin, pattern)| PatchTrigger {
        size,
        position,
        margin,
        pattern,
        drawing: Drawing::default(),
    });
    // A drawn trigger has no size, position or margin of its own: those stay at their defaults.
    let drawn = proptest::collection::btree_map((0usize..28, 0usize..28), any::<u8>(), 1..40).prop_map(|pixels| {
        let pixels: Vec<(usize, usize, Vec<u8>)> = pixels.into_iter().map(|((r, c), v)| (r, c, vec![v])).collect();
        PatchTrigger { pattern: PatchPattern::Drawn, drawing: Drawing::encode(&pixels), ..PatchTrigger::default() }
    });
    prop_oneof![3 => square, 1 => drawn]
}

fn blend() -> impl Strategy<Value = BlendTrigger> {
    let pattern = prop_oneof![
        Just(BlendPattern::Noise),
        any::<u8>().prop_map(|v| BlendPattern::Image {
            pixels: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(vec![v; 28 * 28])
        }),
    ];
    (1u32..=100, pattern).prop_map(|(a, pattern)| BlendTrigger { alpha: a as f32 / 100.0, pattern })
}

fn detect() -> impl Strategy<Value = DetectSpec> {
    let nc = prop::option::of((10usize..2000, 1usize..=50, 1u32..=100).prop_map(|(steps, batch, lr)| NeuralCleanse {
        steps,
        batch,
        lr: lr as f64 / 100.0,
    }));
    let ac = prop::option::of((2usize..=128, 1u32..=50, -10i32..=10, any::<bool>()).prop_map(
        |(dims, size, sil, reclassify)| {
            if reclassify {
                // The size rule's thresholds do not apply, so they stay at their defaults.
                ActivationClustering { rule: AcRule::Reclassify, dims, ..Default::default() }
            } else {
                ActivationClustering {
                    rule: AcRule::Size,
                    dims,
                    max_share: size as f64 / 100.0,
                    min_silhouette: sil as f64 / 10.0,
                }
            }
        },
    ));
    let ss = prop::option::of((1u32..=60).prop_map(|e| SpectralSignatures { eps: e as f64 / 100.0 }));
    let strip = prop::option::of((2usize..=500, 10usize..=5000).prop_map(|(n, inputs)| Strip { n, inputs }));
    let loss = prop::option::of(
        (1u32..=50, 1usize..=20).prop_map(|(f, epochs)| LossIsolation { frac: f as f64 / 100.0, epochs }),
    );
    let occlusion =
        prop::option::of((1usize..=16, 1usize..=16, 1usize..=1000).prop_map(|(patch, stride, inputs)| Occlusion {
            patch,
            stride: stride.min(patch),
            inputs,
        }));
    (nc, ac, ss, strip, loss, occlusion).prop_map(|(nc, ac, ss, strip, loss, occlusion)| DetectSpec {
        nc,
        ac,
        ss,
        strip,
        loss,
        occlusion,
    })
}

fn repair() -> impl Strategy<Value = RepairSpec> {
    let fp = prop::option::of(
        (1u32..=50, 0usize..=200).prop_map(|(d, ft_epochs)| FinePruning { max_drop: d as f64 / 100.0, ft_epochs }),
    );
    let ft = prop::option::of((1usize..=200).prop_map(|epochs| FineTuning { epochs }));
    let by = prop_oneof![Just(RetrainBy::Ac), Just(RetrainBy::Ss), Just(RetrainBy::Loss), Just(RetrainBy::Truth)];
    let retrain = prop::option::of(by.prop_map(|by| Retrain { by }));
    let abl = prop::option::of((1usize..=50, 1u32..=1000, 1u32..=50, 1usize..=20).prop_map(|(epochs, l, f, iso)| {
        Abl { epochs, lambda: l as f64 / 10.0, frac: f as f64 / 100.0, isolation_epochs: iso }
    }));
    let nc = prop::option::of(
        (1usize..=200, 1u32..=100).prop_map(|(epochs, share)| NcUnlearn { epochs, share: share as f64 / 100.0 }),
    );
    let distill = prop::option::of((1usize..=500, 1u32..=1000, any::<bool>()).prop_map(|(epochs, t, plain)| Distill {
        epochs,
        temperature: t as f64 / 10.0,
        student: if plain { DistillStudent::Plain } else { DistillStudent::Same },
    }));
    let strip_filter = prop::option::of((2usize..=500).prop_map(|n| StripFilter { n }));
    (prop_oneof![Just(400usize), 10usize..=100_000], fp, ft, retrain, abl, nc, distill, strip_filter).prop_map(
        |(defender_clean, fp, ft, retrain, abl, nc_unlearn, distill, strip_filter)| RepairSpec {
            defender_clean,
            fp,
            ft,
            retrain,
            abl,
            nc_unlearn,
            distill,
            strip_filter,
        },
    )
}

fn spec() -> impl Strategy<Value = ExperimentSpec> {
    let method = prop_oneof![
        Just(AttackMethod::None(NoAttack {})),
        patch().prop_map(|patch| AttackMethod::Badnets(Badnets { patch })),
        blend().prop_map(|blend| AttackMethod::Blended(Blended { blend })),
        patch().prop_map(|p| AttackMethod::CleanLabel(CleanLabel { trigger: TriggerSpec::Patch(p) })),
        blend().prop_map(|b| AttackMethod::CleanLabel(CleanLabel { trigger: TriggerSpec::Blend(b) })),
    ];
    (
        prop_oneof![Just(DatasetKind::Mnist), Just(DatasetKind::Cifar10)],
        any::<u64>(),
        (10usize..20_000, 10usize..5_000),
        method,
        (0u32..=90, 0u8..10, any::<bool>()),
        prop_oneof![Just(ModelKind::Mlp), Just(ModelKind::Cnn), Just(ModelKind::CifarCnn)],
        (any::<bool>(), 1u32..1000, 1usize..512, 1usize..50, 0u32..99, 0u32..10),
        detect(),
        repair(),
    )
        .prop_map(
            |(
                dataset,
                seed,
                (train, test),
                method,
                (rate, target, all),
                model,
                (adam, lr, bs, ep, mom, wd),
                detect,
                repair,
            )| {
                let mut s = ExperimentSpec::defaults(dataset);
                s.seed = seed;
                s.data.train_size = train;
                s.data.test_size = test;
                s.attack.label_policy = if all && !matches!(method, AttackMethod::CleanLabel(_)) {
                    LabelPolicy::AllToAll
                } else {
                    LabelPolicy::AllToOne
                };
                s.attack.method = method;
                s.attack.poison_rate = rate as f64 / 100.0;
                s.attack.target_label = target;
                s.model = model;
                s.train.optimizer = if adam { OptimizerKind::Adam } else { OptimizerKind::Sgd };
                s.train.lr = lr as f64 * 1e-4;
                s.train.batch_size = bs;
                s.train.epochs = ep;
                s.train.momentum = mom as f64 / 100.0;
                s.train.weight_decay = wd as f64 * 1e-4;
                s.detect = detect;
                s.repair = repair;
                s
            },
        )
        .prop_filter("valid specs only", |s| s.validate().is_ok())
}

proptest! {
    #[test]
    fn link_round_trip_is_lossless(s in spec()) {
        let link = s.to_link();
        prop_assert_eq!(ExperimentSpec::from_link(&link).unwrap(), s.clone());
        prop_assert_eq!(ExperimentSpec::from_link(&format!("https://lab.example/#{link}")).unwrap(), s.clone());
        prop_assert_eq!(ExperimentSpec::from_link(&s.to_json_link()).unwrap(), s.clone());
        prop_assert_eq!(ExperimentSpec::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn arbitrary_links_never_panic(text in ".{0,200}") {
        let _ = ExperimentSpec::from_link(&text);
    }

    #[test]
    fn key_value_noise_never_panics(pairs in prop::collection::vec(("[a-z]{1,8}", "[-0-9a-z.,_=]{0,12}"), 0..8)) {
        let link: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = ExperimentSpec::from_link(&link.join("&"));
    }

    #[test]
    fn mutated_links_never_panic(s in spec(), cut in 0usize..400, byte in any::<u8>()) {
        let mut link = s.to_link().into_bytes();
        let at = cut % (link.len() + 1);
        link.insert(at, byte);
        let _ = ExperimentSpec::from_link(&String::from_utf8_lossy(&link));
    }
}

fn err(link: &str) -> String {
    match ExperimentSpec::from_link(link) {
        Err(LabError::Spec(m)) => m,
        other => panic!("expected a spec error for {link:?}, got {other:?}"),
    }
}

#[test]
fn default_link_is_short_and_readable() {
    assert_eq!(ExperimentSpec::default().to_link(), "v=1");
    let mut s = ExperimentSpec::default();
    s.attack.method =
        AttackMethod::Blended(Blended { blend: BlendTrigger { alpha: 0.3, pattern: BlendPattern::Noise } });
    s.train.epochs = 3;
    assert_eq!(s.to_link(), "v=1&attack=blended&alpha=0.3&epochs=3");
    assert_eq!(ExperimentSpec::from_link("").unwrap(), ExperimentSpec::default());
}

#[test]
fn malformed_links_say_what_is_wrong() {
    assert!(err("v=2").contains("unknown link version 2"));
    assert!(err("v=x").contains("not a valid number"));
    assert!(err("attack=trojan").contains("unknown attack 'trojan'"));
    assert!(err("data=imagenet").contains("unknown data 'imagenet' (one of mnist or cifar10)"));
    assert!(err("rate=1.5").contains("poison_rate 1.5 must be between 0 and 0.9 (link key rate)"));
    assert!(err("rate=NaN").contains("poison_rate NaN must be between 0 and 0.9"));
    assert!(err("target=10").contains("target_label 10 must be between 0 and 9 (link key target)"));
    assert!(err("target=-1").contains("not a valid number"));
    assert!(err("epochs=0").contains("epochs 0"));
    assert!(err("patch=40").contains("patch 40 must be between 1 and 32"));
    assert!(err("patch=30").contains("patch size 30 must be between 1 and 28"));
    assert!(err("pos=27,27&patch=3").contains("does not fit"));
    assert!(err("pos=up").contains("patch position"));
    assert!(err("alpha=0.5").contains(
        "applies only to attack=blended, clean_label, label_consistent or malicious_loss (not to attack=badnets)"
    ));
    assert!(err("attack=blended&alpha=0").contains("alpha 0 must be in (0, 1]"));
    assert!(err("attack=blended&blend=AAAA").contains("blend image has 3 bytes"));
    assert!(err("attack=blended&blend=!!").contains("base64"));
    assert!(err("attack=clean_label&policy=all_to_all").contains("all_to_one"));
    assert!(err("epochs=3&epochs=4").contains("appears twice"));
    assert!(err("hello").contains("not key=value"));
    assert!(err("flavour=red").contains("unknown link key 'flavour'"));
    assert!(err("j=%%%").contains("bad base64"));
    let not_json = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("{\"v\":1,");
    assert!(err(&format!("j={not_json}")).contains("bad JSON"));
    let v9 = ExperimentSpec { v: 9, ..ExperimentSpec::default() };
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_string(&v9).unwrap());
    assert!(err(&format!("j={json}")).contains("unknown spec version 9"));
}

#[test]
fn json_rejects_unknown_attack_and_fields() {
    let mut v: serde_json::Value = serde_json::from_str(&ExperimentSpec::default().to_json()).unwrap();
    v["attack"]["kind"] = "trojan".into();
    assert!(ExperimentSpec::from_json(&v.to_string()).unwrap_err().to_string().contains("trojan"));
    let mut v: serde_json::Value = serde_json::from_str(&ExperimentSpec::default().to_json()).unwrap();
    v["train"]["lr_typo"] = 0.1.into();
    assert!(ExperimentSpec::from_json(&v.to_string()).unwrap_err().to_string().contains("lr_typo"));
}

#[test]
fn overrides_switch_dataset_defaults_and_keep_customisation() {
    let s = ExperimentSpec::default().with_overrides(&[("data", "cifar10")]).unwrap();
    assert_eq!(s, ExperimentSpec::defaults(DatasetKind::Cifar10));
    // Flag order does not matter: the dataset switches first, then the other values apply.
    let s = ExperimentSpec::default().with_overrides(&[("epochs", "2"), ("data", "cifar10")]).unwrap();
    assert_eq!((s.data.dataset, s.train.epochs, s.data.train_size), (DatasetKind::Cifar10, 2, 10_000));
    // A customised spec keeps its values when only the dataset changes.
    let mut custom = ExperimentSpec::default();
    custom.data.train_size = 5_000;
    let s = custom.with_overrides(&[("data", "cifar10")]).unwrap();
    assert_eq!((s.data.dataset, s.data.train_size, s.model), (DatasetKind::Cifar10, 5_000, ModelKind::Cnn));
}

#[test]
fn detector_keys_round_trip_and_say_what_is_wrong() {
    let s = ExperimentSpec::from_link("v=1&detect=ss,nc&nc_steps=100&ss_eps=0.05").unwrap();
    assert_eq!(s.detect.chosen(), vec!["nc", "ss"]);
    assert_eq!((s.detect.nc.as_ref().unwrap().steps, s.detect.ss.as_ref().unwrap().eps), (100, 0.05));
    // Canonical order, defaults left out.
    assert_eq!(s.to_link(), "v=1&detect=nc,ss&nc_steps=100&ss_eps=0.05");
    let all = ExperimentSpec::from_link("v=1&detect=nc,ac,ss,strip,loss,occlusion").unwrap();
    assert_eq!(all.detect, DetectSpec::all());
    assert_eq!(ExperimentSpec::from_link("v=1&detect=none").unwrap(), ExperimentSpec::default());
    // Re-choosing keeps the parameters of detectors still chosen.
    let s2 = s.clone().with_overrides(&[("detect", "ss,strip")]).unwrap();
    assert_eq!((s2.detect.ss.as_ref().unwrap().eps, s2.detect.nc.is_none()), (0.05, true));
    // A spec without detectors serialises as before (no `detect` key).
    assert!(!ExperimentSpec::default().to_json().contains("detect"));
    assert!(err("detect=nc,magic").contains("unknown detector 'magic'"));
    assert!(err("ss_eps=0.2").contains("applies only when ss is chosen"));
    assert!(err("detect=nc&nc_steps=0").contains("nc_steps 0 must be between"));
    assert!(err("detect=ss&ss_eps=2").contains("ss_eps 2 must be in"));
    assert!(err("detect=strip&strip_n=1").contains("strip_n 1"));
    assert!(err("detect=loss&loss_frac=0").contains("loss_frac 0"));
    assert!(err("detect=occlusion&occ_patch=4&occ_stride=5").contains("occ_stride 5"));
    assert!(err("detect=ac&ac_size=0.9").contains("ac_size 0.9"));
}

#[test]
fn repair_keys_round_trip_and_say_what_is_wrong() {
    let s =
        ExperimentSpec::from_link("v=1&repair=nc_unlearn,fp&nc_epochs=2&fp_ft_epochs=0&defender_clean=200").unwrap();
    assert_eq!(s.repair.chosen(), vec!["fp", "nc_unlearn"]);
    assert_eq!((s.repair.nc_unlearn.as_ref().unwrap().epochs, s.repair.fp.as_ref().unwrap().ft_epochs), (2, 0));
    assert_eq!(s.to_link(), "v=1&repair=fp,nc_unlearn&defender_clean=200&fp_ft_epochs=0&nc_epochs=2");
    let all = ExperimentSpec::from_link("v=1&repair=fp,ft,retrain,abl,nc_unlearn,distill,strip_filter").unwrap();
    assert_eq!(all.repair, RepairSpec::all());
    assert_eq!(ExperimentSpec::from_link("v=1&repair=none").unwrap(), ExperimentSpec::default());
    let r = ExperimentSpec::from_link("v=1&repair=retrain&retrain_by=truth").unwrap();
    assert_eq!(r.repair.retrain.as_ref().unwrap().by, RetrainBy::Truth);
    assert_eq!(ExperimentSpec::from_link(&r.to_link()).unwrap(), r);
    // A spec without repairs serialises as before (no `repair` key), and old JSON decodes unchanged.
    assert!(!ExperimentSpec::default().to_json().contains("repair"));
    assert!(err("repair=fp,magic").contains("unknown repair 'magic'"));
    assert!(err("ft_epochs=3").contains("only when ft is chosen"));
    assert!(err("repair=ft&ft_epochs=0").contains("ft_epochs 0 must be between"));
    assert!(err("repair=retrain&retrain_by=oracle").contains("unknown retrain_by 'oracle'"));
    assert!(err("repair=abl&abl_frac=0.9").contains("abl_frac 0.9"));
    assert!(err("repair=nc_unlearn&nc_share=0").contains("nc_share 0"));
    assert!(err("repair=distill&distill_t=0").contains("distill_t 0"));
    assert!(err("repair=strip_filter&sf_n=1").contains("sf_n 1"));
    assert!(err("repair=fp&fp_drop=0.9").contains("fp_drop 0.9"));
    assert!(err("repair=ft&defender_clean=5").contains("defender_clean 5"));
}

/// Writes the frozen link corpus (tests/corpus/links.json) from the specs this build generates:
/// `FREEZE_CORPUS=1 cargo test --release --no-default-features --test all spec_link::freeze_link_corpus -- --ignored`.
/// It was run once, before parameters moved into tables; tests/corpus.rs checks every later build
/// against it, so a renamed key or a changed default fails there.
#[test]
#[ignore]
fn freeze_link_corpus() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    if std::env::var_os("FREEZE_CORPUS").is_none() {
        return;
    }
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let mut specs: Vec<ExperimentSpec> = (0..300).map(|_| spec().new_tree(&mut runner).unwrap().current()).collect();
    // Short, realistic links too: one or two changes from the defaults, as people write them.
    for link in [
        "v=1",
        "v=1&attack=blended&alpha=0.3&epochs=3",
        "v=1&data=cifar10",
        "v=1&data=cifar10&attack=clean_label&trigger=blend&alpha=0.5",
        "v=1&attack=none&detect=nc,ac,ss,strip,loss,occlusion",
        "v=1&attack=clean_label&rate=0.05&pattern=checker&pos=center",
        "v=1&policy=all_to_all&pos=3,4&patch=5&margin=0",
        "v=1&model=mlp&opt=sgd&lr=0.01&momentum=0.5&wd=0.0005&batch=32",
        "v=1&repair=fp,ft,retrain,abl,nc_unlearn,distill,strip_filter",
        "v=1&repair=retrain&retrain_by=truth&defender_clean=200",
        "v=1&detect=nc&nc_steps=20&repair=nc_unlearn&nc_epochs=2",
        "v=1&train=1000&test=200&epochs=1&seed=3&detect=nc,ac,ss,strip,loss,occlusion&nc_steps=20&strip_n=10&strip_inputs=50",
    ] {
        specs.push(ExperimentSpec::from_link(link).unwrap());
    }
    let corpus: Vec<serde_json::Value> =
        specs.iter().map(|s| serde_json::json!({ "link": s.to_link(), "json": s.to_json() })).collect();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/links.json");
    std::fs::write(path, serde_json::to_string_pretty(&corpus).unwrap() + "\n").unwrap();
}

#[test]
fn a_link_is_kept_as_far_as_it_is_valid_and_every_bad_key_is_named() {
    // The page keeps every valid key and says which it dropped (issue 31).
    let (spec, dropped) = ExperimentSpec::from_link_partial("v=1&attack=wanet&rate=abc&epochs=3");
    assert_eq!(spec.attack.method.name(), "wanet");
    assert_eq!(spec.train.epochs, 3);
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert!(dropped[0].contains("'abc'") && dropped[0].contains("rate"), "{dropped:?}");
    let (spec, dropped) = ExperimentSpec::from_link_partial("v=1&attack=trojan&epochs=3&hello&epochs=4");
    assert_eq!((spec.attack.method.name(), spec.train.epochs), ("badnets", 3));
    assert_eq!(dropped.len(), 3, "{dropped:?}");
    // Another version, or a whole-JSON link, is not read key by key.
    let (spec, dropped) = ExperimentSpec::from_link_partial("v=2&epochs=3");
    assert_eq!(spec, ExperimentSpec::default());
    assert!(dropped[0].contains("unknown link version 2"), "{dropped:?}");
    // A valid link drops nothing, and reads as the strict reader does.
    let link = "v=1&attack=blended&alpha=0.3&epochs=3";
    assert_eq!(ExperimentSpec::from_link_partial(link), (ExperimentSpec::from_link(link).unwrap(), Vec::new()));
    // The strict reader (the CLI's) refuses, naming every bad key at once.
    let all = err("v=1&epochs=0&rate=abc&target=12");
    assert!(all.contains("epochs 0") && all.contains("'abc'") && all.contains("target_label 12"), "{all}");
}

#[test]
fn a_transfer_victim_gets_room_at_the_defaults() {
    // Ticking a freeze mode at the default split leaves the victim its 2,000 images (issue 31).
    let on = ExperimentSpec::from_link("v=1&freeze=features").unwrap();
    assert_eq!(on.data.train_size, 6_000);
    assert_eq!(on.to_link(), "v=1&freeze=features");
    let cifar = ExperimentSpec::from_link("v=1&data=cifar10&freeze=none").unwrap();
    assert_eq!(cifar.data.train_size, 8_000);
    // A size the user chose stays, in either order of the link.
    for link in ["v=1&train=8000&freeze=features", "v=1&freeze=features&train=8000"] {
        let s = ExperimentSpec::from_link(link).unwrap();
        assert_eq!(s.data.train_size, 8_000);
        assert_eq!(s.to_link(), "v=1&train=8000&freeze=features");
    }
    let custom = ExperimentSpec::from_link("v=1&train=3000").unwrap().with_overrides(&[("freeze", "none")]).unwrap();
    assert_eq!(custom.data.train_size, 3_000);
    // The page's check box: on, then off again, restores the plain default.
    let ticked = ExperimentSpec::default().with_overrides(&[("freeze", "features")]).unwrap();
    assert_eq!(ticked.data.train_size, 6_000);
    let unticked = ticked.with_overrides(&[("freeze", "")]).unwrap();
    assert_eq!(unticked, ExperimentSpec::default());
}
