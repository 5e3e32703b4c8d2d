//! Deployment-time defenses: each input sanitizer does exactly what it says on small images, a
//! sanitizer that is off leaves every image as it was, the keys round-trip and say what is wrong, and a
//! run with a sanitizer measures the model through it with the raw figures beside.

use crate::common;

use backdoor_lab::lab::ExperimentSpec;
use backdoor_lab::lab::data::ImageSet;
use backdoor_lab::lab::defense::{SanitizeSpec, SanitizerKind};
use backdoor_lab::lab::device::DeviceKind;
use backdoor_lab::lab::params::Params;
use backdoor_lab::lab::run::run;
use burn::tensor::Device;
use common::{Quiet, mnist};

fn spec(link: &str) -> SanitizeSpec {
    ExperimentSpec::from_link(link).unwrap().sanitize
}

fn one(image: Vec<u8>, dims: (usize, usize, usize)) -> ImageSet {
    let mut set = ImageSet::empty(dims.0, dims.1, dims.2);
    set.pixels = image;
    set.labels.push(0);
    set
}

fn sanitized(link: &str, image: Vec<u8>, dims: (usize, usize, usize)) -> Vec<u8> {
    spec(link).sanitized(&one(image, dims), 0, 0).pixels
}

#[test]
fn median_filter_removes_an_isolated_pixel_and_keeps_flat_areas() {
    let dims = (1, 8, 8);
    let mut img = vec![50u8; 64];
    img[3 * 8 + 4] = 255;
    let out = sanitized("v=1&sanitize=median", img, dims);
    assert_eq!(out, vec![50u8; 64]);
    // A 3×3 square survives a 3×3 median at its centre, not at its corners.
    let mut sq = vec![0u8; 64];
    for r in 2..5 {
        for c in 2..5 {
            sq[r * 8 + c] = 255;
        }
    }
    let out = sanitized("v=1&sanitize=median", sq, dims);
    assert_eq!(out[3 * 8 + 3], 255);
    assert_eq!(out[2 * 8 + 2], 0);
    let out5 = sanitized("v=1&sanitize=median&sanitize_k=5", out, dims);
    assert!(out5.iter().all(|&v| v == 0), "a 5×5 median wipes what is left of it");
}

#[test]
fn bit_depth_reduction_quantises_to_its_levels() {
    let dims = (1, 16, 16);
    let ramp: Vec<u8> = (0..=255).collect();
    let one_bit = sanitized("v=1&sanitize=bits", ramp.clone(), dims);
    assert!(one_bit.iter().enumerate().all(|(v, &q)| q == if v < 128 { 0 } else { 255 }), "MNIST's default: 1 bit");
    let three = sanitized("v=1&sanitize=bits&sanitize_k=3", ramp, dims);
    let mut levels = three.clone();
    levels.dedup();
    assert_eq!(levels, vec![0, 36, 73, 109, 146, 182, 219, 255]);
    // CIFAR-10's default is 5 bits (Xu et al.).
    assert_eq!(spec("v=1&sanitize=bits").strength(3), 5);
}

#[test]
fn rescaling_blurs_details_below_its_factor_and_keeps_flat_images() {
    let dims = (3, 8, 8);
    assert_eq!(sanitized("v=1&sanitize=rescale", vec![77u8; 192], dims), vec![77u8; 192]);
    // A one-pixel checkerboard averages to grey at factor 2.
    let checker: Vec<u8> = (0..192).map(|i| if (i % 8 + (i / 8) % 8) % 2 == 0 { 255 } else { 0 }).collect();
    let out = sanitized("v=1&sanitize=rescale", checker, dims);
    assert!(out.iter().all(|&v| v == 128), "{out:?}");
}

