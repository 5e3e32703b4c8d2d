//! Architectures only: an MLP, the reference MNIST CNN and a small CIFAR-10 CNN. Every model exposes
//! its penultimate-layer features (`features`) and the head on top (`head`), so detectors never branch
//! on the model's name. A model may also carry an attacker's fixed trigger branch
//! (`TriggerBranch`, the architectural backdoor): it adds to the logits from the raw input and
//! holds no parameters.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::lab::data::{NUM_CLASSES, batch};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// flatten → 256 → ReLU → 128 → ReLU → 10.
    Mlp,
    /// The reference MNIST CNN: conv 5×5·16 → ReLU → pool 2 → conv 5×5·32 → ReLU → pool 2 → 128 → ReLU → 10.
    Cnn,
    /// A small VGG-style CNN for CIFAR-10: 3 × (conv 3×3 same → ReLU → pool 2) with 32/64/64 channels → 128 → 10.
    CifarCnn,
}

crate::named_enum!(ModelKind {
    Mlp = "mlp" / "MLP",
    Cnn = "cnn" / "reference CNN",
    CifarCnn = "cifar_cnn" / "small VGG-style CNN",
});

/// Width of every model's penultimate layer.
pub const FEATURES: usize = 128;

#[derive(Module, Debug)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
    out: Linear,
    #[module(skip)]
    branch: Option<TriggerBranch>,
}

#[derive(Module, Debug)]
pub struct Cnn {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    fc: Linear,
    out: Linear,
    #[module(skip)]
    branch: Option<TriggerBranch>,
}

#[derive(Module, Debug)]
pub struct CifarCnn {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    pool: MaxPool2d,
    fc: Linear,
    out: Linear,
    #[module(skip)]
    branch: Option<TriggerBranch>,
}

