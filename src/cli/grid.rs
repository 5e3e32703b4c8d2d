//! `backdoor-lab grid plan|run|merge`: a grid of experiments from a TOML/JSON file or a grid link,
//! sharded over processes (Slurm job arrays, Kubernetes Indexed Jobs, or by hand) and merged into one
//! results file with markdown and CSV tables.

use std::path::{Path, PathBuf};

use backdoor_lab::lab::data::DataSource;
use backdoor_lab::lab::device::DeviceKind;
use backdoor_lab::lab::grid::{self, Grid, GridResults, PlannedRun, RESULTS_VERSION, RunResult};
use backdoor_lab::lab::run::Report;
use backdoor_lab::lab::{ExperimentSpec, LabError, Result};
use burn::tensor::Device;
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use super::{CliHost, data_dirs, write_whole};

#[derive(Subcommand)]
pub enum GridCommand {
    /// Print the runs of a grid in plan order (run i is the same everywhere) with their links.
    Plan {
        /// A grid file (TOML or JSON) or a grid link (g=1&attack=badnets|blended&...).
        grid: String,
    },
    /// Run a grid, or one shard of it, writing one report per run into a folder.
    Run(RunArgs),
    /// Merge a folder of reports into RESULTS.json, RESULTS.md and RESULTS.csv (mean ± std over seeds).
    Merge {
        /// The folder `grid run` wrote.
        dir: PathBuf,
        /// Where to write the JSON; the markdown and CSV tables go beside it.
        #[arg(long)]
        out: PathBuf,
        /// Merge what is there even if some runs have no report yet (they are listed as missing).
        #[arg(long)]
        partial: bool,
    },
}

#[derive(Args)]
pub struct RunArgs {
    /// A grid file (TOML or JSON) or a grid link.
    grid: String,
    /// The folder for the reports (created if needed): DIR/<hash of the run's link>.json, and DIR/grid.json.
    #[arg(long)]
    out: PathBuf,
    /// Run only the runs r with r mod N = I. Without it: Slurm's SLURM_ARRAY_TASK_ID (minus
    /// SLURM_ARRAY_TASK_MIN) of SLURM_ARRAY_TASK_COUNT, or Kubernetes' JOB_COMPLETION_INDEX of --shards.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// The number of shards when the index comes from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job's
    /// completions).
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
    /// Folder holding the datasets.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Experiments run side by side in this process, each on its own thread (models that share a
    /// training stay together). Independent runs scale better than one run's kernels over many cores.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
}

pub fn cmd_grid(cmd: GridCommand) -> Result<()> {
    match cmd {
        GridCommand::Plan { grid } => plan(&grid),
        GridCommand::Run(args) => run(args),
        GridCommand::Merge { dir, out, partial } => merge(&dir, &out, partial),
    }
}

/// A grid from a file path or a link.
fn read_grid(arg: &str) -> Result<Grid> {
    let path = Path::new(arg);
    if !path.exists() && (arg.starts_with("g=") || arg.contains("#g=") || arg.contains('|')) {
        return Grid::from_link(arg);
    }
    let text = std::fs::read_to_string(path).map_err(|e| LabError::io(path.display(), e))?;
    let folder = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let spec_file = move |p: &str| -> Result<ExperimentSpec> {
        let file = folder.join(p);
        let text = std::fs::read_to_string(&file).map_err(|e| LabError::io(file.display(), e))?;
        ExperimentSpec::from_json(&text).map_err(|e| LabError::spec(format!("{}: {e}", file.display())))
    };
    let in_file = |e: LabError| match e {
        LabError::Spec(m) => LabError::spec(format!("{}: {m}", path.display())),
        e => e,
    };
    let is_toml = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    if is_toml {
        let value: serde_json::Value =
            toml::from_str(&text).map_err(|e| LabError::spec(format!("{}: bad TOML: {e}", path.display())))?;
        Grid::from_value(&value, &spec_file).map_err(in_file)
    } else {
        Grid::from_json(&text, &spec_file).map_err(in_file)
    }
}

fn plan(arg: &str) -> Result<()> {
    let grid = read_grid(arg)?;
    let runs = grid.plan()?;
    let models = grid::model_count(&runs);
    println!("# {}", grid.to_link());
    println!("# {} runs, {} trained models", runs.len(), models);
    println!("  run model  report            link");
    for r in &runs {
        println!("{:>5} {:>5}  {:<16}  #{}", r.index, r.model, r.hash, r.link);
    }
    Ok(())
}

