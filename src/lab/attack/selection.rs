//! Index selection: which training samples get poisoned, for poisoning rate ρ = |Dp| / (|Dc| + |Dp|).
//! Poisoned samples replace clean ones, so |Dp| = round(ρ · N) of the N training samples.

use crate::lab::error::{LabError, Result};
use crate::lab::rng::LabRng;

/// |Dp| for `n` training samples at rate `poison_rate`.
pub fn poison_count(n: usize, poison_rate: f64) -> usize {
    (poison_rate * n as f64).round() as usize
}

/// Dirty-label selection: uniformly among all training samples (some may already be of the target
/// class, as in BadNets and the reference implementation).
pub fn any_samples(n: usize, poison_rate: f64, rng: &mut LabRng) -> Vec<usize> {
    let pool: Vec<usize> = (0..n).collect();
    rng.choose_sorted(&pool, poison_count(n, poison_rate))
}

/// Clean-label selection: only samples already of `target_label`.
pub fn target_class_samples(labels: &[u8], target_label: u8, poison_rate: f64, rng: &mut LabRng) -> Result<Vec<usize>> {
    let pool: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == target_label).collect();
    let want = poison_count(labels.len(), poison_rate);
    if want > pool.len() {
        return Err(LabError::spec(format!(
            "clean-label poisoning at rate {poison_rate} needs {want} samples of class {target_label}, \
             but the training set has only {} (at most rate {:.3})",
            pool.len(),
            pool.len() as f64 / labels.len().max(1) as f64
        )));
    }
    Ok(rng.choose_sorted(&pool, want))
}
