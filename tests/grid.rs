//! Grids: the plan's order and names, one training per shared model, sharding, restarts after a kill,
//! and merged tables that match the reports.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use backdoor_lab::lab::device::DeviceKind;
use backdoor_lab::lab::grid::{self, Grid, GridResults};
use backdoor_lab::lab::run::{self, Report};
use backdoor_lab::lab::{ExperimentSpec, LabError};
use burn::tensor::Device;
use common::Quiet;
use serde_json::Value;

fn no_spec_file(p: &str) -> backdoor_lab::lab::Result<ExperimentSpec> {
    Err(LabError::spec(format!("no spec file {p} here")))
}

fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_backdoor-lab"))
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("backdoor-lab-grid-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Small and fast: 2 attacks × 2 repairs × 2 seeds on 300 images, one epoch.
const SMALL: &str =
    "g=1&train=300&test=100&epochs=1&ft_epochs=1&fp_ft_epochs=1&attack=badnets|blended&repair=ft|fp&seed=0|1";

#[test]
fn plan_order_and_names_are_stable() {
    let grid = Grid::from_link(SMALL).unwrap();
    let runs = grid.plan().unwrap();
    assert_eq!(runs.len(), 8);
    // The axes' product, the first axis (in the table's order, the seed last) slowest.
    let values: Vec<String> =
        runs.iter().map(|r| r.values.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")).collect();
    assert_eq!(values[0], "attack=badnets&repair=ft&seed=0");
    assert_eq!(values[1], "attack=badnets&repair=ft&seed=1");
    assert_eq!(values[2], "attack=badnets&repair=fp&seed=0");
    assert_eq!(values[7], "attack=blended&repair=fp&seed=1");
    // Runs that differ only in the repair share a model: 4 models for 8 runs.
    let models: Vec<usize> = runs.iter().map(|r| r.model).collect();
    assert_eq!(models, [0, 1, 0, 1, 2, 3, 2, 3]);
    // A report is named by the SHA-256 of its link (checked against Python's hashlib).
    let r0 = &runs[0];
    assert_eq!(r0.link, "v=1&train=300&test=100&epochs=1&repair=ft&ft_epochs=1");
    assert_eq!(grid::hash("v=1&train=600&test=200&epochs=1&repair=ft&ft_epochs=1"), "cb7988b3a0606e65");
    // The same grid written in another order, as TOML-like JSON, or with the keys shuffled: the same plan.
    let shuffled = Grid::from_link(
        "seed=0|1&repair=ft|fp&g=1&attack=badnets|blended&fp_ft_epochs=1&ft_epochs=1&epochs=1&test=100&train=300",
    )
    .unwrap();
    assert_eq!(shuffled.plan().unwrap(), runs);
    let json = r#"{"base": "v=1&train=300&test=100&epochs=1", "ft_epochs": 1, "fp_ft_epochs": 1,
                   "seed": [0, 1], "repair": ["ft", "fp"], "attack": ["badnets", "blended"]}"#;
    let from_json = Grid::from_json(json, &no_spec_file).unwrap();
    assert_eq!(from_json.to_link(), grid.to_link());
    assert_eq!(from_json.plan().unwrap(), runs);
    assert_eq!(Grid::from_link(&grid.to_link()).unwrap(), grid);
}

#[test]
fn bad_grids_say_what_is_wrong() {
    let err = |link: &str| Grid::from_link(link).and_then(|g| g.plan()).unwrap_err().to_string();
    assert!(err("attack=badnets|blended").contains("g=1"));
    assert!(err("g=2&attack=badnets|blended").contains("unknown grid version"));
    assert!(err("g=1&attak=badnets|blended").contains("unknown link key 'attak'"));
    assert!(err("g=1&attack=badnets|badnets").contains("twice"));
    assert!(err("g=1&attack=badnets|trojan").contains("unknown attack 'trojan'"));
    assert!(err("g=1&rate=0.1|2").contains("rate"));
    // A method's key that no run can use is a mistake, and the message says which method it needs.
    assert!(err("g=1&attack=badnets|blended&nc_steps=20").contains("detect=nc"));
    let e = Grid::from_json(r#"{"attack": ["badnets", {"x": 1}]}"#, &no_spec_file).unwrap_err().to_string();
    assert!(e.contains("a string, a number or a list"), "{e}");
    assert!(Grid::from_json("[1, 2]", &no_spec_file).unwrap_err().to_string().contains("one table"));
}

#[test]
fn keys_that_do_not_apply_give_no_duplicate_runs() {
    // alpha is blended's: BadNets runs once, blended once per alpha.
    let runs = Grid::from_link("g=1&attack=badnets|blended&alpha=0.1|0.3").unwrap().plan().unwrap();
    let links: Vec<&str> = runs.iter().map(|r| r.link.as_str()).collect();
    assert_eq!(links, ["v=1", "v=1&attack=blended&alpha=0.1", "v=1&attack=blended&alpha=0.3"]);
    assert_eq!(runs[0].values, [("attack".to_string(), "badnets".to_string())]);
}

#[test]
fn runs_sharing_a_model_train_it_once_and_report_as_if_alone() {
    let grid = Grid::from_link("g=1&train=200&test=100&epochs=1&ft_epochs=1&repair=ft|strip_filter&sf_n=4").unwrap();
    let runs = grid.plan().unwrap();
    assert_eq!(runs.len(), 2);
    let device = Device::flex();
    let mut reports: Vec<Report> = Vec::new();
    let refs: Vec<_> = runs.iter().collect();
    let trainings =
        pollster::block_on(grid::execute(&refs, common::mnist(), &device, DeviceKind::Cpu, &mut Quiet, &mut |_, r| {
            reports.push(r.expect("each run runs"));
            Ok(())
        }))
        .unwrap();
    assert_eq!(trainings, 1);
    assert_eq!(reports.len(), 2);
    for (planned, shared) in runs.iter().zip(&reports) {
        let alone = pollster::block_on(run::run(&planned.spec, common::mnist(), &device, DeviceKind::Cpu, &mut Quiet))
            .unwrap()
            .report;
        assert_eq!(untimed(&serde_json::to_value(&alone).unwrap()), untimed(&serde_json::to_value(shared).unwrap()));
    }
}

/// A report or results file without its wall times, which differ from run to run.
fn untimed(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "seconds" | "train_samples_per_second"))
                .map(|(k, v)| (k.clone(), untimed(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(untimed).collect()),
        x => x.clone(),
    }
}

fn reports_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && n != "grid.json" && !n.starts_with('.'))
        .collect()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

