//! Robust training by augmentation: the training options the course material calls "train to be
//! invariant to potential triggers". Borgnia et al. (ICASSP 2021) found strong augmentations such as
//! CutMix mitigating backdoors better than DP-SGD. Each augmentation acts on the 8-bit images of a
//! batch before normalisation, drawing from the run's augmentation stream, so a link trains the same
//! model everywhere:
//!
//! - random erasing (Zhong et al., AAAI 2020): with probability p, a rectangle of 2–40 % of the
//!   image with aspect 0.3–3.3 is filled with random values;
//! - CutMix (Yun et al., ICCV 2019): each batch pastes a box of its images into a shuffled partner's,
//!   the box's share 1 − λ with λ ~ Beta(α, α), and the loss is λ·CE(own label) + (1 − λ)·CE(partner's);
//! - random shifts: each image moves by up to k pixels in each direction, zero-filled;
//! - horizontal flips, with probability ½.

use serde::{Deserialize, Serialize};

use crate::lab::data::ImageSet;
use crate::lab::params::{LinkValue, clip};
use crate::lab::rng::LabRng;

/// Keys of the augmentations' parameters (in the training section), which the page's trade-off curves
/// sweep: spelled once, here.
pub const AUG_ERASE: &str = "aug_erase";
pub const AUG_CUTMIX: &str = "aug_cutmix";
pub const AUG_SHIFT: &str = "aug_shift";

/// One augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Augmentation {
    Erase,
    Cutmix,
    Shift,
    Flip,
}

crate::named_enum!(Augmentation {
    Erase = "erase" / "random erasing",
    Cutmix = "cutmix" / "CutMix",
    Shift = "shift" / "random shifts",
    Flip = "flip" / "horizontal flips",
});

impl Augmentation {
    /// The link key of its strength, for a trade-off curve (flips have none).
    pub fn strength_key(self) -> Option<&'static str> {
        match self {
            Self::Erase => Some(AUG_ERASE),
            Self::Cutmix => Some(AUG_CUTMIX),
            Self::Shift => Some(AUG_SHIFT),
            Self::Flip => None,
        }
    }

    /// One sentence on it, with its paper.
    pub fn explain(self) -> &'static str {
        match self {
            Self::Erase => {
                "Random erasing (Zhong et al., AAAI 2020): a random rectangle of some training images is filled with noise, so no small region can be relied on."
            }
            Self::Cutmix => {
                "CutMix (Yun et al., ICCV 2019): a box of another image is pasted into each training image and the labels mix by area; Borgnia et al. (ICASSP 2021) found it weakens backdoors more than DP-SGD does."
            }
            Self::Shift => {
                "Random shifts: every training image moves by a few pixels, so a trigger is never at the same place twice."
            }
            Self::Flip => {
                "Horizontal flips: half of the training images are mirrored (a corner trigger moves to the other side)."
            }
        }
    }
}

/// The augmentations to train with, in link order; empty means none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Augmentations(pub Vec<Augmentation>);

impl Augmentations {
    pub fn has(&self, a: Augmentation) -> bool {
        self.0.contains(&a)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl LinkValue for Augmentations {
    fn to_link(&self) -> String {
        self.0.iter().map(|a| a.name()).collect::<Vec<_>>().join(",")
    }
    fn from_link(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for name in text.split(',').filter(|n| !n.is_empty()) {
            let a = Augmentation::from_name(name).ok_or_else(|| format!("unknown augmentation '{}'", clip(name)))?;
            if out.contains(&a) {
                return Err(format!("augmentation '{name}' is listed twice"));
            }
            out.push(a);
        }
        Ok(Self(out))
    }
}

/// What an augmentation pass needs from the training section.
#[derive(Debug, Clone, PartialEq)]
pub struct Augment {
    pub which: Augmentations,
    /// Random erasing's probability per image.
    pub erase: f64,
    /// CutMix's Beta(α, α).
    pub cutmix_alpha: f64,
    /// Largest shift in pixels.
    pub shift: usize,
}

/// CutMix's choice for one batch: each image i holds a box of image `partner[i]`, and `lambda` is the
/// share of its own pixels (the weight of its own label in the loss).
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    pub partner: Vec<usize>,
    pub lambda: f64,
}

impl Augment {
    pub fn is_off(&self) -> bool {
        self.which.is_empty()
    }

