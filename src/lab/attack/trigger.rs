//! Triggers resolved for one dataset and seed: how pixels change, independent of labels and selection.

use serde::{Deserialize, Serialize};

use super::badnets::PatchTrigger;
use super::blended::{BlendTrigger, blend};
use crate::lab::error::{LabError, Result};
use crate::lab::params::{Hint, Kind, Named, ParamInfo, Params, other, table_params};
use crate::lab::rng::{LabRng, Stream};

/// Which trigger, with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum TriggerSpec {
    Patch(PatchTrigger),
    Blend(BlendTrigger),
}

/// A trigger's parameters are those of its family.
impl Params for TriggerSpec {
    fn params(&self) -> Vec<&'static ParamInfo> {
        match self {
            Self::Patch(p) => p.params(),
            Self::Blend(b) => b.params(),
        }
    }
    fn get(&self, key: &str) -> Option<String> {
        match self {
            Self::Patch(p) => p.get(key),
            Self::Blend(b) => b.get(key),
        }
    }
    fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
        match self {
            Self::Patch(p) => p.set(key, value),
            Self::Blend(b) => b.set(key, value),
        }
    }
    fn validate(&self) -> std::result::Result<(), String> {
        match self {
            Self::Patch(p) => p.validate(),
            Self::Blend(b) => b.validate(),
        }
    }
}

/// Which trigger family an attack that can use any trigger stamps (clean-label, malicious loss).
pub const TRIGGER: ParamInfo = other("trigger", Kind::Choice(TRIGGERS), Hint::Select)
    .selector()
    .doc("Trigger family: the BadNets patch or the blended pattern.");
const TRIGGERS: &[Named] =
    &[Named { value: "patch", label: "BadNets patch" }, Named { value: "blend", label: "blended pattern" }];

/// The parameters of an attack's trigger when the attack lets the user pick its family: the family
/// (`trigger`) first, then that family's own.
impl TriggerSpec {
    fn family(&self) -> &'static str {
        match self {
            Self::Patch(_) => TRIGGERS[0].value,
            Self::Blend(_) => TRIGGERS[1].value,
        }
    }
    /// Every parameter of every family, for CLI flags and docs.
    pub fn every_choice_param() -> Vec<&'static ParamInfo> {
        let mut out = vec![&TRIGGER];
        out.extend(table_params::<PatchTrigger>());
        out.extend(table_params::<BlendTrigger>());
        out
    }
    pub fn choice_params(&self) -> Vec<&'static ParamInfo> {
        let mut out = vec![&TRIGGER];
        out.extend(self.params());
        out
    }
    pub fn choice_get(&self, key: &str) -> Option<String> {
        if key == TRIGGER.key { Some(self.family().to_string()) } else { self.get(key) }
    }
    pub fn choice_set(&mut self, key: &str, value: &str) -> Option<std::result::Result<(), String>> {
        if key != TRIGGER.key {
            return self.set(key, value);
        }
        // Switching family starts from that family's defaults; naming the current one keeps its values.
        Some(match value {
            v if v == self.family() => Ok(()),
            v if v == TRIGGERS[0].value => Ok(*self = Self::Patch(PatchTrigger::default())),
            v if v == TRIGGERS[1].value => Ok(*self = Self::Blend(BlendTrigger::default())),
            v => Err(TRIGGER.unknown(v)),
        })
    }
}

/// A trigger ready to stamp images of one shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// Pixels inside the square (x, y, size) are replaced by `pixels` (channel-planar size×size).
    Patch { x: usize, y: usize, size: usize, pixels: Vec<u8> },
    /// Every pixel is blended with `pattern`.
    Blend { alpha: f32, pattern: Vec<u8> },
}

impl Trigger {
    /// Resolves `spec` for images of `dims` = (channels, height, width), drawing any randomness from `seed`.
    pub fn build(spec: &TriggerSpec, dims: (usize, usize, usize), seed: u64) -> Result<Self> {
        let (c, h, w) = dims;
        let mut rng = LabRng::new(seed, Stream::Trigger);
        match spec {
            TriggerSpec::Patch(p) => {
                let (x, y) = p.origin(h, w).map_err(LabError::spec)?;
                Ok(Self::Patch { x, y, size: p.size, pixels: p.pattern_pixels(c, &mut rng) })
            }
            TriggerSpec::Blend(b) => {
                Ok(Self::Blend { alpha: b.alpha, pattern: b.pattern_pixels(dims, &mut rng).map_err(LabError::spec)? })
            }
        }
    }

    /// Stamps the trigger on one channel-planar image of `dims`.
    pub fn apply(&self, image: &mut [u8], dims: (usize, usize, usize)) {
        let (c, h, w) = dims;
        match self {
            Self::Patch { x, y, size, pixels } => {
                for ch in 0..c {
                    for r in 0..*size {
                        for col in 0..*size {
                            image[ch * h * w + (y + r) * w + x + col] = pixels[ch * size * size + r * size + col];
                        }
                    }
                }
            }
            Self::Blend { alpha, pattern } => blend(image, pattern, *alpha),
        }
    }

    /// The trigger drawn on a black image: what the user sees as "the trigger".
    pub fn picture(&self, dims: (usize, usize, usize)) -> Vec<u8> {
        let mut img = vec![0u8; dims.0 * dims.1 * dims.2];
        match self {
            Self::Blend { pattern, .. } => img.copy_from_slice(pattern),
            Self::Patch { .. } => self.apply(&mut img, dims),
        }
        img
    }

    /// Per-pixel mask (height×width) of where the trigger acts, with its strength in [0, 1]; detectors
    /// compare reversed triggers against it.
    pub fn mask(&self, dims: (usize, usize, usize)) -> Vec<f32> {
        let (_, h, w) = dims;
        match self {
            Self::Patch { x, y, size, .. } => (0..h * w)
                .map(|i| {
                    let (r, c) = (i / w, i % w);
                    if (*y..y + size).contains(&r) && (*x..x + size).contains(&c) { 1.0 } else { 0.0 }
                })
                .collect(),
            Self::Blend { alpha, .. } => vec![*alpha; h * w],
        }
    }
}
