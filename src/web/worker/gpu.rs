//! The worker's device: WebGPU when the browser has it and it passes the self-check for the model
//! (`lab::device::trust`), else the CPU.

use super::*;

/// Asks the browser for a WebGPU adapter, then makes burn's device on it.
#[cfg(feature = "webgpu")]
pub(super) async fn open_webgpu() -> Result<Device, String> {
    use burn::tensor::wgpu::WgpuBackend;
    let get =
        |obj: &JsValue, key: &str| js_sys::Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED);
    let gpu = get(&get(&js_sys::global(), "navigator"), "gpu");
    if gpu.is_undefined() {
        return Err("this browser does not offer WebGPU".into());
    }
    let request: js_sys::Function =
        get(&gpu, "requestAdapter").dyn_into().map_err(|_| "navigator.gpu.requestAdapter is missing".to_string())?;
    let promise: js_sys::Promise = request
        .call0(&gpu)
        .and_then(|p| p.dyn_into().map_err(JsValue::from))
        .map_err(|e| format!("requestAdapter failed: {e:?}"))?;
    let adapter = JsFuture::from(promise).await.map_err(|e| format!("requestAdapter failed: {e:?}"))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err("the browser has WebGPU but no adapter for it (disabled or blocklisted GPU)".into());
    }
    Device::wgpu_options()
        .graphics_api(WgpuBackend::WebGpu)
        .init_async()
        .await
        .map_err(|e| format!("WebGPU could not start: {e}"))
}

#[cfg(not(feature = "webgpu"))]
pub(super) async fn open_webgpu() -> Result<Device, String> {
    Err("this build of the lab engine has no WebGPU support".into())
}

/// Picks the device for a run of `spec`: WebGPU when asked for, present and trusted for this model
/// (`device::trust` runs the self-check here the first time, as the `warmup` stage), else the CPU.
pub(super) async fn choose_device(
    state: &Rc<RefCell<State>>,
    spec: &ExperimentSpec,
    preference: DevicePreference,
    host: &mut WorkerHost,
) -> Result<(Device, DeviceKind, String), LabError> {
    let cpu = |why: String| Ok((Device::flex(), DeviceKind::Cpu, why));
    if preference == DevicePreference::Cpu {
        return cpu("Running on this computer's processor, as chosen in the Train step.".into());
    }
    let (device, checked) = match &state.borrow().gpu {
        Gpu::Unavailable(why) | Gpu::Distrusted(why) => return cpu(format!("Running on the CPU: {why}.")),
        Gpu::Ready { device, checked } => (device.clone(), checked.contains(&spec.model)),
    };
    if checked {
        return Ok((device, DeviceKind::WebGpu, "WebGPU (checked against the CPU for this model).".into()));
    }
    if host.emit(&Event::Stage { stage: Stage::Warmup }).is_break() {
        return Err(LabError::Cancelled);
    }
    let chosen = device::trust(Ok(device), DeviceKind::WebGpu, spec.model, spec.dims(), &now).await;
    match &chosen.refused {
        None => {
            log::info!("{}", chosen.notice);
            if let Gpu::Ready { checked, .. } = &mut state.borrow_mut().gpu {
                checked.push(spec.model);
            }
        }
        Some(why) => state.borrow_mut().gpu = Gpu::Distrusted(why.clone()),
    }
    Ok((chosen.device, chosen.kind, chosen.notice))
}
