//! DP-SGD: the accountant against Opacus' `RDPAccountant`, the per-sample gradients (from layer
//! inputs and output gradients) against one backward pass per sample, the noise's presence and scale,
//! and the spec's rules.

use backdoor_lab::lab::ExperimentSpec;
use backdoor_lab::lab::attack::craft::normalise;
use backdoor_lab::lab::attack::gradient_matching::param_grad;
use backdoor_lab::lab::device::fresh_model;
use backdoor_lab::lab::dp::{dp_gradients, epsilon, flatten, privacy};
use backdoor_lab::lab::model::{Model, ModelKind};
use backdoor_lab::lab::rng::{LabRng, Stream};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

/// (σ, q, steps, δ) → ε from running Opacus 1.5.2's `opacus/accountants/analysis/rdp.py` with
/// `RDPAccountant.DEFAULT_ALPHAS` (`compute_rdp` then `get_privacy_spent`).
const OPACUS: [(f64, f64, usize, f64, f64); 6] = [
    (1.0, 64.0 / 8000.0, 625, 1.0 / 8000.0, 1.1535049561878847),
    (1.1, 256.0 / 60000.0, 14100, 1e-5, 2.6003429386103023),
    (0.5, 64.0 / 8000.0, 625, 1.0 / 8000.0, 9.18866041655719),
    (4.0, 0.01, 10000, 1e-5, 1.0354900660362476),
    (2.0, 64.0 / 8000.0, 125, 1.0 / 8000.0, 0.1678732489500752),
    (0.8, 0.001, 1000, 1e-6, 1.4618758575568853),
];

#[test]
fn accountant_matches_opacus() {
    for (sigma, q, steps, delta, want) in OPACUS {
        let (got, order) = epsilon(sigma, q, steps, delta);
        let rel = (got - want).abs() / want;
        println!(
            "σ {sigma} q {q:.5} steps {steps} δ {delta:e}: ε {got:.6} (Opacus {want:.6}, {rel:.2e} relative, order {order})"
        );
        assert!(rel < 0.02, "ε {got} against Opacus' {want}");
    }
    // The lab's default training: 8,000 samples, batch 64, 5 epochs, δ = 1/8,000.
    let p = privacy(1.0, 64, 8000, 5);
    assert_eq!(p.steps, 625);
    assert!((p.epsilon - 1.1535049561878847).abs() / 1.1535 < 0.02);
    // More noise spends less; no noise spends everything.
    assert!(epsilon(2.0, 0.008, 625, 1e-4).0 < epsilon(1.0, 0.008, 625, 1e-4).0);
    assert!(epsilon(0.0, 0.008, 625, 1e-4).0.is_infinite());
}

fn batch(n: usize, dims: (usize, usize, usize), seed: u64) -> (Vec<f32>, Vec<u8>) {
    let mut rng = LabRng::new(seed, Stream::Detect);
    let (c, h, w) = dims;
    let pixels = (0..n * c * h * w).map(|_| rng.unit() as f32).collect();
    let labels = (0..n).map(|_| rng.below(10) as u8).collect();
    (pixels, labels)
}

/// The DP-SGD gradient of the batch with noise multiplier `sigma` and clip `clip`.
fn dp(model: &Model, pixels: &[f32], labels: &[u8], dims: (usize, usize, usize), clip: f64, sigma: f64) -> Vec<f32> {
    let device = Device::flex();
    let ad = device.clone().autodiff();
    let (c, h, w) = dims;
    let tracked = model.clone().fork(&ad).train();
    let x = Tensor::<4>::from_data(TensorData::new(pixels.to_vec(), [labels.len(), c, h, w]), &ad);
    let mut rng = LabRng::new(7, Stream::Dp);
    let step =
        pollster::block_on(dp_gradients(&tracked, normalise(x, c, &ad), labels, clip, sigma, &mut rng, &ad)).unwrap();
    pollster::block_on(flatten(&step.grads, &tracked)).unwrap()
}

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt()
}

/// Σᵢ clip(gᵢ)/b from one backward pass per sample (micro-batches of one), the slow way.
fn reference(model: &Model, pixels: &[f32], labels: &[u8], dims: (usize, usize, usize), clip: f64) -> Vec<f32> {
    let device = Device::flex();
    let per = dims.0 * dims.1 * dims.2;
    let mut sum: Vec<f64> = Vec::new();
    for (i, &y) in labels.iter().enumerate() {
        let g = pollster::block_on(param_grad(model, &pixels[i * per..(i + 1) * per], &[y], dims, &device)).unwrap();
        let f = (clip / norm(&g)).min(1.0);
        sum.resize(g.len(), 0.0);
        for (s, v) in sum.iter_mut().zip(&g) {
            *s += f * f64::from(*v);
        }
    }
    sum.iter().map(|s| (s / labels.len() as f64) as f32).collect()
}

