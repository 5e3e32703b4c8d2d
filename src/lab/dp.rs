//! DP-SGD (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016) and its privacy
//! accountant.
//!
//! Each step clips every sample's gradient to L2 norm C, sums them, adds N(0, σ²C²) to each
//! coordinate and divides by the batch (the lot). burn has no per-sample gradients; looping over
//! micro-batches of one would cost a backward pass per sample. Instead, as Opacus does, the exact
//! per-sample gradient of each dense and convolution layer is formed from the layer's input and the
//! loss's gradient with respect to its output: a zero "probe" tensor added to every layer's output is a
//! leaf of the graph, so one backward pass of the summed per-sample losses leaves the output gradient
//! of every sample in the probe's gradient. A dense layer's per-sample weight gradient is the outer
//! product aᵢᵀδᵢ, whose norm is ‖aᵢ‖·‖δᵢ‖; a convolution's is δᵢ·unfold(aᵢ)ᵀ. The clipped sum is
//! then one weighted product per layer, with no second backward pass.
//!
//! The accountant is the Rényi-DP analysis of the sampled Gaussian mechanism (Mironov, 2017;
//! Mironov, Talwar & Zhang, 2019) with the RDP-to-(ε, δ) conversion of Balle et al. (2020), the
//! same computation and orders as Opacus' `RDPAccountant`, which the tests check against.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::module::unfold4d;
use burn::tensor::ops::UnfoldOptions;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::lab::data::batch;
use crate::lab::device::read_floats;
use crate::lab::error::{LabError, Result};
use crate::lab::model::{Model, Tap};
use crate::lab::rng::LabRng;

/// The page's sentence on DP-SGD, with its paper and its limit.
pub const EXPLAIN: &str = "DP-SGD (Abadi et al., CCS 2016): every sample's gradient is clipped to norm C and Gaussian noise of \
standard deviation σ·C is added to their sum, so no single sample can move the model much; an RDP accountant (Mironov, 2017) turns \
σ, the batch share and the steps into a guarantee (ε, δ). The guarantee is per sample: k poisons that all teach the same trigger act \
as a group, for which it weakens to kε, and with hundreds of poisons it says nothing. What DP-SGD does to a backdoor is measured \
here, not promised.";

/// The privacy a DP-SGD training spent, for δ = 1/N.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Privacy {
    pub epsilon: f64,
    pub delta: f64,
    /// The Rényi order the bound was tightest at.
    pub order: f64,
    /// The sampling rate q = batch / N and the number of steps the accountant composed.
    pub sample_rate: f64,
    pub steps: usize,
}

/// One DP-SGD step's gradients and what it saw.
pub struct DpStep {
    /// The mean cross-entropy of the batch before the step.
    pub loss: f64,
    /// The noised mean of the clipped per-sample gradients, by parameter (on the inner device).
    pub grads: GradientsParams,
    /// How many of the batch's samples had their gradient clipped.
    pub clipped: usize,
}

/// The DP-SGD gradients of `model` (on an autodiff device) for the batch `x` with labels `y`: each
/// sample's gradient clipped to `clip`, summed, Gaussian noise of standard deviation `sigma·clip`
/// drawn from `rng` added, divided by the batch size.
pub async fn dp_gradients(
    model: &Model,
    x: Tensor<4>,
    y: &[u8],
    clip: f64,
    sigma: f64,
    rng: &mut LabRng,
    device: &Device,
) -> Result<DpStep> {
    let b = y.len();
    let (logits, taps) = model.forward_taps(x);
    let picked = log_softmax(logits, 1).gather(1, batch::labels(y, device).reshape([b, 1]));
    // The sum of the per-sample losses: its gradient at each layer's output is every sample's own.
    let total = picked.sum().neg();
    let loss = f64::from(read_scalar(total.clone()).await?) / b as f64;
    if !loss.is_finite() {
        return Err(LabError::spec(format!("training diverged (loss {loss}); lower the learning rate")));
    }
    let grads = total.backward();

    // Per layer: the per-sample weight gradients (or what gives their norms) and bias gradients.
    let mut layers = Vec::with_capacity(taps.len());
    let mut norm2: Option<Tensor<1>> = None;
    for tap in &taps {
        let Some(layer) = PerSample::of(tap, &grads, b)? else { continue };
        let n = layer.norm2();
        norm2 = Some(match norm2 {
            None => n,
            Some(acc) => acc + n,
        });
        layers.push(layer);
    }
    let Some(norm2) = norm2 else {
        return Err(LabError::spec("DP-SGD found no trainable layer".to_string()));
    };
    // The clipping factors min(1, C/‖gᵢ‖) on the host: b numbers.
    let norms: Vec<f32> = read_floats(norm2).await?;
    let clipped = norms.iter().filter(|&&n| f64::from(n).sqrt() > clip).count();
    let factors: Vec<f32> = norms.iter().map(|&n| (clip / (f64::from(n).sqrt() + 1e-12)).min(1.0) as f32).collect();
    let inner = taps_device(&taps);
    let c = Tensor::<1>::from_data(TensorData::new(factors, [b]), &inner);

    let mut out = GradientsParams::new();
    let noise_std = sigma * clip;
    for layer in layers {
        layer.register(&c, noise_std, rng, b, &mut out);
    }
    Ok(DpStep { loss, grads: out, clipped })
}

