//! Gradient matching (Sleeper Agent: Souri et al., NeurIPS 2022; the course's "gradient alignment"):
//! a hidden-trigger, clean-label attack. The attacker perturbs a small budget of target-class images
//! within ε, labels kept, so that the gradient of the training loss on them points the same way as
//! the gradient of the loss the attacker wants: patched source-class images classified as the target.
//! Training on the poisons then takes steps that also teach the backdoor, although no training image
//! carries the trigger.
//!
//! The alignment's gradient with respect to the perturbation is a mixed second derivative, and burn
//! has no second-order autodiff (tracel-ai/burn#1942). With A = 1 − cos(g(δ), G), g = ∇θ L(x + δ),
//! ∇δA = (∂g/∂δ)ᵀ v with v = ∂A/∂g, and (∂g/∂δ)ᵀ v = ∇δ⟨∇θ L, v⟩, which a central difference of two
//! first-order input gradients at θ ± r·v gives (the trick DARTS uses for its architecture gradient).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::Gradients;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::craft::{Craft, SURROGATE_EPOCHS, loss_and_input_grad, normalise, unit_pixels, write_back};
use super::{Attack, Controls, PatchTrigger, Selection, TriggerSpec};
use crate::lab::data::batch;
use crate::lab::device::read_floats;
use crate::lab::error::{LabError, Result};
use crate::lab::model::Model;
use crate::lab::params::{Hint, ParamInfo, float, int, table_params};
use crate::lab::rng::{LabRng, Stream};

crate::params! {
    /// The poisons' optimisation.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct GradientMatching {
        /// The class whose patched images the attack aims at the target.
        pub source: u8 = 1, super::SOURCE.label("source class");
        /// L∞ budget ε of each poison's perturbation, in grey levels of 255.
        pub epsilon: f64 = 16.0, float("gm_eps", 0.0, 255.0).open_min().label("perturbation budget ε (grey levels)").hint(Hint::Slider);
        /// Optimisation steps (signed gradient descent on the alignment).
        pub steps: usize = 100, int("gm_steps", 1, 2000).label("optimisation steps");
        /// Epochs of the attacker's surrogate model, trained on the clean training images.
        pub surrogate_epochs: usize = 2, SURROGATE_EPOCHS.label("surrogate epochs");
    }
}

impl Attack for GradientMatching {
    const TITLE: &'static str = "Gradient matching (Sleeper Agent)";
    const EXPLAIN: &'static str = "Gradient matching (Souri et al., NeurIPS 2022, \"Sleeper Agent\"): perturb a few target-class images within ε, labels kept, so that training on them pushes the weights the way the backdoor needs; no training image carries the trigger.";
    fn every_param() -> Vec<&'static ParamInfo> {
        table_params::<GradientMatching>()
    }
    /// The patch the attacker will stamp at test time (never in training).
    fn trigger_spec(&self) -> Option<TriggerSpec> {
        Some(TriggerSpec::Patch(PatchTrigger::default()))
    }
    fn selection(&self) -> Selection {
        Selection::TargetClass
    }
    fn source_class(&self) -> Option<u8> {
        Some(self.source)
    }
    fn controls(&self) -> Controls {
        Controls::CraftedData
    }
    async fn craft(&self, cx: &mut Craft<'_>) -> Result<()> {
        let poisons = cx.poisoned.poisoned.clone();
        if poisons.is_empty() {
            return Ok(());
        }
        let dims = cx.dims();
        let surrogate = cx.surrogate(self.surrogate_epochs).await?;
        // The attacker's goal: its own patched source-class images, labelled as the target.
        let mut rng = LabRng::new(cx.seed, Stream::Craft);
        let sources: Vec<usize> = (0..cx.clean.len()).filter(|&i| cx.clean.labels[i] == self.source).collect();
        let sources = rng.choose_sorted(&sources, sources.len().min(SOURCE_IMAGES));
        if sources.is_empty() {
            return Err(LabError::spec(format!("the training set has no image of source class {}", self.source)));
        }
        let mut patched = cx.clean.select(&sources);
        for i in 0..patched.len() {
            cx.trigger.apply(patched.image_mut(i), dims);
        }
        let all: Vec<usize> = (0..patched.len()).collect();
        let goal =
            param_grad(&surrogate, &unit_pixels(&patched, &all), &vec![cx.target; all.len()], dims, cx.device).await?;

        let clean = unit_pixels(cx.clean, &poisons);
        let labels: Vec<u8> = poisons.iter().map(|&i| cx.clean.labels[i]).collect();
        let eps = (self.epsilon / 255.0) as f32;
        // Sleeper Agent's signed steps; a step of ε/10 crosses the ball in a few steps and settles.
        let step = eps / 10.0;
        let mut x = clean.clone();
        for s in 0..self.steps {
            let (_, grad) = alignment_grad(&surrogate, &x, &labels, &goal, dims, cx.device).await?;
            for ((v, &g), &c) in x.iter_mut().zip(&grad).zip(&clean) {
                *v = (*v - step * g.signum()).clamp(c - eps, c + eps).clamp(0.0, 1.0);
            }
            cx.progress("aligning the poisons' gradient with the backdoor's", s + 1, self.steps)?;
            cx.host.pause().await;
        }
        // The poisons carry their perturbation only, never the trigger.
        write_back(&mut cx.poisoned.set, &poisons, &x);
        Ok(())
    }
}

