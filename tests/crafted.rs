//! Attacks that craft their poisons: the finite-difference Hessian-vector product behind gradient
//! matching, checked against a direct estimate.

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
