//! The repairs' fine-tuning loop: passes over a set with the run's optimiser, learning rate and batch
//! size, on labels, a teacher's soft labels, or labels with an unlearning term (ABL).

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Tensor, TensorData};

use super::Cx;
use crate::lab::data::{ImageSet, NUM_CLASSES, batch};
use crate::lab::error::{LabError, Result};
use crate::lab::model::Model;
use crate::lab::train::optimizer;

/// What a fine-tuning loop minimises on each batch of its set.
pub enum Objective<'s> {
    /// Cross-entropy on the set's labels.
    Labels,
    /// Cross-entropy against a teacher's probabilities at `temperature` (`probs`: NUM_CLASSES per
    /// sample of the set), scaled by T² as Hinton et al. do so gradients keep their size.
    Soft { probs: &'s [f32], temperature: f64 },
    /// Labels on the set minus `weight` × the loss on `isolated` (a batch of it with every batch),
    /// each isolated sample's loss capped at `cap`: ascent stops there instead of diverging.
    Unlearn { isolated: &'s ImageSet, weight: f64, cap: f64 },
}

/// A fine-tuning job: `epochs` passes over `set` with the spec's optimiser, learning rate and batch
/// size; `keep` (fine-pruning) silences pruned units again after every step.
pub struct Fit<'s> {
    pub set: &'s ImageSet,
    pub epochs: usize,
    pub objective: Objective<'s>,
    pub keep: Option<&'s [bool]>,
}

/// Runs `fit` on `model` (on an autodiff device), reporting every batch as progress.
pub async fn fit(cx: &mut Cx<'_>, mut model: Model, job: Fit<'_>) -> Result<Model> {
    let t = &cx.setting.train;
    let mut optim = optimizer(t);
    let device = cx.device.clone().autodiff();
    let ce = CrossEntropyLossConfig::new().init(&device);
    let mut rng = cx.rng();
    let set = job.set;
    if set.is_empty() {
        return Err(LabError::spec(format!("{}: nothing to train on", cx.name())));
    }
    let batches = set.len().div_ceil(t.batch_size);
    let total = batches * job.epochs;
    let mut iso_order: Vec<usize> = Vec::new();
    let mut done = 0;
    for epoch in 1..=job.epochs {
        let order = rng.permutation(set.len());
        for chunk in order.chunks(t.batch_size) {
            let x = batch::images(set, chunk, &device);
            let logits = model.forward(x);
            let loss = match &job.objective {
                Objective::Labels => {
                    let y: Vec<u8> = chunk.iter().map(|&i| set.labels[i]).collect();
                    ce.forward(logits, batch::labels(&y, &device))
                }
                Objective::Soft { probs, temperature } => {
                    let p: Vec<f32> = chunk
                        .iter()
                        .flat_map(|&i| probs[i * NUM_CLASSES..(i + 1) * NUM_CLASSES].iter().copied())
                        .collect();
                    let p = Tensor::<2>::from_data(TensorData::new(p, [chunk.len(), NUM_CLASSES]), &device);
                    let logp = log_softmax(logits / *temperature, 1);
                    (p * logp).sum_dim(1).mean().neg() * (temperature * temperature)
                }
                Objective::Unlearn { isolated, weight, cap } => {
                    let y: Vec<u8> = chunk.iter().map(|&i| set.labels[i]).collect();
                    let clean = ce.forward(logits, batch::labels(&y, &device));
                    // A quarter batch of isolated samples with every batch, cycling through them.
                    let k = (t.batch_size / 4).clamp(1, isolated.len().max(1));
                    let mut iso = Vec::with_capacity(k);
                    while iso.len() < k && !isolated.is_empty() {
                        if iso_order.is_empty() {
                            iso_order = rng.permutation(isolated.len());
                        }
                        iso.extend(iso_order.pop());
                    }
                    if iso.is_empty() {
                        clean
                    } else {
                        let onehot: Vec<f32> = iso
                            .iter()
                            .flat_map(|&i| {
                                (0..NUM_CLASSES).map(move |c| f32::from(u8::from(c == isolated.labels[i] as usize)))
                            })
                            .collect();
                        let onehot = Tensor::<2>::from_data(TensorData::new(onehot, [iso.len(), NUM_CLASSES]), &device);
                        let logp = log_softmax(model.forward(batch::images(isolated, &iso, &device)), 1);
                        let per_sample = (logp * onehot).sum_dim(1).neg().clamp_max(*cap); // [k, 1]
                        clean - per_sample.mean() * *weight
                    }
                }
            };
            let value = f64::from(loss.clone().into_scalar_async::<f32>().await.map_err(LabError::device_fault)?);
            if !value.is_finite() {
                return Err(LabError::spec(format!(
                    "{}: fine-tuning diverged (loss {value} in epoch {epoch}); lower the learning rate",
                    cx.name()
                )));
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(t.lr, model, grads);
            if let Some(keep) = job.keep {
                model = model.pruned(keep);
            }
            done += 1;
            cx.progress(done, total).await?;
        }
    }
    Ok(model)
}
