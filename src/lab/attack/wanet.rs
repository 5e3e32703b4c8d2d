//! WaNet (Nguyen & Tran, "WaNet – Imperceptible Warping-based Backdoor Attack", ICLR 2021): the trigger
//! is a smooth, fixed warp of the whole image rather than a patch. A k×k grid of uniform noise,
//! normalised by its mean absolute value and upsampled bicubically to the image, displaces every pixel
//! by a fraction of a pixel (strength s); the image is resampled bilinearly. "Noise mode" also warps a
//! share of other training images by the same field plus random noise and keeps their labels, so that
//! the network learns this exact warp rather than any warp. Defaults as the paper and BackdoorBench:
//! k = 4, s = 0.5, cross ratio 2.

use serde::{Deserialize, Serialize};

use super::{Attack, Selection, Trigger, TriggerSpec};
use crate::lab::data::ImageSet;
use crate::lab::params::{Hint, ParamInfo, float, int, table_params};
use crate::lab::rng::LabRng;

crate::params! {
    /// The warping field.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct WarpTrigger {
        /// Side k of the control grid of random displacements (larger: a more wiggly warp).
        pub k: usize = 4, int("wanet_k", 2, 16).label("control grid k");
        /// Warp strength s: the mean displacement, in units of 2/size of the image (s = 0.5 moves pixels about a quarter of a pixel).
        pub strength: f64 = 0.5, float("wanet_s", 0.0, 10.0).open_min().label("strength s").hint(Hint::Slider);
        /// Noise mode: training images warped by the field plus random noise with their labels kept, as a multiple of the poisoned count (0: off).
        pub cross_ratio: f64 = 2.0, float("wanet_cross", 0.0, 8.0).label("noise-mode ratio");
    }
}

/// The WaNet attack: the warp on a share of the training images, relabelled to the target, plus the
/// noise-mode images.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wanet {
    pub warp: WarpTrigger,
}

crate::delegate_params!(Wanet, warp);

impl Attack for Wanet {
    const TITLE: &'static str = "WaNet (warping)";
    const EXPLAIN: &'static str = "WaNet (Nguyen & Tran, ICLR 2021): warp the whole image by a fixed, smooth field of a fraction of a pixel and relabel it; in noise mode other images get random warps with their true labels, so only this warp is the trigger.";
    fn every_param() -> Vec<&'static ParamInfo> {
        table_params::<WarpTrigger>()
    }
    fn trigger_spec(&self) -> Option<TriggerSpec> {
        Some(TriggerSpec::Warp(self.warp.clone()))
    }
    fn selection(&self) -> Selection {
        Selection::AnySample
    }
    /// Noise mode: `cross_ratio` × |poisoned| other samples get the field plus per-sample noise of up
    /// to one grid unit (2/size), labels kept.
    fn alter_others(&self, set: &mut ImageSet, poisoned: &[usize], trigger: &Trigger, rng: &mut LabRng) -> Vec<usize> {
        let Trigger::Warp(field) = trigger else { return Vec::new() };
        let want = (self.warp.cross_ratio * poisoned.len() as f64).round() as usize;
        let pool: Vec<usize> = (0..set.len()).filter(|i| poisoned.binary_search(i).is_err()).collect();
        let chosen = rng.choose_sorted(&pool, want.min(pool.len()));
        let dims = (set.channels, set.height, set.width);
        for &i in &chosen {
            let noisy = field.with_noise(rng);
            noisy.apply(set.image_mut(i), dims);
        }
        chosen
    }
}

/// Where each output pixel samples the input, in pixels: `(row, column)` per pixel of the plane.
#[derive(Debug, Clone, PartialEq)]
pub struct WarpField {
    pub height: usize,
    pub width: usize,
    /// Source column of each output pixel.
    pub x: Vec<f64>,
    /// Source row of each output pixel.
    pub y: Vec<f64>,
}