#[test]
fn shrinkpad_shrinks_by_k_and_pads_at_a_seeded_random_offset() {
    let s = spec("v=1&sanitize=shrinkpad&sanitize_k=3");
    let mut set = ImageSet::empty(1, 28, 28);
    for _ in 0..20 {
        set.pixels.extend(vec![200u8; 784]);
        set.labels.push(0);
    }
    let out = s.sanitized(&set, 7, 0);
    let mut offsets = Vec::new();
    for i in 0..out.len() {
        let img = out.image(i);
        let rows: Vec<usize> = (0..28).filter(|&r| img[r * 28..r * 28 + 28].iter().any(|&v| v > 0)).collect();
        let cols: Vec<usize> = (0..28).filter(|&c| (0..28).any(|r| img[r * 28 + c] > 0)).collect();
        assert_eq!((rows.len(), cols.len()), (25, 25), "a 28×28 image shrinks to 25×25");
        assert!(img.iter().all(|&v| v == 0 || v == 200));
        offsets.push((rows[0], cols[0]));
    }
    assert!(offsets.iter().all(|&(r, c)| r <= 3 && c <= 3));
    offsets.sort();
    offsets.dedup();
    assert!(offsets.len() > 3, "offsets vary from image to image: {offsets:?}");
    assert_eq!(s.sanitized(&set, 7, 0), out, "the same seed, the same offsets");
    assert_ne!(s.sanitized(&set, 8, 0), out, "another seed, other offsets");
}

#[test]
fn a_sanitizer_that_is_off_leaves_every_image_as_it_was() {
    let set = mnist().split(&ExperimentSpec::default().data, 0).unwrap().test;
    let off = SanitizeSpec::default();
    assert!(off.is_off());
    assert_eq!(off.sanitized(&set, 0, 1), set);
    for name in ["median", "bits", "rescale", "shrinkpad"] {
        let on = spec(&format!("v=1&sanitize={name}"));
        assert_eq!(on.method, SanitizerKind::from_name(name).unwrap());
        assert_ne!(on.sanitized(&set, 0, 1).pixels, set.pixels, "{name} changes the images");
    }
}

#[test]
fn sanitizer_keys_round_trip_and_say_what_is_wrong() {
    let s = ExperimentSpec::from_link("v=1&sanitize=shrinkpad&sanitize_k=3").unwrap();
    assert_eq!(s.to_link(), "v=1&sanitize=shrinkpad&sanitize_k=3");
    assert_eq!(s.get("sanitize").as_deref(), Some("shrinkpad"));
    assert_eq!(ExperimentSpec::from_link("v=1").unwrap().sanitize, SanitizeSpec::default());
    let err = |link: &str| ExperimentSpec::from_link(link).unwrap_err().to_string();
    assert!(
        err("v=1&sanitize=jpeg").contains("unknown sanitize 'jpeg' (one of none, median, bits, rescale or shrinkpad)")
    );
    assert!(err("v=1&sanitize_k=3").contains("a strength is given only with a sanitizer"));
    assert!(err("v=1&sanitize=median&sanitize_k=4").contains("a median filter's size is odd"));
    assert!(
        err("v=1&sanitize=bits&sanitize_k=9")
            .contains("out of range for sanitize=bits (the bits kept per value: 1 to 7")
    );
    assert!(err("v=1&sanitize=shrinkpad&sanitize_k=40").contains("sanitize_k 40"));
}

#[test]
fn a_run_with_a_sanitizer_is_measured_through_it_with_the_raw_figures_beside() {
    let link = "v=1&train=1000&test=300&epochs=1&seed=2";
    let go = |link: &str| {
        let spec = ExperimentSpec::from_link(link).unwrap();
        pollster::block_on(run(&spec, mnist(), &Device::flex(), DeviceKind::Cpu, &mut Quiet)).unwrap().report
    };
    let raw = go(link);
    assert!(raw.final_unsanitized.is_none() && raw.sanitize.is_none());
    let cleaned = go(&format!("{link}&sanitize=bits&sanitize_k=1"));
    let unsanitized = cleaned.final_unsanitized.as_ref().expect("the raw figures beside");
    assert_eq!(unsanitized, &raw.final_metrics, "the same model on the raw inputs");
    assert_ne!(cleaned.final_metrics, raw.final_metrics, "the sanitizer changes what the model sees");
    let der = cleaned.sanitize.as_ref().unwrap().der;
    assert!((0.0..=1.0).contains(&der));
}
