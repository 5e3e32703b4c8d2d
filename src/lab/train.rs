//! The training loop: mini-batch SGD or Adam on cross-entropy, emitting an event per batch and per
//! epoch, cancellable from any event.

use std::ops::ControlFlow;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::Device;

use crate::lab::data::{ImageSet, batch};
use crate::lab::error::{LabError, Result};
use crate::lab::event::{EpochRecord, Event};
use crate::lab::model::Model;
use crate::lab::rng::{LabRng, Stream};
use crate::lab::spec::{OptimizerKind, TrainSpec};

/// A monotonic clock in seconds; the caller provides it because the lab core does not know whether
/// it runs natively or in a browser.
pub type Clock = fn() -> f64;

pub fn optimizer(spec: &TrainSpec) -> ModuleOptimizer {
    let decay = (spec.weight_decay > 0.0).then(|| WeightDecayConfig::new(spec.weight_decay as f32));
    match spec.optimizer {
        // PyTorch's defaults (ε = 1e-8), so results compare with the reference implementation.
        OptimizerKind::Adam => AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(decay)
            .init(),
        OptimizerKind::Sgd => SgdConfig::new()
            .with_momentum((spec.momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(spec.momentum)
                    .with_dampening(0.0)
            }))
            .with_weight_decay(decay)
            .init(),
    }
}

/// Per-epoch evaluation hook: returns (clean_acc, asr) for the model after the epoch.
pub type EpochEval<'a> = dyn FnMut(&Model) -> (f64, f64) + 'a;

/// Trains `model` (on an autodiff `device`) for `spec.epochs` epochs over `set`, shuffling with
/// `seed`. Returns the trained model and the epoch records; `Err(Cancelled)` when an event handler
/// breaks.
pub fn train(
    mut model: Model,
    set: &ImageSet,
    spec: &TrainSpec,
    seed: u64,
    device: &Device,
    clock: Clock,
    eval: &mut EpochEval<'_>,
    on: &mut dyn FnMut(&Event) -> ControlFlow<()>,
) -> Result<(Model, Vec<EpochRecord>)> {
    let mut optim = optimizer(spec);
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut rng = LabRng::new(seed, Stream::Shuffle);
    let batches = set.len().div_ceil(spec.batch_size);
    let mut records = Vec::with_capacity(spec.epochs);
    for epoch in 1..=spec.epochs {
        let start = clock();
        let order = rng.permutation(set.len());
        let mut loss_sum = 0.0;
        for (b, chunk) in order.chunks(spec.batch_size).enumerate() {
            let x = batch::images(set, chunk, device);
            let y: Vec<u8> = chunk.iter().map(|&i| set.labels[i]).collect();
            let loss = loss_fn.forward(model.forward(x), batch::labels(&y, device));
            let loss_value = f64::from(loss.clone().into_scalar::<f32>());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(spec.lr, model, grads);
            if !loss_value.is_finite() {
                return Err(LabError::spec(format!(
                    "training diverged (loss {loss_value} in epoch {epoch}); lower the learning rate"
                )));
            }
            loss_sum += loss_value;
            let event = Event::Batch {
                epoch,
                batch: b + 1,
                batches,
                loss: loss_value,
            };
            if on(&event).is_break() {
                return Err(LabError::Cancelled);
            }
        }
        let seconds = clock() - start;
        let (clean_acc, asr) = eval(&model);
        let record = EpochRecord {
            epoch,
            loss: loss_sum / batches as f64,
            clean_acc,
            asr,
            seconds,
        };
        if on(&Event::Epoch(record.clone())).is_break() {
            return Err(LabError::Cancelled);
        }
        records.push(record);
    }
    Ok((model, records))
}
