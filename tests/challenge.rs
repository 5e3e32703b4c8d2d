//! Challenges are solvable the way the page asks students to solve them: on the code's hidden
//! attack, trained at the challenge's size, Neural Cleanse flags the hidden target, and the flagged
//! class's reversed mask is strongest nearest the hidden trigger's place.

use crate::common;

use backdoor_lab::lab::challenge::{Challenge, PLACES};
use backdoor_lab::lab::detect::NeuralCleanse;
use backdoor_lab::lab::device::DeviceKind;
use backdoor_lab::lab::run::run;
use burn::tensor::Device;
use common::{Quiet, mnist};

/// The place whose patch centre is nearest (row, column) on a 28×28 image, for a k×k patch one pixel
/// from the border (the lab's corner margin): what a student reads off the reversed trigger.
fn nearest_place(row: f64, col: f64, k: usize) -> usize {
    let near = 1.0 + (k as f64 - 1.0) / 2.0;
    let far = 28.0 - 1.0 - 1.0 - (k as f64 - 1.0) / 2.0;
    let mid = 13.5;
    let centres = [(near, near), (near, far), (mid, mid), (far, near), (far, far)];
    let d = |(r, c): (f64, f64)| (r - row).powi(2) + (c - col).powi(2);
    (0..PLACES.len()).min_by(|&a, &b| d(centres[a]).total_cmp(&d(centres[b]))).unwrap()
}

/// About a minute of training: the extended suite runs it (the default run's e2e solves one challenge in
/// the page).
#[test]
#[ignore = "extended suite"]
fn neural_cleanse_names_the_hidden_target_and_place() {
    // Three codes a teacher might hand out (the page draws them at random).
    for code in ["7kq2mx9d", "c4n8w1ra", "z0h5tp3e"] {
        let ch = Challenge::parse(code).unwrap();
        let truth = ch.truth();
        let mut spec = ch.spec();
        spec.detect.nc = Some(NeuralCleanse::default());
        let out = pollster::block_on(run(&spec, mnist(), &Device::flex(), DeviceKind::Cpu, &mut Quiet)).unwrap();
        let m = &out.report.final_metrics;
        let nc = out.report.detect.nc.as_ref().unwrap();
        eprintln!(
            "{code}: target {} at {} ({}×{} {}), CA {:.3}, ASR {:.3}; NC flags {:?}",
            truth.target,
            PLACES[truth.place].0,
            truth.patch,
            truth.patch,
            truth.pattern,
            m.clean_acc,
            m.asr,
            nc.flagged_classes
        );
        assert!(
            m.clean_acc >= 0.9 && m.asr >= 0.9,
            "{code}: the hidden backdoor did not take (CA {}, ASR {})",
            m.clean_acc,
            m.asr
        );
        assert_eq!(nc.flagged_classes.first(), Some(&truth.target), "{code}: NC's first flagged class");
        let (r, c) = nc.mask_centre(truth.target as usize).unwrap();
        assert_eq!(
            PLACES[nearest_place(r, c, truth.patch)].0,
            PLACES[truth.place].0,
            "{code}: mask strongest at ({r:.1}, {c:.1})"
        );
    }
}