fn taps_device(taps: &[Tap<'_>]) -> Device {
    match &taps[0] {
        Tap::Dense { input, .. } => input.clone().inner().device(),
        Tap::Conv { input, .. } => input.clone().inner().device(),
    }
}

/// One trainable layer's per-sample gradients, on the inner (non-autodiff) device.
enum PerSample<'a> {
    Dense {
        weight: &'a Param<Tensor<2>>,
        bias: Option<&'a Param<Tensor<1>>>,
        /// [b, in]
        input: Tensor<2>,
        /// [b, out]
        delta: Tensor<2>,
    },
    Conv {
        weight: &'a Param<Tensor<4>>,
        bias: Option<&'a Param<Tensor<1>>>,
        /// Per-sample weight gradients, [b, out, in·kh·kw].
        g: Tensor<3>,
        /// Per-sample bias gradients, [b, out].
        gb: Tensor<2>,
    },
}

impl<'a> PerSample<'a> {
    /// `None` for a frozen layer (fine-tuning): it has no gradient to privatise.
    fn of(tap: &Tap<'a>, grads: &burn::tensor::Gradients, b: usize) -> Result<Option<Self>> {
        let missing = || LabError::Device("a layer's output gradient is missing".into());
        match tap {
            Tap::Dense { layer, input, probe } => {
                if !layer.weight.val().is_require_grad() {
                    return Ok(None);
                }
                let delta = probe.grad(grads).ok_or_else(missing)?;
                Ok(Some(Self::Dense {
                    weight: &layer.weight,
                    bias: layer.bias.as_ref(),
                    input: input.clone().inner(),
                    delta,
                }))
            }
            Tap::Conv { layer, input, probe } => {
                if !layer.weight.val().is_require_grad() {
                    return Ok(None);
                }
                let delta = probe.grad(grads).ok_or_else(missing)?; // [b, out, h', w']
                let [_, o, h, w] = delta.dims();
                let delta = delta.reshape([b, o, h * w]);
                let pad = match layer.padding {
                    burn::nn::PaddingConfig2d::Valid => [0, 0],
                    burn::nn::PaddingConfig2d::Same => [(layer.kernel_size[0] - 1) / 2, (layer.kernel_size[1] - 1) / 2],
                    burn::nn::PaddingConfig2d::Explicit(top, left, _, _) => [top, left],
                };
                let options = UnfoldOptions::new(layer.stride, pad, layer.dilation);
                // [b, in·kh·kw, h'·w']: the input patch each output position saw, in the weight's order.
                let patches = unfold4d(input.clone().inner(), layer.kernel_size, options);
                let g = delta.clone().matmul(patches.swap_dims(1, 2));
                let gb = delta.sum_dim(2).reshape([b, o]);
                Ok(Some(Self::Conv { weight: &layer.weight, bias: layer.bias.as_ref(), g, gb }))
            }
        }
    }

    /// Each sample's squared gradient norm over this layer's parameters, [b].
    fn norm2(&self) -> Tensor<1> {
        match self {
            Self::Dense { bias, input, delta, .. } => {
                let b = input.dims()[0];
                let d2 = delta.clone().powi_scalar(2).sum_dim(1).reshape([b]);
                let a2 = input.clone().powi_scalar(2).sum_dim(1).reshape([b]);
                let w = a2 * d2.clone();
                if bias.is_some() { w + d2 } else { w }
            }
            Self::Conv { bias, g, gb, .. } => {
                let b = g.dims()[0];
                let w = g.clone().powi_scalar(2).flatten::<2>(1, 2).sum_dim(1).reshape([b]);
                if bias.is_some() { w + gb.clone().powi_scalar(2).sum_dim(1).reshape([b]) } else { w }
            }
        }
    }

