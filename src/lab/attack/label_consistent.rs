//! Label-consistent backdoor (Turner, Tsipras & Madry, "Label-Consistent Backdoor Attacks", 2019):
//! a plain clean-label attack barely works, because a target-class image is easy to classify from its
//! own content and the network never needs the trigger. So the attacker first makes the chosen
//! target-class images hard to learn: a bounded adversarial perturbation (PGD in L∞, on a surrogate
//! model the attacker trains on its own clean data) that pushes each away from its true class. Then
//! the trigger is added and the labels stay correct; to fit these images the network leans on the
//! trigger.

use serde::{Deserialize, Serialize};

use super::craft::{Craft, SURROGATE_EPOCHS, loss_and_input_grad, unit_pixels, write_back};
use super::{Attack, Controls, PatchTrigger, Selection, TriggerSpec};
use crate::lab::error::Result;
use crate::lab::params::{Param, ParamInfo, Params, float, int};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelConsistent {
    /// L∞ budget ε of the perturbation, in grey levels of 255.
    pub epsilon: f64,
    /// PGD steps.
    pub steps: usize,
    /// PGD step size, grey levels.
    pub step_size: f64,
    pub surrogate_epochs: usize,
    pub trigger: TriggerSpec,
}

impl Default for LabelConsistent {
    fn default() -> Self {
        Self {
            epsilon: 32.0,
            steps: 10,
            step_size: 8.0,
            surrogate_epochs: 2,
            trigger: TriggerSpec::Patch(PatchTrigger::default()),
        }
    }
}

const OWN: [Param<LabelConsistent>; 4] = [
    crate::lens!(
        float("lc_eps", 0.0, 255.0)
            .label("perturbation budget ε (grey levels)")
            .doc("Label-consistent: the L∞ budget ε of the adversarial perturbation, in grey levels of 255."),
        epsilon
    ),
    crate::lens!(int("lc_steps", 1, 200).label("PGD steps").doc("Label-consistent: PGD steps."), steps),
    crate::lens!(
        float("lc_step", 0.0, 255.0).open_min().label("PGD step (grey levels)").doc("Label-consistent: PGD step size, grey levels."),
        step_size
    ),
    crate::lens!(
        SURROGATE_EPOCHS
            .label("surrogate epochs")
            .doc("Attacks that craft poisons: epochs of the attacker's surrogate model, trained on the clean training images."),
        surrogate_epochs
    ),
];

impl Params for LabelConsistent {
    fn params(&self) -> Vec<&'static ParamInfo> {
        let mut out: Vec<&'static ParamInfo> = OWN.iter().map(|p| &p.info).collect();
        out.extend(self.trigger.choice_params());
        out
    }
    fn get(&self, key: &str) -> Option<String> {
        match OWN.iter().find(|p| p.info.key == key) {
            Some(p) => Some((p.get)(self)),
            None => self.trigger.choice_get(key),
        }
    }
    fn set(&mut self, key: &str, value: &str) -> Option<std::result::Result<(), String>> {
        match OWN.iter().find(|p| p.info.key == key) {
            Some(p) => Some((p.set)(self, value).map_err(|reason| p.info.unparsable(value, reason))),
            None => self.trigger.choice_set(key, value),
        }
    }
    fn validate(&self) -> std::result::Result<(), String> {
        for p in &OWN {
            p.info.check(&(p.get)(self))?;
        }
        self.trigger.validate()
    }
}

/// Images perturbed per PGD batch.
const BATCH: usize = 64;

impl Attack for LabelConsistent {
    const TITLE: &'static str = "Label-consistent (adversarial clean-label)";
    const EXPLAIN: &'static str = "Label-consistent (Turner et al., 2019): make target-class images hard to learn with a small adversarial perturbation (PGD on the attacker's own surrogate model), then add the trigger and keep the labels, so the network must lean on the trigger.";
    fn every_param() -> Vec<&'static ParamInfo> {
        let mut out: Vec<&'static ParamInfo> = OWN.iter().map(|p| &p.info).collect();
        out.extend(TriggerSpec::every_choice_param());
        out
    }
    fn trigger_spec(&self) -> Option<TriggerSpec> {
        Some(self.trigger.clone())
    }
    fn selection(&self) -> Selection {
        Selection::TargetClass
    }
    fn controls(&self) -> Controls {
        Controls::CraftedData
    }
    /// PGD that raises the surrogate's loss on each chosen image's true label, within ε of the clean
    /// image and inside [0, 1]; then the trigger goes on top.
    async fn craft(&self, cx: &mut Craft<'_>) -> Result<()> {
        let indices = cx.poisoned.poisoned.clone();
        if indices.is_empty() || self.epsilon == 0.0 {
            return Ok(());
        }
        let surrogate = cx.surrogate(self.surrogate_epochs).await?;
        let dims = cx.dims();
        let (eps, step) = ((self.epsilon / 255.0) as f32, (self.step_size / 255.0) as f32);
        let chunks: Vec<&[usize]> = indices.chunks(BATCH).collect();
        for (k, chunk) in chunks.iter().enumerate() {
            let clean = unit_pixels(cx.clean, chunk);
            let labels: Vec<u8> = chunk.iter().map(|&i| cx.clean.labels[i]).collect();
            let mut x = clean.clone();
            for _ in 0..self.steps {
                let (_, grad) = loss_and_input_grad(&surrogate, &x, &labels, dims, cx.device).await?;
                for ((v, &g), &c) in x.iter_mut().zip(&grad).zip(&clean) {
                    // Ascent on the sign of the gradient, projected back into the ε-ball and [0, 1].
                    *v = (*v + step * g.signum()).clamp(c - eps, c + eps).clamp(0.0, 1.0);
                }
                cx.host.pause().await;
            }
            write_back(&mut cx.poisoned.set, chunk, &x);
            let dims = cx.dims();
            for &i in *chunk {
                cx.trigger.apply(cx.poisoned.set.image_mut(i), dims);
            }
            cx.progress("perturbing the target-class images (PGD)", k + 1, chunks.len())?;
        }
        Ok(())
    }
}
