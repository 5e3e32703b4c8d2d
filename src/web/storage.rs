//! What the page keeps in localStorage: the last spec (as a link) and the last 20 finished runs.
//! Storage may be missing or full; every access fails quietly, since the URL fragment is the real record.

const STORAGE_RUNS: &str = "backdoor-lab.runs";
pub(super) const STORAGE_SPEC: &str = "backdoor-lab.spec";

/// A finished run kept in localStorage.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct SavedRun {
    pub(super) link: String,
    pub(super) clean_acc: f64,
    pub(super) asr: f64,
    pub(super) robust_acc: f64,
    pub(super) device: String,
    pub(super) when: String,
}

pub(super) fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

pub(super) fn load_runs() -> Vec<SavedRun> {
    storage()
        .and_then(|s| s.get_item(STORAGE_RUNS).ok().flatten())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

pub(super) fn save_runs(runs: &[SavedRun]) {
    if let (Some(s), Ok(text)) = (storage(), serde_json::to_string(runs)) {
        let _ = s.set_item(STORAGE_RUNS, &text);
    }
}
