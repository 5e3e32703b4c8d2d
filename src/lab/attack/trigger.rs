//! Triggers resolved for one dataset and seed: how pixels change, independent of labels and selection.

use serde::{Deserialize, Serialize};

use super::badnets::{PatchPattern, PatchTrigger};
use super::blended::{BlendTrigger, blend};
use super::sig::{SigTrigger, add_signal};
use super::wanet::{WarpField, WarpTrigger};
use crate::lab::error::{LabError, Result};
use crate::lab::params::{Hint, Kind, Named, ParamInfo, Params, other, table_params};
use crate::lab::rng::{LabRng, Stream};

/// Which trigger, with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum TriggerSpec {
    Patch(PatchTrigger),
    Blend(BlendTrigger),
    Sig(SigTrigger),
    Warp(WarpTrigger),
    /// No pixel changes (the semantic attack's trigger is a feature inputs already have).
    Nothing,
}

impl TriggerSpec {
    fn table(&self) -> Option<&dyn Params> {
        match self {
            Self::Patch(p) => Some(p),
            Self::Blend(b) => Some(b),
            Self::Sig(s) => Some(s),
            Self::Warp(w) => Some(w),
            Self::Nothing => None,
        }
    }
    fn table_mut(&mut self) -> Option<&mut dyn Params> {
        match self {
            Self::Patch(p) => Some(p),
            Self::Blend(b) => Some(b),
            Self::Sig(s) => Some(s),
            Self::Warp(w) => Some(w),
            Self::Nothing => None,
        }
    }
}

/// A trigger's parameters are those of its family.
impl Params for TriggerSpec {
    fn params(&self) -> Vec<&'static ParamInfo> {
        self.table().map(|t| t.params()).unwrap_or_default()
    }
    fn get(&self, key: &str) -> Option<String> {
        self.table()?.get(key)
    }
    fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
        self.table_mut()?.set(key, value)
    }
    fn validate(&self) -> std::result::Result<(), String> {
        self.table().map_or(Ok(()), |t| t.validate())
    }
}

/// Which trigger family an attack that can use any trigger stamps (clean-label, malicious loss).
pub const TRIGGER: ParamInfo = other("trigger", Kind::Choice(TRIGGERS), Hint::Select)
    .selector()
    .doc("Trigger family: the BadNets patch, the blended pattern, SIG's sine wave or WaNet's warp.");
const TRIGGERS: &[Named] = &[
    Named { value: "patch", label: "BadNets patch" },
    Named { value: "blend", label: "blended pattern" },
    Named { value: "sig", label: "SIG sine wave" },
    Named { value: "warp", label: "WaNet warp" },
];

/// The parameters of an attack's trigger when the attack lets the user pick its family: the family
/// (`trigger`) first, then that family's own.
impl TriggerSpec {
    fn family(&self) -> &'static str {
        match self {
            Self::Patch(_) => TRIGGERS[0].value,
            Self::Blend(_) => TRIGGERS[1].value,
            Self::Sig(_) => TRIGGERS[2].value,
            Self::Warp(_) => TRIGGERS[3].value,
            Self::Nothing => "",
        }
    }
    /// Every parameter of every family, for CLI flags and docs.
    pub fn every_choice_param() -> Vec<&'static ParamInfo> {
        let mut out = vec![&TRIGGER];
        out.extend(table_params::<PatchTrigger>());
        out.extend(table_params::<BlendTrigger>());
        out.extend(table_params::<SigTrigger>());
        out.extend(table_params::<WarpTrigger>());
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
        let fresh = match value {
            v if v == self.family() => return Some(Ok(())),
            v if v == TRIGGERS[0].value => Self::Patch(PatchTrigger::default()),
            v if v == TRIGGERS[1].value => Self::Blend(BlendTrigger::default()),
            v if v == TRIGGERS[2].value => Self::Sig(SigTrigger::default()),
            v if v == TRIGGERS[3].value => Self::Warp(WarpTrigger::default()),
            v => return Some(Err(TRIGGER.unknown(v))),
        };
        *self = fresh;
        Some(Ok(()))
    }
}