/// Which shard this process runs: (index, count).
fn shard(args: &RunArgs) -> Result<(usize, usize)> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let num = |what: &str, v: &str| -> Result<usize> {
        v.trim().parse().map_err(|_| LabError::spec(format!("{what} '{v}' is not a whole number")))
    };
    let (i, n) = if let Some(text) = &args.shard {
        let (i, n) = text.split_once('/').ok_or_else(|| LabError::spec(format!("--shard '{text}' is not I/N")))?;
        (num("shard index", i)?, num("shard count", n)?)
    } else if let Some(id) = env("SLURM_ARRAY_TASK_ID") {
        let min = env("SLURM_ARRAY_TASK_MIN").map_or(Ok(0), |m| num("SLURM_ARRAY_TASK_MIN", &m))?;
        let count = env("SLURM_ARRAY_TASK_COUNT")
            .ok_or_else(|| LabError::spec("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not"))?;
        let id = num("SLURM_ARRAY_TASK_ID", &id)?;
        let i =
            id.checked_sub(min).ok_or_else(|| LabError::spec("SLURM_ARRAY_TASK_ID is below SLURM_ARRAY_TASK_MIN"))?;
        (i, num("SLURM_ARRAY_TASK_COUNT", &count)?)
    } else if let Some(index) = env("JOB_COMPLETION_INDEX") {
        let n = args.shards.ok_or_else(|| {
            LabError::spec("JOB_COMPLETION_INDEX is set: give --shards N (the Indexed Job's completions)")
        })?;
        (num("JOB_COMPLETION_INDEX", &index)?, n)
    } else {
        (0, args.shards.unwrap_or(1))
    };
    if n == 0 || i >= n {
        return Err(LabError::spec(format!("shard {i}/{n}: the index must be below the count, the count above 0")));
    }
    Ok((i, n))
}

/// A finished report for `run` in `dir`, if there is one: it parses and is this run's.
fn finished(dir: &Path, run: &PlannedRun) -> bool {
    std::fs::read_to_string(report_path(dir, run))
        .ok()
        .and_then(|t| serde_json::from_str::<Report>(&t).ok())
        .is_some_and(|r| r.link == run.link)
}

fn report_path(dir: &Path, run: &PlannedRun) -> PathBuf {
    dir.join(format!("{}.json", run.hash))
}

/// A shard's record of its work, summed over restarts: how many models it trained.
#[derive(Serialize, Deserialize, Default)]
struct ShardLog {
    runs: usize,
    written: usize,
    trainings: usize,
}

