//! The training loop: mini-batch SGD or Adam on cross-entropy, emitting an event per batch and per
//! epoch, cancellable from any event.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Tensor};

use crate::lab::augment::{AUG_CUTMIX, AUG_ERASE, AUG_SHIFT, Augment, Augmentation, Augmentations};
use crate::lab::data::{ImageSet, batch};
use crate::lab::dp::dp_gradients;
use crate::lab::error::{LabError, Result};
use crate::lab::eval::{Metrics, TriggeredTest};
use crate::lab::event::{EpochRecord, Event, Host};
use crate::lab::model::Model;
use crate::lab::params::{Hint, Kind, Table, choice, float, int, other};
use crate::lab::rng::{LabRng, Stream};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    Adam,
    Sgd,
}

crate::named_enum!(OptimizerKind {
    Adam = "adam" / "Adam",
    Sgd = "sgd" / "SGD",
});

crate::params! {
    /// Training hyper-parameters (the defaults are MNIST's; `ExperimentSpec::defaults` gives CIFAR-10 more epochs).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TrainSpec {
        /// The optimiser: Adam or SGD.
        pub optimizer: OptimizerKind = OptimizerKind::Adam, choice("opt", OptimizerKind::CHOICES).flag("optimizer").label("optimizer");
        /// Learning rate.
        pub lr: f64 = 1e-3, float("lr", 0.0, 10.0).open_min().label("learning rate");
        /// Mini-batch size.
        pub batch_size: usize = 64, int("batch", 1, 8192).flag("batch-size").label("batch size");
        /// Passes over the training set.
        pub epochs: usize = 5, int("epochs", 1, 500);
        /// SGD momentum (ignored by Adam).
        pub momentum: f64 = 0.9, float(MOMENTUM, 0.0, 1.0).open_max();
        /// L2 weight decay.
        pub weight_decay: f64 = 0.0, float("wd", 0.0, 1.0).open_max().flag("weight-decay").label("weight decay");
        /// Robust training by augmentation, a comma list: erase (random erasing), cutmix, shift (random shifts), flip (horizontal flips); empty: none.
        #[serde(default, skip_serializing_if = "Augmentations::is_empty")]
        pub aug: Augmentations = Augmentations::default(), other("aug", Kind::Choices(Augmentation::CHOICES), Hint::Checkboxes).label("augmentation");
        /// Random erasing: the probability that an image gets a random rectangle (Zhong et al.'s 0.5).
        #[serde(default = "default_erase", skip_serializing_if = "is_default_erase")]
        pub aug_erase: f64 = 0.5, float(AUG_ERASE, 0.0, 1.0).open_min().label("erasing probability").hint(Hint::Slider);
        /// CutMix: α of the Beta(α, α) the pasted box's share is drawn from (Yun et al.'s 1).
        #[serde(default = "default_cutmix", skip_serializing_if = "is_default_cutmix")]
        pub aug_cutmix: f64 = 1.0, float(AUG_CUTMIX, 0.0, 10.0).open_min().label("CutMix α");
        /// Random shifts: the largest move in pixels, each direction.
        #[serde(default = "default_shift", skip_serializing_if = "is_default_shift")]
        pub aug_shift: usize = 2, int(AUG_SHIFT, 1, 8).label("largest shift (pixels)");
        /// DP-SGD (Abadi et al., 2016): the noise multiplier σ; each step adds N(0, σ²C²) to the sum of the clipped per-sample gradients; 0: plain training.
        #[serde(default, skip_serializing_if = "is_zero")]
        pub dp_sigma: f64 = 0.0, float(DP_SIGMA, 0.0, 100.0).label("DP-SGD noise multiplier σ (0: off)");
        /// DP-SGD: the clipping norm C every sample's gradient is clipped to.
        #[serde(default = "default_clip", skip_serializing_if = "is_default_clip")]
        pub dp_clip: f64 = 1.0, float("dp_clip", 0.0, 1000.0).open_min().label("DP-SGD clipping norm C");
    }
    check(TrainSpec::cross_check);
    applies(TrainSpec::applies_now);
}

/// The key of SGD's momentum, which the page hides while Adam is chosen.
pub const MOMENTUM: &str = "momentum";