fn max_rel(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let diff: Vec<f32> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    norm(&diff) / norm(b)
}

/// Per-sample clipping from layer inputs and output gradients equals clipping each sample's own
/// backward pass, for every architecture (dense layers, valid and same-padded convolutions); without
/// clipping it is the plain mean gradient.
#[test]
fn per_sample_gradients_match_one_backward_pass_per_sample() {
    let device = Device::flex();
    for (kind, dims) in
        [(ModelKind::Cnn, (1, 28, 28)), (ModelKind::CifarCnn, (3, 32, 32)), (ModelKind::Mlp, (1, 28, 28))]
    {
        let model = fresh_model(kind, dims, 3, &device);
        let (pixels, labels) = batch(5, dims, 1);
        let plain = reference(&model, &pixels, &labels, dims, f64::INFINITY);
        let unclipped = dp(&model, &pixels, &labels, dims, 1e9, 0.0);
        let e = max_rel(&unclipped, &plain);
        println!("{kind:?}: no clipping {e:.2e} relative");
        assert!(e < 1e-4, "{kind:?}: unclipped DP gradient is off by {e}");
        // A clip below every sample's norm, so each is scaled by its own factor.
        let norms: Vec<f64> = labels
            .iter()
            .enumerate()
            .map(|(i, &y)| {
                let per = dims.0 * dims.1 * dims.2;
                norm(
                    &pollster::block_on(param_grad(&model, &pixels[i * per..(i + 1) * per], &[y], dims, &device))
                        .unwrap(),
                )
            })
            .collect();
        let clip = norms.iter().cloned().fold(f64::INFINITY, f64::min) * 0.5;
        let clipped = dp(&model, &pixels, &labels, dims, clip, 0.0);
        let want = reference(&model, &pixels, &labels, dims, clip);
        let e = max_rel(&clipped, &want);
        println!("{kind:?}: clipped at {clip:.3} (norms {norms:.3?}) {e:.2e} relative");
        assert!(e < 1e-4, "{kind:?}: clipped DP gradient is off by {e}");
        assert!(max_rel(&clipped, &plain) > 0.05, "clipping changed nothing");
    }
}

/// The noise is there and has the scale σ·C/b per coordinate: switched off, the update would be the
/// clipped mean alone.
#[test]
fn noise_has_the_promised_scale() {
    let device = Device::flex();
    let dims = (1, 28, 28);
    let model = fresh_model(ModelKind::Cnn, dims, 3, &device);
    let (pixels, labels) = batch(8, dims, 2);
    let (clip, sigma) = (0.5, 1.3);
    let quiet = dp(&model, &pixels, &labels, dims, clip, 0.0);
    let noisy = dp(&model, &pixels, &labels, dims, clip, sigma);
    let z: Vec<f64> =
        noisy.iter().zip(&quiet).map(|(a, b)| f64::from(a - b) * labels.len() as f64 / (sigma * clip)).collect();
    let n = z.len() as f64;
    let mean = z.iter().sum::<f64>() / n;
    let sd = (z.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
    println!("{} coordinates: noise/(σC/b) mean {mean:.4}, sd {sd:.4}", z.len());
    assert!(mean.abs() < 0.02 && (sd - 1.0).abs() < 0.02, "noise mean {mean}, sd {sd}");
    // The same seed draws the same noise.
    assert_eq!(noisy, dp(&model, &pixels, &labels, dims, clip, sigma));
}

#[test]
fn spec_rules() {
    let spec = ExperimentSpec::from_link("v=1&dp_sigma=1.2&dp_clip=2").unwrap();
    assert!(spec.train.dp());
    assert_eq!(spec.train.dp_clip, 2.0);
    assert_eq!(ExperimentSpec::from_link(&spec.to_link()).unwrap(), spec);
    // Plain specs keep their JSON: no DP field appears.
    let plain = serde_json::to_string(&ExperimentSpec::default()).unwrap();
    assert!(!plain.contains("dp_"), "{plain}");
    for (link, says) in [
        ("v=1&dp_clip=2", "dp_sigma"),
        ("v=1&dp_sigma=1&aug=cutmix", "CutMix"),
        ("v=1&dp_sigma=1&attack=malicious_loss", "malicious-loss"),
        ("v=1&dp_sigma=-1", "dp_sigma"),
    ] {
        let text = match ExperimentSpec::from_link(link) {
            Err(e) => e.to_string(),
            Ok(s) => s.validate().err().map(|e| e.to_string()).unwrap_or_default(),
        };
        assert!(text.contains(says), "{link}: {text}");
    }
}
