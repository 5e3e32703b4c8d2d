//! Defenses at deployment: input sanitization. Every test input passes through the chosen sanitizer
//! before the model sees it, as a deployed pipeline would, and the run is measured like a repair
//! (CA, ASR, RA, DER) with the unsanitized figures beside it. Each sanitizer is one file; one line in
//! `sanitizers!` registers it. The strength key `sanitize_k` is shared: each sanitizer says what it
//! means, its range and its default.

pub mod bits;
pub mod median;
pub mod rescale;
pub mod shrinkpad;

use serde::{Deserialize, Serialize};

use crate::lab::data::ImageSet;
use crate::lab::params::{Table, choice, int};
use crate::lab::rng::{LabRng, Stream};

/// One input sanitizer: its words and what it does to one image.
pub trait Sanitizer {
    /// One sentence on it, with its paper.
    const EXPLAIN: &'static str;
    /// What `sanitize_k` means for it.
    const STRENGTH: &'static str;
    /// The allowed strengths, inclusive.
    const RANGE: (u32, u32);
    /// The strength used when `sanitize_k` is 0, for images of `channels` channels.
    fn default_k(channels: usize) -> u32;
    /// Whether `k` (within `RANGE`) is a valid strength; the reason if not.
    fn check(_k: u32) -> Result<(), String> {
        Ok(())
    }
    /// Sanitizes one channel-planar image of `dims` in place with strength `k`; `rng` is the run's
    /// sanitizer stream (for the random ones).
    fn apply(k: u32, image: &mut [u8], dims: (usize, usize, usize), rng: &mut LabRng);
}

/// The registry: `Variant = "link name" / "the page's words" => Type`, in menu order.
macro_rules! sanitizers {
    ($($variant:ident = $name:literal / $label:literal => $ty:ty),+ $(,)?) => {
        /// The sanitizer a spec chose; `None` is off.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum SanitizerKind {
            None,
            $($variant,)+
        }

        crate::named_enum!(SanitizerKind { None = "none" / "none", $($variant = $name / $label,)+ });

        impl SanitizerKind {
            /// One sentence on the sanitizer, with its paper.
            pub fn explain(self) -> &'static str {
                match self {
                    Self::None => "No sanitizer: test inputs reach the model as they are.",
                    $(Self::$variant => <$ty as Sanitizer>::EXPLAIN,)+
                }
            }
            /// What `sanitize_k` means for it.
            pub fn strength(self) -> &'static str {
                match self { Self::None => "", $(Self::$variant => <$ty as Sanitizer>::STRENGTH,)+ }
            }
            fn range(self) -> (u32, u32) {
                match self { Self::None => (0, 0), $(Self::$variant => <$ty as Sanitizer>::RANGE,)+ }
            }
            fn check_k(self, k: u32) -> Result<(), String> {
                match self { Self::None => Ok(()), $(Self::$variant => <$ty as Sanitizer>::check(k),)+ }
            }
            fn default_k(self, channels: usize) -> u32 {
                match self { Self::None => 0, $(Self::$variant => <$ty as Sanitizer>::default_k(channels),)+ }
            }
            fn apply(self, k: u32, image: &mut [u8], dims: (usize, usize, usize), rng: &mut LabRng) {
                match self { Self::None => {}, $(Self::$variant => <$ty as Sanitizer>::apply(k, image, dims, rng),)+ }
            }
        }
    };
}

sanitizers! {
    Median = "median" / "median filter" => median::Median,
    Bits = "bits" / "bit-depth reduction" => bits::Bits,
    Rescale = "rescale" / "down-and-up scaling" => rescale::Rescale,
    Shrinkpad = "shrinkpad" / "ShrinkPad" => shrinkpad::ShrinkPad,
}

/// The strength's key, which the page's trade-off curve sweeps.
pub const SANITIZE_K: &str = "sanitize_k";

crate::params! {
    /// Input sanitization at deployment.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct SanitizeSpec {
        /// Input sanitizer every test input passes through before the model sees it (a deployment-time defense): median filter, bit-depth reduction, down-and-up scaling or ShrinkPad; none: off.
        pub method: SanitizerKind = SanitizerKind::None, choice("sanitize", SanitizerKind::CHOICES).selector().label("input sanitizer");
        /// The sanitizer's strength: the median filter's size (odd), the bits kept, the scaling factor, or ShrinkPad's shrink in pixels; 0: its default (3; 1 bit on MNIST and 5 on CIFAR-10, as Xu et al.; 2; 2).
        pub k: u32 = 0, int(SANITIZE_K, 0, 32).label("strength (0: its default)");
    }
    check(SanitizeSpec::cross_check_k);
    applies(SanitizeSpec::applies_now);
}

