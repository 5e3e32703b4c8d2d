//! Model files: a trained model out as safetensors, and a model trained elsewhere in, from our own
//! files, PyTorch's `safetensors.torch.save_file(model.state_dict())` or (natively) PyTorch's
//! `torch.save(model.state_dict())` archive.
//!
//! Our files use PyTorch's tensor names and layout (`fc.weight` as [out, in]), so one importer reads
//! both, and a file exported here loads into the reference PyTorch model (../shared/reference/model.py).
//! Every tensor is checked against the chosen architecture before any is applied, into a fresh model:
//! a file that does not fit is refused whole, with the first tensor that does not fit named.
//!
//! A file holds weights only, never the architecture: an attacker's trigger branch
//! (`model::TriggerBranch`, the architectural backdoor) has no parameters, so it is not in the file,
//! and a file loads into the lab's plain architecture. That is why weight-only inspection misses an
//! architectural backdoor: it lives in the code that runs the weights.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{DType, Device, Tensor, TensorData};
use burn_store::{
    BurnToPyTorchAdapter, FloatCastAdapter, ModuleAdapter, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter,
    SafetensorsStore,
};

use crate::lab::error::{LabError, Result};
use crate::lab::model::{Model, ModelKind};

/// Metadata key naming the architecture in files the lab writes.
const ARCH_KEY: &str = "backdoor_lab.arch";
/// Metadata key with the input shape, `channels,height,width`.
const DIMS_KEY: &str = "backdoor_lab.dims";

/// What kind of file some bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Safetensors,
    /// PyTorch's zip archive of pickled tensors (`torch.save`).
    PytorchZip,
}

impl FileFormat {
    pub fn name(self) -> &'static str {
        match self {
            Self::Safetensors => "safetensors",
            Self::PytorchZip => "PyTorch .pt",
        }
    }

    /// Recognises a file by its first bytes; the message says what was expected.
    pub fn sniff(bytes: &[u8], name: &str) -> Result<Self> {
        if bytes.starts_with(b"PK\x03\x04") {
            return Ok(Self::PytorchZip);
        }
        // safetensors: an 8-byte little-endian header length, then a JSON header.
        if bytes.len() >= 9 && bytes[8] == b'{' {
            let header = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
            if header > (bytes.len() - 8) as u64 {
                return Err(LabError::data(
                    name,
                    format!(
                        "truncated safetensors file: its header alone needs {} bytes, the file has {}",
                        header + 8,
                        bytes.len()
                    ),
                ));
            }
            // The header gives each tensor's byte range: a file cut short ends before the last one.
            let data_end = serde_json::from_slice::<serde_json::Value>(&bytes[8..8 + header as usize])
                .ok()
                .and_then(|h| h.as_object()?.values().filter_map(|t| t.get("data_offsets")?.get(1)?.as_u64()).max())
                .unwrap_or(0);
            let needed = 8 + header + data_end;
            if needed > bytes.len() as u64 {
                return Err(LabError::data(
                    name,
                    format!(
                        "truncated safetensors file: its tensors need {needed} bytes, the file has {}",
                        bytes.len()
                    ),
                ));
            }
            return Ok(Self::Safetensors);
        }
        Err(LabError::data(
            name,
            "not a model file: expected safetensors (.safetensors) or a PyTorch state_dict archive (.pt)",
        ))
    }
}

/// The tensor names and shapes a `kind` model for `dims` expects, in PyTorch's layout and in the
/// model's own order.
fn expected(kind: ModelKind, dims: (usize, usize, usize)) -> Vec<(String, Vec<usize>)> {
    let model = Model::new(kind, dims, &Device::flex());
    model
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
        .into_iter()
        .map(|t| (t.name.clone(), t.shape.to_vec()))
        .collect()
}

fn shape_text(shape: &[usize]) -> String {
    format!("[{}]", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", "))
}

/// Checks every tensor of `store` against a `kind` model, then loads them into a fresh model on
/// `device`. Nothing is applied unless everything fits.
fn load_checked<S: ModuleStore>(
    store: &mut S,
    name: &str,
    kind: ModelKind,
    dims: (usize, usize, usize),
    device: &Device,
) -> Result<Model> {
    let bad = |reason: String| LabError::data(name, reason);
    let found = store.get_all_tensors().map_err(|e| bad(format!("not a readable model file: {e}")))?;
    let (c, h, w) = dims;
    let arch = format!("the {} architecture ({}) for {c}×{h}×{w} images", kind.name(), kind.label());
    for (tensor, shape) in expected(kind, dims) {
        match found.get(&tensor) {
            None => {
                let held: Vec<&str> = found.keys().map(String::as_str).take(8).collect();
                return Err(bad(format!(
                    "has no tensor '{tensor}' {} {arch} needs (the file holds: {})",
                    shape_text(&shape),
                    if held.is_empty() { "no tensors".to_string() } else { held.join(", ") }
                )));
            }
            Some(t) if t.shape.to_vec() != shape => {
                return Err(bad(format!(
                    "tensor '{tensor}' is {} in the file but {} in {arch}",
                    shape_text(&t.shape.to_vec()),
                    shape_text(&shape)
                )));
            }
            Some(t) if !t.dtype.is_float() => {
                return Err(bad(format!("tensor '{tensor}' holds {:?} values, not floating point", t.dtype)));
            }
            Some(_) => {}
        }
    }
    let wanted: Vec<String> = expected(kind, dims).into_iter().map(|(n, _)| n).collect();
    if let Some(extra) = found.keys().find(|k| !wanted.contains(k)) {
        return Err(bad(format!("holds tensor '{extra}', which {arch} does not have: is it another architecture?")));
    }
    let mut model = Model::new(kind, dims, device);
    let result = store.apply_to(&mut model).map_err(|e| bad(format!("could not load its tensors: {e}")))?;
    if let Some(e) = result.errors.first() {
        return Err(bad(format!("could not load its tensors: {e}")));
    }
    Ok(model)
}

