//! Median filter (as in Xu et al., "Feature Squeezing", NDSS 2018, and the input-preprocessing
//! defenses that followed): each pixel becomes the median of its k×k neighbourhood, channel by channel,
//! which removes small isolated structures such as a few-pixel patch while keeping edges.

use super::Sanitizer;
use crate::lab::rng::LabRng;

pub struct Median;

impl Sanitizer for Median {
    const EXPLAIN: &'static str = "Median filter (Xu et al., NDSS 2018): each pixel becomes the median of its k×k neighbourhood, which wipes out small patches and keeps edges.";
    const STRENGTH: &'static str = "the filter's size k (odd)";
    const RANGE: (u32, u32) = (3, 9);
    fn default_k(_channels: usize) -> u32 {
        3
    }
    fn check(k: u32) -> Result<(), String> {
        if k.is_multiple_of(2) {
            Err(format!("sanitize_k {k}: a median filter's size is odd (3, 5, 7 or 9)"))
        } else {
            Ok(())
        }
    }
    fn apply(k: u32, image: &mut [u8], dims: (usize, usize, usize), _rng: &mut LabRng) {
        let (c, h, w) = dims;
        let r = (k / 2) as isize;
        let mut window = Vec::with_capacity((k * k) as usize);
        for ch in 0..c {
            let plane = image[ch * h * w..(ch + 1) * h * w].to_vec();
            for y in 0..h as isize {
                for x in 0..w as isize {
                    window.clear();
                    // Edges replicate the border pixel, as scipy's mode="nearest".
                    for dy in -r..=r {
                        for dx in -r..=r {
                            let yy = (y + dy).clamp(0, h as isize - 1) as usize;
                            let xx = (x + dx).clamp(0, w as isize - 1) as usize;
                            window.push(plane[yy * w + xx]);
                        }
                    }
                    let mid = window.len() / 2;
                    let (_, m, _) = window.select_nth_unstable(mid);
                    image[ch * h * w + y as usize * w + x as usize] = *m;
                }
            }
        }
    }
}
