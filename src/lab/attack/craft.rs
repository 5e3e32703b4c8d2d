//! What attacks that optimise their poisons share (label-consistent, gradient matching): the
//! attacker's surrogate model, trained on the clean training images the attacker holds, and the
//! gradient of a loss with respect to input pixels.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Tensor, TensorData};

use super::{Poisoned, Trigger};
use crate::lab::data::{ImageSet, batch};
use crate::lab::device::{fresh_model, read_floats};
use crate::lab::error::{LabError, Result};
use crate::lab::eval::TriggeredTest;
use crate::lab::event::{Event, Host, Relay};
use crate::lab::model::{Model, ModelKind};
use crate::lab::params::{ParamInfo, int};
use crate::lab::rng::{LabRng, Stream};
use crate::lab::train::{TrainSpec, train};

/// Epochs of the attacker's surrogate model: one key for every attack that crafts its poisons.
pub(crate) const SURROGATE_EPOCHS: ParamInfo = int("surrogate_epochs", 1, 100);

/// Everything an attack that crafts its poisons may use. The poisoned set already holds the
/// selection with the trigger stamped; crafting replaces those images.
pub struct Craft<'a> {
    /// The clean training split (the attacker's own data).
    pub clean: &'a ImageSet,
    pub poisoned: &'a mut Poisoned,
    pub trigger: &'a Trigger,
    pub target: u8,
    pub model: ModelKind,
    pub train: &'a TrainSpec,
    pub seed: u64,
    /// A plain (non-autodiff) device.
    pub device: &'a Device,
    pub host: &'a mut dyn Host,
    /// Set by an attack in the transfer setting (hidden trigger): the published model the victim
    /// fine-tunes, only its last layer, instead of training from scratch.
    pub base: Option<Model>,
}

impl Craft<'_> {
    pub fn dims(&self) -> (usize, usize, usize) {
        (self.clean.channels, self.clean.height, self.clean.width)
    }

    /// The attacker's surrogate: the victim's architecture trained on the clean training images for
    /// `epochs`, from weights of its own (the attacker does not know the victim's initialisation).
    pub async fn surrogate(&mut self, epochs: usize) -> Result<Model> {
        self.progress("training the attacker's surrogate model", 0, 1)?;
        let ad = self.device.clone().autodiff();
        let seed = LabRng::new(self.seed, Stream::Craft).below(1 << 31) as u64;
        let model = fresh_model(self.model, self.dims(), seed, &ad);
        // The attacker's own training: never the victim's DP-SGD.
        let spec = TrainSpec { epochs, dp_sigma: 0.0, ..self.train.clone() };
        let empty = ImageSet::empty(self.clean.channels, self.clean.height, self.clean.width);
        let none = TriggeredTest::none(self.clean.channels, self.clean.height, self.clean.width);
        let what = |done, total| Event::Craft { what: "training the attacker's surrogate model".into(), done, total };
        let total = epochs * self.clean.len().div_ceil(spec.batch_size);
        let mut relay = Relay { inner: &mut *self.host, done: 0, total, progress: Box::new(&what) };
        let (model, _) =
            train(model, self.clean, &spec, seed, &ad, &empty, &none, self.device, None, &mut relay).await?;
        Ok(model.valid())
    }

    /// Reports crafting progress (and learns of a cancel).
    pub fn progress(&mut self, what: &str, done: usize, total: usize) -> Result<()> {
        let e = Event::Craft { what: what.to_string(), done, total };
        if self.host.emit(&e).is_break() {
            return Err(LabError::Cancelled);
        }
        Ok(())
    }
}

/// Images as floats in [0, 1], [n, c, h, w] row-major.
pub fn unit_pixels(set: &ImageSet, indices: &[usize]) -> Vec<f32> {
    indices.iter().flat_map(|&i| set.image(i).iter().map(|&p| f32::from(p) / 255.0)).collect()
}

/// Mean cross-entropy of `model` on `pixels` (in [0, 1]) against `labels`, and its gradient with
/// respect to the pixels.
pub async fn loss_and_input_grad(
    model: &Model,
    pixels: &[f32],
    labels: &[u8],
    dims: (usize, usize, usize),
    device: &Device,
) -> Result<(f64, Vec<f32>)> {
    let (c, h, w) = dims;
    let n = labels.len();
    let ad = device.clone().autodiff();
    let x = Tensor::<4>::from_data(TensorData::new(pixels.to_vec(), [n, c, h, w]), &ad).require_grad();
    let logits = model.forward(normalise(x.clone(), c, &ad));
    let loss = CrossEntropyLossConfig::new().init(&ad).forward(logits, batch::labels(labels, &ad));
    let value = f64::from(loss.clone().into_scalar_async::<f32>().await.map_err(LabError::device_fault)?);
    let grads = loss.backward();
    let g = x.grad(&grads).ok_or_else(|| LabError::Device("no gradient for the input pixels".into()))?;
    Ok((value, read_floats(g).await?))
}

/// (x − mean) / std per channel, as the training batches are.
pub fn normalise(x: Tensor<4>, channels: usize, device: &Device) -> Tensor<4> {
    let (mean, std) = batch::stats(channels);
    let per = |v: &[f32]| {
        let v: Vec<f32> = (0..channels).map(|ch| v[ch % v.len()]).collect();
        Tensor::<4>::from_data(TensorData::new(v, [1, channels, 1, 1]), device)
    };
    (x - per(mean)) / per(std)
}

/// Writes crafted pixels (in [0, 1]) back into the images at `indices`, rounded to 8 bits.
pub fn write_back(set: &mut ImageSet, indices: &[usize], pixels: &[f32]) {
    let len = set.image_len();
    for (k, &i) in indices.iter().enumerate() {
        for (p, &v) in set.image_mut(i).iter_mut().zip(&pixels[k * len..(k + 1) * len]) {
            *p = (v * 255.0).round().clamp(0.0, 255.0) as u8;
        }
    }
}
