//! Robust training by augmentation: each augmentation does what it says on small images, draws from
//! the seed, is off unless listed (and then training is bit for bit what it was), and its keys
//! round-trip and say what is wrong.

use crate::common;

use backdoor_lab::lab::ExperimentSpec;
use backdoor_lab::lab::augment::{self, Augment, Augmentation, Augmentations};
use backdoor_lab::lab::data::ImageSet;
use backdoor_lab::lab::device::DeviceKind;
use backdoor_lab::lab::rng::{LabRng, Stream};
use backdoor_lab::lab::run::run;
use burn::tensor::Device;
use common::{Quiet, mnist};

fn numbered(n: usize, dims: (usize, usize, usize)) -> ImageSet {
    let (c, h, w) = dims;
    let mut set = ImageSet::empty(c, h, w);
    for i in 0..n {
        set.labels.push((i % 10) as u8);
        set.pixels.extend((0..c * h * w).map(|p| (1 + (i * 7 + p) % 250) as u8));
    }
    set
}

#[test]
fn flips_and_shifts_move_pixels_exactly() {
    let dims = (1, 3, 4);
    let mut img: Vec<u8> = (1..=12).collect();
    augment::flip(&mut img, dims);
    assert_eq!(img, vec![4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9]);
    let mut img: Vec<u8> = (1..=12).collect();
    augment::shift(&mut img, dims, 1, -1);
    assert_eq!(img, vec![0, 0, 0, 0, 2, 3, 4, 0, 6, 7, 8, 0]);
}

#[test]
fn erasing_fills_one_rectangle_of_two_to_forty_percent() {
    let dims = (1, 28, 28);
    let mut rng = LabRng::new(3, Stream::Augment);
    for _ in 0..50 {
        let mut img = vec![0u8; 784];
        augment::erase(&mut img, dims, &mut rng);
        let changed: Vec<usize> = (0..784).filter(|&i| img[i] != 0).collect();
        let (rows, cols): (Vec<usize>, Vec<usize>) = changed.iter().map(|&i| (i / 28, i % 28)).unzip();
        let (h, w) = (
            rows.iter().max().unwrap() - rows.iter().min().unwrap() + 1,
            cols.iter().max().unwrap() - cols.iter().min().unwrap() + 1,
        );
        // A random fill may draw a 0 inside the rectangle, so the box counts, not the changed pixels.
        assert!(changed.len() <= h * w && changed.len() * 100 >= h * w * 90, "{} of {h}×{w}", changed.len());
        let share = (h * w) as f64 / 784.0;
        assert!((0.015..=0.45).contains(&share), "share {share}");
    }
}

#[test]
fn cutmix_pastes_a_partner_box_and_weighs_labels_by_area() {
    let mut batch = numbered(16, (1, 28, 28));
    let before = batch.clone();
    let mut rng = LabRng::new(5, Stream::Augment);
    let m = augment::cutmix(&mut batch, 1.0, &mut rng);
    let mut sorted = m.partner.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..16).collect::<Vec<_>>(), "a permutation of the batch");
    for (i, &j) in m.partner.iter().enumerate() {
        let from_partner = (0..784)
            .filter(|&p| batch.image(i)[p] == before.image(j)[p] && before.image(i)[p] != before.image(j)[p])
            .count();
        let own = (0..784).filter(|&p| batch.image(i)[p] == before.image(i)[p]).count();
        if i != j {
            assert_eq!(from_partner + own, 784, "every pixel is its own or its partner's");
            assert!((own as f64 / 784.0 - m.lambda).abs() < 1e-9, "λ {} is the share kept: {own}", m.lambda);
        }
    }
    assert!((0.0..=1.0).contains(&m.lambda));
    // λ ~ Beta(α, α): its mean is ½ for any α (box clipping only raises it).
    let mut rng = LabRng::new(9, Stream::Augment);
    let mean = (0..4000).map(|_| rng.beta(0.5, 0.5)).sum::<f64>() / 4000.0;
    assert!((mean - 0.5).abs() < 0.03, "Beta(½, ½) mean {mean}");
    let var = |a: f64, rng: &mut LabRng| {
        let xs: Vec<f64> = (0..4000).map(|_| rng.beta(a, a)).collect();
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64
    };
    // Var = 1 / (4(2α + 1)): 1/8 at α = ½, 1/44 at α = 5.
    assert!((var(0.5, &mut rng) - 0.125).abs() < 0.01);
    assert!((var(5.0, &mut rng) - 1.0 / 44.0).abs() < 0.004);
}