fn grid_run(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = cli();
    cmd.args(["grid", "run", SMALL, "--out"]).arg(dir).args(extra);
    for k in ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT", "JOB_COMPLETION_INDEX"] {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn merged(dir: &Path) -> Value {
    let out = dir.join("RESULTS.json");
    let done = cli().args(["grid", "merge"]).arg(dir).arg("--out").arg(&out).output().unwrap();
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

#[test]
fn shards_from_flags_slurm_and_kubernetes_cover_the_grid_once() {
    let whole = tmp("whole");
    grid_run(&whole, &[], &[]);
    let expected = reports_in(&whole);
    assert_eq!(expected.len(), 8);
    let reference = untimed(&merged(&whole));
    assert_eq!(reference["models"], 4);
    assert_eq!(reference["trainings"], 4, "each shared model is trained once");

    // Slurm: a 0-based array of 3 tasks; Kubernetes: JOB_COMPLETION_INDEX of --shards 3; by hand: --shard.
    let ways: [(&str, Vec<&str>, Vec<[(&str, String); 3]>); 2] = [
        (
            "slurm",
            vec![],
            (0..3)
                .map(|i| {
                    [
                        ("SLURM_ARRAY_TASK_ID", (i + 5).to_string()),
                        ("SLURM_ARRAY_TASK_MIN", "5".to_string()),
                        ("SLURM_ARRAY_TASK_COUNT", "3".to_string()),
                    ]
                })
                .collect(),
        ),
        (
            "k8s",
            vec!["--shards", "3"],
            (0..3)
                .map(|i| {
                    [("JOB_COMPLETION_INDEX", i.to_string()), ("UNUSED_A", String::new()), ("UNUSED_B", String::new())]
                })
                .collect(),
        ),
    ];
    for (name, extra, envs) in ways {
        let dir = tmp(name);
        let mut seen = BTreeSet::new();
        for env in &envs {
            let before = reports_in(&dir);
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let out = grid_run(&dir, &extra, &env);
            let new: BTreeSet<String> = reports_in(&dir).difference(&before).cloned().collect();
            assert!(seen.is_disjoint(&new), "{name}: a run written by two shards");
            seen.extend(new);
            assert!(String::from_utf8_lossy(&out.stderr).contains("/3:"), "{name}");
        }
        assert_eq!(seen, expected, "{name}: the shards together wrote every run once");
        let m = untimed(&merged(&dir));
        assert_eq!(m["runs"], reference["runs"], "{name}: the same results as one process");
    }
    // Two jobs side by side in one process: every run once, each model trained once, the same results.
    let jobs = tmp("jobs");
    grid_run(&jobs, &["--jobs", "2"], &[]);
    assert_eq!(reports_in(&jobs), expected, "--jobs 2 wrote every run once");
    let m = untimed(&merged(&jobs));
    assert_eq!(m["trainings"], 4, "--jobs 2 trained each shared model once");
    assert_eq!(m["runs"], reference["runs"], "--jobs 2: the same results as one job");
    let bad = cli().args(["grid", "run", SMALL, "--out"]).arg(tmp("bad")).args(["--shard", "3/3"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("below the count"));
}

#[test]
fn a_killed_shard_resumes_with_no_duplicate_and_no_half_report() {
    let dir = tmp("killed");
    // A stale temporary file, as a kill in the middle of a write leaves one.
    let runs = Grid::from_link(SMALL).unwrap().plan().unwrap();
    let stale = dir.join(format!(".{}.json.4242.partial", runs[0].hash));
    std::fs::write(&stale, "{\"spec\": ").unwrap();
    let mut child =
        cli().args(["grid", "run", SMALL, "--out"]).arg(&dir).stderr(std::process::Stdio::null()).spawn().unwrap();
    // Kill it once it has written some reports but not all.
    let start = std::time::Instant::now();
    while reports_in(&dir).len() < 3 {
        assert!(start.elapsed().as_secs() < 300, "the grid wrote no report in 5 minutes");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = reports_in(&dir);
    assert!(partial.len() < 8, "killed before the end");
    for name in &partial {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        serde_json::from_str::<Report>(&text).unwrap_or_else(|e| panic!("{name} is half written: {e}"));
    }
    let mtimes: Vec<_> = partial.iter().map(|n| std::fs::metadata(dir.join(n)).unwrap().modified().unwrap()).collect();
    let out = grid_run(&dir, &[], &[]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&format!("{} already done", partial.len())), "{said}");
    // The finished reports were kept as they were, and the rest written once.
    for (name, t) in partial.iter().zip(mtimes) {
        assert_eq!(std::fs::metadata(dir.join(name)).unwrap().modified().unwrap(), t, "{name} was run again");
    }
    assert_eq!(reports_in(&dir).len(), 8);
    assert!(leftovers(&dir).is_empty(), "temporary files left: {:?}", leftovers(&dir));
    let m = merged(&dir);
    assert_eq!(m["runs"].as_array().unwrap().len(), 8);
}

#[test]
fn merged_tables_match_the_reports() {
    let dir = tmp("tables");
    grid_run(&dir, &[], &[]);
    // A partial folder is refused unless asked for.
    let results = merged(&dir);
    let parsed = GridResults::from_json(&serde_json::to_string(&results).unwrap()).unwrap();
    let reports: Vec<Report> = Grid::from_link(SMALL)
        .unwrap()
        .plan()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{}.json", r.hash))).unwrap()).unwrap())
        .collect();
    let csv = std::fs::read_to_string(dir.join("RESULTS.csv")).unwrap();
    let md = std::fs::read_to_string(dir.join("RESULTS.md")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let mut lines = 0;
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (attack, defense) = (f[col("attack")], f[col("defense")]);
        // Recompute the cell from the reports themselves: the runs of this attack, over seeds.
        let of_attack: Vec<&Report> = reports.iter().filter(|r| r.spec.attack.method.name() == attack).collect();
        let figures: Vec<(f64, f64)> = if defense == "none" {
            let mut seen = Vec::new();
            of_attack
                .iter()
                .filter(|r| {
                    let fresh = !seen.contains(&r.spec.seed);
                    seen.push(r.spec.seed);
                    fresh
                })
                .map(|r| (r.final_metrics.clean_acc, r.final_metrics.asr))
                .collect()
        } else {
            of_attack
                .iter()
                .flat_map(|r| r.repair.rows())
                .filter(|row| row.name == defense)
                .map(|row| (row.clean_acc, row.asr))
                .collect()
        };
        assert_eq!(figures.len(), 2, "{attack}/{defense}: one figure per seed");
        assert_eq!(f[col("n")], "2");
        let mean = |i: usize| figures.iter().map(|x| if i == 0 { x.0 } else { x.1 }).sum::<f64>() / 2.0;
        let std = |i: usize| {
            let m = mean(i);
            (figures.iter().map(|x| (if i == 0 { x.0 } else { x.1 } - m).powi(2)).sum::<f64>()).sqrt()
        };
        let num = |name: &str| f[col(name)].parse::<f64>().unwrap();
        assert!((num("clean_acc_mean") - mean(0)).abs() < 1e-12, "{line}");
        assert!((num("asr_mean") - mean(1)).abs() < 1e-12, "{line}");
        assert!((num("clean_acc_std") - std(0)).abs() < 1e-12, "{line}");
        assert!((num("asr_std") - std(1)).abs() < 1e-12, "{line}");
        // The markdown shows the same mean in percent.
        assert!(md.contains(&format!("{:.1}", 100.0 * mean(1))), "{attack}/{defense} ASR missing from the markdown");
        lines += 1;
    }
    assert_eq!(lines, 6, "2 attacks × (no defense, ft, fp)");
    let matrix = parsed.matrix().unwrap();
    assert_eq!(matrix.rows.len(), 2);
    assert_eq!(matrix.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["none", "fp", "ft"]);
    // A folder with a report missing is merged only with --partial, which lists it.
    std::fs::remove_file(dir.join(format!("{}.json", Grid::from_link(SMALL).unwrap().plan().unwrap()[5].hash)))
        .unwrap();
    let refused = cli().args(["grid", "merge"]).arg(&dir).arg("--out").arg(dir.join("R.json")).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("1 of 8 runs have no report"));
    let partial =
        cli().args(["grid", "merge"]).arg(&dir).arg("--out").arg(dir.join("R.json")).arg("--partial").output().unwrap();
    assert!(partial.status.success());
    let r: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("R.json")).unwrap()).unwrap();
    assert_eq!(r["missing"], serde_json::json!([5]));
    // Another grid's reports never mix into this folder.
    let other = cli().args(["grid", "run", "g=1&attack=badnets|none", "--out"]).arg(&dir).output().unwrap();
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("another grid"));
}

#[test]
fn a_run_that_cannot_run_is_reported_and_the_others_go_on() {
    // Clean-label poisoning at ρ = 0.5 needs more samples of the target class than 300 images have.
    let link = "g=1&train=300&test=100&epochs=1&attack=badnets|clean_label&rate=0.05|0.5";
    let dir = tmp("failing");
    let out = cli().args(["grid", "run", link, "--out"]).arg(&dir).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("run 3 failed") && said.contains("clean-label"), "{said}");
    assert!(said.contains("1 runs could not run (runs 3"), "{said}");
    assert_eq!(reports_in(&dir).len(), 3, "the other runs' reports are written");
    let refused = cli().args(["grid", "merge"]).arg(&dir).arg("--out").arg(dir.join("R.json")).output().unwrap();
    assert!(String::from_utf8_lossy(&refused.stderr).contains("1 of 4 runs have no report"));
}
