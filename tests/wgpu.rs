//! The CLI's `--device wgpu`: burn's wgpu backend on a real Vulkan driver passes the self-check against
//! the CPU and trains like the CPU. The extended suite runs it on Mesa's software Vulkan (lavapipe,
//! installed by scripts/setup-web.sh). A machine without an adapter fails it unless `BDL_NO_GPU=1` says
//! the skip is expected. Built only with the `wgpu` feature (on by default; the default test run
//! builds without it, see Cargo.toml).

use std::process::Command;

use serde_json::Value;

/// Short enough for a software GPU, long enough that CA and ASR mean something.
const LINK: &str = "v=1&train=2000&test=500&epochs=4&seed=3";

fn run(device: &str, dir: &std::path::Path) -> (Value, String) {
    let out = dir.join(format!("{device}.json"));
    let output = Command::new(env!("CARGO_BIN_EXE_backdoor-lab"))
        .args(["run", "--quiet", "--link", LINK, "--device", device, "--out"])
        .arg(&out)
        .output()
        .expect("the CLI starts");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "--device {device} failed: {stderr}");
    let report = serde_json::from_slice(&std::fs::read(&out).expect("the report is written")).expect("JSON");
    (report, stderr)
}

#[test]
fn wgpu_passes_the_self_check_and_trains_like_the_cpu() {
    let dir = std::env::temp_dir().join(format!("bdl-wgpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (gpu, notes) = run("wgpu", &dir);
    if gpu["device"] != "wgpu" {
        assert!(
            std::env::var_os("BDL_NO_GPU").is_some_and(|v| v == "1"),
            "--device wgpu fell back to the CPU (set BDL_NO_GPU=1 where no adapter is expected): {notes}"
        );
        eprintln!("skipped: no wgpu adapter on this machine and BDL_NO_GPU=1 ({})", notes.trim());
        std::fs::remove_dir_all(&dir).ok();
        return;
    }
    assert!(notes.contains("checked against the CPU"), "{notes}");
    let (cpu, _) = run("flex", &dir);
    let pct = |r: &Value, k: &str| 100.0 * r["final"][k].as_f64().expect("a number");
    let gpu_rate = gpu["train_samples_per_second"].as_f64().unwrap();
    let cpu_rate = cpu["train_samples_per_second"].as_f64().unwrap();
    eprintln!(
        "wgpu: CA {:.1} %, ASR {:.1} %, {gpu_rate:.0} samples/s; CPU: CA {:.1} %, ASR {:.1} %, {cpu_rate:.0} samples/s",
        pct(&gpu, "clean_acc"),
        pct(&gpu, "asr"),
        pct(&cpu, "clean_acc"),
        pct(&cpu, "asr")
    );
    for key in ["clean_acc", "asr"] {
        let (g, c) = (pct(&gpu, key), pct(&cpu, key));
        assert!((g - c).abs() <= 2.0, "{key}: wgpu {g:.1} % against the CPU's {c:.1} %");
    }
    std::fs::remove_dir_all(&dir).ok();
}
