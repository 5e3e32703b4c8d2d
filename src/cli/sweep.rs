//! `backdoor-lab sweep`: one parameter over a list of values, for one or more series of experiments on
//! the same base spec (malicious loss at λ beside data poisoning at ρ = λ), over several seeds.

use std::fmt::Write as _;
use std::path::PathBuf;

use backdoor_lab::lab::data::DataSource;
use backdoor_lab::lab::device::DeviceKind;
use backdoor_lab::lab::params::clip;
use backdoor_lab::lab::{ExperimentSpec, LabError, Result, run};
use burn::tensor::Device;
use clap::Args;
use serde::Serialize;

use super::{CliHost, SpecArgs, data_dirs};

#[derive(Args)]
pub struct SweepArgs {
    /// One series per argument: link keys with one of them set to `*`, the swept parameter, e.g.
    /// 'attack=malicious_loss&lambda=*' 'attack=badnets&rate=*'.
    #[arg(required = true, value_name = "SERIES")]
    series: Vec<String>,
    /// The values the `*` takes, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    values: Vec<String>,
    /// Seeds to repeat every run with (mean ± std over them).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    seeds: Vec<u64>,
    /// The base experiment every series starts from.
    #[command(flatten)]
    spec: SpecArgs,
    /// Where to write the JSON results.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Folder holding the datasets.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct SweepRun {
    seed: u64,
    link: String,
    clean_acc: f64,
    asr: f64,
    robust_acc: f64,
    train_seconds: f64,
}

#[derive(Serialize)]
struct SweepPoint {
    value: String,
    runs: Vec<SweepRun>,
}

#[derive(Serialize)]
struct SweepSeries {
    series: String,
    key: String,
    points: Vec<SweepPoint>,
}

/// A series' fixed pairs and its swept key.
fn parse_series(text: &str) -> Result<(Vec<(String, String)>, String)> {
    let mut pairs = Vec::new();
    let mut swept = None;
    for part in text.trim_start_matches(['#', '&']).split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| LabError::spec(format!("series part '{}' is not key=value", clip(part))))?;
        if v == "*" {
            if swept.replace(k.to_string()).is_some() {
                return Err(LabError::spec(format!("series '{}' sweeps two keys; give one '*'", clip(text))));
            }
        } else {
            pairs.push((k.to_string(), v.to_string()));
        }
    }
    let swept = swept.ok_or_else(|| {
        LabError::spec(format!("series '{}' sweeps nothing: set the swept key to '*', e.g. lambda=*", clip(text)))
    })?;
    Ok((pairs, swept))
}

pub fn cmd_sweep(args: SweepArgs) -> Result<()> {
    let base = args.spec.build()?;
    // Every spec is built and checked before the first run: a typo fails in a second, not in an hour.
    let mut plan: Vec<(String, String, Vec<Vec<ExperimentSpec>>)> = Vec::new();
    for text in &args.series {
        let (pairs, key) = parse_series(text)?;
        let mut points = Vec::new();
        for value in &args.values {
            let mut all: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            all.push((key.as_str(), value.as_str()));
            let spec =
                base.clone().with_overrides(&all).map_err(|e| LabError::spec(format!("series '{text}': {e}")))?;
            points.push(
                args.seeds
                    .iter()
                    .map(|&seed| {
                        let mut s = spec.clone();
                        s.seed = seed;
                        s
                    })
                    .collect(),
            );
        }
        plan.push((text.clone(), key, points));
    }
    if let Some(out) = &args.out {
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty() && !p.is_dir()) {
            return Err(LabError::io(parent.display(), "the folder does not exist"));
        }
    }
    let source = DataSource::load_first(base.data.dataset, &data_dirs(&args.data_dir))?;
    let device = Device::flex();
    let total: usize = plan.iter().map(|(_, _, p)| p.iter().map(Vec::len).sum::<usize>()).sum();
    let mut done = 0;
    let mut results = Vec::new();
    for (series, key, points) in plan {
        let mut out_points = Vec::new();
        for (value, specs) in args.values.iter().zip(points) {
            let mut runs = Vec::new();
            for spec in specs {
                done += 1;
                let mut host = CliHost::hidden(spec.train.epochs);
                let outcome = pollster::block_on(run::run(&spec, &source, &device, DeviceKind::Cpu, &mut host))?;
                let r = &outcome.report;
                eprintln!(
                    "[{done}/{total}] {key}={value} seed {}: CA {:.1} % ASR {:.1} %  #{}",
                    spec.seed,
                    100.0 * r.final_metrics.clean_acc,
                    100.0 * r.final_metrics.asr,
                    r.link
                );
                runs.push(SweepRun {
                    seed: spec.seed,
                    link: r.link.clone(),
                    clean_acc: r.final_metrics.clean_acc,
                    asr: r.final_metrics.asr,
                    robust_acc: r.final_metrics.robust_acc,
                    train_seconds: r.seconds.train,
                });
            }
            out_points.push(SweepPoint { value: value.clone(), runs });
        }
        results.push(SweepSeries { series, key, points: out_points });
    }
    println!("{}", render(&args.values, &results));
    if let Some(out) = &args.out {
        let json = serde_json::to_string_pretty(&results).expect("sweep results serialise");
        std::fs::write(out, json).map_err(|e| LabError::io(out.display(), e))?;
        println!("results written to {}", out.display());
    }
    Ok(())
}

/// Mean ± sample standard deviation, in percent.
fn mean_std(xs: impl Iterator<Item = f64> + Clone) -> String {
    let n = xs.clone().count() as f64;
    let mean = xs.clone().sum::<f64>() / n;
    if n < 2.0 {
        return format!("{:5.1}", 100.0 * mean);
    }
    let var = xs.map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    format!("{:5.1} ± {:4.1}", 100.0 * mean, 100.0 * var.sqrt())
}

/// A markdown table: one row per value, CA and ASR of each series.
fn render(values: &[String], results: &[SweepSeries]) -> String {
    let mut s = String::from("| value |");
    for r in results {
        let _ = write!(s, " {} CA % | ASR % |", r.series);
    }
    s.push_str("\n|---|");
    s.push_str(&"---|---|".repeat(results.len()));
    for (i, v) in values.iter().enumerate() {
        let _ = write!(s, "\n| {v} |");
        for r in results {
            let runs = &r.points[i].runs;
            let _ = write!(
                s,
                " {} | {} |",
                mean_std(runs.iter().map(|x| x.clean_acc)),
                mean_std(runs.iter().map(|x| x.asr))
            );
        }
    }
    s
}
