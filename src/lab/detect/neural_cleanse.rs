//! Neural Cleanse (Wang et al., S&P 2019): for every class, reverse-engineer the smallest mask and
//! pattern that send clean images to it; a class whose mask is anomalously small (MAD anomaly index
//! above 2, on the small side) is the target of a backdoor.

use crate::lab::params::{float, int};
use burn::tensor::activation::{log_softmax, sigmoid};
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::metrics::{anomaly_indices, median};
use super::{About, Cx, Detector, GroundTruth, ModelInspector, Summary, Truth, Verdict};
use crate::lab::data::{NUM_CLASSES, batch};
use crate::lab::device::read_floats;
use crate::lab::error::Result;

crate::params! {
    /// Parameters: a defender's generic budget, not tuned to any attack.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct NeuralCleanse {
        /// Most optimisation steps (all classes optimised together); stops earlier once no mask shrinks.
        pub steps: usize = 300, int("nc_steps", 10, 5000).label("optimisation steps");
        /// Clean images per class per step (10 classes × this many images per pass).
        pub batch: usize = 16, int("nc_batch", 1, 50).label("images per class");
        /// Adam step size on the mask and pattern logits.
        pub lr: f64 = 0.1, float("nc_lr", 0.0, 1.0).open_min().label("step size");
    }
}

/// A class whose mask is smaller than the others by more than this many robust σ is flagged (the paper's 2).
pub const ANOMALY_THRESHOLD: f64 = 2.0;
/// A reversed trigger counts once it sends this share of a batch to its class (the authors' 0.99).
const SUCCESS: f64 = 0.99;
/// The authors' λ schedule: start, and the factors after `PATIENCE` steps of success or failure.
const INIT_COST: f64 = 1e-3;
const COST_UP: f64 = 1.5;
const PATIENCE: usize = 10;
/// Weight of the past in the smoothed success rate.
const SMOOTHING: f64 = 0.8;
/// Stop when no class's best mask shrank by 1 % for this many steps.
const EARLY_STOP: usize = 60;

/// What Neural Cleanse found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NcReport {
    pub params: NeuralCleanse,
    pub seconds: f64,
    /// Classes whose mask is anomalously small (index > 2 below the median).
    pub flagged_classes: Vec<u8>,
    /// MAD anomaly index of each class's mask L1 norm.
    pub anomaly_index: Vec<f64>,
    /// L1 norm (pixels) of each class's smallest successful mask.
    pub mask_l1: Vec<f64>,
    /// Share of clean images each reversed trigger sends to its class (smoothed, at the end).
    pub attack_success: Vec<f64>,
    /// Each class's reversed mask, height×width, 0–255.
    pub masks: Vec<Vec<u8>>,
    /// Each class's reversed pattern, channels×height×width (channel-planar), 0–255.
    pub patterns: Vec<Vec<u8>>,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    /// Steps actually run (early stop).
    pub steps_run: usize,
}

impl NcReport {
    /// Where class `k`'s reversed mask is strong: the centre (row, column, from the top-left pixel) of
    /// its pixels at half its largest value or more. Faint mask elsewhere would pull a plain centre of
    /// mass toward the middle of the image. `None` for an empty mask.
    pub fn mask_centre(&self, k: usize) -> Option<(f64, f64)> {
        let mask = self.masks.get(k)?;
        let top = *mask.iter().max()?;
        if top == 0 || self.width == 0 {
            return None;
        }
        let (mut n, mut r, mut c) = (0.0, 0.0, 0.0);
        for (i, &m) in mask.iter().enumerate() {
            if 2 * u32::from(m) >= u32::from(top) {
                let m = f64::from(m);
                n += m;
                r += (i / self.width) as f64 * m;
                c += (i % self.width) as f64 * m;
            }
        }
        Some((r / n, c / n))
    }
}

impl ModelInspector for NeuralCleanse {
    type Report = NcReport;

