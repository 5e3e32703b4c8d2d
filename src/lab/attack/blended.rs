//! Blended trigger (Chen et al., "Targeted Backdoor Attacks on Deep Learning Systems Using Data Poisoning",
//! 2017): alpha-blend a full-image pattern into the input, x' = (1 − α)·x + α·pattern.

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::{Attack, Selection, TriggerRng, TriggerSpec};
use crate::lab::params::{Hint, Kind, LinkValue, ParamInfo, float, other, table_params};

/// The image blended in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "source")]
pub enum BlendPattern {
    /// Uniform random noise per pixel and channel, drawn from the spec's seed.
    Noise,
    /// A given image as base64url bytes: channels×height×width (channel-planar) or, for RGB data,
    /// one grey plane height×width that is used for every channel.
    Image { pixels: String },
}

crate::params! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct BlendTrigger {
        /// Blend strength α: x' = (1 − α)·x + α·pattern.
        pub alpha: f32 = 0.2, float("alpha", 0.0, 1.0).open_min().label("blend α").hint(Hint::Slider);
        /// The image blended in: noise drawn from the seed, or base64url pixels (the CLI reads a raw 8-bit file:
        /// channels×height×width bytes or one grey plane).
        pub pattern: BlendPattern = BlendPattern::Noise, other("blend", Kind::Image, Hint::Text).flag("blend-image").label("blend image");
    }
}

/// `noise`, or the image's base64url pixels.
impl LinkValue for BlendPattern {
    fn to_link(&self) -> String {
        match self {
            Self::Noise => "noise".into(),
            Self::Image { pixels } => pixels.clone(),
        }
    }
    fn from_link(value: &str) -> Result<Self, String> {
        Ok(if value == "noise" { Self::Noise } else { Self::Image { pixels: value.to_string() } })
    }
}

/// The blended attack: the pattern mixed into a share of the training images, relabelled to the target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blended {
    pub blend: BlendTrigger,
}

crate::delegate_params!(Blended, blend);

impl Attack for Blended {
    const TITLE: &'static str = "Blended";
    const EXPLAIN: &'static str = "Blended (Chen et al., 2017): mix a faint full-image pattern into some images, x' = (1−α)·x + α·pattern, and relabel them.";
    fn every_param() -> Vec<&'static ParamInfo> {
        table_params::<BlendTrigger>()
    }
    fn trigger_spec(&self) -> Option<TriggerSpec> {
        Some(TriggerSpec::Blend(self.blend.clone()))
    }
    fn selection(&self) -> Selection {
        Selection::AnySample
    }
}

impl BlendTrigger {
    /// The full-size pattern, `channels * height * width` bytes, or an error for a malformed image.
    pub fn pattern_pixels(&self, dims: (usize, usize, usize), rng: &mut TriggerRng) -> Result<Vec<u8>, String> {
        let (c, h, w) = dims;
        match &self.pattern {
            BlendPattern::Noise => Ok((0..c * h * w).map(|_| rng.byte()).collect()),
            BlendPattern::Image { pixels } => {
                let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(pixels.trim_end_matches('='))
                    .map_err(|e| format!("blend image is not valid base64url: {e}"))?;
                if bytes.len() == c * h * w {
                    Ok(bytes)
                } else if bytes.len() == h * w {
                    Ok(bytes.repeat(c))
                } else {
                    Err(format!(
                        "blend image has {} bytes; expected {} ({c}×{h}×{w}) or {} (one {h}×{w} grey plane)",
                        bytes.len(),
                        c * h * w,
                        h * w
                    ))
                }
            }
        }
    }
}

/// Blends `pattern` into `image` in place with strength `alpha`.
pub fn blend(image: &mut [u8], pattern: &[u8], alpha: f32) {
    for (x, &p) in image.iter_mut().zip(pattern) {
        *x = ((1.0 - alpha) * *x as f32 + alpha * p as f32).round().clamp(0.0, 255.0) as u8;
    }
}