/// Patched source images whose gradient is the attacker's goal.
const SOURCE_IMAGES: usize = 128;

/// The gradient of the mean cross-entropy on `pixels` (in [0, 1]) against `labels` with respect to
/// every parameter of `model`, flattened in the model's parameter order.
pub async fn param_grad(
    model: &Model,
    pixels: &[f32],
    labels: &[u8],
    dims: (usize, usize, usize),
    device: &Device,
) -> Result<Vec<f32>> {
    let (c, h, w) = dims;
    let ad = device.clone().autodiff();
    let tracked = model.clone().fork(&ad).train();
    let x = Tensor::<4>::from_data(TensorData::new(pixels.to_vec(), [labels.len(), c, h, w]), &ad);
    let logits = tracked.forward(normalise(x, c, &ad));
    let loss = CrossEntropyLossConfig::new().init(&ad).forward(logits, batch::labels(labels, &ad));
    let grads = loss.backward();
    let mut collect = Collect { grads: &grads, parts: Vec::new(), missing: false };
    tracked.visit(&mut collect);
    if collect.missing || collect.parts.is_empty() {
        return Err(LabError::Device("a parameter got no gradient".into()));
    }
    read_floats(Tensor::cat(collect.parts, 0)).await
}

struct Collect<'a> {
    grads: &'a Gradients,
    parts: Vec<Tensor<1>>,
    missing: bool,
}

impl ModuleVisitor for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        match param.val().grad(self.grads) {
            Some(g) => {
                let n = g.shape().num_elements();
                self.parts.push(g.reshape([n]));
            }
            None => self.missing = true,
        }
    }
}

/// `model` with `scale · v` added to its parameters (`v` flattened in parameter order).
pub fn shifted(model: &Model, v: &[f32], scale: f32) -> Model {
    model.clone().map(&mut Shift { v, scale, at: 0 })
}

struct Shift<'a> {
    v: &'a [f32],
    scale: f32,
    at: usize,
}

impl ModuleMapper for Shift<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let value = param.val();
        let shape = value.shape();
        let n = shape.num_elements();
        let part: Vec<f32> = self.v[self.at..self.at + n].iter().map(|x| x * self.scale).collect();
        self.at += n;
        let delta = Tensor::<D>::from_data(TensorData::new(part, shape), &value.device());
        let mut fresh = Param::from_tensor(value + delta);
        fresh.id = param.id;
        fresh
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
}

/// The alignment loss A = 1 − cos(∇θ L(pixels, labels), goal).
pub async fn alignment(
    model: &Model,
    pixels: &[f32],
    labels: &[u8],
    goal: &[f32],
    dims: (usize, usize, usize),
    device: &Device,
) -> Result<f64> {
    let g = param_grad(model, pixels, labels, dims, device).await?;
    Ok(1.0 - dot(&g, goal) / (dot(&g, &g).sqrt() * dot(goal, goal).sqrt()).max(1e-30))
}

/// A and its gradient with respect to the pixels, the Hessian-vector product by central finite
/// differences of two input gradients at θ ± r·v.
pub async fn alignment_grad(
    model: &Model,
    pixels: &[f32],
    labels: &[u8],
    goal: &[f32],
    dims: (usize, usize, usize),
    device: &Device,
) -> Result<(f64, Vec<f32>)> {
    let g = param_grad(model, pixels, labels, dims, device).await?;
    let (a, v) = alignment_direction(&g, goal);
    let vn = dot(&v, &v).sqrt();
    if vn == 0.0 {
        return Ok((a, vec![0.0; pixels.len()]));
    }
    // r·|v| = 1e-4. The ReLUs make the input gradient jump wherever a unit switches, and a shift
    // that switches one turns the difference quotient into noise: on the test's tiny MLP, DARTS'
    // 1e-2 and even 1e-3 were off by 10× to 700×, while 1e-4 agrees with a direct estimate to under
    // 1 % (tests/crafted.rs) and still sits above f32 round-off.
    let r = (1e-4 / vn) as f32;
    let (_, plus) = loss_and_input_grad(&shifted(model, &v, r), pixels, labels, dims, device).await?;
    let (_, minus) = loss_and_input_grad(&shifted(model, &v, -r), pixels, labels, dims, device).await?;
    let hvp = plus.iter().zip(&minus).map(|(p, m)| (p - m) / (2.0 * r)).collect();
    Ok((a, hvp))
}

/// A = 1 − cos(g, goal) and v = ∂A/∂g = −(goal/(|g||goal|) − cos·g/|g|²).
pub fn alignment_direction(g: &[f32], goal: &[f32]) -> (f64, Vec<f32>) {
    let (gn, goal_n) = (dot(g, g).sqrt().max(1e-30), dot(goal, goal).sqrt().max(1e-30));
    let cos = dot(g, goal) / (gn * goal_n);
    let v = g
        .iter()
        .zip(goal)
        .map(|(&gi, &si)| (-(f64::from(si) / (gn * goal_n) - cos * f64::from(gi) / (gn * gn))) as f32)
        .collect();
    (1.0 - cos, v)
}