    /// Augments the images of `batch` in place; returns CutMix's choice when it is on.
    pub fn apply(&self, batch: &mut ImageSet, rng: &mut LabRng) -> Option<Mix> {
        let dims = (batch.channels, batch.height, batch.width);
        for i in 0..batch.len() {
            let image = batch.image_mut(i);
            if self.which.has(Augmentation::Flip) && rng.unit() < 0.5 {
                flip(image, dims);
            }
            if self.which.has(Augmentation::Shift) {
                let k = self.shift as isize;
                let dy = rng.below(2 * self.shift + 1) as isize - k;
                let dx = rng.below(2 * self.shift + 1) as isize - k;
                shift(image, dims, dy, dx);
            }
            if self.which.has(Augmentation::Erase) && rng.unit() < self.erase {
                erase(image, dims, rng);
            }
        }
        if self.which.has(Augmentation::Cutmix) && batch.len() > 1 {
            Some(cutmix(batch, self.cutmix_alpha, rng))
        } else {
            None
        }
    }
}

/// Mirrors one image left to right.
pub fn flip(image: &mut [u8], dims: (usize, usize, usize)) {
    let (c, h, w) = dims;
    for row in image.chunks_exact_mut(w).take(c * h) {
        row.reverse();
    }
}

/// Moves one image by (dy, dx) pixels; what moves in is black.
pub fn shift(image: &mut [u8], dims: (usize, usize, usize), dy: isize, dx: isize) {
    let (c, h, w) = dims;
    let src = image.to_vec();
    for ch in 0..c {
        for y in 0..h as isize {
            for x in 0..w as isize {
                let (sy, sx) = (y - dy, x - dx);
                let inside = (0..h as isize).contains(&sy) && (0..w as isize).contains(&sx);
                image[ch * h * w + (y as usize) * w + x as usize] =
                    if inside { src[ch * h * w + sy as usize * w + sx as usize] } else { 0 };
            }
        }
    }
}

/// Random erasing's rectangle: area 2–40 % of the image, aspect 0.3–3.3 (Zhong et al.'s defaults),
/// retried until it fits; filled with random values.
pub fn erase(image: &mut [u8], dims: (usize, usize, usize), rng: &mut LabRng) {
    let (c, h, w) = dims;
    for _ in 0..10 {
        let area = (0.02 + 0.38 * rng.unit()) * (h * w) as f64;
        // Log-uniform in [0.3, 1/0.3].
        let aspect = (0.3f64.ln() * (1.0 - 2.0 * rng.unit())).exp();
        let (eh, ew) = ((area * aspect).sqrt().round() as usize, (area / aspect).sqrt().round() as usize);
        if eh == 0 || ew == 0 || eh >= h || ew >= w {
            continue;
        }
        let (y0, x0) = (rng.below(h - eh + 1), rng.below(w - ew + 1));
        for ch in 0..c {
            for y in y0..y0 + eh {
                for x in x0..x0 + ew {
                    image[ch * h * w + y * w + x] = rng.byte();
                }
            }
        }
        return;
    }
}

/// CutMix on a batch: one λ ~ Beta(α, α) and one box for the batch, as the authors' code does.
pub fn cutmix(batch: &mut ImageSet, alpha: f64, rng: &mut LabRng) -> Mix {
    let (c, h, w) = (batch.channels, batch.height, batch.width);
    let n = batch.len();
    let partner = rng.permutation(n);
    let lambda = rng.beta(alpha, alpha);
    let cut = (1.0 - lambda).sqrt();
    let (bh, bw) = ((h as f64 * cut) as usize, (w as f64 * cut) as usize);
    let (cy, cx) = (rng.below(h), rng.below(w));
    let (y0, y1) = (cy.saturating_sub(bh / 2), (cy + bh / 2).min(h));
    let (x0, x1) = (cx.saturating_sub(bw / 2), (cx + bw / 2).min(w));
    let source = batch.clone();
    for (i, &j) in partner.iter().enumerate() {
        let from = source.image(j);
        let to = batch.image_mut(i);
        for ch in 0..c {
            for y in y0..y1 {
                let row = ch * h * w + y * w;
                to[row + x0..row + x1].copy_from_slice(&from[row + x0..row + x1]);
            }
        }
    }
    // λ is the share of the image that kept its own pixels, after clipping the box.
    let lambda = 1.0 - ((y1 - y0) * (x1 - x0)) as f64 / (h * w) as f64;
    Mix { partner, lambda }
}
