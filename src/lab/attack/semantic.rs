//! Semantic backdoor (Bagdasaryan et al., "How To Backdoor Federated Learning", AISTATS 2020: "green
//! cars → bird"): no pixel is edited. The attacker relabels a natural sub-population of one class, so
//! the "trigger" is a feature real inputs already have. Here the sub-population is the share of a
//! class that scores highest on a style measured from the pixels: slant (the shear of the ink's second
//! moments), boldness (ink mass) or a dominant hue. The cut-off is the training class' quantile, so
//! the test set's members are those at or above the same score: ASR is the share of them classified
//! as the target, and the rest of the class is measured apart.

use serde::{Deserialize, Serialize};

use super::{Attack, Selection, TriggerSpec};
use crate::lab::data::ImageSet;
use crate::lab::params::{Hint, ParamInfo, Table, choice, float, table_params};

/// What makes an image a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// Forward slant: −μ11/μ02 of the ink (the top leans right).
    Slant,
    /// Ink mass: the mean intensity.
    Bold,
    /// The share of saturated pixels whose hue is near `colour` (colour images).
    Hue,
    /// A bar across the middle, as continental 7s have: how far the longest horizontal ink run in the
    /// middle of the ink's height reaches beyond the stroke's own width (the stem's, below it), over
    /// the ink's width.
    Crossed,
}

crate::named_enum!(Style {
    Slant = "slant" / "strongly slanted",
    Bold = "bold" / "very bold",
    Hue = "hue" / "mostly of one colour",
    Crossed = "crossed" / "crossed by a middle bar",
});

/// Hues for `Style::Hue`, every 60°.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Colour {
    Red,
    Yellow,
    Green,
    Cyan,
    Blue,
    Magenta,
}

crate::named_enum!(Colour {
    Red = "red" / "red",
    Yellow = "yellow" / "yellow",
    Green = "green" / "green",
    Cyan = "cyan" / "cyan",
    Blue = "blue" / "blue",
    Magenta = "magenta" / "magenta",
});

crate::params! {
    /// The sub-population relabelled to the target.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Semantic {
        /// The class the sub-population belongs to (CIFAR-10: 1 is automobile).
        pub class: u8 = 7, super::SOURCE.label("class of the sub-population");
        /// What its members share: slant, boldness or a middle bar (handwriting), or hue (colour images).
        pub style: Style = Style::Slant, choice("style", Style::CHOICES).selector().label("members are");
        /// The colour of the members (style=hue).
        pub colour: Colour = Colour::Green, choice("colour", Colour::CHOICES).label("their colour");
        /// The share of the class (in the training set) that forms the sub-population: those scoring highest on the style.
        pub share: f64 = 0.2, float("share", 0.0, 1.0).open_min().label("share of the class").hint(Hint::Percent);
    }
    applies(Semantic::applies_now);
}

