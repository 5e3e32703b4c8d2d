//! Devices: models start from the same CPU-initialised weights on every device, and a device is
//! trusted only after the same small forward pass, backward pass and optimiser step on it and on
//! the CPU agree (burn 0.22 on WebGPU was seen to train on garbage without any error).

use burn::module::{Module, ModuleMapper, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Tensor, TensorData};

use crate::lab::data::{NUM_CLASSES, batch};
use crate::lab::error::{LabError, Result};
use crate::lab::model::{Model, ModelKind};
use crate::lab::rng::{LabRng, Stream};

/// Largest relative difference between a device's answers and the CPU's that still counts as
/// agreement: f32 kernels that sum in another order differ by ~1e-6; a wrong kernel by ~1.
pub const SELF_CHECK_TOLERANCE: f64 = 1e-3;

/// Inputs in the self-check's batch.
const CHECK_BATCH: usize = 16;

/// A freshly initialised model on `device` (an autodiff device for training). The weights come
/// from the lab's own generator, not the backend's: a link starts from the same weights on every
/// device, and runs on parallel threads (tests) cannot disturb each other's draws.
pub fn fresh_model(kind: ModelKind, dims: (usize, usize, usize), seed: u64, device: &Device) -> Model {
    Model::new(kind, dims, device).map(&mut SeededInit { rng: LabRng::new(seed, Stream::Init), fan_in: 1 })
}

/// PyTorch's default initialisation, U(−1/√fan_in, 1/√fan_in) for weights and biases (also
/// burn's default), drawn in parameter order from one stream.
struct SeededInit {
    rng: LabRng,
    /// Fan-in of the last weight seen: a bias takes its layer's.
    fan_in: usize,
}

impl ModuleMapper for SeededInit {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let shape = param.lazy_shape().to_vec();
        match D {
            // Linear weights are [in, out]; convolution weights [out, in, kh, kw].
            2 => self.fan_in = shape[0],
            3.. => self.fan_in = shape[1..].iter().product(),
            _ => {}
        }
        let bound = 1.0 / (self.fan_in.max(1) as f64).sqrt();
        let n = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| ((2.0 * self.rng.unit() - 1.0) * bound) as f32).collect();
        // The lazy parameter is dropped unused, so the backend's generator is never touched.
        let tensor = Tensor::<D>::from_data(TensorData::new(values, shape), &param.lazy_device());
        let mut fresh = Param::from_tensor(tensor);
        fresh.id = param.id;
        fresh
    }
}

/// What a run runs on, by one name in every report, the CLI and the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// burn's flex backend on the CPU: the default everywhere, and where a GPU's refused work goes.
    Cpu,
    /// burn's ndarray backend (the CLI's `--device ndarray`, measured against flex).
    CpuNdarray,
    /// burn's wgpu backend on the machine's GPU (the CLI: Vulkan, Metal or DX12).
    Wgpu,
    /// burn's wgpu backend on the browser's WebGPU.
    WebGpu,
}

impl DeviceKind {
    /// The name reports carry.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::CpuNdarray => "cpu-ndarray",
            Self::Wgpu => "wgpu",
            Self::WebGpu => "webgpu",
        }
    }

    /// How notices name it.
    pub fn title(self) -> &'static str {
        match self {
            Self::Cpu => "the CPU",
            Self::CpuNdarray => "the CPU (ndarray)",
            Self::Wgpu => "the GPU (wgpu)",
            Self::WebGpu => "WebGPU",
        }
    }

    /// A GPU is trusted only after its self-check, and a run that fails on it is run again on the CPU.
    pub fn is_gpu(self) -> bool {
        matches!(self, Self::Wgpu | Self::WebGpu)
    }
}

/// The device a run gets, and the notice that says which and why.
pub struct Chosen {
    pub device: Device,
    pub kind: DeviceKind,
    /// One sentence for the user: the device and its check, or why the CPU runs instead.
    pub notice: String,
    /// Why the GPU was refused, when it was (the caller stops offering it).
    pub refused: Option<String>,
}

impl Chosen {
    /// The CPU (flex), for the reason `notice` gives.
    pub fn cpu(notice: impl Into<String>) -> Self {
        Self { device: Device::flex(), kind: DeviceKind::Cpu, notice: notice.into(), refused: None }
    }

