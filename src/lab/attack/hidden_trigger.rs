//! Hidden-trigger backdoor (Saha, Subramanya & Pirsiavash, AAAI 2020), in its transfer-learning
//! setting: someone publishes a pre-trained model, and the victim fine-tunes only its last layer on
//! data the attacker slipped poisons into. The poisons are target-class images, correctly labelled,
//! perturbed within ε so that their penultimate features collide with those of patched source-class
//! images. The trigger never appears in the training set; after fine-tuning, the patch on a source
//! image lands it among the poisons' features, on the target's side of the new last layer.
//!
//! Here the pre-trained model is the attacker's surrogate (trained on the clean training images), the
//! victim's training starts from it with every layer but the last frozen, and the poisons are crafted
//! against its features.

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::craft::{Craft, SURROGATE_EPOCHS, normalise, unit_pixels, write_back};
use super::{Attack, Controls, PatchPattern, PatchTrigger, Selection, TriggerSpec};
use crate::lab::device::read_floats;
use crate::lab::error::{LabError, Result};
use crate::lab::model::Model;
use crate::lab::params::{Hint, ParamInfo, Params, float, int, table_params};
use crate::lab::rng::{LabRng, Stream};

crate::params! {
    /// The poisons' feature collision.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Collision {
        /// The class whose patched images the attack aims at the target.
        pub source: u8 = 1, super::SOURCE.label("source class");
        /// L∞ budget ε of each poison's perturbation, in grey levels of 255.
        pub epsilon: f64 = 16.0, float("ht_eps", 0.0, 255.0).open_min().label("perturbation budget ε (grey levels)").hint(Hint::Slider);
        /// Optimisation steps of the feature collision.
        pub steps: usize = 100, int("ht_steps", 1, 2000).label("optimisation steps");
        /// Epochs of the pre-trained model (the attacker's surrogate), trained on the clean training images.
        pub surrogate_epochs: usize = 2, SURROGATE_EPOCHS.label("pre-training epochs");
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HiddenTrigger {
    pub collision: Collision,
    /// The patch shown only at test time (the paper's random-pixel square).
    pub patch: PatchTrigger,
}

impl Default for HiddenTrigger {
    fn default() -> Self {
        let patch = PatchTrigger { size: 5, pattern: PatchPattern::Random, ..PatchTrigger::default() };
        Self { collision: Collision::default(), patch }
    }
}

impl Params for HiddenTrigger {
    fn params(&self) -> Vec<&'static ParamInfo> {
        let mut out = self.collision.params();
        out.extend(self.patch.params());
        out
    }
    fn get(&self, key: &str) -> Option<String> {
        self.collision.get(key).or_else(|| self.patch.get(key))
    }
    fn set(&mut self, key: &str, value: &str) -> Option<std::result::Result<(), String>> {
        self.collision.set(key, value).or_else(|| self.patch.set(key, value))
    }
    fn validate(&self) -> std::result::Result<(), String> {
        self.collision.validate()?;
        self.patch.validate()
    }
}

/// Poisons per optimisation batch.
const BATCH: usize = 64;

impl Attack for HiddenTrigger {
    const TITLE: &'static str = "Hidden trigger (feature collision, transfer learning)";
    const EXPLAIN: &'static str = "Hidden trigger (Saha et al., AAAI 2020): the victim fine-tunes the last layer of a published model; the attacker perturbs target-class images within ε so their features collide with patched source images. No training image shows the trigger.";
    fn every_param() -> Vec<&'static ParamInfo> {
        let mut out = table_params::<Collision>();
        out.extend(table_params::<PatchTrigger>());
        out
    }
    fn trigger_spec(&self) -> Option<TriggerSpec> {
        Some(TriggerSpec::Patch(self.patch.clone()))
    }
    fn selection(&self) -> Selection {
        Selection::TargetClass
    }
    fn source_class(&self) -> Option<u8> {
        Some(self.collision.source)
    }
    fn controls(&self) -> Controls {
        Controls::CraftedData
    }
    async fn craft(&self, cx: &mut Craft<'_>) -> Result<()> {
        let c = &self.collision;
        let base = cx.surrogate(c.surrogate_epochs).await?;
        let poisons = cx.poisoned.poisoned.clone();
        let dims = cx.dims();
        let sources: Vec<usize> = (0..cx.clean.len()).filter(|&i| cx.clean.labels[i] == c.source).collect();
        if sources.is_empty() {
            return Err(LabError::spec(format!("the training set has no image of source class {}", c.source)));
        }
        let mut rng = LabRng::new(cx.seed, Stream::Craft);
        let eps = (c.epsilon / 255.0) as f32;
        let step = eps / 10.0;
        let chunks: Vec<&[usize]> = poisons.chunks(BATCH).collect();
        for (k, chunk) in chunks.iter().enumerate() {
            // Each poison collides with a patched source image of its own.
            let partners: Vec<usize> = chunk.iter().map(|_| sources[rng.below(sources.len())]).collect();
            let mut patched = cx.clean.select(&partners);
            for i in 0..patched.len() {
                cx.trigger.apply(patched.image_mut(i), dims);
            }
            let all: Vec<usize> = (0..patched.len()).collect();
            let goal = features(&base, &unit_pixels(&patched, &all), chunk.len(), dims, cx.device).await?;
            let clean = unit_pixels(cx.clean, chunk);
            let mut x = clean.clone();
            for _ in 0..c.steps {
                let grad = collision_grad(&base, &x, &goal, chunk.len(), dims, cx.device).await?;
                for ((v, &g), &c0) in x.iter_mut().zip(&grad).zip(&clean) {
                    *v = (*v - step * g.signum()).clamp(c0 - eps, c0 + eps).clamp(0.0, 1.0);
                }
                cx.host.pause().await;
            }
            write_back(&mut cx.poisoned.set, chunk, &x);
            cx.progress("colliding the poisons' features with patched source images", k + 1, chunks.len())?;
        }
        // The victim fine-tunes the published model's last layer.
        cx.base = Some(base);
        Ok(())
    }
}

/// Penultimate features of `n` images given as pixels in [0, 1].
async fn features(
    model: &Model,
    pixels: &[f32],
    n: usize,
    dims: (usize, usize, usize),
    device: &Device,
) -> Result<Vec<f32>> {
    let (c, h, w) = dims;
    let x = Tensor::<4>::from_data(TensorData::new(pixels.to_vec(), [n, c, h, w]), device);
    read_floats(model.features(normalise(x, c, device))).await
}

/// The gradient of Σ‖φ(x) − goal‖² with respect to the pixels x.
async fn collision_grad(
    model: &Model,
    pixels: &[f32],
    goal: &[f32],
    n: usize,
    dims: (usize, usize, usize),
    device: &Device,
) -> Result<Vec<f32>> {
    let (c, h, w) = dims;
    let ad = device.clone().autodiff();
    let x = Tensor::<4>::from_data(TensorData::new(pixels.to_vec(), [n, c, h, w]), &ad).require_grad();
    let phi = model.features(normalise(x.clone(), c, &ad));
    let width = goal.len() / n;
    let target = Tensor::<2>::from_data(TensorData::new(goal.to_vec(), [n, width]), &ad);
    let loss = (phi - target).powi_scalar(2).sum();
    let grads = loss.backward();
    let g = x.grad(&grads).ok_or_else(|| LabError::Device("no gradient for the poisons' pixels".into()))?;
    read_floats(g).await
}
