//! Bit-depth reduction (Xu et al., "Feature Squeezing", NDSS 2018): each value is quantised to
//! 2^k levels, squeezing out the fine differences adversarial and blended perturbations live in.
//! Xu et al. found 1 bit best on MNIST and 5 bits on CIFAR-10: those are the defaults.

use super::Sanitizer;
use crate::lab::rng::LabRng;

pub struct Bits;

impl Sanitizer for Bits {
    const EXPLAIN: &'static str = "Bit-depth reduction (Xu et al., NDSS 2018, \"feature squeezing\"): quantise every pixel to 2^k levels, so faint perturbations round away.";
    const STRENGTH: &'static str = "the bits kept per value";
    const RANGE: (u32, u32) = (1, 7);
    fn default_k(channels: usize) -> u32 {
        if channels == 1 { 1 } else { 5 }
    }
    fn apply(k: u32, image: &mut [u8], _dims: (usize, usize, usize), _rng: &mut LabRng) {
        let levels = ((1u32 << k) - 1) as f32;
        for v in image.iter_mut() {
            *v = ((f32::from(*v) / 255.0 * levels).round() / levels * 255.0).round() as u8;
        }
    }
}