    /// Registers (Σᵢ cᵢ·gᵢ + N(0, std²)) / b for each of the layer's parameters.
    fn register(self, c: &Tensor<1>, std: f64, rng: &mut LabRng, b: usize, out: &mut GradientsParams) {
        match self {
            Self::Dense { weight, bias, input, delta } => {
                let scaled = delta * c.clone().reshape([b, 1]); // [b, out]
                let gw = input.transpose().matmul(scaled.clone()); // [in, out]
                out.register(weight.id, noised(gw, std, rng, b));
                if let Some(bias) = bias {
                    let n = scaled.dims()[1];
                    out.register(bias.id, noised(scaled.sum_dim(0).reshape([n]), std, rng, b));
                }
            }
            Self::Conv { weight, bias, g, gb } => {
                let dims = weight.val().dims();
                let gw = (g * c.clone().reshape([b, 1, 1])).sum_dim(0).reshape(dims);
                out.register(weight.id, noised(gw, std, rng, b));
                if let Some(bias) = bias {
                    let gb = (gb * c.clone().reshape([b, 1])).sum_dim(0).reshape([dims[0]]);
                    out.register(bias.id, noised(gb, std, rng, b));
                }
            }
        }
    }
}

/// `(sum + N(0, std²)) / b`, the noise drawn on the host from the run's own stream so every device
/// draws the same.
fn noised<const D: usize>(sum: Tensor<D>, std: f64, rng: &mut LabRng, b: usize) -> Tensor<D> {
    let sum = if std > 0.0 {
        let shape = sum.shape();
        let noise: Vec<f32> = (0..shape.num_elements()).map(|_| (std * rng.normal()) as f32).collect();
        sum.clone() + Tensor::<D>::from_data(TensorData::new(noise, shape), &sum.device())
    } else {
        sum
    };
    sum.div_scalar(b as f32)
}

async fn read_scalar(t: Tensor<1>) -> Result<f32> {
    t.into_scalar_async::<f32>().await.map_err(LabError::device_fault)
}

/// The gradients in `grads` flattened in `model`'s parameter order (zeros for a parameter without
/// one): what the tests compare.
pub async fn flatten(grads: &GradientsParams, model: &Model) -> Result<Vec<f32>> {
    struct Flat<'a> {
        grads: &'a GradientsParams,
        parts: Vec<Tensor<1>>,
    }
    impl ModuleVisitor for Flat<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            let n = value.shape().num_elements();
            let g = self.grads.get::<D>(param.id).unwrap_or_else(|| value.inner().zeros_like());
            self.parts.push(g.reshape([n]));
        }
    }
    let mut flat = Flat { grads, parts: Vec::new() };
    model.visit(&mut flat);
    read_floats(Tensor::cat(flat.parts, 0)).await
}

// ---------------------------------------------------------------------------------------------
// The accountant.

/// Opacus' default Rényi orders: 1.1 to 10.9 in tenths, then 12 to 63.
pub fn default_orders() -> Vec<f64> {
    (1..100).map(|x| 1.0 + f64::from(x) / 10.0).chain((12..64).map(f64::from)).collect()
}

/// (ε, best order) after `steps` steps of the sampled Gaussian mechanism with sampling rate `q` and
/// noise multiplier `sigma`, for `delta`.
pub fn epsilon(sigma: f64, q: f64, steps: usize, delta: f64) -> (f64, f64) {
    let orders = default_orders();
    let mut best = (f64::INFINITY, f64::NAN);
    for &alpha in &orders {
        let rdp = rdp_sgm(q, sigma, alpha) * steps as f64;
        // Balle et al. 2020, Theorem 21 (Opacus' conversion).
        let eps = rdp - (delta.ln() + alpha.ln()) / (alpha - 1.0) + ((alpha - 1.0) / alpha).ln();
        if eps < best.0 {
            best = (eps, alpha);
        }
    }
    best
}

/// The privacy a training of `epochs` passes over `n` samples in batches of `batch` spent with noise
/// multiplier `sigma`, for δ = 1/n. The batches are a shuffled partition, not Poisson samples; like
/// Opacus without Poisson sampling, the accountant takes q = batch/n as the sampling rate.
pub fn privacy(sigma: f64, batch: usize, n: usize, epochs: usize) -> Privacy {
    let q = (batch as f64 / n as f64).min(1.0);
    let steps = epochs * n.div_ceil(batch);
    let delta = 1.0 / n as f64;
    let (epsilon, order) = epsilon(sigma, q, steps, delta);
    Privacy { epsilon, delta, order, sample_rate: q, steps }
}

