//! Architectures only: an MLP, the reference MNIST CNN and a small CIFAR-10 CNN. Every model exposes
//! its penultimate-layer features (`features`) and the head on top (`head`), so detectors never branch
//! on the model's name.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::lab::data::NUM_CLASSES;

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

impl ModelKind {
    pub const NAMES: [&'static str; 3] = ["mlp", "cnn", "cifar_cnn"];

    pub fn name(self) -> &'static str {
        match self {
            Self::Mlp => "mlp",
            Self::Cnn => "cnn",
            Self::CifarCnn => "cifar_cnn",
        }
    }
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "mlp" => Self::Mlp,
            "cnn" => Self::Cnn,
            "cifar_cnn" => Self::CifarCnn,
            _ => return None,
        })
    }
}

/// Width of every model's penultimate layer.
pub const FEATURES: usize = 128;

#[derive(Module, Debug)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
    out: Linear,
}

#[derive(Module, Debug)]
pub struct Cnn {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    fc: Linear,
    out: Linear,
}

#[derive(Module, Debug)]
pub struct CifarCnn {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    pool: MaxPool2d,
    fc: Linear,
    out: Linear,
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

    /// Logits from penultimate features: [batch, FEATURES] → [batch, 10].
    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        match self {
            Self::Mlp(m) => m.out.forward(features),
            Self::Cnn(m) => m.out.forward(features),
            Self::CifarCnn(m) => m.out.forward(features),
        }
    }

    /// Logits: [batch, channels, height, width] → [batch, 10].
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.head(self.features(x))
    }
}