    fn refused(why: String) -> Self {
        Self { refused: Some(why.clone()), ..Self::cpu(format!("Running on the CPU: {why}.")) }
    }
}

/// Trusts a GPU of `kind` (`opened`, or why it could not be opened) for a `model` only after the
/// self-check against the CPU; otherwise the run goes to the CPU and the notice says why. Used by the
/// CLI and the page's worker alike; `clock` reads seconds.
pub async fn trust(
    opened: std::result::Result<Device, String>,
    kind: DeviceKind,
    model: ModelKind,
    dims: (usize, usize, usize),
    clock: &dyn Fn() -> f64,
) -> Chosen {
    let device = match opened {
        Ok(device) => device,
        Err(why) => return Chosen::refused(why),
    };
    let started = clock();
    match self_check(model, dims, &device).await {
        Ok(check) => {
            let notice = format!(
                "{} checked against the CPU for this model in {:.1} s (relative difference {:.0e}).",
                capitalised(kind.title()),
                clock() - started,
                check.max_rel_diff
            );
            Chosen { device, kind, notice, refused: None }
        }
        Err(e) => Chosen::refused(format!("{} failed its self-check against the CPU: {e}", capitalised(kind.title()))),
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// What the self-check measured.
#[derive(Debug, Clone, PartialEq)]
pub struct SelfCheck {
    /// Largest relative difference over the logits before and after one SGD step.
    pub max_rel_diff: f64,
}

/// Runs the same forward pass, backward pass and SGD step of a `kind` model on `device` and on the
/// CPU and compares the logits before and after the step. `Err(Device)` says why the device is not
/// to be trusted.
pub async fn self_check(kind: ModelKind, dims: (usize, usize, usize), device: &Device) -> Result<SelfCheck> {
    let (c, h, w) = dims;
    let mut rng = LabRng::new(0, Stream::Init);
    let pixels: Vec<f32> = (0..CHECK_BATCH * c * h * w).map(|_| rng.byte() as f32 / 127.5 - 1.0).collect();
    let labels: Vec<u8> = (0..CHECK_BATCH).map(|i| (i % NUM_CLASSES) as u8).collect();
    let on = |device: Device| {
        let (pixels, labels) = (pixels.clone(), labels.clone());
        async move {
            let device = device.autodiff();
            let model = fresh_model(kind, dims, 0, &device);
            let x: Tensor<4> = Tensor::from_data(TensorData::new(pixels, [CHECK_BATCH, c, h, w]), &device);
            let before = model.forward(x.clone());
            let loss =
                CrossEntropyLossConfig::new().init(&device).forward(before.clone(), batch::labels(&labels, &device));
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let mut sgd: ModuleOptimizer = SgdConfig::new().init();
            let model = sgd.step(0.1, model, grads);
            let after = model.forward(x);
            let mut out = read_floats(before).await?;
            out.extend(read_floats(after).await?);
            Ok::<_, LabError>(out)
        }
    };
    let expected = on(Device::flex()).await?;
    let got = on(device.clone()).await?;
    let max_rel_diff = relative_difference(&expected, &got);
    if max_rel_diff <= SELF_CHECK_TOLERANCE {
        Ok(SelfCheck { max_rel_diff })
    } else {
        Err(LabError::Device(format!(
            "its answers on a test pass differ from the CPU's (relative difference {max_rel_diff:.2e}, \
             tolerance {SELF_CHECK_TOLERANCE:.0e})"
        )))
    }
}

/// Reads a float tensor back to the host, asynchronously (a synchronous read panics on WebGPU).
pub async fn read_floats<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let data = t.into_data_async().await.map_err(LabError::device_fault)?;
    data.try_into_vec::<f32>().map_err(LabError::device_fault)
}

/// max |a − b| over max |a| (NaN or a length mismatch counts as total disagreement).
pub fn relative_difference(expected: &[f32], got: &[f32]) -> f64 {
    if expected.len() != got.len() {
        return f64::INFINITY;
    }
    let scale = expected.iter().fold(0f64, |m, &v| m.max(f64::from(v).abs())).max(1e-6);
    let diff = expected.iter().zip(got).fold(0f64, |m, (&a, &b)| {
        let d = (f64::from(a) - f64::from(b)).abs();
        if d.is_nan() { f64::INFINITY } else { m.max(d) }
    });
    diff / scale
}