/// RDP of one step of the sampled Gaussian mechanism at order `alpha`.
fn rdp_sgm(q: f64, sigma: f64, alpha: f64) -> f64 {
    if q == 0.0 {
        return 0.0;
    }
    if sigma == 0.0 {
        return f64::INFINITY;
    }
    if q >= 1.0 {
        return alpha / (2.0 * sigma * sigma);
    }
    let log_a = if alpha.fract() == 0.0 { log_a_int(q, sigma, alpha as u64) } else { log_a_frac(q, sigma, alpha) };
    log_a / (alpha - 1.0)
}

fn log_add(x: f64, y: f64) -> f64 {
    let (a, b) = if x < y { (x, y) } else { (y, x) };
    if a == f64::NEG_INFINITY {
        return b;
    }
    (a - b).exp().ln_1p() + b
}

fn log_sub(x: f64, y: f64) -> f64 {
    if y == f64::NEG_INFINITY {
        return x;
    }
    if x <= y {
        return f64::NEG_INFINITY;
    }
    let d = (x - y).exp_m1();
    if d.is_infinite() { x } else { d.ln() + y }
}

/// log of the binomial coefficient's magnitude and its sign, for a real `alpha`.
fn log_binom(alpha: f64, i: u64) -> (f64, f64) {
    let mut log = 0.0;
    let mut sign = 1.0;
    for k in 0..i {
        let f = (alpha - k as f64) / (k as f64 + 1.0);
        if f == 0.0 {
            return (f64::NEG_INFINITY, 0.0);
        }
        if f < 0.0 {
            sign = -sign;
        }
        log += f.abs().ln();
    }
    (log, sign)
}

fn log_a_int(q: f64, sigma: f64, alpha: u64) -> f64 {
    let mut log_a = f64::NEG_INFINITY;
    for i in 0..=alpha {
        let (lb, _) = log_binom(alpha as f64, i);
        let coef = lb + i as f64 * q.ln() + (alpha - i) as f64 * (1.0 - q).ln();
        let s = coef + (i * i - i) as f64 / (2.0 * sigma * sigma);
        log_a = log_add(log_a, s);
    }
    log_a
}

fn log_a_frac(q: f64, sigma: f64, alpha: f64) -> f64 {
    let (mut a0, mut a1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let z0 = sigma * sigma * (1.0 / q - 1.0).ln() + 0.5;
    let mut i = 0u64;
    // The coefficient's log and sign, updated term by term.
    let (mut log_coef, mut sign) = (0.0f64, 1.0f64);
    loop {
        let fi = i as f64;
        let j = alpha - fi;
        let t0 = log_coef + fi * q.ln() + j * (1.0 - q).ln();
        let t1 = log_coef + j * q.ln() + fi * (1.0 - q).ln();
        let e0 = 0.5f64.ln() + log_erfc((fi - z0) / (2f64.sqrt() * sigma));
        let e1 = 0.5f64.ln() + log_erfc((z0 - j) / (2f64.sqrt() * sigma));
        let s0 = t0 + (fi * fi - fi) / (2.0 * sigma * sigma) + e0;
        let s1 = t1 + (j * j - j) / (2.0 * sigma * sigma) + e1;
        if sign > 0.0 {
            a0 = log_add(a0, s0);
            a1 = log_add(a1, s1);
        } else {
            a0 = log_sub(a0, s0);
            a1 = log_sub(a1, s1);
        }
        if s0.max(s1) < -30.0 || i > 100_000 {
            break;
        }
        let f = (alpha - fi) / (fi + 1.0);
        if f < 0.0 {
            sign = -sign;
        }
        log_coef += f.abs().ln();
        i += 1;
    }
    log_add(a0, a1)
}

/// log(erfc(x)), accurate where erfc underflows (large x) by its asymptotic series.
fn log_erfc(x: f64) -> f64 {
    if x < 20.0 {
        return libm::erfc(x).ln();
    }
    let x2 = x * x;
    let series = 1.0 - 1.0 / (2.0 * x2) + 3.0 / (4.0 * x2 * x2) - 15.0 / (8.0 * x2 * x2 * x2);
    -x2 - x.ln() - 0.5 * std::f64::consts::PI.ln() + series.ln()
}