/// A dense or convolution layer seen by `Model::forward_taps`.
pub enum Tap<'a> {
    Dense { layer: &'a Linear, input: Tensor<2>, probe: Tensor<2> },
    Conv { layer: &'a Conv2d, input: Tensor<4>, probe: Tensor<4> },
}

impl<'a> Tap<'a> {
    fn dense(layer: &'a Linear, input: Tensor<2>, taps: &mut Vec<Tap<'a>>) -> Tensor<2> {
        let y = layer.forward(input.clone());
        let probe = Tensor::zeros(y.shape(), &y.device()).require_grad();
        taps.push(Tap::Dense { layer, input, probe: probe.clone() });
        y + probe
    }

    fn conv(layer: &'a Conv2d, input: Tensor<4>, taps: &mut Vec<Tap<'a>>) -> Tensor<4> {
        let y = layer.forward(input.clone());
        let probe = Tensor::zeros(y.shape(), &y.device()).require_grad();
        taps.push(Tap::Conv { layer, input, probe: probe.clone() });
        y + probe
    }
}

/// One of the lab's models.
#[derive(Module, Debug)]
pub enum Model {
    Mlp(Mlp),
    Cnn(Cnn),
    CifarCnn(CifarCnn),
}

impl Model {
    /// A model for images of `dims` = (channels, height, width) with burn's lazy default
    /// initialisation; runs use `device::fresh_model`, which draws the weights from the spec's seed.
    pub fn new(kind: ModelKind, dims: (usize, usize, usize), device: &Device) -> Self {
        let (c, h, w) = dims;
        let pool = || MaxPool2dConfig::new([2, 2]).init();
        match kind {
            ModelKind::Mlp => Self::Mlp(Mlp {
                fc1: LinearConfig::new(c * h * w, 256).init(device),
                fc2: LinearConfig::new(256, FEATURES).init(device),
                out: LinearConfig::new(FEATURES, NUM_CLASSES).init(device),
                branch: None,
            }),
            ModelKind::Cnn => {
                // valid 5×5 convolutions then 2×2 pools: 28 → 24 → 12 → 8 → 4 (MNIST).
                let side = |s: usize| ((s - 4) / 2 - 4) / 2;
                Self::Cnn(Cnn {
                    conv1: Conv2dConfig::new([c, 16], [5, 5]).init(device),
                    conv2: Conv2dConfig::new([16, 32], [5, 5]).init(device),
                    pool: pool(),
                    fc: LinearConfig::new(32 * side(h) * side(w), FEATURES).init(device),
                    out: LinearConfig::new(FEATURES, NUM_CLASSES).init(device),
                    branch: None,
                })
            }
            ModelKind::CifarCnn => {
                let conv = |i, o| Conv2dConfig::new([i, o], [3, 3]).with_padding(PaddingConfig2d::Same).init(device);
                Self::CifarCnn(CifarCnn {
                    conv1: conv(c, 32),
                    conv2: conv(32, 64),
                    conv3: conv(64, 64),
                    pool: pool(),
                    fc: LinearConfig::new(64 * (h / 8) * (w / 8), FEATURES).init(device),
                    out: LinearConfig::new(FEATURES, NUM_CLASSES).init(device),
                    branch: None,
                })
            }
        }
    }

    /// Penultimate-layer activations (after ReLU).
    ///
    /// # Shapes
    /// - input: [batch, channels, height, width]
    /// - output: [batch, FEATURES]
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Self::Mlp(m) => {
                let x = x.flatten::<2>(1, 3);
                let x = relu(m.fc1.forward(x));
                relu(m.fc2.forward(x))
            }
            Self::Cnn(m) => {
                let x = m.pool.forward(relu(m.conv1.forward(x))); // [batch, 16, 12, 12]
                let x = m.pool.forward(relu(m.conv2.forward(x))); // [batch, 32, 4, 4]
                relu(m.fc.forward(x.flatten::<2>(1, 3)))
            }
            Self::CifarCnn(m) => {
                let x = m.pool.forward(relu(m.conv1.forward(x))); // [batch, 32, 16, 16]
                let x = m.pool.forward(relu(m.conv2.forward(x))); // [batch, 64, 8, 8]
                let x = m.pool.forward(relu(m.conv3.forward(x))); // [batch, 64, 4, 4]
                relu(m.fc.forward(x.flatten::<2>(1, 3)))
            }
        }
    }

    /// Logits like `forward`, and a tap on every dense and convolution layer for DP-SGD's per-sample
    /// gradients: the layer's input and a zero "probe" added to its output, a graph leaf whose
    /// gradient after backward is the loss's gradient with respect to that output.
    pub fn forward_taps(&self, x: Tensor<4>) -> (Tensor<2>, Vec<Tap<'_>>) {
        let mut taps = Vec::new();
        let logits = match self {
            Self::Mlp(m) => {
                let h = x.clone().flatten::<2>(1, 3);
                let h = relu(Tap::dense(&m.fc1, h, &mut taps));
                let h = relu(Tap::dense(&m.fc2, h, &mut taps));
                Tap::dense(&m.out, h, &mut taps)
            }
            Self::Cnn(m) => {
                let h = m.pool.forward(relu(Tap::conv(&m.conv1, x.clone(), &mut taps)));
                let h = m.pool.forward(relu(Tap::conv(&m.conv2, h, &mut taps)));
                let h = relu(Tap::dense(&m.fc, h.flatten::<2>(1, 3), &mut taps));
                Tap::dense(&m.out, h, &mut taps)
            }
            Self::CifarCnn(m) => {
                let h = m.pool.forward(relu(Tap::conv(&m.conv1, x.clone(), &mut taps)));
                let h = m.pool.forward(relu(Tap::conv(&m.conv2, h, &mut taps)));
                let h = m.pool.forward(relu(Tap::conv(&m.conv3, h, &mut taps)));
                let h = relu(Tap::dense(&m.fc, h.flatten::<2>(1, 3), &mut taps));
                Tap::dense(&m.out, h, &mut taps)
            }
        };
        let logits = match self.branch() {
            Some(branch) => logits + branch.forward(x),
            None => logits,
        };
        (logits, taps)
    }

    /// Logits from penultimate features: [batch, FEATURES] → [batch, 10] (no trigger branch: that
    /// reads the input, not the features).
    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        match self {
            Self::Mlp(m) => m.out.forward(features),
            Self::Cnn(m) => m.out.forward(features),
            Self::CifarCnn(m) => m.out.forward(features),
        }
    }

    /// Logits: [batch, channels, height, width] → [batch, 10]: the head on the features, plus the
    /// trigger branch's boost when the architecture has one.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self.branch() {
            Some(branch) => self.head(self.features(x.clone())) + branch.forward(x),
            None => self.head(self.features(x)),
        }
    }

    /// This architecture with `branch` wired to its logits (or without any).
    pub fn with_branch(mut self, branch: Option<TriggerBranch>) -> Self {
        match &mut self {
            Self::Mlp(m) => m.branch = branch,
            Self::Cnn(m) => m.branch = branch,
            Self::CifarCnn(m) => m.branch = branch,
        }
        self
    }

    /// The attacker's trigger branch, if the architecture has one.
    pub fn branch(&self) -> Option<&TriggerBranch> {
        match self {
            Self::Mlp(m) => m.branch.as_ref(),
            Self::Cnn(m) => m.branch.as_ref(),
            Self::CifarCnn(m) => m.branch.as_ref(),
        }
    }

    /// This model with its first layers fixed for fine-tuning (their parameters stop requiring
    /// gradients, so the optimiser never moves them): the feature extractor (the convolutions; the
    /// MLP's first layer), and with `all_but_last` every layer but the output layer.
    pub fn frozen(self, all_but_last: bool) -> Self {
        match self {
            Self::Mlp(mut m) => {
                m.fc1 = m.fc1.freeze();
                if all_but_last {
                    m.fc2 = m.fc2.freeze();
                }
                Self::Mlp(m)
            }
            Self::Cnn(mut m) => {
                m.conv1 = m.conv1.freeze();
                m.conv2 = m.conv2.freeze();
                if all_but_last {
                    m.fc = m.fc.freeze();
                }
                Self::Cnn(m)
            }
            Self::CifarCnn(mut m) => {
                m.conv1 = m.conv1.freeze();
                m.conv2 = m.conv2.freeze();
                m.conv3 = m.conv3.freeze();
                if all_but_last {
                    m.fc = m.fc.freeze();
                }
                Self::CifarCnn(m)
            }
        }
    }

    /// Units of the layer fine-pruning prunes: the last convolution's channels, or the last hidden
    /// layer's units for the MLP (which has no convolution).
    pub fn prunable_units(&self) -> usize {
        match self {
            Self::Mlp(_) => FEATURES,
            Self::Cnn(m) => m.conv2.weight.shape()[0],
            Self::CifarCnn(m) => m.conv3.weight.shape()[0],
        }
    }

    /// Mean activation (after ReLU, before pooling) of each prunable unit for each input.
    ///
    /// # Shapes
    /// - input: [batch, channels, height, width]
    /// - output: [batch, prunable_units]
    pub fn prunable_activity(&self, x: Tensor<4>) -> Tensor<2> {
        let spatial_mean = |a: Tensor<4>| a.flatten::<3>(2, 3).mean_dim(2).flatten::<2>(1, 2);
        match self {
            Self::Mlp(_) => self.features(x),
            Self::Cnn(m) => {
                let x = m.pool.forward(relu(m.conv1.forward(x)));
                spatial_mean(relu(m.conv2.forward(x))) // [batch, 32]
            }
            Self::CifarCnn(m) => {
                let x = m.pool.forward(relu(m.conv1.forward(x)));
                let x = m.pool.forward(relu(m.conv2.forward(x)));
                spatial_mean(relu(m.conv3.forward(x))) // [batch, 64]
            }
        }
    }

    /// This model with the prunable units whose `keep` flag is false silenced: their filter (or
    /// weight column) and bias are zeroed, so after the ReLU they output 0 for every input. Applied
    /// again after each fine-tuning step, it keeps pruned units pruned.
    pub fn pruned(self, keep: &[bool]) -> Self {
        let device = match &self {
            Self::Mlp(m) => m.fc2.weight.device(),
            Self::Cnn(m) => m.conv2.weight.device(),
            Self::CifarCnn(m) => m.conv3.weight.device(),
        };
        let values: Vec<f32> = keep.iter().map(|&k| f32::from(u8::from(k))).collect();
        let n = values.len();
        let mask = Tensor::<1>::from_data(TensorData::new(values, [n]), &device);
        // Masked values are no longer leaves of the graph: detach and restore the gradient flag.
        let zero_conv = |conv: &mut Conv2d| {
            let m4 = mask.clone().reshape([n, 1, 1, 1]);
            conv.weight = conv.weight.clone().map(|w| {
                let grad = w.is_require_grad();
                (w * m4).detach().set_require_grad(grad)
            });
            conv.bias = conv.bias.take().map(|b| {
                b.map(|b| {
                    let grad = b.is_require_grad();
                    (b * mask.clone()).detach().set_require_grad(grad)
                })
            });
        };
        match self {
            Self::Mlp(mut m) => {
                // Linear weights are [in, out]: a unit is a column.
                let m2 = mask.clone().reshape([1, n]);
                m.fc2.weight = m.fc2.weight.map(|w| {
                    let grad = w.is_require_grad();
                    (w * m2).detach().set_require_grad(grad)
                });
                m.fc2.bias = m.fc2.bias.map(|b| {
                    b.map(|b| {
                        let grad = b.is_require_grad();
                        (b * mask.clone()).detach().set_require_grad(grad)
                    })
                });
                Self::Mlp(m)
            }
            Self::Cnn(mut m) => {
                zero_conv(&mut m.conv2);
                Self::Cnn(m)
            }
            Self::CifarCnn(mut m) => {
                zero_conv(&mut m.conv3);
                Self::CifarCnn(m)
            }
        }
    }
}

