//! Fine-pruning (Liu, Dolan-Gavitt & Garg, RAID 2018): backdoor neurons stay dormant on clean
//! inputs, so prune the last convolution's channels (the MLP's last hidden units) in increasing order
//! of their mean activation on clean data until the defender's clean accuracy drops by more than
//! `max_drop`, then fine-tune on the clean data with the pruned units kept silent.

use crate::lab::params::{Hint, float, int};
use serde::{Deserialize, Serialize};

use super::{Cx, Defended, Fit, Fixed, Objective, Repair, Repaired, fit, pct1};
use crate::lab::error::Result;
use crate::lab::eval::{batched, unheard};

crate::params! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct FinePruning {
        /// Largest drop of clean accuracy on the defender's set that pruning may cost (the authors' 4 points).
        pub max_drop: f64 = 0.04, float("fp_drop", 0.0, 0.5).open_min().label("largest CA drop").hint(Hint::Percent);
        /// Fine-tuning passes over the defender's clean set after pruning.
        pub ft_epochs: usize = 10, int("fp_ft_epochs", 0, 200).label("fine-tuning epochs");
    }
}

/// One point of the pruning curve: the test CA and ASR (ground truth, for the picture) and the
/// defender's own clean accuracy (what the stopping rule reads) after pruning `pruned` units.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub pruned: usize,
    pub fraction: f64,
    pub clean_acc: f64,
    pub asr: f64,
    pub defender_acc: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FpDetail {
    /// The layer pruned: `last_conv` or `last_hidden` (MLP).
    pub layer: String,
    /// Units in that layer, and how many the stopping rule pruned.
    pub units: usize,
    pub pruned: usize,
    pub pruned_fraction: f64,
    /// Test CA and ASR at the stopping point, before fine-tuning.
    pub pruned_clean_acc: f64,
    pub pruned_asr: f64,
    /// CA and ASR against the pruned fraction, from 0 to every unit pruned.
    pub curve: Vec<CurvePoint>,
    /// Units in pruning order (least active on clean data first).
    pub order: Vec<usize>,
}

/// Most points the curve measures on the test images (each costs a full evaluation).
const CURVE_POINTS: usize = 32;

impl Repair for FinePruning {
    const TITLE: &'static str = "Fine-pruning";
    const EXPLAIN: &'static str = "Fine-pruning (Liu et al., RAID 2018) removes the last layer's units that clean images leave idle, where a backdoor may hide, then fine-tunes on clean data.";
    type Detail = FpDetail;

    fn summary(f: &Repaired<Self, FpDetail>) -> String {
        format!(
            "Pruned {} of {} units ({:.0} %): CA {} %, ASR {} % before fine-tuning for {} epochs.",
            f.detail.pruned,
            f.detail.units,
            100.0 * f.detail.pruned_fraction,
            pct1(f.detail.pruned_clean_acc),
            pct1(f.detail.pruned_asr),
            f.params.ft_epochs
        )
    }

    async fn repair(&self, cx: &mut Cx<'_>) -> Result<Fixed<FpDetail>> {
        let units = cx.model.prunable_units();
        let clean = cx.clean.clone();
        // Mean activation of each unit over the defender's clean images.
        let a = batched(&clean, cx.device, |x| cx.model.prunable_activity(x), unheard).await?;
        let mut activity = vec![0.0f64; units];
        for row in a.chunks_exact(units) {
            activity.iter_mut().zip(row).for_each(|(s, &v)| *s += f64::from(v));
        }
        let mut order: Vec<usize> = (0..units).collect();
        order.sort_by(|&a, &b| activity[a].total_cmp(&activity[b]));
        let keep_after = |k: usize| {
            let mut keep = vec![true; units];
            order[..k].iter().for_each(|&u| keep[u] = false);
            keep
        };

        // The defender's rule, on its own clean data: the most units whose pruning (and every
        // smaller pruning on the way) keeps the accuracy within `max_drop` of the unpruned model's.
        let base = cx.defender_accuracy(&cx.model).await?;
        let mut defender = vec![base];
        let mut stop = 0;
        for k in 1..=units {
            let acc = cx.defender_accuracy(&cx.model.clone().pruned(&keep_after(k))).await?;
            defender.push(acc);
            if base - acc > self.max_drop {
                break;
            }
            stop = k;
            cx.progress(k, units).await?;
        }
        // The rest of the defender's curve, only for the picture.
        let t = cx.now();
        for k in defender.len()..=units {
            defender.push(cx.defender_accuracy(&cx.model.clone().pruned(&keep_after(k))).await?);
        }
        let pictured = cx.now() - t;

        let stride = units.div_ceil(CURVE_POINTS).max(1);
        let mut at: Vec<usize> = (0..=units).step_by(stride).chain([stop, units]).collect();
        at.sort_unstable();
        at.dedup();
        let mut curve = Vec::with_capacity(at.len());
        for &k in &at {
            let m = cx.measure_for_picture(&cx.model.clone().pruned(&keep_after(k))).await?;
            curve.push(CurvePoint {
                pruned: k,
                fraction: k as f64 / units as f64,
                clean_acc: m.clean_acc,
                asr: m.asr,
                defender_acc: defender[k],
            });
        }
        cx.charge_to_picture(pictured);
        let at_stop = curve.iter().find(|p| p.pruned == stop).cloned().unwrap_or_default();

        let keep = keep_after(stop);
        let model = cx.trainable().pruned(&keep);
        let model = if self.ft_epochs == 0 {
            model
        } else {
            let job = Fit { set: &clean, epochs: self.ft_epochs, objective: Objective::Labels, keep: Some(&keep) };
            fit(cx, model, job).await?
        };
        let layer = if matches!(cx.model, crate::lab::model::Model::Mlp(_)) { "last_hidden" } else { "last_conv" };
        Ok(Fixed {
            defended: Defended::Model(burn::module::Module::valid(&model)),
            clean_samples: clean.len(),
            detail: FpDetail {
                layer: layer.into(),
                units,
                pruned: stop,
                pruned_fraction: stop as f64 / units as f64,
                pruned_clean_acc: at_stop.clean_acc,
                pruned_asr: at_stop.asr,
                curve,
                order,
            },
        })
    }
}
