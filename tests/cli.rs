//! The CLI contract: flags, links, reports, and one-line errors with a non-zero exit.

use crate::common;

use std::process::Command;

fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_backdoor-lab"))
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("backdoor-lab-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn fails_with(args: &[&str], needle: &str) {
    let out = cli().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail");
    assert_eq!(err.trim().lines().count(), 1, "one-line message for {args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: {err}");
}

#[test]
fn bad_input_gives_one_line_and_nonzero_exit() {
    fails_with(&["run", "--link", "v=1&attack=trojan"], "unknown attack 'trojan'");
    fails_with(&["run", "--link", "v=7"], "unknown link version 7");
    fails_with(&["run", "--poison-rate", "2"], "poison_rate 2 must be between 0 and 0.9");
    fails_with(&["run", "--epochs", "many"], "not a valid number");
    fails_with(&["run", "--attack", "trojan"], "trojan");
    fails_with(&["run", "--no-such-flag"], "--no-such-flag");
    fails_with(&["run", "--spec", "/nonexistent/spec.json"], "/nonexistent/spec.json");
    let bad = tmp("bad.json");
    std::fs::write(&bad, "{ not json").unwrap();
    fails_with(&["run", "--spec", bad.to_str().unwrap()], "bad JSON");
    let empty = tmp("empty-data");
    std::fs::create_dir_all(&empty).unwrap();
    fails_with(&["run", "--dataset", "cifar10", "--data-dir", empty.to_str().unwrap()], "cifar-10-binary.tar.gz");
    fails_with(&["run", "--data-dir", empty.to_str().unwrap()], "mnist.bin");
    fails_with(&["run", "--detect", "nc,magic"], "unknown detector 'magic'");
    fails_with(&["run", "--ss-eps", "0.2"], "applies only when ss is chosen");
    fails_with(&["run", "--detect", "nc", "--nc-steps", "0"], "nc_steps 0");
}