/// An attacker's branch (the architectural backdoor, `attack::ArchBackdoor`) for one trigger, image shape
/// and target: plain numbers, no parameters. A
/// model holds it outside its parameters (`#[module(skip)]`), so optimisers, pruning masks and
/// weight files never see it.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerBranch {
    /// Top-left corner and side of the patch.
    x: usize,
    y: usize,
    size: usize,
    /// The patch in 0–1 pixel values, [channels, size, size].
    pattern: Vec<f32>,
    /// The input normalisation the model sees, per channel, to get pixels back.
    mean: Vec<f32>,
    std: Vec<f32>,
    tolerance: f32,
    /// `gain` at the target label, 0 elsewhere: [NUM_CLASSES].
    boost: Vec<f32>,
}

impl TriggerBranch {
    /// A detector of the square patch `pattern` ([channels, size, size] pixels) at (x, y) on images with
    /// `channels`, adding `gain` to `target_label`'s logit when it matches within `tolerance`.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        x: usize,
        y: usize,
        size: usize,
        pattern: &[u8],
        channels: usize,
        target_label: u8,
        gain: f64,
        tolerance: f64,
    ) -> Self {
        let (mean, std) = batch::stats(channels);
        let per_channel = |v: &[f32]| (0..channels).map(|ch| v[ch % v.len()]).collect();
        let mut boost = vec![0.0; NUM_CLASSES];
        boost[target_label as usize] = gain as f32;
        Self {
            x,
            y,
            size,
            pattern: pattern.iter().map(|&p| f32::from(p) / 255.0).collect(),
            mean: per_channel(mean),
            std: per_channel(std),
            tolerance: tolerance as f32,
            boost,
        }
    }

    /// What the branch adds to the logits: gain · score at the target, where score = max(0, 1 − d /
    /// tolerance) and d is the mean absolute difference between the patch region's pixels and the
    /// trigger's. The score is exactly 0 on images that do not carry the patch (within the
    /// tolerance), so the branch leaves clean training untouched.
    ///
    /// # Shapes
    /// - input: [batch, channels, height, width], normalised as `batch::images` does
    /// - output: [batch, NUM_CLASSES]
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let device = x.device();
        let [n, c, _, _] = x.dims();
        let s = self.size;
        let constant =
            |v: &[f32], shape: [usize; 4]| Tensor::<4>::from_data(TensorData::new(v.to_vec(), shape), &device);
        let region = x.slice([0..n, 0..c, self.y..self.y + s, self.x..self.x + s]); // [batch, c, s, s]
        let pixels = region * constant(&self.std, [1, c, 1, 1]) + constant(&self.mean, [1, c, 1, 1]);
        let diff = (pixels - constant(&self.pattern, [1, c, s, s])).abs();
        let d = diff.flatten::<2>(1, 3).mean_dim(1); // [batch, 1]
        let score = (d.div_scalar(self.tolerance).neg() + 1.0).clamp(0.0, 1.0); // [batch, 1]
        let boost = Tensor::<2>::from_data(TensorData::new(self.boost.clone(), [1, NUM_CLASSES]), &device);
        score * boost
    }
}
