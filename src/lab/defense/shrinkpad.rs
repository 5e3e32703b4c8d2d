//! ShrinkPad (Li et al., "Backdoor Attack in the Physical World", ICLR 2021 workshop): shrink the
//! image by k pixels and zero-pad it back to size at a random offset. A trigger learned at fixed
//! pixels moves and shrinks, which breaks backdoors that depend on its exact place, at a small cost in
//! clean accuracy.

use super::{Sanitizer, resize_plane};
use crate::lab::rng::LabRng;

pub struct ShrinkPad;

impl Sanitizer for ShrinkPad {
    const EXPLAIN: &'static str = "ShrinkPad (Li et al., 2021): shrink the image by k pixels and pad it back with zeros at a random offset, so a trigger learned at fixed pixels moves.";
    const STRENGTH: &'static str = "the shrink k in pixels";
    const RANGE: (u32, u32) = (1, 8);
    fn default_k(_channels: usize) -> u32 {
        2
    }
    fn apply(k: u32, image: &mut [u8], dims: (usize, usize, usize), rng: &mut LabRng) {
        let (c, h, w) = dims;
        let k = (k as usize).min(h - 1).min(w - 1);
        let (h2, w2) = (h - k, w - k);
        // One offset per image, for every channel: the padding is on the left/top `dy`/`dx` pixels.
        let dy = rng.below(k + 1);
        let dx = rng.below(k + 1);
        for ch in 0..c {
            let plane: Vec<f32> = image[ch * h * w..(ch + 1) * h * w].iter().map(|&v| f32::from(v)).collect();
            let small = resize_plane(&plane, h, w, h2, w2);
            let out = &mut image[ch * h * w..(ch + 1) * h * w];
            out.fill(0);
            for y in 0..h2 {
                for x in 0..w2 {
                    out[(y + dy) * w + x + dx] = small[y * w2 + x].round().clamp(0.0, 255.0) as u8;
                }
            }
        }
    }
}
