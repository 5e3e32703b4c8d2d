//! BadNets patch trigger (Gu et al., "BadNets", 2017): a small patch stamped over the image.

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::{Attack, Selection, TriggerRng, TriggerSpec};
use crate::lab::params::{Hint, Kind, LinkValue, ParamInfo, Table, choice, clip, int, other, table_params};

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
    /// The pixels the user drew (`drawing`), wherever they are: size and position do not apply.
    Drawn,
}

crate::named_enum!(PatchPattern {
    White = "white" / "white",
    Checkerboard = "checker" / "checkerboard",
    Random = "random" / "random",
    Drawn = "drawn" / "drawn by you",
});

/// A drawn trigger: the pixels changed on a blank image, as base64url of one byte giving the values per
/// pixel (1: grey, used for every channel; 3: RGB), then one record per pixel (row, column, values), so
/// that a small drawing makes a short link. The default is the BadNets square at rows and columns
/// 24–26, the editor's starting point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Drawing(pub String);

impl Default for Drawing {
    fn default() -> Self {
        let square: Vec<(usize, usize, Vec<u8>)> =
            (24..27).flat_map(|r| (24..27).map(move |c| (r, c, vec![255]))).collect();
        Self::encode(&square)
    }
}

impl LinkValue for Drawing {
    fn to_link(&self) -> String {
        self.0.clone()
    }
    fn from_link(value: &str) -> Result<Self, String> {
        // Read here to refuse a malformed link early; the image size is checked when the trigger is
        // built for a dataset.
        let d = Self(value.to_string());
        d.records()?;
        Ok(d)
    }
}

impl Drawing {
    /// Encodes drawn pixels `(row, column, values)`; every pixel has as many values (1 or 3).
    pub fn encode(pixels: &[(usize, usize, Vec<u8>)]) -> Self {
        let per = pixels.first().map_or(1, |p| p.2.len());
        let mut bytes = vec![per as u8];
        for (r, c, values) in pixels {
            bytes.extend([*r as u8, *c as u8]);
            bytes.extend(values);
        }
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
    /// The drawn pixels as written: (row, column, values), or why they cannot be read.
    pub fn records(&self) -> Result<Vec<(usize, usize, Vec<u8>)>, String> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(self.0.trim_end_matches('='))
            .map_err(|e| format!("the drawing is not valid base64url: {e}"))?;
        let Some((&per, body)) = bytes.split_first() else {
            return Err("the drawing is empty: draw the trigger in the Poison step".into());
        };
        if per != 1 && per != 3 {
            return Err(format!(
                "the drawing's first byte says {per} values per pixel; it must be 1 (grey) or 3 (RGB)"
            ));
        }
        let record = 2 + per as usize;
        if body.is_empty() || body.len() % record != 0 {
            return Err(format!(
                "the drawing has {} bytes after its header, not a whole, non-zero number of {record}-byte pixels",
                body.len()
            ));
        }
        let mut out: Vec<(usize, usize, Vec<u8>)> = Vec::with_capacity(body.len() / record);
        for r in body.chunks_exact(record) {
            let (row, col) = (r[0] as usize, r[1] as usize);
            if out.iter().any(|(a, b, _)| (*a, *b) == (row, col)) {
                return Err(format!("the drawing lists the pixel at row {row}, column {col} twice"));
            }
            out.push((row, col, r[2..].to_vec()));
        }
        Ok(out)
    }
    /// The drawn pixels for images of `dims`: (index in the plane, one value per channel), or why not.
    pub fn decode(&self, dims: (usize, usize, usize)) -> Result<Vec<(usize, Vec<u8>)>, String> {
        let (c, h, w) = dims;
        let mut out = Vec::new();
        for (row, col, values) in self.records()? {
            if row >= h || col >= w {
                return Err(format!("the drawing has a pixel at row {row}, column {col}, outside a {w}×{h} image"));
            }
            let values = match values.len() {
                1 => vec![values[0]; c],
                n if n == c => values,
                n => return Err(format!("the drawing has {n} values per pixel but the images have {c} channels")),
            };
            out.push((row * w + col, values));
        }
        Ok(out)
    }
}

crate::params! {
    /// A square patch of `size`×`size` pixels.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PatchTrigger {
        /// Side of the square patch, pixels.
        pub size: usize = 3, int("patch", 1, 32).flag("patch-size").label("patch size");
        /// Where the patch sits: a corner (br, bl, tr, tl), the center, or X,Y of its top-left pixel.
        pub position: PatchPosition = PatchPosition::BottomRight,
            other("pos", Kind::Position, Hint::Text).flag("patch-position").label("position");
        /// Distance in pixels from the image border for the corner positions.
        pub margin: usize = 1, int("margin", 0, 31).flag("patch-margin");
        /// What the patch looks like (drawn: the pixels of `drawing`, wherever they are).
        pub pattern: PatchPattern = PatchPattern::White, choice("pattern", PatchPattern::CHOICES).flag("patch-pattern").selector();
        /// The drawn trigger (pattern=drawn): base64url of a byte giving the values per pixel (1 or 3), then each changed pixel as row, column and its values.
        #[serde(default, skip_serializing_if = "Drawing::is_default")]
        pub drawing: Drawing = Drawing::default(), other("drawing", Kind::Drawing, Hint::Text).label("drawn trigger");
    }
    applies(PatchTrigger::applies_now);
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
        Some(TriggerSpec::Patch(self.patch.clone()))
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
    /// A drawn trigger has no size, position or margin; only a drawn one has a drawing.
    fn applies_now(&self, key: &str) -> Result<(), &'static str> {
        // The table's rows in declaration order: size, position, margin, pattern, drawing.
        let row = <Self as Table>::PARAMS.iter().position(|p| p.info.key == key);
        let drawn = self.pattern == PatchPattern::Drawn;
        match row {
            Some(4) if !drawn => Err("a drawing is used only with pattern=drawn"),
            Some(0..=2) if drawn => Err("a drawn trigger sits where it was drawn, at its own size"),
            _ => Ok(()),
        }
    }

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
                    // Drawn pixels are stamped from the drawing (`Trigger::Stamp`), not a square.
                    PatchPattern::Drawn => 0,
                }
            })
            .collect()
    }
}