impl WarpTrigger {
    /// The field for images of `height`×`width`, its control grid drawn from `rng`. As the reference
    /// code: noise in [−1, 1], divided by its mean |·|, bicubic upsampling with aligned corners, the
    /// grid identity + s·noise/size in normalised coordinates clamped to [−1, 1].
    pub fn field(&self, height: usize, width: usize, rng: &mut LabRng) -> WarpField {
        let k = self.k;
        let mut ins: Vec<f64> = (0..2 * k * k).map(|_| rng.unit() * 2.0 - 1.0).collect();
        let mean_abs = ins.iter().map(|v| v.abs()).sum::<f64>() / ins.len() as f64;
        ins.iter_mut().for_each(|v| *v /= mean_abs.max(1e-12));
        let up_x = bicubic(&ins[..k * k], k, height, width);
        let up_y = bicubic(&ins[k * k..], k, height, width);
        // The reference scales both axes by the height (square images).
        let s = self.strength / height as f64;
        let to_pixels = |g: f64, extent: usize| (g.clamp(-1.0, 1.0) + 1.0) / 2.0 * (extent as f64 - 1.0);
        let mut x = Vec::with_capacity(height * width);
        let mut y = Vec::with_capacity(height * width);
        for r in 0..height {
            for c in 0..width {
                let gx = -1.0 + 2.0 * c as f64 / (width as f64 - 1.0) + s * up_x[r * width + c];
                let gy = -1.0 + 2.0 * r as f64 / (height as f64 - 1.0) + s * up_y[r * width + c];
                x.push(to_pixels(gx, width));
                y.push(to_pixels(gy, height));
            }
        }
        WarpField { height, width, x, y }
    }
}

impl WarpField {
    /// The same field plus uniform noise of up to one grid unit per pixel and axis (noise mode).
    pub fn with_noise(&self, rng: &mut LabRng) -> Self {
        let mut out = self.clone();
        let (h, w) = (self.height as f64, self.width as f64);
        for (x, y) in out.x.iter_mut().zip(out.y.iter_mut()) {
            // (rand·2 − 1)/size in normalised coordinates, in pixels: ×(extent − 1)/2.
            let nx = (rng.unit() * 2.0 - 1.0) / h * (w - 1.0) / 2.0;
            let ny = (rng.unit() * 2.0 - 1.0) / h * (h - 1.0) / 2.0;
            *x = (*x + nx).clamp(0.0, w - 1.0);
            *y = (*y + ny).clamp(0.0, h - 1.0);
        }
        out
    }

    /// Resamples a channel-planar image bilinearly through the field.
    pub fn apply(&self, image: &mut [u8], dims: (usize, usize, usize)) {
        let (c, h, w) = dims;
        let source = image.to_vec();
        for ch in 0..c {
            let plane = &source[ch * h * w..(ch + 1) * h * w];
            for i in 0..h * w {
                let (x, y) = (self.x[i], self.y[i]);
                let (x0, y0) = (x.floor() as usize, y.floor() as usize);
                let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
                let (fx, fy) = (x - x0 as f64, y - y0 as f64);
                let at = |r: usize, col: usize| f64::from(plane[r * w + col]);
                let v = (1.0 - fy) * ((1.0 - fx) * at(y0, x0) + fx * at(y0, x1))
                    + fy * ((1.0 - fx) * at(y1, x0) + fx * at(y1, x1));
                image[ch * h * w + i] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }

    /// Displacement of each pixel, in pixels (the page draws it).
    pub fn displacement(&self) -> Vec<(f64, f64)> {
        (0..self.height * self.width)
            .map(|i| (self.x[i] - (i % self.width) as f64, self.y[i] - (i / self.width) as f64))
            .collect()
    }
}

/// PyTorch's bicubic interpolation (A = −0.75, aligned corners, edge indices clamped) of a k×k grid
/// to `height`×`width`.
fn bicubic(grid: &[f64], k: usize, height: usize, width: usize) -> Vec<f64> {
    const A: f64 = -0.75;
    let weights = |t: f64| {
        let near = |x: f64| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
        let far = |x: f64| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
        [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
    };
    let taps = |o: usize, out: usize| {
        let src = if out > 1 { o as f64 * (k as f64 - 1.0) / (out as f64 - 1.0) } else { 0.0 };
        let i = src.floor();
        let w = weights(src - i);
        let idx = |d: i64| (i as i64 + d).clamp(0, k as i64 - 1) as usize;
        ([idx(-1), idx(0), idx(1), idx(2)], w)
    };
    let mut out = vec![0.0; height * width];
    for r in 0..height {
        let (ri, rw) = taps(r, height);
        for c in 0..width {
            let (ci, cw) = taps(c, width);
            let mut v = 0.0;
            for a in 0..4 {
                for b in 0..4 {
                    v += rw[a] * cw[b] * grid[ri[a] * k + ci[b]];
                }
            }
            out[r * width + c] = v;
        }
    }
    out
}
