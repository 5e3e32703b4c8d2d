//! Attacks that craft their poisons: the finite-difference Hessian-vector product behind gradient
//! matching, checked against a direct estimate; and every crafting attack on real digits, whose
//! poisons stay within ε of their clean images with labels kept, are the same for a seed, and (for
//! the hidden-trigger attacks) never carry the trigger.

use crate::common;

use backdoor_lab::lab::ExperimentSpec;
use backdoor_lab::lab::attack::{AttackMethod, Trigger};
use backdoor_lab::lab::event::Event;
use backdoor_lab::lab::run::{Outcome, run};
use common::{Recorder, mnist};

use backdoor_lab::lab::attack::gradient_matching::{alignment, alignment_direction, alignment_grad, param_grad};
use backdoor_lab::lab::device::{DeviceKind, fresh_model};
use backdoor_lab::lab::model::ModelKind;
use backdoor_lab::lab::rng::{LabRng, Stream};
use burn::module::Module;
use burn::tensor::Device;

/// The alignment's gradient from the HVP at θ ± r·v, against a direct central difference of the
/// parameter gradient itself along random input directions d: ∇δA·d = v·(g(x + h·d) − g(x − h·d))/2h,
/// which needs no second derivative and no weight shift. On a tiny MLP, to 1e-2 relative.
#[test]
fn finite_difference_hvp_matches_a_direct_estimate() {
    let device = Device::flex();
    let dims = (1, 8, 8);
    let model = fresh_model(ModelKind::Mlp, dims, 3, &device).valid();
    let mut rng = LabRng::new(5, Stream::Craft);
    let n = 4;
    let pixels: Vec<f32> = (0..n * 64).map(|_| rng.unit() as f32).collect();
    let labels = [0u8; 4];
    let sources: Vec<f32> = (0..n * 64).map(|_| rng.unit() as f32).collect();
    let grad_at = |x: &[f32], y: &[u8]| pollster::block_on(param_grad(&model, x, y, dims, &device)).unwrap();
    let goal = grad_at(&sources, &[3; 4]);
    let (a, grad) = pollster::block_on(alignment_grad(&model, &pixels, &labels, &goal, dims, &device)).unwrap();
    let direct = pollster::block_on(alignment(&model, &pixels, &labels, &goal, dims, &device)).unwrap();
    assert!((a - direct).abs() < 1e-6, "A = {a} from both paths ({direct})");
    assert!(a > 0.0 && a < 2.0, "A = {a} is 1 − cos");
    let (_, v) = alignment_direction(&grad_at(&pixels, &labels), &goal);
    // A step this small stays inside one linear region of the ReLUs for these inputs.
    let h = 1e-4f32;
    for _ in 0..3 {
        let d: Vec<f32> = (0..pixels.len()).map(|_| rng.unit() as f32 * 2.0 - 1.0).collect();
        let moved = |s: f32| pixels.iter().zip(&d).map(|(p, di)| p + s * h * di).collect::<Vec<f32>>();
        let (plus, minus) = (grad_at(&moved(1.0), &labels), grad_at(&moved(-1.0), &labels));
        let numeric: f64 =
            plus.iter().zip(&minus).zip(&v).map(|((p, m), vi)| f64::from((p - m) / (2.0 * h)) * f64::from(*vi)).sum();
        let analytic: f64 = grad.iter().zip(&d).map(|(g, di)| f64::from(*g) * f64::from(*di)).sum();
        let rel = (numeric - analytic).abs() / numeric.abs().max(analytic.abs()).max(1e-12);
        println!("∇δA·d: direct {numeric:.6e}, by the HVP {analytic:.6e}, relative difference {rel:.2e}");
        assert!(numeric.abs() > 1e-6, "a direction with a derivative to compare");
        assert!(rel < 1e-2, "∇δA·d {numeric} vs {analytic}: relative difference {rel}");
    }
}

fn crafted(link: &str) -> (Outcome, usize) {
    let spec = ExperimentSpec::from_link(link).unwrap();
    let mut host = Recorder::default();
    let out = pollster::block_on(run(&spec, mnist(), &Device::flex(), DeviceKind::Cpu, &mut host)).unwrap();
    (out, host.0.iter().filter(|e| matches!(e, Event::Craft { .. })).count())
}