    async fn inspect(&self, cx: &mut Cx<'_>) -> Result<NcReport> {
        let (c, h, w) = cx.setting.dims();
        let (k, b, hw) = (NUM_CLASSES, self.batch, h * w);
        let device = cx.device.clone();
        let mut rng = cx.rng();
        // The defender's clean images: a sample of the held-out clean test set, in [0, 1].
        let all: Vec<usize> = (0..cx.test.len()).collect();
        let pool = rng.choose_sorted(&all, cx.test.len().min(1000));
        let pixels: Vec<f32> = pool.iter().flat_map(|&i| cx.test.image(i).iter().map(|&p| p as f32 / 255.0)).collect();
        let (mean, std) = batch::stats(c);
        let mean = Tensor::<1>::from_floats(mean, &device).reshape([1, 1, c, 1, 1]);
        let std = Tensor::<1>::from_floats(std, &device).reshape([1, 1, c, 1, 1]);
        // Row r of a pass belongs to class r / b.
        let onehot: Vec<f32> = (0..k * b).flat_map(|r| (0..k).map(move |j| f32::from(u8::from(j == r / b)))).collect();
        let onehot = Tensor::<2>::from_data(TensorData::new(onehot, [k * b, k]), &device);

        // Mask and pattern live as logits: sigmoid keeps them in [0, 1] without clipping.
        let mut mask_raw = Tensor::<4>::zeros([k, 1, h, w], &device);
        let mut pattern_raw = Tensor::<4>::zeros([k, c, h, w], &device);
        let mut adam_mask = Adam::new([k, 1, h, w], &device);
        let mut adam_pattern = Adam::new([k, c, h, w], &device);
        // λ stays 0 until a class's trigger first succeeds (the authors' warm-up).
        let mut cost = vec![0.0f64; k];
        let (mut up, mut down, mut stale) = (vec![0usize; k], vec![0usize; k], vec![0usize; k]);
        let mut best_l1 = vec![f64::INFINITY; k];
        let mut best_mask = vec![Vec::new(); k];
        let mut best_pattern = vec![Vec::new(); k];
        let mut success = vec![0.0; k];
        let mut last_l1 = vec![0.0; k];
        let mut steps_run = 0;
        for step in 0..self.steps {
            steps_run = step + 1;
            let mut x = Vec::with_capacity(b * c * hw);
            for _ in 0..b {
                let i = rng.below(pool.len());
                x.extend_from_slice(&pixels[i * c * hw..(i + 1) * c * hw]);
            }
            let x = Tensor::<5>::from_data(TensorData::new(x, [1, b, c, h, w]), &device);
            let mr = mask_raw.clone().autodiff().require_grad();
            let pr = pattern_raw.clone().autodiff().require_grad();
            let mask = sigmoid(mr.clone());
            let pattern = sigmoid(pr.clone());
            let m5 = mask.clone().unsqueeze_dim::<5>(1); // [k, 1, 1, h, w]
            let p5 = pattern.clone().unsqueeze_dim::<5>(1); // [k, 1, c, h, w]
            let stamped = x * (m5.clone().neg() + 1.0) + m5 * p5; // [k, b, c, h, w]
            let normalised = ((stamped - mean.clone()) / std.clone()).reshape([k * b, c, h, w]);
            let logits = cx.model.forward(normalised); // [k*b, 10]
            let ce = (log_softmax(logits.clone(), 1) * onehot.clone()).sum_dim(1).neg().reshape([k, b]).mean_dim(1);
            let l1 = mask.clone().sum_dim(3).sum_dim(2).reshape([k, 1]);
            let lambda = Tensor::<2>::from_data(
                TensorData::new(cost.iter().map(|&v| v as f32).collect::<Vec<_>>(), [k, 1]),
                &device,
            );
            let loss = (ce + l1 * lambda).sum();
            let grads = loss.backward();
            let (Some(gm), Some(gp)) = (mr.grad(&grads), pr.grad(&grads)) else {
                return Err(crate::lab::LabError::Device("no gradient for the reversed trigger".into()));
            };

            // Success and size of the mask this step used.
            let pred = read_floats(logits.inner()).await?;
            let masks_now = read_floats(mask.inner()).await?;
            let mut improved = false;
            for class in 0..k {
                let hits = (0..b)
                    .filter(|&j| {
                        let row = &pred[(class * b + j) * k..(class * b + j + 1) * k];
                        argmax(row) == class
                    })
                    .count();
                // A smoothed success rate (about five batches): a single small batch that happens to
                // succeed would otherwise record a lucky mask and jolt λ.
                let rate = hits as f64 / b as f64;
                success[class] = if step == 0 { rate } else { SMOOTHING * success[class] + (1.0 - SMOOTHING) * rate };
                let l1: f64 = masks_now[class * hw..(class + 1) * hw].iter().map(|&v| f64::from(v)).sum();
                last_l1[class] = l1;
                let ok = success[class] >= SUCCESS;
                if ok && l1 < best_l1[class] {
                    stale[class] = if l1 < 0.99 * best_l1[class] { 0 } else { stale[class] + 1 };
                    best_l1[class] = l1;
                    best_mask[class] = masks_now[class * hw..(class + 1) * hw].to_vec();
                    improved = true;
                } else {
                    stale[class] += 1;
                }
                // The authors' schedule: raise λ after sustained success, lower it after sustained failure.
                if cost[class] == 0.0 {
                    if ok {
                        cost[class] = INIT_COST;
                    }
                    continue;
                }
                if ok {
                    up[class] += 1;
                    down[class] = 0;
                } else {
                    down[class] += 1;
                    up[class] = 0;
                }
                if up[class] >= PATIENCE {
                    cost[class] *= COST_UP;
                    up[class] = 0;
                } else if down[class] >= PATIENCE {
                    cost[class] /= COST_UP.powf(1.5);
                    down[class] = 0;
                }
            }
            if improved {
                let patterns_now = read_floats(pattern.inner()).await?;
                for class in 0..k {
                    if best_mask[class] == masks_now[class * hw..(class + 1) * hw] {
                        best_pattern[class] = patterns_now[class * c * hw..(class + 1) * c * hw].to_vec();
                    }
                }
            }
            mask_raw = adam_mask.step(mask_raw, gm, self.lr, step + 1);
            pattern_raw = adam_pattern.step(pattern_raw, gp, self.lr, step + 1);
            cx.progress(step + 1, self.steps).await?;
            if cost.iter().all(|&v| v > 0.0) && stale.iter().all(|&s| s >= EARLY_STOP) {
                break;
            }
        }
        // A class never reversed within the budget keeps its last (unsuccessful) mask: its norm is an
        // upper bound and can only make the class look less suspicious.
        let final_masks = read_floats(sigmoid(mask_raw)).await?;
        let final_patterns = read_floats(sigmoid(pattern_raw)).await?;
        for class in 0..k {
            if best_mask[class].is_empty() {
                best_l1[class] = last_l1[class];
                best_mask[class] = final_masks[class * hw..(class + 1) * hw].to_vec();
            }
            if best_pattern[class].is_empty() {
                best_pattern[class] = final_patterns[class * c * hw..(class + 1) * c * hw].to_vec();
            }
        }
        let anomaly_index = anomaly_indices(&best_l1);
        let m = median(&best_l1);
        let flagged_classes = (0..k)
            .filter(|&class| best_l1[class] < m && anomaly_index[class] > ANOMALY_THRESHOLD)
            .map(|class| class as u8)
            .collect();
        let to_u8 = |v: &Vec<f32>| v.iter().map(|&x| (x.clamp(0.0, 1.0) * 255.0).round() as u8).collect();
        Ok(NcReport {
            params: self.clone(),
            seconds: 0.0,
            flagged_classes,
            anomaly_index,
            mask_l1: best_l1,
            attack_success: success,
            masks: best_mask.iter().map(to_u8).collect(),
            patterns: best_pattern.iter().map(to_u8).collect(),
            height: h,
            width: w,
            channels: c,
            steps_run,
        })
    }
}

fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best }).0
}

/// Adam on one plain tensor (PyTorch defaults), for parameters that are not a burn `Module`.
struct Adam {
    m: Tensor<4>,
    v: Tensor<4>,
}

impl Adam {
    fn new(shape: [usize; 4], device: &burn::tensor::Device) -> Self {
        Self { m: Tensor::zeros(shape, device), v: Tensor::zeros(shape, device) }
    }

    fn step(&mut self, p: Tensor<4>, g: Tensor<4>, lr: f64, t: usize) -> Tensor<4> {
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
        self.m = self.m.clone() * b1 + g.clone() * (1.0 - b1);
        self.v = self.v.clone() * b2 + g.clone() * g * (1.0 - b2);
        let m_hat = self.m.clone() / (1.0 - b1.powi(t as i32));
        let v_hat = self.v.clone() / (1.0 - b2.powi(t as i32));
        p - m_hat / (v_hat.sqrt() + eps) * lr
    }
}

impl Detector for NeuralCleanse {
    const TITLE: &'static str = "Neural Cleanse";
    const EXPLAIN: &'static str = "Neural Cleanse (Wang et al., S&P 2019) searches, for every class, the smallest patch that sends clean images to it; a class reachable by an unusually small patch (anomaly index > 2) is a backdoor target.";
    type Found = NcReport;
    type Report = NcReport;
    fn score(&self, found: NcReport, _: &GroundTruth<'_>) -> NcReport {
        found
    }
    /// Right when it flags exactly the target (half right among other classes); on a clean model,
    /// right when it flags nothing.
    fn verdict(r: &NcReport, truth: &Truth) -> Verdict {
        let said = match r.flagged_classes.as_slice() {
            [] => "flags no class".to_string(),
            cs => format!("flags class {}", cs.iter().map(u8::to_string).collect::<Vec<_>>().join(", ")),
        };
        let score = match (truth.backdoored, r.flagged_classes.contains(&truth.target)) {
            (false, _) => f64::from(u8::from(r.flagged_classes.is_empty())),
            (true, false) => 0.0,
            (true, true) => 1.0 / r.flagged_classes.len() as f64,
        };
        Verdict { said, score: Some(score), f1: None, auroc: None }
    }
    fn summary(nc: &NcReport, _: &About) -> Summary {
        let (top_k, top) = nc
            .anomaly_index
            .iter()
            .copied()
            .enumerate()
            .fold((0, f64::MIN), |(k, m), (i, v)| if v > m { (i, v) } else { (k, m) });
        let verdict = if nc.flagged_classes.is_empty() {
            format!(
                "No class flagged: the largest anomaly index is {top:.1} (class {top_k}); above 2 on the small side would flag."
            )
        } else {
            let list: Vec<String> = nc
                .flagged_classes
                .iter()
                .map(|k| format!("{k} (index {:.1})", nc.anomaly_index[*k as usize]))
                .collect();
            format!("Flags class {}: a trigger this small is a backdoor.", list.join(", "))
        };
        let index: Vec<String> = nc.anomaly_index.iter().map(|a| format!("{a:.1}")).collect();
        let figures = vec![("anomaly index per class", index.join(" ")), ("steps", nc.steps_run.to_string())];
        Summary { verdict, figures, seconds: nc.seconds }
    }
    async fn detect(&self, cx: &mut Cx<'_>) -> Result<NcReport> {
        let t = cx.now();
        let mut r = self.inspect(cx).await?;
        r.seconds = cx.now() - t;
        Ok(r)
    }
}
