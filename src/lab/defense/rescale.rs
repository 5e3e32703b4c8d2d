//! Down-and-up scaling (the resizing defenses of Xie et al., ICLR 2018, and of Li et al., 2021's
//! study of transformations against backdoors): shrink the image by a factor with area averaging,
//! then scale it back up bilinearly, so details smaller than the factor blur away.

use super::{Sanitizer, resize_plane};
use crate::lab::rng::LabRng;

pub struct Rescale;

impl Sanitizer for Rescale {
    const EXPLAIN: &'static str = "Down-and-up scaling (Xie et al., ICLR 2018): shrink the image k times with area averaging and scale it back up, blurring away details smaller than k pixels.";
    const STRENGTH: &'static str = "the scaling factor k";
    const RANGE: (u32, u32) = (2, 8);
    fn default_k(_channels: usize) -> u32 {
        2
    }
    fn apply(k: u32, image: &mut [u8], dims: (usize, usize, usize), _rng: &mut LabRng) {
        let (c, h, w) = dims;
        let (h2, w2) = ((h / k as usize).max(1), (w / k as usize).max(1));
        for ch in 0..c {
            let plane: Vec<f32> = image[ch * h * w..(ch + 1) * h * w].iter().map(|&v| f32::from(v)).collect();
            let small = resize_plane(&plane, h, w, h2, w2);
            let back = resize_plane(&small, h2, w2, h, w);
            for (o, v) in image[ch * h * w..(ch + 1) * h * w].iter_mut().zip(back) {
                *o = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}