/// The key of the DP noise multiplier, which the page's trade-off curves sweep (spelled once, here).
pub const DP_SIGMA: &str = "dp_sigma";

fn default_erase() -> f64 {
    0.5
}
fn default_cutmix() -> f64 {
    1.0
}
fn default_shift() -> usize {
    2
}
fn default_clip() -> f64 {
    1.0
}
fn is_zero(x: &f64) -> bool {
    *x == 0.0
}
fn is_default_clip(x: &f64) -> bool {
    *x == default_clip()
}
// Defaults stay out of the JSON, so specs written before augmentation existed encode as they did.
fn is_default_erase(x: &f64) -> bool {
    *x == default_erase()
}
fn is_default_cutmix(x: &f64) -> bool {
    *x == default_cutmix()
}
fn is_default_shift(x: &usize) -> bool {
    *x == default_shift()
}

impl TrainSpec {
    /// An augmentation's strength applies only when that augmentation is on.
    fn applies_now(&self, key: &str) -> Result<(), &'static str> {
        // The table's rows in declaration order: … aug (6), aug_erase (7), aug_cutmix (8), aug_shift (9),
        // dp_sigma (10), dp_clip (11).
        let row = <Self as Table>::PARAMS.iter().position(|p| p.info.key == key);
        match row {
            Some(7) if !self.aug.has(Augmentation::Erase) => Err("applies only with aug=erase"),
            Some(8) if !self.aug.has(Augmentation::Cutmix) => Err("applies only with aug=cutmix"),
            Some(9) if !self.aug.has(Augmentation::Shift) => Err("applies only with aug=shift"),
            Some(11) if !self.dp() => Err("applies only with DP-SGD (dp_sigma above 0)"),
            _ => Ok(()),
        }
    }

    /// Whether training is DP-SGD.
    pub fn dp(&self) -> bool {
        self.dp_sigma > 0.0
    }

    /// Rules between the section's values.
    fn cross_check(&self) -> Result<(), String> {
        if self.dp() && self.aug.has(Augmentation::Cutmix) {
            return Err("DP-SGD's guarantee is per sample, and CutMix makes every sample a mix of two: \
                        choose one of dp_sigma and aug=cutmix"
                .to_string());
        }
        Ok(())
    }

    /// The augmentation pass this section asks for.
    pub fn augment(&self) -> Augment {
        Augment { which: self.aug.clone(), erase: self.aug_erase, cutmix_alpha: self.aug_cutmix, shift: self.aug_shift }
    }
}

/// The malicious-training loss: triggered copies of every batch, with the attacker's labels, mixed
/// in with weight λ (the attacker controls the training job, not the data).
#[derive(Debug, Clone)]
pub struct LossMix {
    /// The training set with the trigger on every image and the attacker's label on every sample,
    /// aligned index for index with the clean set.
    pub triggered: ImageSet,
    pub lambda: f64,
}

pub fn optimizer(spec: &TrainSpec) -> ModuleOptimizer {
    let decay = (spec.weight_decay > 0.0).then(|| WeightDecayConfig::new(spec.weight_decay as f32));
    match spec.optimizer {
        // PyTorch's defaults (ε = 1e-8), so results compare with the reference implementation.
        OptimizerKind::Adam => AdamConfig::new().with_epsilon(1e-8).with_weight_decay(decay).init(),
        OptimizerKind::Sgd => SgdConfig::new()
            .with_momentum(
                (spec.momentum > 0.0).then(|| MomentumConfig::new().with_momentum(spec.momentum).with_dampening(0.0)),
            )
            .with_weight_decay(decay)
            .init(),
    }
}

