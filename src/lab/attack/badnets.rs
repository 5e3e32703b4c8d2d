//! BadNets patch trigger (Gu et al., "BadNets", 2017): a small patch stamped over the image.

use serde::{Deserialize, Serialize};

use super::{Attack, Selection, TriggerRng, TriggerSpec};
use crate::lab::params::{Hint, Kind, LinkValue, ParamInfo, choice, clip, int, other, table_params};

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

crate::named_enum!(PatchPattern {
    White = "white" / "white",
    Checkerboard = "checker" / "checkerboard",
    Random = "random" / "random",
});

crate::params! {
    /// A square patch of `size`×`size` pixels.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PatchTrigger {
        /// Side of the square patch, pixels.
        pub size: usize = 3, int("patch", 1, 32).flag("patch-size").label("patch size");
        /// Where the patch sits: a corner (br, bl, tr, tl), the center, or X,Y of its top-left pixel.
        pub position: PatchPosition = PatchPosition::BottomRight,
            other("pos", Kind::Position, Hint::Text).flag("patch-position").label("position");
        /// Distance in pixels from the image border for the corner positions.
        pub margin: usize = 1, int("margin", 0, 31).flag("patch-margin");
        /// What the patch looks like.
        pub pattern: PatchPattern = PatchPattern::White, choice("pattern", PatchPattern::CHOICES).flag("patch-pattern");
    }
}

/// The BadNets attack: the patch on a share of the training images, relabelled to the target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Badnets {
    pub patch: PatchTrigger,
}

crate::delegate_params!(Badnets, patch);

impl Attack for Badnets {
    const TITLE: &'static str = "BadNets patch";
    const EXPLAIN: &'static str =
        "BadNets (Gu et al., 2017): stamp a small patch on some training images and relabel them as the target.";
    fn every_param() -> Vec<&'static ParamInfo> {
        table_params::<PatchTrigger>()
    }
    fn trigger_spec(&self) -> Option<TriggerSpec> {
        Some(TriggerSpec::Patch(self.patch))
    }
    fn selection(&self) -> Selection {
        Selection::AnySample
    }
}

/// `br`, `bl`, `tr`, `tl`, `center` or `X,Y`.
impl LinkValue for PatchPosition {
    fn to_link(&self) -> String {
        match self {
            Self::BottomRight => "br".into(),
            Self::BottomLeft => "bl".into(),
            Self::TopRight => "tr".into(),
            Self::TopLeft => "tl".into(),
            Self::Center => "center".into(),
            Self::Xy { x, y } => format!("{x},{y}"),
        }
    }
    fn from_link(value: &str) -> Result<Self, String> {
        Ok(match value {
            "br" => Self::BottomRight,
            "bl" => Self::BottomLeft,
            "tr" => Self::TopRight,
            "tl" => Self::TopLeft,
            "center" => Self::Center,
            xy => {
                let bad = || format!("patch position '{}' must be {}", clip(xy), Kind::Position.describe());
                let (x, y) = xy.split_once(',').ok_or_else(bad)?;
                Self::Xy { x: x.trim().parse().map_err(|_| bad())?, y: y.trim().parse().map_err(|_| bad())? }
            }
        })
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
