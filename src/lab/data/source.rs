//! Where a run's images come from, and the seeded train/test split of a spec.

use std::path::{Path, PathBuf};

use super::{ALL, DataSpec, DatasetKind, ImageSet, cifar, idx, mnist};
use crate::lab::error::{LabError, Result};
use crate::lab::rng::{LabRng, Stream};

/// File name of the MNIST bundle under a data directory.
pub const MNIST_FILE: &str = "mnist.bin";

/// Raw images of one dataset, before the spec's split.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// One pool that the split divides into train and test (the 10,000-digit MNIST bundle).
    Pool(ImageSet),
    /// Separate official train and test sets (CIFAR-10); the split subsamples each.
    TrainTest { train: ImageSet, test: ImageSet },
}

/// The spec's train and test sets.
#[derive(Debug, Clone)]
pub struct Split {
    pub train: ImageSet,
    pub test: ImageSet,
}

/// A split this data cannot give, said in the page's words, with the link keys of the sizes that cause
/// it (the page shows it beside each of those controls before Run).
#[derive(Debug, Clone, PartialEq)]
pub struct SizeProblem {
    pub keys: Vec<&'static str>,
    pub message: String,
}

/// The fewest images a transfer victim may have (`finetune_size`'s lower bound).
const MIN_VICTIM: usize = 10;

/// A count with thousands separated, as the page writes numbers of images.
pub fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

impl DataSource {
    /// Whether the split of `spec` (and a transfer victim's `victim` images, if any) fit this data;
    /// the same limits `split` and `held_out` enforce, checked before any work starts.
    pub fn size_problem(&self, spec: &DataSpec, victim: Option<usize>) -> Option<SizeProblem> {
        let name = spec.dataset.label();
        let train = self.train_count(spec);
        let (pool, used) = match self {
            Self::Pool(pool) => {
                let (have, want) = (pool.len(), train + spec.test_size);
                if want > have {
                    return Some(SizeProblem {
                        keys: vec!["train", "test"],
                        message: format!(
                            "Training and test images together ({} + {}) exceed the {} {name} images here: lower one of them.",
                            count(train),
                            count(spec.test_size),
                            count(have)
                        ),
                    });
                }
                (pool.len(), want)
            }
            Self::TrainTest { train: all, test } => {
                if train > all.len() {
                    return Some(SizeProblem {
                        keys: vec!["train"],
                        message: format!("{name} has {} training images here, not {}.", count(all.len()), count(train)),
                    });
                }
                if spec.test_size > test.len() {
                    return Some(SizeProblem {
                        keys: vec!["test"],
                        message: format!(
                            "{name} has {} test images here, not {}.",
                            count(test.len()),
                            count(spec.test_size)
                        ),
                    });
                }
                (all.len(), train)
            }
        };
        let want = victim?;
        let left = pool.saturating_sub(used);
        (want > left).then(|| {
            let room = pool.saturating_sub(used - train).saturating_sub(want);
            let taken = if matches!(self, Self::Pool(_)) { "training and test take" } else { "training takes" };
            SizeProblem {
                keys: vec!["train", "finetune_size"],
                message: format!(
                    "The victim's {} clean images must be ones the model never saw, but {taken} {} of the {} {name} \
                     images here, leaving {}: lower the training images to {} or fewer{}.",
                    count(want),
                    count(used),
                    count(pool),
                    count(left),
                    count(room),
                    if left >= MIN_VICTIM {
                        format!(", or the victim's images to {}", count(left))
                    } else {
                        String::new()
                    }
                ),
            }
        })
    }