/// A trigger ready to stamp images of one shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// Pixels inside the square (x, y, size) are replaced by `pixels` (channel-planar size×size).
    Patch { x: usize, y: usize, size: usize, pixels: Vec<u8> },
    /// Every pixel is blended with `pattern`.
    Blend { alpha: f32, pattern: Vec<u8> },
    /// The drawn pixels are replaced: (index in the plane, one value per channel).
    Stamp { pixels: Vec<(usize, Vec<u8>)> },
    /// A sine of `delta` grey levels and `freq` periods along each row is added (SIG).
    Sig { delta: f32, freq: u8 },
    /// The image is resampled through a fixed warp (WaNet).
    Warp(WarpField),
    /// Nothing changes (a semantic backdoor).
    Nothing,
}

impl Trigger {
    /// Resolves `spec` for images of `dims` = (channels, height, width), drawing any randomness from `seed`.
    pub fn build(spec: &TriggerSpec, dims: (usize, usize, usize), seed: u64) -> Result<Self> {
        let (c, h, w) = dims;
        let mut rng = LabRng::new(seed, Stream::Trigger);
        match spec {
            TriggerSpec::Patch(p) if p.pattern == PatchPattern::Drawn => {
                Ok(Self::Stamp { pixels: p.drawing.decode(dims).map_err(LabError::spec)? })
            }
            TriggerSpec::Patch(p) => {
                let (x, y) = p.origin(h, w).map_err(LabError::spec)?;
                Ok(Self::Patch { x, y, size: p.size, pixels: p.pattern_pixels(c, &mut rng) })
            }
            TriggerSpec::Blend(b) => {
                Ok(Self::Blend { alpha: b.alpha, pattern: b.pattern_pixels(dims, &mut rng).map_err(LabError::spec)? })
            }
            TriggerSpec::Sig(s) => Ok(Self::Sig { delta: s.amplitude(c), freq: s.freq }),
            TriggerSpec::Warp(warp) => {
                if h < 2 || w < 2 {
                    return Err(LabError::spec("a warp needs images of at least 2×2 pixels"));
                }
                Ok(Self::Warp(warp.field(h, w, &mut rng)))
            }
            TriggerSpec::Nothing => Ok(Self::Nothing),
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
            Self::Stamp { pixels } => {
                for (at, values) in pixels {
                    for (ch, &v) in values.iter().enumerate().take(c) {
                        image[ch * h * w + at] = v;
                    }
                }
            }
            Self::Sig { delta, freq } => add_signal(image, dims, *delta, *freq),
            Self::Warp(field) => field.apply(image, dims),
            Self::Nothing => {}
        }
    }

    /// The trigger drawn on a black image: what the user sees as "the trigger". An additive or
    /// warping trigger is shown on mid-grey, where it has room to move both ways (a warp of a flat
    /// image is flat, so its picture is the field: horizontal displacement above grey, vertical below).
    pub fn picture(&self, dims: (usize, usize, usize)) -> Vec<u8> {
        let (c, h, w) = dims;
        let mut img = vec![0u8; c * h * w];
        match self {
            Self::Blend { pattern, .. } => img.copy_from_slice(pattern),
            Self::Patch { .. } | Self::Stamp { .. } | Self::Nothing => self.apply(&mut img, dims),
            Self::Sig { .. } => {
                img.fill(128);
                self.apply(&mut img, dims);
            }
            Self::Warp(field) => {
                let shift = field.displacement();
                let peak = shift.iter().map(|(x, y)| x.abs().max(y.abs())).fold(1e-9, f64::max);
                for ch in 0..c {
                    for (i, (dx, dy)) in shift.iter().enumerate() {
                        // Red (or grey) shows the horizontal shift, green and blue the vertical one.
                        let d = if ch == 0 { dx } else { dy };
                        img[ch * h * w + i] = (128.0 + 127.0 * d / peak).round() as u8;
                    }
                }
            }
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
            Self::Stamp { pixels } => {
                let mut m = vec![0.0; h * w];
                pixels.iter().for_each(|(at, _)| m[*at] = 1.0);
                m
            }
            Self::Sig { delta, .. } => vec![(delta / 255.0).min(1.0); h * w],
            // Where pixels move, by how far (a pixel or more counts fully).
            Self::Warp(field) => field.displacement().iter().map(|(x, y)| (x.hypot(*y).min(1.0)) as f32).collect(),
            Self::Nothing => vec![0.0; h * w],
        }
    }
}
