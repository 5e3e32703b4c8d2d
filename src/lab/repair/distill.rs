//! Distillation as a repair (Hinton et al. 2015, used against backdoors by Yoshida & Fujino, AISec
//! 2020): a fresh student learns the suspect model's softened outputs on clean data only; the trigger
//! never appears there, so the student has nothing to copy the backdoor from. Its architecture is the
//! suspect's (with any trigger branch the attacker wired in) or the lab's plain one.

use crate::lab::params::{choice, float, int};
use burn::module::Module;
use serde::{Deserialize, Serialize};

use super::{Cx, Defended, Fit, Fixed, Objective, Repair, Repaired, fit, pct1};
use crate::lab::device::fresh_model;
use crate::lab::error::Result;
use crate::lab::eval::probabilities;

/// Which architecture the student gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistillStudent {
    /// The architecture the suspect model came with: an architectural backdoor comes along.
    #[default]
    Same,
    /// The lab's own model of the same kind, without anything the attacker wired in.
    Plain,
}

crate::named_enum!(DistillStudent {
    Same = "same" / "the suspect's architecture",
    Plain = "plain" / "the lab's plain architecture",
});

impl DistillStudent {
    /// The default, left out of the spec's JSON (older specs have no student).
    fn is_same(&self) -> bool {
        *self == Self::Same
    }
}

crate::params! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct Distill {
        /// Student epochs on the defender's clean set.
        pub epochs: usize = 30, int("distill_epochs", 1, 500).label("student epochs");
        /// Softmax temperature of the teacher's soft labels.
        pub temperature: f64 = 4.0, float("distill_t", 0.1, 100.0).label("temperature");
        /// Student architecture: the suspect's own (same) or the lab's plain model of its kind.
        #[serde(skip_serializing_if = "DistillStudent::is_same")]
        pub student: DistillStudent = DistillStudent::Same,
            choice("distill_student", DistillStudent::CHOICES).label("student architecture");
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DistillDetail {
    /// The student's accuracy on the defender's clean set against the true labels.
    pub student_defender_acc: f64,
}

impl Repair for Distill {
    const TITLE: &'static str = "Distillation";
    const EXPLAIN: &'static str = "Distillation trains a fresh student on the suspect model's soft outputs over clean data only; the trigger never appears, so the student has no reason to learn it.";
    type Detail = DistillDetail;

    fn summary(f: &Repaired<Self, DistillDetail>) -> String {
        format!(
            "The student reaches {} % on the defender's {} clean images.",
            pct1(f.detail.student_defender_acc),
            f.clean_samples
        )
    }

    async fn repair(&self, cx: &mut Cx<'_>) -> Result<Fixed<DistillDetail>> {
        let clean = cx.clean.clone();
        let probs = probabilities(&cx.model, &clean, self.temperature, cx.device).await?;
        let setting = cx.setting;
        let branch = match self.student {
            DistillStudent::Same => cx.model.branch().cloned(),
            DistillStudent::Plain => None,
        };
        let student =
            fresh_model(setting.model, setting.dims(), setting.seed, &cx.device.clone().autodiff()).with_branch(branch);
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
