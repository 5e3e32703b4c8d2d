//! Architectural backdoor (Bober-Irizar et al., "Architectural Backdoors in Neural Networks", 2022):
//! the attacker ships the architecture, not the data or the weights. Next to the usual network sits a
//! fixed, parameter-free trigger detector computed from the input pixels and added to the target
//! logit: logits = f_θ(x) + gain · score(x) · e_t. The model is then trained on clean data only; the
//! branch learns nothing, so no gradient step (retraining from scratch, fine-tuning, fine-pruning,
//! unlearning) can remove it, and no weight file holds it.

use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::{Attack, PatchTrigger, Selection, Trigger, TriggerSpec};
use crate::lab::data::{NUM_CLASSES, batch};
use crate::lab::params::{Param, ParamInfo, Params, float, table_params};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchBackdoor {
    /// What the branch adds to the target logit when the trigger is present.
    pub gain: f64,
    /// Mean absolute pixel difference (0–1) from the trigger at which the detector's score reaches 0.
    pub tolerance: f64,
    pub patch: PatchTrigger,
}

impl Default for ArchBackdoor {
    fn default() -> Self {
        Self { gain: 100.0, tolerance: 0.2, patch: PatchTrigger::default() }
    }
}

const GAIN: Param<ArchBackdoor> = crate::lens!(
    float("arch_gain", 0.0, 10_000.0).label("logit boost").doc(
        "Architectural backdoor: what the fixed trigger detector adds to the target logit when the patch is present."
    ),
    gain
);
const TOLERANCE: Param<ArchBackdoor> = crate::lens!(
    float("arch_tol", 0.0, 1.0).open_min().label("detector tolerance").doc(
        "Architectural backdoor: the mean pixel difference (0–1) from the patch at which the detector stops firing."
    ),
    tolerance
);
const OWN: [&Param<ArchBackdoor>; 2] = [&GAIN, &TOLERANCE];

impl Params for ArchBackdoor {
    fn params(&self) -> Vec<&'static ParamInfo> {
        let mut out: Vec<&'static ParamInfo> = OWN.iter().map(|p| &p.info).collect();
        out.extend(self.patch.params());
        out
    }
    fn get(&self, key: &str) -> Option<String> {
        match OWN.iter().find(|p| p.info.key == key) {
            Some(p) => Some((p.get)(self)),
            None => self.patch.get(key),
        }
    }
    fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
        match OWN.iter().find(|p| p.info.key == key) {
            Some(p) => Some((p.set)(self, value).map_err(|reason| p.info.unparsable(value, reason))),
            None => self.patch.set(key, value),
        }
    }
    fn validate(&self) -> Result<(), String> {
        for p in OWN {
            p.info.check(&(p.get)(self))?;
        }
        if self.patch.pattern == super::PatchPattern::Drawn {
            return Err("the architectural backdoor's detector matches a square patch: choose white, checker or random, not a drawn trigger".into());
        }
        self.patch.validate()
    }
}

impl Attack for ArchBackdoor {
    const TITLE: &'static str = "Architectural backdoor (attacker ships the model)";
    const EXPLAIN: &'static str = "Architectural backdoor (Bober-Irizar et al., 2022): the attacker supplies the architecture, which wires a fixed, parameter-free detector of the patch to the target logit. Trained on clean data only; nothing in the data or the weights shows it, and no training removes it.";
    fn every_param() -> Vec<&'static ParamInfo> {
        let mut out: Vec<&'static ParamInfo> = OWN.iter().map(|p| &p.info).collect();
        out.extend(table_params::<PatchTrigger>());
        out
    }
    fn trigger_spec(&self) -> Option<TriggerSpec> {
        Some(TriggerSpec::Patch(self.patch.clone()))
    }
    fn selection(&self) -> Selection {
        Selection::Nothing
    }
    fn branch(&self) -> Option<BranchStrength> {
        Some(BranchStrength { gain: self.gain, tolerance: self.tolerance })
    }
}

/// How hard the shipped trigger detector pushes, and how exact a match it wants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BranchStrength {
    pub gain: f64,
    pub tolerance: f64,
}

/// The attacker's branch for one trigger, image shape and target: plain numbers, no parameters. A
/// model holds it outside its parameters (`#[module(skip)]`), so optimisers, pruning masks and
/// weight files never see it.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerBranch {
    /// Top-left corner and side of the patch.
    x: usize,
    y: usize,
    size: usize,
    /// The patch in 0–1 pixel values, [channels, size, size].
    pattern: Vec<f32>,
    /// The input normalisation the model sees, per channel, to get pixels back.
    mean: Vec<f32>,
    std: Vec<f32>,
    tolerance: f32,
    /// `gain` at the target label, 0 elsewhere: [NUM_CLASSES].
    boost: Vec<f32>,
}

impl TriggerBranch {
    /// The detector for `trigger` on images with `channels`; `None` for a trigger it cannot spot
    /// from the pixels alone (a blend).
    pub fn new(trigger: &Trigger, channels: usize, target_label: u8, strength: BranchStrength) -> Option<Self> {
        let Trigger::Patch { x, y, size, pixels } = trigger else { return None };
        let (mean, std) = batch::stats(channels);
        let per_channel = |v: &[f32]| (0..channels).map(|ch| v[ch % v.len()]).collect();
        let mut boost = vec![0.0; NUM_CLASSES];
        boost[target_label as usize] = strength.gain as f32;
        Some(Self {
            x: *x,
            y: *y,
            size: *size,
            pattern: pixels.iter().map(|&p| f32::from(p) / 255.0).collect(),
            mean: per_channel(mean),
            std: per_channel(std),
            tolerance: strength.tolerance as f32,
            boost,
        })
    }

    /// What the branch adds to the logits: gain · score at the target, where score = max(0, 1 − d /
    /// tolerance) and d is the mean absolute difference between the patch region's pixels and the
    /// trigger's. The score is exactly 0 on images that do not carry the patch (within the
    /// tolerance), so the branch leaves clean training untouched.
    ///
    /// # Shapes
    /// - input: [batch, channels, height, width], normalised as `batch::images` does
    /// - output: [batch, NUM_CLASSES]
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let device = x.device();
        let [n, c, _, _] = x.dims();
        let s = self.size;
        let constant =
            |v: &[f32], shape: [usize; 4]| Tensor::<4>::from_data(TensorData::new(v.to_vec(), shape), &device);
        let region = x.slice([0..n, 0..c, self.y..self.y + s, self.x..self.x + s]); // [batch, c, s, s]
        let pixels = region * constant(&self.std, [1, c, 1, 1]) + constant(&self.mean, [1, c, 1, 1]);
        let diff = (pixels - constant(&self.pattern, [1, c, s, s])).abs();
        let d = diff.flatten::<2>(1, 3).mean_dim(1); // [batch, 1]
        let score = (d.div_scalar(self.tolerance).neg() + 1.0).clamp(0.0, 1.0); // [batch, 1]
        let boost = Tensor::<2>::from_data(TensorData::new(self.boost.clone(), [1, NUM_CLASSES]), &device);
        score * boost
    }
}
