//! Scores of a detector against the attack's ground truth: confusion rates, AUROC, MAD anomaly
//! indices and histograms, computed one way for every detector.

use serde::{Deserialize, Serialize};

/// MAD consistency constant: makes the median absolute deviation estimate σ for normal data.
pub const MAD_CONSISTENCY: f64 = 1.4826;

/// A data-level detector's result against the poisoned indices.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataScore {
    /// Recall: share of the poisoned samples flagged.
    pub tpr: f64,
    /// Share of the clean samples flagged.
    pub fpr: f64,
    /// Share of the flagged samples that are poisoned (0 when nothing is flagged).
    pub precision: f64,
    pub f1: f64,
    /// AUROC of the continuous score over all training samples (`None` without both classes).
    pub auroc: Option<f64>,
    /// How many samples were flagged, and how many of them are poisoned.
    pub flagged: usize,
    pub true_positives: usize,
    pub poisoned: usize,
}

impl DataScore {
    /// Scores `flagged` and the continuous `scores` (higher = more suspicious) against `truth`.
    pub fn new(scores: &[f64], flagged: &[bool], truth: &[bool]) -> Self {
        let tp = flagged.iter().zip(truth).filter(|&(&f, &t)| f && t).count();
        let fp = flagged.iter().zip(truth).filter(|&(&f, &t)| f && !t).count();
        let pos = truth.iter().filter(|&&t| t).count();
        let neg = truth.len() - pos;
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let (tpr, precision) = (ratio(tp, pos), ratio(tp, tp + fp));
        Self {
            tpr,
            fpr: ratio(fp, neg),
            precision,
            f1: f1(precision, tpr),
            auroc: auroc(scores, truth),
            flagged: tp + fp,
            true_positives: tp,
            poisoned: pos,
        }
    }
}

/// Harmonic mean of precision and recall (0 when both are 0).
pub fn f1(precision: f64, recall: f64) -> f64 {
    if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) }
}

/// Area under the ROC curve of `scores` (higher = positive) against `truth`, by the Mann–Whitney
/// statistic with mid-ranks for ties. `None` when either class is empty.
pub fn auroc(scores: &[f64], truth: &[bool]) -> Option<f64> {
    let pos = truth.iter().filter(|&&t| t).count();
    let neg = truth.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Ranks are 1-based; ties share the mean of their ranks.
        let mid = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mid * order[i..=j].iter().filter(|&&k| truth[k]).count() as f64;
        i = j + 1;
    }
    let (p, n) = (pos as f64, neg as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Median of `values` (0 for none).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
}

/// Anomaly index of each value: |x − median| / (1.4826 · MAD). All zeros when the MAD is zero.
pub fn anomaly_indices(values: &[f64]) -> Vec<f64> {
    let m = median(values);
    let deviations: Vec<f64> = values.iter().map(|x| (x - m).abs()).collect();
    let mad = MAD_CONSISTENCY * median(&deviations);
    if mad <= 0.0 { vec![0.0; values.len()] } else { deviations.iter().map(|d| d / mad).collect() }
}

/// Counts of two groups over shared bins, for "clean vs poisoned" pictures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// `bins + 1` bin edges, ascending.
    pub edges: Vec<f64>,
    /// Per bin: samples of the negative group (clean).
    pub clean: Vec<u32>,
    /// Per bin: samples of the positive group (poisoned or triggered).
    pub poisoned: Vec<u32>,
}

impl Histogram {
    /// `bins` equal bins between the smallest and largest finite value.
    pub fn new(values: &[f64], positive: &[bool], bins: usize) -> Self {
        let finite = values.iter().copied().filter(|v| v.is_finite());
        let lo = finite.clone().fold(f64::INFINITY, f64::min);
        let hi = finite.fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() || bins == 0 {
            return Self::default();
        }
        let width = if hi > lo { (hi - lo) / bins as f64 } else { 1.0 };
        let mut h = Self {
            edges: (0..=bins).map(|i| lo + i as f64 * width).collect(),
            clean: vec![0; bins],
            poisoned: vec![0; bins],
        };
        for (&v, &p) in values.iter().zip(positive) {
            if !v.is_finite() {
                continue;
            }
            let bin = (((v - lo) / width) as usize).min(bins - 1);
            if p { h.poisoned[bin] += 1 } else { h.clean[bin] += 1 }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_of_hand_made_scores() {
        assert_eq!(auroc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]), Some(1.0));
        assert_eq!(auroc(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]), Some(0.0));
        assert_eq!(auroc(&[0.5, 0.5, 0.5, 0.5], &[false, true, false, true]), Some(0.5));
        // One positive above two of three negatives.
        let a = auroc(&[0.1, 0.2, 0.9, 0.5], &[false, false, false, true]).unwrap();
        assert!((a - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(auroc(&[0.1, 0.2], &[false, false]), None);
    }

    #[test]
    fn confusion_rates_and_f1() {
        let truth = [true, true, false, false, false];
        let flagged = [true, false, true, false, false];
        let s = DataScore::new(&[1.0, 0.0, 1.0, 0.0, 0.0], &flagged, &truth);
        assert_eq!((s.tpr, s.precision, s.flagged, s.true_positives), (0.5, 0.5, 2, 1));
        assert!((s.fpr - 1.0 / 3.0).abs() < 1e-12);
        assert!((s.f1 - 0.5).abs() < 1e-12);
        assert_eq!(f1(0.0, 0.0), 0.0);
        assert!((f1(1.0, 0.5) - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn mad_anomaly_index() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        // Median 10, deviations 0,1,1,0,8 → MAD 1 → σ̂ = 1.4826.
        let idx = anomaly_indices(&[10.0, 11.0, 9.0, 10.0, 2.0]);
        assert!((idx[4] - 8.0 / MAD_CONSISTENCY).abs() < 1e-9);
        assert!((idx[1] - 1.0 / MAD_CONSISTENCY).abs() < 1e-9);
        assert_eq!(anomaly_indices(&[1.0, 1.0, 1.0]), vec![0.0; 3]);
    }

    #[test]
    fn histogram_counts_every_value() {
        let h = Histogram::new(&[0.0, 0.5, 1.0, 1.0], &[false, true, true, false], 2);
        assert_eq!(h.edges, vec![0.0, 0.5, 1.0]);
        assert_eq!((h.clean.clone(), h.poisoned.clone()), (vec![1, 1], vec![0, 2]));
    }
}