impl SanitizeSpec {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
    pub fn is_off(&self) -> bool {
        self.method == SanitizerKind::None
    }

    fn applies_now(&self, key: &str) -> Result<(), &'static str> {
        // Row 1 is the strength, which only a chosen sanitizer has.
        match <Self as Table>::PARAMS.iter().position(|p| p.info.key == key) {
            Some(1) if self.is_off() => {
                Err("a strength is given only with a sanitizer (sanitize=median, bits, rescale or shrinkpad)")
            }
            _ => Ok(()),
        }
    }

    fn cross_check_k(&self) -> Result<(), String> {
        if self.is_off() || self.k == 0 {
            return Ok(());
        }
        let (min, max) = self.method.range();
        if !(min..=max).contains(&self.k) {
            return Err(format!(
                "sanitize_k {} is out of range for sanitize={} ({}: {min} to {max}, or 0 for its default)",
                self.k,
                self.method.name(),
                self.method.strength()
            ));
        }
        self.method.check_k(self.k)
    }

    /// Strengths for a trade-off curve: the sanitizer's valid values from its weakest, at most six.
    pub fn sweep_values(&self) -> Vec<u32> {
        let (min, max) = self.method.range();
        (min.max(1)..=max).filter(|&k| self.method.check_k(k).is_ok()).take(6).collect()
    }

    /// The strength used for images of `channels` channels.
    pub fn strength(&self, channels: usize) -> u32 {
        if self.k == 0 { self.method.default_k(channels) } else { self.k }
    }

    /// A sanitized copy of `set`; the random sanitizers draw from the seed's own stream, image by
    /// image in order, so a run and its link give the same inputs everywhere. `salt` keeps two sets of
    /// one run (clean and triggered test inputs) on different draws.
    pub fn sanitized(&self, set: &ImageSet, seed: u64, salt: u64) -> ImageSet {
        let mut out = set.clone();
        if self.is_off() {
            return out;
        }
        let dims = (set.channels, set.height, set.width);
        let k = self.strength(set.channels);
        let mut rng = LabRng::new(seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15), Stream::Sanitize);
        for i in 0..out.len() {
            self.method.apply(k, out.image_mut(i), dims, &mut rng);
        }
        out
    }

    /// Sanitizes one image (the page's before-and-after row).
    pub fn sanitize_one(&self, image: &mut [u8], dims: (usize, usize, usize), rng: &mut LabRng) {
        let k = self.strength(dims.0);
        self.method.apply(k, image, dims, rng);
    }
}

/// Resamples one channel plane of `h`×`w` to `h2`×`w2` by area averaging when shrinking and bilinear
/// interpolation (pixel centres aligned, edges replicated) when growing: the scaling the rescale and
/// ShrinkPad sanitizers share.
pub(crate) fn resize_plane(src: &[f32], h: usize, w: usize, h2: usize, w2: usize) -> Vec<f32> {
    let axis = |n: usize, n2: usize| -> Vec<Vec<(usize, f32)>> {
        let scale = n as f32 / n2 as f32;
        (0..n2)
            .map(|o| {
                if n2 <= n {
                    // Area: the source interval [o·scale, (o+1)·scale), each pixel weighted by its overlap.
                    let (a, b) = (o as f32 * scale, (o + 1) as f32 * scale);
                    let mut taps = Vec::new();
                    let mut i = a.floor() as usize;
                    while (i as f32) < b && i < n {
                        let overlap = (b.min(i as f32 + 1.0) - a.max(i as f32)).max(0.0);
                        if overlap > 0.0 {
                            taps.push((i, overlap / scale));
                        }
                        i += 1;
                    }
                    taps
                } else {
                    let x = ((o as f32 + 0.5) * scale - 0.5).clamp(0.0, (n - 1) as f32);
                    let i = x.floor() as usize;
                    let f = x - i as f32;
                    let j = (i + 1).min(n - 1);
                    vec![(i, 1.0 - f), (j, f)]
                }
            })
            .collect()
    };
    let (rows, cols) = (axis(h, h2), axis(w, w2));
    let mut out = vec![0.0; h2 * w2];
    for (r, rt) in rows.iter().enumerate() {
        for (c, ct) in cols.iter().enumerate() {
            let mut v = 0.0;
            for &(i, wi) in rt {
                for &(j, wj) in ct {
                    v += wi * wj * src[i * w + j];
                }
            }
            out[r * w2 + c] = v;
        }
    }
    out
}