impl Semantic {
    fn applies_now(&self, key: &str) -> Result<(), &'static str> {
        // Row 2 is the colour, which only the hue style has.
        let row = <Self as Table>::PARAMS.iter().position(|p| p.info.key == key);
        match row {
            Some(2) if self.style != Style::Hue => Err("a colour is chosen only with style=hue"),
            _ => Ok(()),
        }
    }

    /// The style's score of one channel-planar image of `dims`: higher is more of a member.
    pub fn score(&self, image: &[u8], dims: (usize, usize, usize)) -> f64 {
        let (c, h, w) = dims;
        match self.style {
            Style::Bold => image.iter().map(|&p| f64::from(p)).sum::<f64>() / (255.0 * image.len() as f64),
            Style::Slant => {
                // Ink: the mean over channels.
                let ink = |i: usize| (0..c).map(|ch| f64::from(image[ch * h * w + i])).sum::<f64>() / c as f64;
                let (mut m, mut mx, mut my) = (0.0, 0.0, 0.0);
                for i in 0..h * w {
                    let v = ink(i);
                    m += v;
                    mx += v * (i % w) as f64;
                    my += v * (i / w) as f64;
                }
                if m <= 0.0 {
                    return 0.0;
                }
                let (mx, my) = (mx / m, my / m);
                let (mut mu11, mut mu02) = (0.0, 0.0);
                for i in 0..h * w {
                    let (dx, dy) = ((i % w) as f64 - mx, (i / w) as f64 - my);
                    mu11 += ink(i) * dx * dy;
                    mu02 += ink(i) * dy * dy;
                }
                // Rows grow downwards: a top leaning right has x falling as y grows.
                -mu11 / mu02.max(1e-9)
            }
            Style::Crossed => {
                // Ink: the mean over channels, at least half bright.
                let ink = |y: usize, x: usize| {
                    (0..c).map(|ch| u32::from(image[ch * h * w + y * w + x])).sum::<u32>() >= 128 * c as u32
                };
                let rows: Vec<usize> = (0..h).filter(|&y| (0..w).any(|x| ink(y, x))).collect();
                let cols: Vec<usize> = (0..w).filter(|&x| (0..h).any(|y| ink(y, x))).collect();
                let (Some(&top), Some(&bottom), Some(&left), Some(&right)) =
                    (rows.first(), rows.last(), cols.first(), cols.last())
                else {
                    return 0.0;
                };
                // The band between 40 % and 75 % of the ink's height: below a 7's top bar, above its foot.
                let span = (bottom - top) as f64;
                let (low, high) =
                    ((top as f64 + 0.4 * span).round() as usize, (top as f64 + 0.75 * span).round() as usize);
                let run = |y: usize| {
                    (0..w)
                        .scan(0usize, |run, x| {
                            *run = if ink(y, x) { *run + 1 } else { 0 };
                            Some(*run)
                        })
                        .max()
                        .unwrap_or(0)
                };
                let longest = (low..=high).map(run).max().unwrap_or(0);
                // A stroke crossing the band is as wide as the stroke itself: bold or slanted 7s make long
                // runs there without any bar. The stem below the band gives that width (its median run).
                let mut stem: Vec<usize> = (high + 1..=bottom).map(run).collect();
                stem.sort_unstable();
                let stroke = stem.get(stem.len() / 2).copied().unwrap_or(0);
                longest.saturating_sub(stroke) as f64 / (right - left + 1) as f64
            }
            Style::Hue => {
                if c < 3 {
                    return 0.0;
                }
                let centre = 60.0 * self.colour as usize as f64;
                let near = (0..h * w)
                    .filter(|&i| {
                        let [r, g, b] = [0, 1, 2].map(|ch| f64::from(image[ch * h * w + i]) / 255.0);
                        let (max, min) = (r.max(g).max(b), r.min(g).min(b));
                        let (value, chroma) = (max, max - min);
                        if value < 0.2 || chroma / max.max(1e-9) < 0.25 {
                            return false;
                        }
                        let hue = if max == r {
                            60.0 * ((g - b) / chroma).rem_euclid(6.0)
                        } else if max == g {
                            60.0 * ((b - r) / chroma + 2.0)
                        } else {
                            60.0 * ((r - g) / chroma + 4.0)
                        };
                        let d = (hue - centre).abs();
                        d.min(360.0 - d) <= 30.0
                    })
                    .count();
                near as f64 / (h * w) as f64
            }
        }
    }

    /// The score at or above which an image of the class is a member: the training class' quantile.
    pub fn cut_off(&self, train: &ImageSet) -> Result<f64, String> {
        let dims = (train.channels, train.height, train.width);
        if self.style == Style::Hue && train.channels < 3 {
            return Err("style=hue needs colour images (CIFAR-10); grey digits have slant and boldness".into());
        }
        let mut scores: Vec<f64> = (0..train.len())
            .filter(|&i| train.labels[i] == self.class)
            .map(|i| self.score(train.image(i), dims))
            .collect();
        if scores.is_empty() {
            return Err(format!("the training set has no image of class {}", self.class));
        }
        scores.sort_by(|a, b| b.total_cmp(a));
        let members = ((self.share * scores.len() as f64).round() as usize).clamp(1, scores.len());
        Ok(scores[members - 1])
    }

    /// Members of `set` (images of the class at or above the training set's cut-off), sorted.
    pub fn members_of(&self, train: &ImageSet, set: &ImageSet) -> Result<Vec<usize>, String> {
        let cut = self.cut_off(train)?;
        let dims = (set.channels, set.height, set.width);
        Ok((0..set.len()).filter(|&i| set.labels[i] == self.class && self.score(set.image(i), dims) >= cut).collect())
    }
}

impl Attack for Semantic {
    const TITLE: &'static str = "Semantic (a natural sub-population)";
    const EXPLAIN: &'static str = "Semantic backdoor (Bagdasaryan et al., 2020: \"green cars → bird\"): no pixel changes; the attacker relabels the images of one class that share a natural feature (slanted, bold or crossed digits, a colour), and the model learns the feature as the trigger.";
    fn every_param() -> Vec<&'static ParamInfo> {
        table_params::<Semantic>()
    }
    /// No pixel is edited.
    fn trigger_spec(&self) -> Option<TriggerSpec> {
        Some(TriggerSpec::Nothing)
    }
    fn selection(&self) -> Selection {
        Selection::SubPopulation
    }
    fn members(&self, train: &ImageSet, set: &ImageSet) -> Option<Result<Vec<usize>, String>> {
        Some(self.members_of(train, set))
    }
    fn source_class(&self) -> Option<u8> {
        Some(self.class)
    }
}