#[test]
fn crafted_poisons_stay_within_their_budget_and_hide_the_trigger() {
    let small = "train=600&test=100&epochs=1&surrogate_epochs=1&target=0&rate=0.05";
    for (name, eps, hidden) in
        [("label_consistent", 32u8, false), ("gradient_matching", 16, true), ("hidden_trigger", 16, true)]
    {
        let steps = match name {
            "label_consistent" => "lc_steps=3",
            "gradient_matching" => "gm_steps=3",
            _ => "ht_steps=3",
        };
        let link = format!("v=1&attack={name}&{small}&{steps}");
        let (a, events) = crafted(&link);
        assert!(events > 0, "{name} reports its crafting");
        let (b, _) = crafted(&link);
        assert_eq!(a.poisoned.set, b.poisoned.set, "{name} is deterministic for a seed");
        let p = &a.poisoned;
        assert_eq!(p.poisoned.len(), 30, "{name}");
        let clean = &a.split.train;
        let spec = ExperimentSpec::from_link(&link).unwrap();
        let dims = spec.dims();
        let trigger: Trigger = spec.attack.trigger(dims, spec.seed).unwrap();
        let mut moved = 0;
        for &i in &p.poisoned {
            assert_eq!(p.set.labels[i], clean.labels[i], "{name} keeps labels");
            assert_eq!(clean.labels[i], 0, "{name} poisons the target class");
            let mut reference = clean.image(i).to_vec();
            if !hidden {
                // The trigger goes on top of the perturbation: compare away from its pixels.
                trigger.apply(&mut reference, dims);
            }
            let mask = trigger.mask(dims);
            for (k, (&x, &c)) in p.set.image(i).iter().zip(&reference).enumerate() {
                if !hidden && mask[k % mask.len()] > 0.0 {
                    assert_eq!(x, c, "{name}: the trigger's pixels are the trigger's");
                    continue;
                }
                assert!(
                    (i32::from(x) - i32::from(c)).abs() <= i32::from(eps),
                    "{name}: pixel {k} of sample {i} within ε"
                );
                moved += usize::from(x != c);
            }
            if hidden {
                // No training image carries the trigger: stamping it changes every poison.
                let mut stamped = p.set.image(i).to_vec();
                trigger.apply(&mut stamped, dims);
                assert_ne!(stamped, p.set.image(i), "{name}: sample {i} does not already show the trigger");
            }
        }
        assert!(moved > 0, "{name} perturbs its poisons");
        for i in (0..clean.len()).filter(|i| p.poisoned.binary_search(i).is_err()) {
            assert_eq!(p.set.image(i), clean.image(i), "{name} leaves sample {i} alone");
        }
        assert!(AttackMethod::default_named(name).is_some());
    }
}

/// Features of some images of `set` under `model`, one row each.
fn feature_rows(
    model: &backdoor_lab::lab::model::Model,
    set: &backdoor_lab::lab::data::ImageSet,
    idx: &[usize],
) -> Vec<Vec<f32>> {
    use backdoor_lab::lab::attack::craft::{normalise, unit_pixels};
    use burn::tensor::{Tensor, TensorData};
    let device = Device::flex();
    let (c, h, w) = (set.channels, set.height, set.width);
    let x = Tensor::<4>::from_data(TensorData::new(unit_pixels(set, idx), [idx.len(), c, h, w]), &device);
    let flat =
        pollster::block_on(backdoor_lab::lab::device::read_floats(model.features(normalise(x, c, &device)))).unwrap();
    flat.chunks(flat.len() / idx.len()).map(<[f32]>::to_vec).collect()
}

fn centroid(rows: &[Vec<f32>]) -> Vec<f32> {
    let mut m = vec![0.0; rows[0].len()];
    rows.iter().for_each(|r| m.iter_mut().zip(r).for_each(|(a, b)| *a += b / rows.len() as f32));
    m
}

fn distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f32>().sqrt()
}

/// Hidden trigger: the feature collision does what it claims (the poisons' features move to the
/// patched source images'), and the figures that decide whether a last-layer victim can learn it: how
/// far the patch moves a source image's features, against how far apart the source images are.
#[test]
fn hidden_trigger_features_collide_with_patched_sources() {
    // ε = 16 is the attack's budget; ε = 255 checks that the optimiser reaches the goal when nothing holds it back.
    let link = |eps: u8| {
        format!("v=1&attack=hidden_trigger&train=2000&test=500&epochs=1&rate=0.05&from=1&target=0&ht_eps={eps}")
    };
    let (before, after, spread) = collision(&link(16));
    assert!(
        after < before,
        "the collision brings the poisons' features closer to the patched sources at ε = 16: {before} → {after}"
    );
    // Each poison aims at a patched source of its own, so "reached" means inside their cloud, not at its centre.
    let (before, after, spread_255) = collision(&link(255));
    assert_eq!(spread, spread_255, "the same base model");
    assert!(
        before > 2.0 * spread && after < 2.0 * spread,
        "with no budget the poisons land among the patched sources: {before} → {after}, their spread {spread}"
    );
}

/// Runs the hidden-trigger link, prints the feature figures, and returns the poisons' mean distance to
/// the patched sources' centroid before and after crafting, and the source images' spread.
fn collision(link: &str) -> (f32, f32, f32) {
    let (out, _) = crafted(link);
    let spec = ExperimentSpec::from_link(link).unwrap();
    let dims = spec.dims();
    let trigger = spec.attack.trigger(dims, spec.seed).unwrap();
    let clean = &out.split.train;
    let poisons = &out.poisoned.poisoned;
    let sources: Vec<usize> = (0..clean.len()).filter(|&i| clean.labels[i] == 1).collect();
    let mut patched = clean.select(&sources);
    for i in 0..patched.len() {
        trigger.apply(patched.image_mut(i), dims);
    }
    let all: Vec<usize> = (0..sources.len()).collect();
    let (src, src_patched) = (feature_rows(&out.model, clean, &sources), feature_rows(&out.model, &patched, &all));
    let goal = centroid(&src_patched);
    let before = feature_rows(&out.model, clean, poisons);
    let after = feature_rows(&out.model, &out.poisoned.set, poisons);
    let mean = |rows: &[Vec<f32>], to: &[f32]| rows.iter().map(|r| distance(r, to)).sum::<f32>() / rows.len() as f32;
    let (d_before, d_after) = (mean(&before, &goal), mean(&after, &goal));
    let shift = src.iter().zip(&src_patched).map(|(a, b)| distance(a, b)).sum::<f32>() / src.len() as f32;
    let spread = mean(&src, &centroid(&src));
    let gap = distance(&centroid(&src), &goal);
    println!(
        "{link}: poisons' distance to the patched sources' centroid {d_before:.2} → {d_after:.2}; \
         the patch moves a source's features by {shift:.2} (centroids {gap:.2} apart), source spread {spread:.2}"
    );
    (d_before, d_after, spread)
}