fn run(args: RunArgs) -> Result<()> {
    let grid = read_grid(&args.grid)?;
    let runs = grid.plan()?;
    let (index, count) = shard(&args)?;
    let dir = &args.out;
    std::fs::create_dir_all(dir.join("shards")).map_err(|e| LabError::io(dir.display(), e))?;
    // The folder belongs to one grid: a second grid would mix its reports into the first's tables.
    let grid_file = dir.join("grid.json");
    let link = grid.to_link();
    match std::fs::read_to_string(&grid_file) {
        Ok(text) => {
            let theirs: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            if theirs.get("grid").and_then(|g| g.as_str()) != Some(link.as_str()) {
                return Err(LabError::spec(format!(
                    "{} holds the reports of another grid ({}): choose another --out",
                    dir.display(),
                    grid_file.display()
                )));
            }
        }
        Err(_) => {
            let json = serde_json::json!({ "grid": link, "runs": runs.len() });
            write_whole(&grid_file, serde_json::to_string_pretty(&json).expect("JSON").as_bytes())?;
        }
    }
    let mine: Vec<&PlannedRun> = runs.iter().filter(|r| r.index % count == index).collect();
    // A killed shard leaves temporary files; they are never read as reports, and are removed here.
    for r in &mine {
        let prefix = format!(".{}.json.", r.hash);
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    let todo: Vec<&PlannedRun> = mine.iter().copied().filter(|r| !finished(dir, r)).collect();
    eprintln!(
        "shard {index}/{count}: {} of the grid's {} runs, {} already done, {} to run",
        mine.len(),
        runs.len(),
        mine.len() - todo.len(),
        todo.len()
    );
    let mut trainings = 0;
    let mut written = 0;
    let mut failed: Vec<usize> = Vec::new();
    if !todo.is_empty() {
        let dataset = todo[0].spec.data.dataset;
        if todo.iter().any(|r| r.spec.data.dataset != dataset) {
            return Err(LabError::spec("a grid runs on one dataset; put each dataset in its own grid"));
        }
        let source = DataSource::load_first(dataset, &data_dirs(&args.data_dir))?;
        let total = todo.len();
        // What the jobs share: the reports written so far and the runs that failed.
        let shared = std::sync::Mutex::new((0usize, Vec::<usize>::new()));
        let done = |r: &PlannedRun, report: Result<Report>| -> Result<()> {
            let report = match report {
                Ok(report) => report,
                Err(e) => {
                    eprintln!("run {} failed: {e}  #{}", r.index, r.link);
                    shared.lock().expect("no job panics holding it").1.push(r.index);
                    return Ok(());
                }
            };
            let json = serde_json::to_string_pretty(&report).expect("a report always serialises");
            write_whole(&report_path(dir, r), json.as_bytes())?;
            let mut state = shared.lock().expect("no job panics holding it");
            state.0 += 1;
            eprintln!(
                "[{}/{total}] run {} (model {}): CA {:.1} % ASR {:.1} %  {}.json  #{}",
                state.0,
                r.index,
                r.model,
                100.0 * report.final_metrics.clean_acc,
                100.0 * report.final_metrics.asr,
                r.hash,
                r.link
            );
            Ok(())
        };
        // Deal whole model groups to the jobs (by the plan's model index), so no training is repeated.
        let jobs = usize::from(args.jobs);
        let parts: Vec<Vec<&PlannedRun>> = (0..jobs)
            .map(|j| todo.iter().copied().filter(|r| r.model % jobs == j).collect())
            .filter(|part: &Vec<&PlannedRun>| !part.is_empty())
            .collect();
        let results: Vec<Result<usize>> = std::thread::scope(|scope| {
            let handles: Vec<_> = parts
                .iter()
                .map(|part| {
                    let (source, done) = (&source, &done);
                    scope.spawn(move || {
                        let mut host = CliHost::hidden(0);
                        let mut each = |r: &PlannedRun, report: Result<Report>| done(r, report);
                        pollster::block_on(grid::execute(
                            part,
                            source,
                            &Device::flex(),
                            DeviceKind::Cpu,
                            &mut host,
                            &mut each,
                        ))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        for r in results {
            trainings += r?;
        }
        let state = shared.into_inner().expect("every job has ended");
        written = state.0;
        failed = state.1;
    }
    let log_path = dir.join("shards").join(format!("{index}-of-{count}.json"));
    let mut log: ShardLog =
        std::fs::read_to_string(&log_path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    log.runs = mine.len();
    log.written += written;
    log.trainings += trainings;
    write_whole(&log_path, serde_json::to_string_pretty(&serde_json::json!(log)).expect("JSON").as_bytes())?;
    eprintln!("shard {index}/{count}: wrote {written} reports, trained {trainings} models");
    if !failed.is_empty() {
        let list: Vec<String> = failed.iter().map(usize::to_string).collect();
        return Err(LabError::spec(format!(
            "{} runs could not run (runs {}; see the messages above); the others' reports are written",
            failed.len(),
            list.join(", ")
        )));
    }
    Ok(())
}

fn merge(dir: &Path, out: &Path, partial: bool) -> Result<()> {
    let grid_file = dir.join("grid.json");
    let text = std::fs::read_to_string(&grid_file).map_err(|e| {
        LabError::io(grid_file.display(), format!("{e} (is {} a folder written by `grid run`?)", dir.display()))
    })?;
    let meta: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| LabError::spec(format!("{}: {e}", grid_file.display())))?;
    let link = meta.get("grid").and_then(|g| g.as_str()).unwrap_or_default();
    let grid = Grid::from_link(link).map_err(|e| LabError::spec(format!("{}: {e}", grid_file.display())))?;
    let runs = grid.plan()?;
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for r in &runs {
        let path = report_path(dir, r);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let report: Report = serde_json::from_str(&text)
                    .map_err(|e| LabError::spec(format!("{}: not a report: {e}", path.display())))?;
                if report.link != r.link {
                    return Err(LabError::spec(format!("{} is the report of another run", path.display())));
                }
                results.push(RunResult::new(r, &report));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(r.index),
            Err(e) => return Err(LabError::io(path.display(), e)),
        }
    }
    if !missing.is_empty() && !partial {
        let first: Vec<String> = missing.iter().take(10).map(usize::to_string).collect();
        return Err(LabError::spec(format!(
            "{} of {} runs have no report yet (runs {}{}): run the missing shards, or merge with --partial",
            missing.len(),
            runs.len(),
            first.join(", "),
            if missing.len() > 10 { ", …" } else { "" }
        )));
    }
    let trainings = std::fs::read_dir(dir.join("shards")).ok().map(|entries| {
        entries
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|t| serde_json::from_str::<ShardLog>(&t).ok())
            .map(|l| l.trainings)
            .sum()
    });
    let models = grid::model_count(&runs);
    let merged =
        GridResults { version: RESULTS_VERSION, grid: grid.to_link(), runs: results, models, trainings, missing };
    let matrix = merged.matrix()?;
    write_whole(out, serde_json::to_string_pretty(&merged).expect("results serialise").as_bytes())?;
    let md = out.with_extension("md");
    let csv = out.with_extension("csv");
    let heading = format!(
        "# Grid results\n\n`#{}`: {} runs, {} trained models{}\n\n",
        merged.grid,
        runs.len(),
        models,
        trainings.map_or(String::new(), |t| format!(" ({t} trainings)"))
    );
    write_whole(&md, format!("{heading}{}", matrix.markdown()).as_bytes())?;
    write_whole(&csv, matrix.csv().as_bytes())?;
    print!("{}", matrix.markdown());
    println!("results written to {}, {} and {}", out.display(), md.display(), csv.display());
    Ok(())
}