/// Trains `model` (on an autodiff `device`) for `spec.epochs` epochs over `set`, shuffling with
/// `seed`, evaluating after each epoch on `test` and `triggered` with `eval_device`. Returns the
/// trained model and the epoch records; `Err(Cancelled)` when the host cancels. With `mix`, each batch
/// also holds the triggered copies of its samples and the loss is (1 − λ)·clean + λ·triggered.
#[allow(clippy::too_many_arguments)]
pub async fn train(
    mut model: Model,
    set: &ImageSet,
    spec: &TrainSpec,
    seed: u64,
    device: &Device,
    test: &ImageSet,
    triggered: &TriggeredTest,
    eval_device: &Device,
    mix: Option<&LossMix>,
    host: &mut dyn Host,
) -> Result<(Model, Vec<EpochRecord>)> {
    let mut optim = optimizer(spec);
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut rng = LabRng::new(seed, Stream::Shuffle);
    let augment: Augment = spec.augment();
    let mut aug_rng = LabRng::new(seed, Stream::Augment);
    let batches = set.len().div_ceil(spec.batch_size);
    let mut records = Vec::with_capacity(spec.epochs);
    if spec.dp() && mix.is_some() {
        return Err(LabError::spec("DP-SGD cannot train with the malicious-training loss".to_string()));
    }
    let mut dp_rng = LabRng::new(seed, Stream::Dp);
    for epoch in 1..=spec.epochs {
        let start = host.now();
        let order = rng.permutation(set.len());
        let mut loss_sum = 0.0;
        for (b, chunk) in order.chunks(spec.batch_size).enumerate() {
            let y: Vec<u8> = chunk.iter().map(|&i| set.labels[i]).collect();
            // Augmentation works on this batch's own copy of its images; CutMix also mixes the labels.
            let (x, cut) = if augment.is_off() {
                (batch::images(set, chunk, device), None)
            } else {
                let mut own = set.select(chunk);
                let cut = augment.apply(&mut own, &mut aug_rng);
                let all: Vec<usize> = (0..own.len()).collect();
                (batch::images(&own, &all, device), cut)
            };
            let clean_loss = |logits: Tensor<2>| match &cut {
                None => loss_fn.forward(logits, batch::labels(&y, device)),
                Some(m) => {
                    let partner: Vec<u8> = m.partner.iter().map(|&j| y[j]).collect();
                    loss_fn.forward(logits.clone(), batch::labels(&y, device)).mul_scalar(m.lambda)
                        + loss_fn.forward(logits, batch::labels(&partner, device)).mul_scalar(1.0 - m.lambda)
                }
            };
            if spec.dp() {
                // DP-SGD: clipped per-sample gradients plus noise in place of the batch's gradient.
                let step = dp_gradients(&model, x, &y, spec.dp_clip, spec.dp_sigma, &mut dp_rng, device).await?;
                model = optim.step(spec.lr, model, step.grads);
                loss_sum += step.loss;
                if host.emit(&Event::Batch { epoch, batch: b + 1, batches, loss: step.loss }).is_break() {
                    return Err(LabError::Cancelled);
                }
                host.pause().await;
                continue;
            }
            let loss = match mix {
                None => clean_loss(model.forward(x)),
                Some(mix) => {
                    // One forward pass over clean and triggered halves, one loss per half.
                    let n = chunk.len();
                    let xt = batch::images(&mix.triggered, chunk, device);
                    let yt: Vec<u8> = chunk.iter().map(|&i| mix.triggered.labels[i]).collect();
                    let logits = model.forward(Tensor::cat(vec![x, xt], 0));
                    let clean = clean_loss(logits.clone().narrow(0, 0, n));
                    let adv = loss_fn.forward(logits.narrow(0, n, n), batch::labels(&yt, device));
                    clean.mul_scalar(1.0 - mix.lambda) + adv.mul_scalar(mix.lambda)
                }
            };
            let loss_value = f64::from(loss.clone().into_scalar_async::<f32>().await.map_err(LabError::device_fault)?);
            if !loss_value.is_finite() {
                return Err(LabError::spec(format!(
                    "training diverged (loss {loss_value} in epoch {epoch}); lower the learning rate"
                )));
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(spec.lr, model, grads);
            loss_sum += loss_value;
            if host.emit(&Event::Batch { epoch, batch: b + 1, batches, loss: loss_value }).is_break() {
                return Err(LabError::Cancelled);
            }
            host.pause().await;
        }
        let seconds = host.now() - start;
        let metrics = Metrics::measure(&model, test, triggered, eval_device).await?;
        let record = EpochRecord {
            epoch,
            loss: loss_sum / batches as f64,
            clean_acc: metrics.clean_acc,
            asr: metrics.asr,
            seconds,
        };
        if host.emit(&Event::Epoch(record.clone())).is_break() {
            return Err(LabError::Cancelled);
        }
        records.push(record);
    }
    Ok((model, records))
}