#[test]
fn augmentations_are_off_unless_listed_and_seeded_when_on() {
    let batch = numbered(8, (1, 28, 28));
    let off = Augment { which: Augmentations::default(), erase: 1.0, cutmix_alpha: 1.0, shift: 2 };
    let mut same = batch.clone();
    assert!(off.apply(&mut same, &mut LabRng::new(0, Stream::Augment)).is_none());
    assert_eq!(same, batch, "nothing listed, nothing changes");
    for a in [Augmentation::Erase, Augmentation::Cutmix, Augmentation::Shift, Augmentation::Flip] {
        let on = Augment { which: Augmentations(vec![a]), ..off.clone() };
        let run = |seed| {
            let mut b = batch.clone();
            let mix = on.apply(&mut b, &mut LabRng::new(seed, Stream::Augment));
            (b, mix)
        };
        assert_ne!(run(0).0, batch, "{a:?} changes the batch");
        assert_eq!(run(0), run(0), "{a:?} is the same for a seed");
        assert_ne!(run(0).0, run(1).0, "{a:?} differs between seeds");
        assert_eq!(run(0).1.is_some(), a == Augmentation::Cutmix);
    }
}

#[test]
fn augmentation_keys_round_trip_and_say_what_is_wrong() {
    let s = ExperimentSpec::from_link("v=1&aug=cutmix,erase&aug_erase=0.3&aug_cutmix=0.5").unwrap();
    assert_eq!(s.train.aug, Augmentations(vec![Augmentation::Cutmix, Augmentation::Erase]));
    assert_eq!(s.to_link(), "v=1&aug=cutmix,erase&aug_erase=0.3&aug_cutmix=0.5");
    let err = |link: &str| ExperimentSpec::from_link(link).unwrap_err().to_string();
    assert!(err("v=1&aug=mixup").contains("unknown aug 'mixup' (a comma list of erase, cutmix, shift or flip)"));
    assert!(err("v=1&aug=flip,flip").contains("aug lists 'flip' twice"));
    assert!(err("v=1&aug_erase=0.3").contains("applies only with aug=erase"), "{}", err("v=1&aug_erase=0.3"));
    assert!(err("v=1&aug=shift&aug_shift=9").contains("aug_shift 9"));
    // A spec written before augmentation existed still reads, with none.
    let mut json: serde_json::Value = serde_json::to_value(ExperimentSpec::default()).unwrap();
    for k in ["aug", "aug_erase", "aug_cutmix", "aug_shift"] {
        json["train"].as_object_mut().unwrap().remove(k);
    }
    let old: ExperimentSpec = serde_json::from_value(json).unwrap();
    assert_eq!(old, ExperimentSpec::default());
}

#[test]
fn training_with_an_augmentation_differs_and_without_is_unchanged() {
    let go = |link: &str| {
        let spec = ExperimentSpec::from_link(link).unwrap();
        pollster::block_on(run(&spec, mnist(), &Device::flex(), DeviceKind::Cpu, &mut Quiet)).unwrap().report
    };
    let base = "v=1&train=600&test=200&epochs=1&seed=4";
    let plain = go(base);
    assert_eq!(go(base).epochs[0].loss, plain.epochs[0].loss, "training is deterministic");
    for a in ["erase", "cutmix", "shift", "flip"] {
        let r = go(&format!("{base}&aug={a}"));
        assert_ne!(r.epochs[0].loss, plain.epochs[0].loss, "aug={a} changes what the model trains on");
    }
}

/// The trade-off curves sweep each augmentation's strength by its link key: those keys are the
/// training table's.
#[test]
fn strength_keys_are_link_keys() {
    use backdoor_lab::lab::augment::Augmentation;
    use backdoor_lab::lab::params::table_params;
    use backdoor_lab::lab::train::TrainSpec;
    let keys: Vec<&str> = table_params::<TrainSpec>().iter().map(|p| p.key).collect();
    for a in [Augmentation::Erase, Augmentation::Cutmix, Augmentation::Shift, Augmentation::Flip] {
        if let Some(k) = a.strength_key() {
            assert!(keys.contains(&k), "{a:?}: {k} is not a training key ({keys:?})");
        }
    }
    assert!(keys.contains(&"dp_sigma") && keys.contains(&"dp_clip"));
}