/// A model from the bytes of a safetensors file (in the browser and natively).
pub fn import_safetensors(
    bytes: Vec<u8>,
    name: &str,
    kind: ModelKind,
    dims: (usize, usize, usize),
    device: &Device,
) -> Result<Model> {
    match FileFormat::sniff(&bytes, name)? {
        FileFormat::Safetensors => {}
        FileFormat::PytorchZip => {
            return Err(LabError::data(
                name,
                "a PyTorch .pt archive: the browser reads safetensors; save it with \
                 safetensors.torch.save_file(model.state_dict(), \"model.safetensors\") or scan it with the CLI",
            ));
        }
    }
    let mut store =
        SafetensorsStore::from_bytes(Some(bytes)).skip_enum_variants(true).with_from_adapter(import_adapter());
    load_checked(&mut store, name, kind, dims, device)
}

/// PyTorch's layout to burn's (linear weights transposed), and any float type to f32.
fn import_adapter() -> impl ModuleAdapter {
    PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32))
}

/// A model from a file natively: safetensors or PyTorch's `.pt` archive.
#[cfg(not(target_arch = "wasm32"))]
pub fn import_path(
    path: &std::path::Path,
    kind: ModelKind,
    dims: (usize, usize, usize),
    device: &Device,
) -> Result<Model> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| LabError::io(&name, e))?;
    match FileFormat::sniff(&bytes, &name)? {
        FileFormat::Safetensors => import_safetensors(bytes, &name, kind, dims, device),
        FileFormat::PytorchZip => {
            // The PyTorch store always converts from PyTorch's layout itself.
            let mut store = burn_store::PytorchStore::from_file(path);
            load_checked(&mut store, &name, kind, dims, device)
        }
    }
}

/// The architecture a file written by the lab says it holds (`None` for other files).
pub fn declared_arch(bytes: &[u8]) -> Option<ModelKind> {
    let len = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let header: serde_json::Value = serde_json::from_slice(bytes.get(8..8 + len)?).ok()?;
    ModelKind::from_name(header.get("__metadata__")?.get(ARCH_KEY)?.as_str()?)
}

/// Every parameter of `model` read back to the host, asynchronously (a synchronous read panics on
/// WebGPU), in the model's own order.
async fn host_params(model: &Model) -> Result<Vec<TensorData>> {
    struct Gather(Vec<Tensor<1>>);
    impl ModuleVisitor for Gather {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.val().flatten::<1>(0, D - 1));
        }
    }
    let mut gather = Gather(Vec::new());
    model.visit(&mut gather);
    let mut out = Vec::with_capacity(gather.0.len());
    for t in gather.0 {
        out.push(t.into_data_async().await.map_err(LabError::device_fault)?);
    }
    Ok(out)
}

/// A copy of `model`'s weights on the CPU, whatever device it lives on, in the plain architecture
/// (for export: a trigger branch has no weights to copy).
pub async fn to_cpu(model: &Model, kind: ModelKind, dims: (usize, usize, usize)) -> Result<Model> {
    struct Fill(std::vec::IntoIter<TensorData>);
    impl ModuleMapper for Fill {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let shape = param.lazy_shape().to_vec();
            let data = self.0.next().expect("same architecture, same parameter count");
            let values: Vec<f32> = data.try_to_vec::<f32>().expect("f32 parameters");
            let tensor = Tensor::<D>::from_data(TensorData::new(values, shape), &param.lazy_device());
            let mut fresh = Param::from_tensor(tensor);
            fresh.id = param.id;
            fresh
        }
    }
    let params = host_params(model).await?;
    Ok(Model::new(kind, dims, &Device::flex()).map(&mut Fill(params.into_iter())))
}

/// The model as a safetensors file in PyTorch's names and layout, with its architecture and input
/// shape in the metadata. `model` must live on the CPU (`to_cpu`).
pub fn export_safetensors(model: &Model, kind: ModelKind, dims: (usize, usize, usize)) -> Result<Vec<u8>> {
    let (c, h, w) = dims;
    let mut store = SafetensorsStore::from_bytes(None)
        .skip_enum_variants(true)
        .with_to_adapter(BurnToPyTorchAdapter)
        .metadata(ARCH_KEY, kind.name())
        .metadata(DIMS_KEY, format!("{c},{h},{w}"));
    store.collect_from(model).map_err(|e| LabError::Device(format!("could not write the model: {e}")))?;
    store.get_bytes().map_err(|e| LabError::Device(format!("could not write the model: {e}")))
}
