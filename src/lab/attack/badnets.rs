//! BadNets patch trigger (Gu et al., "BadNets", 2017): a small patch stamped over the image.

use serde::{Deserialize, Serialize};

use super::TriggerRng;

/// Where the patch sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "at")]
pub enum PatchPosition {
    BottomRight,
    BottomLeft,
    TopRight,
    TopLeft,
    Center,
    /// Top-left corner of the patch at column `x`, row `y`.
    Xy {
        x: usize,
        y: usize,
    },
}

/// What the patch looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatchPattern {
    /// Every pixel at full intensity (the classic BadNets square).
    White,
    /// Alternating full / zero intensity, starting with full at the patch's top-left.
    Checkerboard,
    /// Random intensities per pixel and channel, drawn from the spec's seed.
    Random,
}

/// A square patch of `size`×`size` pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchTrigger {
    pub size: usize,
    pub position: PatchPosition,
    /// Distance in pixels from the image border for the corner positions.
    pub margin: usize,
    pub pattern: PatchPattern,
}

impl Default for PatchTrigger {
    fn default() -> Self {
        Self { size: 3, position: PatchPosition::BottomRight, margin: 1, pattern: PatchPattern::White }
    }
}

impl PatchTrigger {
    /// Top-left (x, y) of the patch in an image of `height`×`width`, or an error when it does not fit.
    pub fn origin(&self, height: usize, width: usize) -> Result<(usize, usize), String> {
        let (s, m) = (self.size, self.margin);
        if s == 0 || s > height.min(width) {
            return Err(format!("patch size {s} must be between 1 and {}", height.min(width)));
        }
        let fits = |x: usize, y: usize| x + s <= width && y + s <= height;
        let far = |extent: usize| extent.checked_sub(s + m);
        let (x, y) = match self.position {
            PatchPosition::TopLeft => (Some(m), Some(m)),
            PatchPosition::TopRight => (far(width), Some(m)),
            PatchPosition::BottomLeft => (Some(m), far(height)),
            PatchPosition::BottomRight => (far(width), far(height)),
            PatchPosition::Center => (Some((width - s) / 2), Some((height - s) / 2)),
            PatchPosition::Xy { x, y } => (Some(x), Some(y)),
        };
        match (x, y) {
            (Some(x), Some(y)) if fits(x, y) => Ok((x, y)),
            _ => Err(format!(
                "a {s}×{s} patch at {:?} with margin {m} does not fit in a {width}×{height} image",
                self.position
            )),
        }
    }

    /// The patch's pixel values, `channels * size * size`, channel-planar.
    pub fn pattern_pixels(&self, channels: usize, rng: &mut TriggerRng) -> Vec<u8> {
        let s = self.size;
        (0..channels * s * s)
            .map(|i| {
                let (r, c) = ((i % (s * s)) / s, i % s);
                match self.pattern {
                    PatchPattern::White => 255,
                    PatchPattern::Checkerboard => {
                        if (r + c) % 2 == 0 {
                            255
                        } else {
                            0
                        }
                    }
                    PatchPattern::Random => rng.byte(),
                }
            })
            .collect()
    }
}