    /// Loads `dataset` from a data directory (the MNIST bundle or any CIFAR-10 layout `cifar::load_dir` knows).
    pub fn load(dataset: DatasetKind, dir: &Path) -> Result<Self> {
        match dataset {
            DatasetKind::Mnist => {
                // The official release (60,000 / 10,000) when the folder has it, else the shipped bundle.
                if let Some((train, test)) = idx::load_dir(dir)? {
                    if (train.height, train.width, test.height, test.width) != (28, 28, 28, 28) {
                        return Err(LabError::data(
                            dir.display().to_string(),
                            format!("MNIST's IDX images are 28×28; these are {}×{}", train.height, train.width),
                        ));
                    }
                    return Ok(Self::TrainTest { train, test });
                }
                let path = dir.join(MNIST_FILE);
                let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => LabError::DataMissing(format!(
                        "MNIST not found at {}: pass --data-dir with the folder holding {MNIST_FILE} \
                         (the repository ships it in static/data)",
                        path.display()
                    )),
                    _ => LabError::io(path.display(), e),
                })?;
                Ok(Self::Pool(mnist::decode_bundle(&bytes, &path.display().to_string())?))
            }
            DatasetKind::Cifar10 => {
                let s = cifar::load_dir(dir)?;
                Ok(Self::TrainTest { train: s.train, test: s.test })
            }
        }
    }

    /// Loads from the first of `dirs` that holds the dataset; the error of the last one otherwise.
    pub fn load_first(dataset: DatasetKind, dirs: &[PathBuf]) -> Result<Self> {
        let mut last = LabError::DataMissing("no data directory given".into());
        for dir in dirs {
            match Self::load(dataset, dir) {
                Ok(s) => return Ok(s),
                Err(e @ LabError::DataMissing(_)) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// The seeded split that `spec` asks for.
    /// `n` images the split of (`spec`, `seed`) left out of both its training and its test set: a
    /// transfer victim's own clean data, which the base model never saw.
    pub fn held_out(&self, spec: &DataSpec, seed: u64, n: usize) -> Result<ImageSet> {
        // The split's first permutation, drawn again: what follows its training and test images.
        let mut rng = LabRng::new(seed, Stream::Split);
        let (pool, used) = match self {
            Self::Pool(pool) => (pool, self.train_count(spec) + spec.test_size),
            Self::TrainTest { train, .. } => (train, self.train_count(spec)),
        };
        let left = pool.len().saturating_sub(used);
        if n > left {
            return Err(LabError::spec(format!(
                "finetune_size {n} exceeds the {left} {} images the split leaves unused ({} in all, {used} taken by \
                 train{}): lower train or finetune_size",
                spec.dataset.name(),
                pool.len(),
                if matches!(self, Self::Pool(_)) { " and test" } else { "" }
            )));
        }
        let order = rng.permutation(pool.len());
        Ok(pool.select(&order[used..used + n]))
    }

    /// How many training images `spec` asks for: its number, or for `train=all` every training image
    /// (all of the official training set; the pool less the test split for a single pool).
    pub fn train_count(&self, spec: &DataSpec) -> usize {
        match (spec.train_size, self) {
            (ALL, Self::Pool(pool)) => pool.len().saturating_sub(spec.test_size),
            (ALL, Self::TrainTest { train, .. }) => train.len(),
            (n, _) => n,
        }
    }

    pub fn split(&self, spec: &DataSpec, seed: u64) -> Result<Split> {
        let mut rng = LabRng::new(seed, Stream::Split);
        let train_size = self.train_count(spec);
        let too_many = |what: &str, want: usize, have: usize| {
            LabError::spec(format!("{what} {want} exceeds the {have} images available for {}", spec.dataset.name()))
        };
        match self {
            Self::Pool(pool) => {
                if train_size + spec.test_size > pool.len() || train_size == 0 {
                    return Err(too_many("train_size + test_size", train_size + spec.test_size, pool.len()));
                }
                let order = rng.permutation(pool.len());
                Ok(Split {
                    train: pool.select(&order[..train_size]),
                    test: pool.select(&order[train_size..train_size + spec.test_size]),
                })
            }
            Self::TrainTest { train, test } => {
                if train_size > train.len() {
                    return Err(too_many("train_size", train_size, train.len()));
                }
                if spec.test_size > test.len() {
                    return Err(too_many("test_size", spec.test_size, test.len()));
                }
                let tr = rng.permutation(train.len());
                let te = rng.permutation(test.len());
                Ok(Split { train: train.select(&tr[..train_size]), test: test.select(&te[..spec.test_size]) })
            }
        }
    }
}