#[test]
fn flags_override_a_link_and_the_link_command_prints_it() {
    let out =
        cli().args(["link", "--link", "v=1&attack=blended&epochs=3", "--epochs", "4", "--seed", "2"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().next().unwrap(), "#v=1&seed=2&attack=blended&epochs=4");
}

#[test]
fn run_writes_a_report_with_the_contract_fields() {
    let report = tmp("report.json");
    let out = cli()
        .args(["run", "--quiet", "--train-size", "500", "--test-size", "200", "--epochs", "1", "--model", "mlp"])
        .args(["--out", report.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    for key in ["clean_acc", "asr", "robust_acc"] {
        let v = r["final"][key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }
    assert_eq!(r["spec"]["data"]["train_size"], 500);
    assert_eq!(r["link"], "v=1&train=500&test=200&model=mlp&epochs=1");
    assert_eq!(r["epochs"].as_array().unwrap().len(), 1);
    assert_eq!(r["device"], "cpu");
    assert!(r["seconds"]["train"].as_f64().unwrap() > 0.0);
    // The report's link reproduces the spec.
    let again = tmp("again.json");
    let link = r["link"].as_str().unwrap();
    let out = cli().args(["run", "--quiet", "--link", link, "--out", again.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    let r2: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&again).unwrap()).unwrap();
    assert_eq!(r["final"], r2["final"]);
}

#[test]
fn detect_flags_map_onto_link_keys() {
    let out = cli().args(["link", "--detect", "strip,nc", "--nc-steps", "100", "--strip-n", "50"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().next(), Some("#v=1&detect=nc,strip&nc_steps=100&strip_n=50"), "{text}");
}

#[test]
fn run_with_detectors_prints_and_reports_them() {
    let report = tmp("detect.json");
    let out = cli()
        .args(["run", "--quiet", "--train-size", "500", "--test-size", "200", "--epochs", "1", "--model", "mlp"])
        .args(["--detect", "ss,strip", "--strip-n", "5", "--strip-inputs", "20", "--out", report.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("detection") && table.contains("Spectral Signatures (") && table.contains("STRIP ("),
        "{table}"
    );
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(r["detect"]["ss"]["f1"].is_number() && r["detect"]["strip"]["far_at_frr_1pct"].is_number());
    assert!(r["detect"].get("nc").is_none());
    assert_eq!(r["link"], "v=1&train=500&test=200&model=mlp&epochs=1&detect=ss,strip&strip_n=5&strip_inputs=20");
}

fn example(ext: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../shared/reference/example/badnets_tl_target6.{ext}"));
    assert!(p.exists(), "{} is missing: the tests need ../shared beside the repository", p.display());
    p.to_str().unwrap().to_string()
}

#[test]
fn scan_refuses_files_that_are_not_the_model_with_one_line() {
    if common::skip_without_shared() {
        return;
    }
    let st = example("safetensors");
    fails_with(&["scan", "--model", &st, "--arch", "mlp"], "no tensor 'fc1.weight'");
    fails_with(&["scan", "--model", &example("pt"), "--arch", "cifar_cnn", "--dataset", "cifar10"], "conv1.weight");
    let truncated = tmp("truncated.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    fails_with(&["scan", "--model", truncated.to_str().unwrap()], "truncated.safetensors: truncated safetensors file");
    let text = tmp("notes.txt");
    std::fs::write(&text, "not a model").unwrap();
    fails_with(&["scan", "--model", text.to_str().unwrap()], "not a model file");
    fails_with(&["scan", "--model", "/nonexistent/m.safetensors"], "/nonexistent/m.safetensors");
}

/// The example PyTorch model from ../shared/reference, scanned from both of its files: Neural
/// Cleanse names its target (6), and ASR with its trigger (3×3 white patch, top-left) is high.
#[test]
fn scan_of_the_reference_model_finds_its_target() {
    if common::skip_without_shared() {
        return;
    }
    for ext in ["safetensors", "pt"] {
        let report = tmp(&format!("scan-{ext}.json"));
        let out = cli()
            .args(["scan", "--quiet", "--model", &example(ext), "--arch", "cnn", "--detect", "nc"])
            .args(["--test-size", "500", "--patch-position", "tl", "--target-label", "6"])
            .args(["--out", report.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(r["detect"]["nc"]["flagged_classes"], serde_json::json!([6]), "{ext}: {}", r["detect"]["nc"]);
        assert!(r["final"]["asr"].as_f64().unwrap() > 0.95, "{ext}");
        assert!(r["final"]["clean_acc"].as_f64().unwrap() > 0.95, "{ext}");
        assert_eq!(r["scanned"]["format"], if ext == "pt" { "PyTorch .pt" } else { "safetensors" });
        assert_eq!(r["poison"]["count"], 0);
    }
}

/// A model saved by `run --save-model` scans to the same predictions (CA, ASR, RA and confusion).
#[test]
fn saved_model_scans_to_the_same_predictions() {
    let (report, model, scan) = (tmp("trained.json"), tmp("trained.safetensors"), tmp("rescan.json"));
    let small = ["--train-size", "600", "--test-size", "300", "--epochs", "1"];
    let out = cli()
        .args(["run", "--quiet"])
        .args(small)
        .args(["--out", report.to_str().unwrap(), "--save-model", model.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli()
        .args(["scan", "--quiet", "--model", model.to_str().unwrap()])
        .args(small)
        .args(["--out", scan.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    assert_eq!(read(&report)["final"], read(&scan)["final"]);
}

#[test]
fn sweep_prints_a_row_per_value_and_refuses_bad_series() {
    fails_with(&["sweep", "attack=malicious_loss&lambda=0.1", "--values", "0"], "sweeps nothing");
    fails_with(&["sweep", "attack=malicious_loss&lambda=*", "--values", "2"], "lambda 2 must be between 0 and 1");
    fails_with(
        &["sweep", "attack=malicious_loss&rate=*", "--values", "0.1"],
        "does not apply to attack=malicious_loss",
    );
    let out = cli()
        .args(["sweep", "attack=malicious_loss&lambda=*", "attack=badnets&rate=*", "--values", "0,0.2"])
        .args(["--train-size", "300", "--test-size", "100", "--epochs", "1", "--model", "mlp", "--seeds", "0,1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("| attack=malicious_loss&lambda=* CA % |"), "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("| 0 |") || l.starts_with("| 0.2 |")).count(), 2, "{text}");
    assert!(text.contains(" ± "), "two seeds give a spread: {text}");
}
