//! Distillation as a repair (Hinton et al. 2015, used against backdoors by Yoshida & Fujino, AISec
//! 2020): a fresh student learns the suspect model's softened outputs on clean data only; the trigger
//! never appears there, so the student has nothing to copy the backdoor from.

use burn::module::Module;
use serde::{Deserialize, Serialize};

use super::{Cx, Defended, Fit, Fixed, Objective, Repair, fit, probabilities};
use crate::lab::device::fresh_model;
use crate::lab::error::Result;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Distill {
    /// Passes over the defender's clean set (link key `distill_epochs`).
    pub epochs: usize,
    /// Softmax temperature of teacher and student (link key `distill_t`).
    pub temperature: f64,
}

impl Default for Distill {
    fn default() -> Self {
        Self { epochs: 30, temperature: 4.0 }
    }
}

impl Distill {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(1..=500).contains(&self.epochs) {
            return Err(format!("distill_epochs {} must be between 1 and 500", self.epochs));
        }
        if !(self.temperature.is_finite() && (0.1..=100.0).contains(&self.temperature)) {
            return Err(format!("distill_t {} must be between 0.1 and 100", self.temperature));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DistillDetail {
    /// The student's accuracy on the defender's clean set against the true labels.
    pub student_defender_acc: f64,
}

impl Repair for Distill {
    type Detail = DistillDetail;

    async fn repair(&self, cx: &mut Cx<'_>) -> Result<Fixed<DistillDetail>> {
        let clean = cx.clean.clone();
        let probs = probabilities(&cx.model, &clean, self.temperature, cx.device).await?;
        let spec = cx.spec;
        let student = fresh_model(spec.model, spec.dims(), spec.seed, &cx.device.clone().autodiff());
        let objective = Objective::Soft { probs: &probs, temperature: self.temperature };
        let student = fit(cx, student, Fit { set: &clean, epochs: self.epochs, objective, keep: None }).await?.valid();
        let student_defender_acc = cx.defender_accuracy(&student).await?;
        Ok(Fixed {
            defended: Defended::Model(student),
            clean_samples: clean.len(),
            detail: DistillDetail { student_defender_acc },
        })
    }
}
