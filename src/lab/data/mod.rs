//! Datasets as plain bytes: readers for the shipped MNIST bundle and the official CIFAR-10 binary format,
//! seeded splits, and conversion to float tensors. No tensors are created here except in `batch`.

pub mod batch;
pub mod cifar;
pub mod idx;
pub mod mnist;
pub mod source;

pub use source::{DataSource, SizeProblem, Split};

use serde::{Deserialize, Serialize};

use crate::lab::params::ALL_WORD;

/// The datasets the lab knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    Mnist,
    Cifar10,
}

impl DatasetKind {
    /// (channels, height, width) of one image.
    pub fn shape(self) -> (usize, usize, usize) {
        match self {
            Self::Mnist => (1, 28, 28),
            Self::Cifar10 => (3, 32, 32),
        }
    }
    pub fn class_names(self) -> [&'static str; 10] {
        match self {
            Self::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            Self::Cifar10 => ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
        }
    }
}

crate::named_enum!(DatasetKind {
    Mnist = "mnist" / "MNIST",
    Cifar10 = "cifar10" / "CIFAR-10",
});

/// Which data, how much of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub dataset: DatasetKind,
    /// `ALL` (`train=all`, "all" in JSON): every training image the source has.
    #[serde(with = "train_count")]
    pub train_size: usize,
    pub test_size: usize,
}

/// `train_size` of `train=all`: every training image (for MNIST's single pool, all but the test split).
pub const ALL: usize = usize::MAX;

impl DataSpec {
    /// The training size in words: a number, or "all".
    pub fn train_text(&self) -> String {
        if self.train_size == ALL { ALL_WORD.to_string() } else { self.train_size.to_string() }
    }
}

/// JSON for `train_size`: a number, or "all".
mod train_count {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{ALL, ALL_WORD};

    pub fn serialize<S: Serializer>(n: &usize, s: S) -> Result<S::Ok, S::Error> {
        if *n == ALL { s.serialize_str(ALL_WORD) } else { s.serialize_u64(*n as u64) }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Count {
            Number(usize),
            Word(String),
        }
        match Count::deserialize(d)? {
            Count::Number(n) => Ok(n),
            Count::Word(w) if w == ALL_WORD => Ok(ALL),
            Count::Word(w) => Err(serde::de::Error::custom(format!("train_size '{w}' is neither a number nor all"))),
        }
    }
}

/// Number of classes of every dataset the lab knows.
pub const NUM_CLASSES: usize = 10;

/// A set of 8-bit images with labels, stored channel-planar per image (C, H, W), as CIFAR-10 does.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// One label per image, each < NUM_CLASSES.
    pub labels: Vec<u8>,
    /// `len() * channels * height * width` bytes.
    pub pixels: Vec<u8>,
}

impl ImageSet {
    pub fn empty(channels: usize, height: usize, width: usize) -> Self {
        Self { channels, height, width, labels: Vec::new(), pixels: Vec::new() }
    }
    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }
    pub fn image_mut(&mut self, i: usize) -> &mut [u8] {
        let n = self.image_len();
        &mut self.pixels[i * n..(i + 1) * n]
    }
    /// The images at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> ImageSet {
        let mut out = ImageSet::empty(self.channels, self.height, self.width);
        out.labels.reserve(indices.len());
        out.pixels.reserve(indices.len() * self.image_len());
        for &i in indices {
            out.labels.push(self.labels[i]);
            out.pixels.extend_from_slice(self.image(i));
        }
        out
    }
    /// Appends all images of `other` (same shape).
    pub fn extend(&mut self, other: &ImageSet) {
        debug_assert_eq!(self.image_len(), other.image_len());
        self.labels.extend_from_slice(&other.labels);
        self.pixels.extend_from_slice(&other.pixels);
    }
}
