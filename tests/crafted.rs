//! Attacks that craft their poisons: the finite-difference Hessian-vector product behind gradient
//! matching, checked against a direct estimate; and every crafting attack on real digits, whose
//! poisons stay within ε of their clean images with labels kept, are the same for a seed, and (for
//! the hidden-trigger attacks) never carry the trigger.

mod common;

use std::ops::ControlFlow;

use backdoor_lab::lab::ExperimentSpec;
use backdoor_lab::lab::attack::{AttackMethod, Trigger};
use backdoor_lab::lab::event::{Event, Host};
use backdoor_lab::lab::run::{Outcome, run};
use common::{clock, mnist};

use backdoor_lab::lab::attack::gradient_matching::{alignment, alignment_direction, alignment_grad, param_grad};
use backdoor_lab::lab::device::fresh_model;
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

struct Quiet(usize);

impl Host for Quiet {
    fn now(&self) -> f64 {
        clock()
    }
    fn emit(&mut self, e: &Event) -> ControlFlow<()> {
        self.0 += usize::from(matches!(e, Event::Craft { .. }));
        ControlFlow::Continue(())
    }
}

fn crafted(link: &str) -> (Outcome, usize) {
    let spec = ExperimentSpec::from_link(link).unwrap();
    let mut host = Quiet(0);
    let out = pollster::block_on(run(&spec, mnist(), &Device::flex(), "cpu", &mut host)).unwrap();
    (out, host.0)
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
                assert!((i32::from(x) - i32::from(c)).abs() <= i32::from(eps), "{name}: pixel {k} of sample {i} within ε");
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
