//! The device self-check: two honest CPU backends agree on every model; broken answers are refused.
//! Built only with the `ndarray` feature (on by default; the default test run builds without it, so the
//! extended suite runs this file).

use backdoor_lab::lab::LabError;
use backdoor_lab::lab::device::{SELF_CHECK_TOLERANCE, fresh_model, relative_difference, self_check};
use backdoor_lab::lab::model::ModelKind;
use burn::tensor::{Device, Tensor};

#[allow(deprecated)] // ndarray is deprecated in burn 0.22 but is a second, independent CPU implementation.
fn ndarray() -> Device {
    Device::ndarray()
}

#[test]
fn two_cpu_backends_pass_the_self_check_for_every_model() {
    for (kind, dims) in
        [(ModelKind::Mlp, (1, 28, 28)), (ModelKind::Cnn, (1, 28, 28)), (ModelKind::CifarCnn, (3, 32, 32))]
    {
        let check = pollster::block_on(self_check(kind, dims, &ndarray()))
            .unwrap_or_else(|e| panic!("{kind:?}: flex and ndarray disagree: {e}"));
        assert!(check.max_rel_diff <= SELF_CHECK_TOLERANCE, "{kind:?}: {check:?}");
    }
}

#[test]
fn wrong_answers_are_refused() {
    let expected = [1.0, -2.0, 0.5];
    assert_eq!(relative_difference(&expected, &expected), 0.0);
    assert!(relative_difference(&expected, &[1.0, -2.0, 0.5001]) < SELF_CHECK_TOLERANCE);
    assert!(relative_difference(&expected, &[1.0, -2.0, 0.6]) > SELF_CHECK_TOLERANCE);
    // Garbage seen on WebGPU: zeros, NaN, or a missing output.
    assert!(relative_difference(&expected, &[0.0, 0.0, 0.0]) > SELF_CHECK_TOLERANCE);
    assert!(relative_difference(&expected, &[1.0, f32::NAN, 0.5]).is_infinite());
    assert!(relative_difference(&expected, &[1.0]).is_infinite());
}

#[test]
fn fresh_models_depend_only_on_the_seed() {
    let logits = |seed: u64, device: Device| {
        let device = device.autodiff();
        let model = fresh_model(ModelKind::Mlp, (1, 28, 28), seed, &device);
        let x = Tensor::<4>::ones([2, 1, 28, 28], &device);
        model.forward(x).into_data().try_to_vec::<f32>().expect("f32 logits")
    };
    let a = logits(42, Device::flex());
    assert_eq!(a, logits(42, Device::flex()), "same seed, same weights");
    let other = relative_difference(&a, &logits(42, ndarray()));
    assert!(other < 1e-4, "same weights on another backend: relative difference {other}");
    assert!(relative_difference(&a, &logits(43, Device::flex())) > 1e-2, "another seed, other weights");
}

/// burn's execution errors print as a chain with "Caused by" and "Backtrace" scaffolding; the page and
/// the CLI show a device failure as one line that keeps every distinct cause.
#[test]
fn device_faults_read_as_one_line() {
    let text = "An error happened during execution\nCaused by:\n  An error happened during execution\nCaused by:\n  \
                the staging buffer could not be mapped: Error occurred when trying to async map a buffer\n\
                Backtrace:\nNo backtrace available";
    struct Raw(&'static str);
    impl std::fmt::Debug for Raw {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    assert_eq!(
        LabError::device_fault(Raw(text)),
        LabError::Device(
            "An error happened during execution: the staging buffer could not be mapped: Error occurred when \
             trying to async map a buffer"
                .into()
        )
    );
    // Anything without the scaffolding stays as it is.
    assert_eq!(LabError::device_fault(Raw("out of memory")), LabError::Device("out of memory".into()));
}

/// The lab carries a patched burn-flex (vendor/burn-flex/VENDORED.md) whose max pool selects instead of
/// branching and unrolls 2×2 windows: its forward values and the gradient's routing (ties go to the first
/// maximum) must match the independent ndarray backend, and a NaN must still win its window as in PyTorch
/// (ndarray drops NaN there, so that part is checked on flex alone).
#[test]
fn max_pool_matches_ndarray_with_ties_nan_and_edges() {
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::TensorData;
    let shape = [2, 3, 7, 9]; // odd sizes leave an unpooled edge row and column
    let mut state = 12_345u64;
    let mut values: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) % 4) as f32 // four levels, so most windows hold ties
        })
        .collect();
    let pool = MaxPool2dConfig::new([2, 2]).init();
    let run = |device: Device, values: &[f32]| {
        let ad = device.autodiff();
        let x = Tensor::<4>::from_data(TensorData::new(values.to_vec(), shape), &ad).require_grad();
        let y = pool.forward(x.clone());
        let n = y.shape().num_elements();
        let weights = Tensor::<1>::from_data(TensorData::new((1..=n).map(|i| i as f32).collect(), [n]), &ad);
        let grads = (y.clone() * weights.reshape(y.shape())).sum().backward();
        let out = y.into_data().try_to_vec::<f32>().unwrap();
        let grad = x.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
        (out, grad)
    };
    let (flex_out, flex_grad) = run(Device::flex(), &values);
    let (nd_out, nd_grad) = run(ndarray(), &values);
    assert_eq!(flex_out, nd_out, "forward");
    assert_eq!(flex_grad, nd_grad, "gradient routing");
    // A NaN at (row 1, column 1) of the first plane wins the first window and takes its gradient.
    values[10] = f32::NAN;
    let (out, grad) = run(Device::flex(), &values);
    assert!(out[0].is_nan() && out[1..].iter().all(|v| !v.is_nan()), "{out:?}");
    assert_eq!(grad[10], 1.0, "the first window's gradient goes to the NaN");
    assert_eq!(grad[0] + grad[1] + grad[9], 0.0);
}
