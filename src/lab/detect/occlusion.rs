//! Occlusion sensitivity (Zeiler & Fergus, ECCV 2014) on triggered inputs: slide a patch filled with
//! the dataset mean over the input and map how much the predicted class's probability drops; a
//! backdoored model's decision hangs on the trigger, so the trigger's location lights up.

use crate::lab::params::{Table, int};
use burn::tensor::activation::softmax;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::{About, Cx, Detector, GroundTruth, ModelInspector, Summary, Truth, Verdict};
use crate::lab::data::{NUM_CLASSES, batch};
use crate::lab::device::read_floats;
use crate::lab::error::Result;
use crate::lab::eval::EVAL_BATCH;

crate::params! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct Occlusion {
        /// Side of the square patch, pixels.
        pub patch: usize = 4, int("occ_patch", 1, 16).label("patch side");
        /// Step between patch positions, pixels (at most the patch side, so every pixel is covered).
        pub stride: usize = 2, int("occ_stride", 1, 16).label("stride");
        /// Triggered test inputs averaged.
        pub inputs: usize = 50, int("occ_inputs", 1, 1000).label("inputs averaged");
    }
    check(Self::stride_fits);
}

impl Occlusion {
    /// A stride wider than the patch would leave pixels that no patch ever covers.
    fn stride_fits(&self) -> std::result::Result<(), String> {
        let (patch, stride) = (&Self::PARAMS[0].info, &Self::PARAMS[1].info);
        if self.stride > self.patch {
            return Err(format!("{} {} must be between 1 and {} ({})", stride.key, self.stride, patch.key, self.patch));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OcclusionReport {
    pub params: Occlusion,
    pub seconds: f64,
    /// Mean drop of the predicted class's probability when a patch covers each pixel (height×width, 4 decimals).
    pub heat: Vec<f32>,
    pub height: usize,
    pub width: usize,
    /// Pixel (row, column) of the largest drop.
    pub max_row: usize,
    pub max_col: usize,
    /// Ground-truth check: does the hottest pixel lie on the attack's trigger?
    pub hottest_on_trigger: bool,
    pub inputs: usize,
}

impl ModelInspector for Occlusion {
    type Report = OcclusionReport;

    async fn inspect(&self, cx: &mut Cx<'_>) -> Result<OcclusionReport> {
        let set = cx.triggered;
        let (c, h, w) = (set.channels, set.height, set.width);
        let (hw, size) = (h * w, c * h * w);
        let mut rng = cx.rng();
        let mut chosen = rng.permutation(set.len());
        chosen.truncate(self.inputs);
        let patch = self.patch.min(h).min(w);
        let origins: Vec<(usize, usize)> = (0..=h - patch)
            .step_by(self.stride)
            .flat_map(|y| (0..=w - patch).step_by(self.stride).map(move |x| (y, x)))
            .collect();
        let mut cover = vec![0u32; hw];
        for &(y, x) in &origins {
            for r in y..y + patch {
                cover[r * w + x..r * w + x + patch].iter_mut().for_each(|v| *v += 1);
            }
        }
        let mut heat = vec![0.0f64; hw];
        // The unoccluded input first, then one copy per patch position, in passes of at most EVAL_BATCH.
        let rows = origins.len() + 1;
        let per_pass = (EVAL_BATCH / rows).max(1);
        for (step, group) in chosen.chunks(per_pass).enumerate() {
            let mut x = Vec::with_capacity(group.len() * rows * size);
            for &j in group {
                let image = batch::floats(set, &[j]);
                x.extend_from_slice(&image);
                for &(y, x0) in &origins {
                    let mut copy = image.clone();
                    for ch in 0..c {
                        for r in y..y + patch {
                            // 0 after normalisation is the dataset mean.
                            copy[ch * hw + r * w + x0..ch * hw + r * w + x0 + patch].iter_mut().for_each(|v| *v = 0.0);
                        }
                    }
                    x.extend_from_slice(&copy);
                }
            }
            let input = Tensor::<4>::from_data(TensorData::new(x, [group.len() * rows, c, h, w]), cx.device);
            let probs = read_floats(softmax(cx.model.forward(input), 1)).await?;
            for g in 0..group.len() {
                let base = &probs[g * rows * NUM_CLASSES..(g * rows + 1) * NUM_CLASSES];
                let class = (0..NUM_CLASSES).fold(0, |b, k| if base[k] > base[b] { k } else { b });
                for (p, &(y, x0)) in origins.iter().enumerate() {
                    let row = g * rows + 1 + p;
                    let drop = f64::from(base[class] - probs[row * NUM_CLASSES + class]);
                    for r in y..y + patch {
                        heat[r * w + x0..r * w + x0 + patch].iter_mut().for_each(|v| *v += drop);
                    }
                }
            }
            cx.progress(((step + 1) * per_pass).min(chosen.len()), chosen.len()).await?;
        }
        let n = chosen.len().max(1) as f64;
        let heat: Vec<f32> = heat
            .iter()
            .zip(&cover)
            .map(|(v, &k)| if k == 0 { 0.0 } else { ((v / f64::from(k) / n * 1e4).round() / 1e4) as f32 })
            .collect();
        let hottest = (0..hw).fold(0, |b, i| if heat[i] > heat[b] { i } else { b });
        Ok(OcclusionReport {
            params: self.clone(),
            seconds: 0.0,
            max_row: hottest / w,
            max_col: hottest % w,
            // Scored against the trigger by `score`.
            hottest_on_trigger: false,
            heat,
            height: h,
            width: w,
            inputs: chosen.len(),
        })
    }
}

impl Detector for Occlusion {
    const TITLE: &'static str = "Occlusion sensitivity";
    const EXPLAIN: &'static str = "Occlusion sensitivity greys out one small patch at a time: where hiding the patch breaks the target prediction, the trigger is.";
    type Found = OcclusionReport;
    type Report = OcclusionReport;
    /// Whether the hottest pixel lies on the attack's trigger.
    fn score(&self, mut found: OcclusionReport, truth: &GroundTruth<'_>) -> OcclusionReport {
        let mask = truth.answers.trigger.mask((1, found.height, found.width));
        let hottest = found.max_row * found.width + found.max_col;
        found.hottest_on_trigger = mask.get(hottest).is_some_and(|&m| m > 0.0);
        found
    }
    /// Right when its hottest pixel lies on the trigger; meaningless on a clean model.
    fn verdict(r: &OcclusionReport, truth: &Truth) -> Verdict {
        let said = format!("hottest at row {}, col {}", r.max_row, r.max_col);
        let score = truth.backdoored.then_some(f64::from(u8::from(r.hottest_on_trigger)));
        Verdict { said, score, f1: None, auroc: None }
    }
    fn summary(o: &OcclusionReport, _: &About) -> Summary {
        let verdict = format!(
            "Hiding the region at row {}, column {} breaks the target prediction most: {} the trigger.",
            o.max_row,
            o.max_col,
            if o.hottest_on_trigger { "on" } else { "not on" }
        );
        let figures =
            vec![("hottest pixel", format!("row {}, col {}", o.max_row, o.max_col)), ("inputs", o.inputs.to_string())];
        Summary { verdict, figures, seconds: o.seconds }
    }
    async fn detect(&self, cx: &mut Cx<'_>) -> Result<OcclusionReport> {
        let t = cx.now();
        let mut r = self.inspect(cx).await?;
        r.seconds = cx.now() - t;
        Ok(r)
    }
}
