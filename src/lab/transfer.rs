//! Transfer learning from a poisoned base (Gu et al., 2017's transfer experiment; Yao et al., CCS
//! 2019's latent backdoors): the attacker publishes a pre-trained model, and a victim fine-tunes it on
//! clean data of its own, with the feature layers frozen or fully. The base is the run's model: trained
//! here on the attacker's data, or scanned from a file. The victim's images come from the part of the
//! dataset the split left unused, so the base never saw them. Each freeze mode starts from the same
//! base and is measured after every epoch, so the chart shows how much of the backdoor each keeps.

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::lab::data::ImageSet;
use crate::lab::error::{LabError, Result};
use crate::lab::eval::TriggeredTest;
use crate::lab::event::{EpochRecord, Event, Host, Relay};
use crate::lab::model::Model;
use crate::lab::params::{Hint, Kind, LinkValue, clip, float, int, other};
use crate::lab::train::{TrainSpec, train};

/// Which layers the victim keeps as the base had them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Freeze {
    /// Full fine-tuning: every layer trains.
    None,
    /// The feature extractor (convolutions; the MLP's first layer) stays fixed.
    Features,
    /// Only the output layer trains.
    AllButLast,
}

crate::named_enum!(Freeze {
    None = "none" / "nothing frozen",
    Features = "features" / "features frozen",
    AllButLast = "all_but_last" / "all but the last layer frozen",
});

/// The freeze modes to compare, in link order; empty means no transfer stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FreezeModes(pub Vec<Freeze>);

impl LinkValue for FreezeModes {
    fn to_link(&self) -> String {
        self.0.iter().map(|f| f.name()).collect::<Vec<_>>().join(",")
    }
    fn from_link(text: &str) -> std::result::Result<Self, String> {
        let mut modes = Vec::new();
        for name in text.split(',').filter(|n| !n.is_empty()) {
            let mode = Freeze::from_name(name).ok_or_else(|| format!("unknown freeze mode '{}'", clip(name)))?;
            if modes.contains(&mode) {
                return Err(format!("freeze mode '{name}' is listed twice"));
            }
            modes.push(mode);
        }
        Ok(Self(modes))
    }
}

crate::params! {
    /// The victim's fine-tuning of the run's model as a pre-trained base.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct TransferSpec {
        /// Transfer learning: the victim fine-tunes the model on clean images it holds, once per freeze mode listed (none: every layer trains; features: convolutions fixed; all_but_last: only the output layer trains); empty: no transfer stage.
        pub freeze: FreezeModes = FreezeModes::default(), other("freeze", Kind::Choices(Freeze::CHOICES), Hint::Checkboxes).selector().label("victim fine-tunes with");
        /// Fine-tuning epochs of each freeze mode.
        pub epochs: usize = 10, int("finetune_epochs", 1, 200).label("fine-tuning epochs");
        /// The victim's clean images, drawn from those the split left out of training and test.
        pub size: usize = 2000, int("finetune_size", 10, 1_000_000).label("victim's clean images");
        /// The victim's learning rate (its optimiser and batch size are the training section's).
        pub lr: f64 = 1e-3, float("finetune_lr", 0.0, 1.0).open_min().label("fine-tuning learning rate");
    }
}

impl TransferSpec {
    pub fn is_off(&self) -> bool {
        self.freeze.0.is_empty()
    }
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// One freeze mode's fine-tuning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferRun {
    pub freeze: Freeze,
    /// Parameters the victim trained (the rest stayed as the base had them).
    pub trainable_params: usize,
    /// CA and ASR after every fine-tuning epoch (the base's are the report's `final`).
    pub epochs: Vec<EpochRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferReport {
    /// The victim's clean images (none of them in the base's training or test set).
    pub clean_samples: usize,
    pub runs: Vec<TransferRun>,
    pub seconds: f64,
}

/// Fine-tunes copies of `base` on `victim` (clean, labelled) once per freeze mode, measuring CA on
/// `test` and ASR on `triggered` after every epoch. `base` stays as it was.
#[allow(clippy::too_many_arguments)]
pub async fn fine_tune(
    spec: &TransferSpec,
    train_spec: &TrainSpec,
    seed: u64,
    base: &Model,
    victim: &ImageSet,
    test: &ImageSet,
    triggered: &TriggeredTest,
    device: &Device,
    host: &mut dyn Host,
) -> Result<TransferReport> {
    let t0 = host.now();
    let schedule = TrainSpec { epochs: spec.epochs, lr: spec.lr, ..train_spec.clone() };
    let train_device = device.clone().autodiff();
    let mut runs = Vec::with_capacity(spec.freeze.0.len());
    for &freeze in &spec.freeze.0 {
        let model = base.clone().fork(&train_device).train();
        let model = match freeze {
            Freeze::None => model,
            Freeze::Features => model.frozen(false),
            Freeze::AllButLast => model.frozen(true),
        };
        let trainable_params = trainable(&model);
        let progress = |done, total| Event::Transfer { freeze: freeze.name().to_string(), done, total };
        let total = spec.epochs * victim.len().div_ceil(schedule.batch_size);
        let mut progress = Relay { inner: &mut *host, done: 0, total, progress: Box::new(&progress) };
        // The same shuffling seed for every mode: the modes differ only in what they freeze.
        let (_, epochs) =
            train(model, victim, &schedule, seed, &train_device, test, triggered, device, None, &mut progress).await?;
        runs.push(TransferRun { freeze, trainable_params, epochs });
    }
    if runs.is_empty() {
        return Err(LabError::spec("no freeze mode chosen: the transfer stage has nothing to run"));
    }
    Ok(TransferReport { clean_samples: victim.len(), runs, seconds: host.now() - t0 })
}

/// Number of parameters that require gradients.
fn trainable(model: &Model) -> usize {
    use burn::module::{ModuleVisitor, Param};
    use burn::tensor::Tensor;
    struct Count(usize);
    impl ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if param.val().is_require_grad() {
                self.0 += param.lazy_shape().num_elements();
            }
        }
    }
    let mut count = Count(0);
    model.visit(&mut count);
    count.0
}
