//! Neural Cleanse unlearning (Wang et al., S&P 2019, §VI-C): reverse-engineer the flagged class's
//! trigger, stamp it on 20 % of the defender's clean images under their true labels and fine-tune,
//! so the model learns that the trigger means nothing.

use crate::lab::params::{Hint, float, int};
use serde::{Deserialize, Serialize};

use super::{Cx, Defended, Fit, Fixed, Objective, Repair, Repaired, fit};
use crate::lab::detect::{ModelInspector, NcReport};
use crate::lab::error::{LabError, Result};

crate::params! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct NcUnlearn {
        /// Fine-tuning epochs.
        pub epochs: usize = 10, int("nc_epochs", 1, 200).label("fine-tuning epochs");
        /// Share of the clean set stamped with the reversed trigger (under true labels).
        pub share: f64 = 0.2, float("nc_share", 0.0, 1.0).open_min().label("share stamped").hint(Hint::Percent);
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
    /// The verdict and reversed trigger are the Detect step's (else Neural Cleanse ran here).
    #[serde(default)]
    pub from_detection: bool,
    /// Its reversed mask (height×width) and pattern (channel-planar), 0–255, for the picture.
    pub mask: Vec<u8>,
    pub pattern: Vec<u8>,
}

impl Repair for NcUnlearn {
    const TITLE: &'static str = "Neural Cleanse unlearning";
    const EXPLAIN: &'static str = "Neural Cleanse unlearning (Wang et al., S&P 2019) stamps the reversed trigger on clean images under their true labels and fine-tunes, so the trigger stops meaning the target.";
    type Detail = NcDetail;

    fn summary(f: &Repaired<Self, NcDetail>) -> String {
        let why = if f.detail.flagged {
            format!("flagged by Neural Cleanse (index {:.1})", f.detail.anomaly_index)
        } else {
            format!("not flagged (index {:.1}): the class with the smallest mask, a guess", f.detail.anomaly_index)
        };
        let source = if f.detail.from_detection { " (the Detect step's verdict)" } else { "" };
        format!(
            "Unlearned class {}'s reversed trigger, {why}{source}, stamped on {} clean images.",
            f.detail.class, f.detail.stamped
        )
    }

    async fn repair(&self, cx: &mut Cx<'_>) -> Result<Fixed<NcDetail>> {
        // The Detect step's verdict when it ran Neural Cleanse on this model, so the page gives one
        // answer to "which class, which trigger"; else reversed here, on the defender's clean set.
        let mut clean = cx.clean.clone();
        let t = cx.now();
        let (report, from_detection) = match &cx.detected().nc {
            Some(found) => (found.clone(), true),
            None => {
                let nc = cx.detectors().nc.clone().unwrap_or_default();
                let report: NcReport = cx.detector("nc", &clean, async |dcx| nc.inspect(dcx).await).await?;
                (report, false)
            }
        };
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
                from_detection,
                mask,
                pattern,
            },
        })
    }
}
