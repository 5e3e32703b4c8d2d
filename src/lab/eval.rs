//! Evaluation: predictions in batches, and the metrics every run and repair reports (CA, ASR, RA,
//! per-class accuracy, confusion matrix), computed by one code path for every model, repaired or not.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::lab::data::{ImageSet, NUM_CLASSES, batch};
use crate::lab::device::read_floats;
use crate::lab::error::Result;
use crate::lab::model::Model;

/// Test inputs with the trigger, for ASR and RA.
#[derive(Debug, Clone)]
pub struct TriggeredTest {
    /// Triggered copies of the test inputs that count for ASR; `set.labels` are the true labels.
    pub set: ImageSet,
    /// The label the attacker wants for each.
    pub attack_labels: Vec<u8>,
    /// Index of each in the clean test set.
    pub source: Vec<usize>,
}

impl TriggeredTest {
    /// No triggered inputs (ASR is not measured): for training runs that only need clean accuracy.
    pub fn none(channels: usize, height: usize, width: usize) -> Self {
        Self { set: ImageSet::empty(channels, height, width), attack_labels: Vec::new(), source: Vec::new() }
    }
}

/// Inputs per forward pass when only predicting; bounded so activations stay small (also on WebGPU).
pub const EVAL_BATCH: usize = 500;

/// Pushes all of `set` through `pass` in batches of at most `EVAL_BATCH` inputs, in order, and reads
/// each batch's output back to the host (asynchronously: a synchronous read panics on WebGPU): the one
/// loop behind every whole-set forward pass (predictions, probabilities, features, losses, unit
/// activity). `after(done, batches)` runs after each batch: progress, and the host's chance to cancel.
pub async fn batched<const D: usize>(
    set: &ImageSet,
    device: &Device,
    pass: impl Fn(Tensor<4>) -> Tensor<D>,
    mut after: impl AsyncFnMut(usize, usize) -> Result<()>,
) -> Result<Vec<f32>> {
    let all: Vec<usize> = (0..set.len()).collect();
    let batches = all.len().div_ceil(EVAL_BATCH);
    let mut out = Vec::new();
    for (k, chunk) in all.chunks(EVAL_BATCH).enumerate() {
        out.extend(read_floats(pass(batch::images(set, chunk, device))).await?);
        after(k + 1, batches).await?;
    }
    Ok(out)
}

/// For `batched` when nobody follows the progress.
pub async fn unheard(_done: usize, _batches: usize) -> Result<()> {
    Ok(())
}

/// Predicted class of every image in `set`.
pub async fn predict(model: &Model, set: &ImageSet, device: &Device) -> Result<Vec<u8>> {
    let model = model.valid();
    // Class indices below NUM_CLASSES are exact in f32.
    let pred = batched(set, device, |x| model.forward(x).argmax(1).float().flatten::<1>(0, 1), unheard).await?;
    Ok(pred.into_iter().map(|p| p as u8).collect())
}

/// Softmax probabilities of every image in `set` at `temperature` (1 for the model's own), row by
/// row ([len × NUM_CLASSES]).
pub async fn probabilities(model: &Model, set: &ImageSet, temperature: f64, device: &Device) -> Result<Vec<f32>> {
    let model = model.valid();
    let soft = |x| burn::tensor::activation::softmax(model.forward(x) / temperature, 1);
    batched(set, device, soft, unheard).await
}

/// The "prediction" of an input a run-time filter rejected (STRIP): never a class, so it counts as
/// wrong for CA and RA and as not the target for ASR.
pub const REJECTED: u8 = u8::MAX;

/// Fraction of `pred` equal to `truth` (0 for empty input).
pub fn accuracy(pred: &[u8], truth: &[u8]) -> f64 {
    if pred.is_empty() {
        return 0.0;
    }
    pred.iter().zip(truth).filter(|(p, t)| p == t).count() as f64 / pred.len() as f64
}

/// Everything measured on one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// CA: accuracy on the clean test set.
    pub clean_acc: f64,
    /// ASR: share of triggered test inputs (true label ≠ attacker's target) classified as the target.
    pub asr: f64,
    /// RA: accuracy on those triggered inputs against their true labels.
    pub robust_acc: f64,
    /// Clean accuracy of each true class.
    pub per_class_acc: Vec<f64>,
    /// confusion[true][predicted] counts on the clean test set.
    pub confusion: Vec<Vec<u32>>,
}

impl Metrics {
    /// Metrics from predictions on the clean and the triggered test sets.
    pub fn from_predictions(test: &ImageSet, clean_pred: &[u8], triggered: &TriggeredTest, trig_pred: &[u8]) -> Self {
        let mut confusion = vec![vec![0u32; NUM_CLASSES]; NUM_CLASSES];
        // Rejected inputs have no predicted class: they appear in no column, and lower per-class CA.
        for (&t, &p) in test.labels.iter().zip(clean_pred).filter(|&(_, &p)| (p as usize) < NUM_CLASSES) {
            confusion[t as usize][p as usize] += 1;
        }
        let class_sizes: Vec<usize> =
            (0..NUM_CLASSES).map(|c| test.labels.iter().filter(|&&t| t as usize == c).count()).collect();
        let per_class_acc = confusion
            .iter()
            .enumerate()
            .map(|(c, row)| if class_sizes[c] == 0 { 0.0 } else { row[c] as f64 / class_sizes[c] as f64 })
            .collect();
        Self {
            clean_acc: accuracy(clean_pred, &test.labels),
            asr: accuracy(trig_pred, &triggered.attack_labels),
            robust_acc: accuracy(trig_pred, &triggered.set.labels),
            per_class_acc,
            confusion,
        }
    }

    /// Evaluates `model` on the clean test set and its triggered copies.
    pub async fn measure(model: &Model, test: &ImageSet, triggered: &TriggeredTest, device: &Device) -> Result<Self> {
        let clean = predict(model, test, device).await?;
        let trig = predict(model, &triggered.set, device).await?;
        Ok(Self::from_predictions(test, &clean, triggered, &trig))
    }
}
