//! Neural Cleanse unlearning (Wang et al., S&P 2019, §VI-C): reverse-engineer the flagged class's
//! trigger, stamp it on 20 % of the defender's clean images under their true labels and fine-tune,
//! so the model learns that the trigger means nothing.

use serde::{Deserialize, Serialize};

use super::{Cx, Defended, Fit, Fixed, Objective, Repair, fit};
use crate::lab::detect::{ModelInspector, NcReport};
use crate::lab::error::{LabError, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NcUnlearn {
    /// Fine-tuning passes over the defender's clean set (link key `nc_epochs`).
    pub epochs: usize,
    /// Share of the clean set stamped with the reversed trigger (link key `nc_share`; the paper's 20 %).
    pub share: f64,
}

impl Default for NcUnlearn {
    fn default() -> Self {
        Self { epochs: 10, share: 0.2 }
    }
}

impl NcUnlearn {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(1..=200).contains(&self.epochs) {
            return Err(format!("nc_epochs {} must be between 1 and 200", self.epochs));
        }
        if !(self.share.is_finite() && self.share > 0.0 && self.share <= 1.0) {
            return Err(format!("nc_share {} must be in (0, 1]", self.share));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NcDetail {
    /// The class whose reversed trigger was unlearned.
    pub class: u8,
    /// Whether Neural Cleanse flagged it; if not, it is the class with the smallest mask (a
    /// defender's guess, said here so that no one mistakes it for a detection).
    pub flagged: bool,
    pub anomaly_index: f64,
    pub mask_l1: f64,
    /// Clean images that carried the reversed trigger.
    pub stamped: usize,
    /// Neural Cleanse's own wall time within `seconds`.
    pub nc_seconds: f64,
    /// Its reversed mask (height×width) and pattern (channel-planar), 0–255, for the picture.
    pub mask: Vec<u8>,
    pub pattern: Vec<u8>,
}

impl Repair for NcUnlearn {
    type Detail = NcDetail;

    async fn repair(&self, cx: &mut Cx<'_>) -> Result<Fixed<NcDetail>> {
        // Reversed on the defender's clean set, not on the evaluation images (the detection step's
        // report was reversed on those, so it is not reused here).
        let nc = cx.spec.detect.nc.clone().unwrap_or_default();
        let mut clean = cx.clean.clone();
        let t = cx.now();
        let report: NcReport = cx.detector("nc", &clean, async |dcx| nc.inspect(dcx).await).await?;
        let nc_seconds = cx.now() - t;
        let by_norm = |a: &u8, b: &u8| report.mask_l1[*a as usize].total_cmp(&report.mask_l1[*b as usize]);
        let (class, flagged) = match report.flagged_classes.iter().copied().min_by(by_norm) {
            Some(c) => (c, true),
            None => {
                let all: Vec<u8> = (0..report.mask_l1.len() as u8).collect();
                let c = all
                    .into_iter()
                    .min_by(by_norm)
                    .ok_or_else(|| LabError::Device("Neural Cleanse returned no masks".into()))?;
                (c, false)
            }
        };
        let k = class as usize;
        let (mask, pattern) = (report.masks[k].clone(), report.patterns[k].clone());
        let plane = clean.height * clean.width;
        let count = ((self.share * clean.len() as f64).round() as usize).min(clean.len());
        let all: Vec<usize> = (0..clean.len()).collect();
        for i in cx.rng().choose_sorted(&all, count) {
            // x' = (1 − m)·x + m·p, per pixel, in 0–255.
            for (j, px) in clean.image_mut(i).iter_mut().enumerate() {
                let m = f32::from(mask[j % plane]) / 255.0;
                *px = ((1.0 - m) * f32::from(*px) + m * f32::from(pattern[j])).round().clamp(0.0, 255.0) as u8;
            }
        }
        let model = cx.trainable();
        let model =
            fit(cx, model, Fit { set: &clean, epochs: self.epochs, objective: Objective::Labels, keep: None }).await?;
        Ok(Fixed {
            defended: Defended::Model(burn::module::Module::valid(&model)),
            clean_samples: clean.len(),
            detail: NcDetail {
                class,
                flagged,
                anomaly_index: report.anomaly_index[k],
                mask_l1: report.mask_l1[k],
                stamped: count,
                nc_seconds,
                mask,
                pattern,
            },
        })
    }
}
