//! The pipeline: spec → split → poison → train (with per-epoch CA/ASR) → evaluate → detect (if chosen)
//! → repair (if chosen) → report.

use burn::module::Module;
use burn::tensor::Device;

use crate::lab::attack::{AttackSpec, Craft, Poisoned};
use crate::lab::data::{DataSource, ImageSet, Split};
use crate::lab::detect::{self, DetectInput, DetectReport};
use crate::lab::device::{DeviceKind, fresh_model};
use crate::lab::error::{LabError, Result};
use crate::lab::eval::{Metrics, TriggeredTest, predict};
use crate::lab::event::{EpochRecord, Event, Host, Stage};
use crate::lab::model::Model;
use crate::lab::repair::{self, RepairInput, RepairReport};
use crate::lab::spec::ExperimentSpec;
use crate::lab::train::train;
use crate::lab::transfer::{self, TransferReport, TransferSpec};

mod report;

pub use report::{Example, PoisonSummary, Report, SanitizeReport, Scanned, SourceClass, StageSeconds};

/// Everything a run produced, for later stages (detection, repair) and the UI.
pub struct Outcome {
    pub report: Report,
    pub model: Model,
    pub split: Split,
    pub poisoned: Poisoned,
    pub triggered: TriggeredTest,
}

impl Outcome {
    /// The transfer stage on this finished run (the page's Transfer step): the victim's clean images are
    /// what this run's split left unused, as in a run whose spec fine-tunes.
    pub async fn transfer(
        &self,
        finetune: &TransferSpec,
        source: &DataSource,
        device: &Device,
        host: &mut dyn Host,
    ) -> Result<TransferReport> {
        let spec = &self.report.spec;
        let victim = source.held_out(&spec.data, spec.seed, finetune.size)?;
        let (test, triggered) = (&self.split.test, &self.triggered);
        transfer::fine_tune(finetune, &spec.train, spec.seed, &self.model, &victim, test, triggered, device, host).await
    }

    /// What detectors may see of this run (and the answers to score them with).
    pub fn detect_input(&self) -> Result<DetectInput<'_>> {
        let spec = &self.report.spec;
        Ok(DetectInput {
            setting: spec.setting(),
            model: &self.model,
            poisoned: &self.poisoned,
            test: &self.split.test,
            triggered: &self.triggered,
            answers: spec.answers()?,
        })
    }

    /// What repairs may see of this run, with its Detect step's findings.
    pub fn repair_input(&self) -> Result<RepairInput<'_>> {
        let spec = &self.report.spec;
        Ok(RepairInput {
            setting: spec.setting(),
            detectors: spec.detect.clone(),
            answers: spec.answers()?,
            model: &self.model,
            poisoned: &self.poisoned,
            test: &self.split.test,
            triggered: &self.triggered,
            detected: &self.report.detect,
        })
    }
}

/// Runs `spec` on `source` with `device` (a plain, non-autodiff device; training wraps it).
pub async fn run(
    spec: &ExperimentSpec,
    source: &DataSource,
    device: &Device,
    kind: DeviceKind,
    host: &mut dyn Host,
) -> Result<Outcome> {
    let trained = train_model(spec, source, device, host).await?;
    let report = finish(spec, &trained, source, device, kind, host).await?;
    Ok(trained.into_outcome(report))
}

/// `run` on `device`, and if that is a GPU that fails mid-run (lost device, failed allocation or
/// read), the same run again from its seed on the CPU (flex): a GPU that failed is not trusted again,
/// and a run from the same seed gives results of the same kind. `dropped` hears why the GPU was
/// dropped before the CPU run starts. Returns the outcome and the device it finished on.
pub async fn run_or_cpu(
    spec: &ExperimentSpec,
    source: &DataSource,
    (device, kind): (Device, DeviceKind),
    host: &mut dyn Host,
    dropped: impl FnOnce(&str),
) -> Result<(Outcome, Device, DeviceKind)> {
    match run(spec, source, &device, kind, host).await {
        Err(LabError::Device(why)) if kind.is_gpu() => {
            dropped(&why);
            let cpu = Device::flex();
            let outcome = run(spec, source, &cpu, DeviceKind::Cpu, host).await?;
            Ok((outcome, cpu, DeviceKind::Cpu))
        }
        other => other.map(|o| (o, device, kind)),
    }
}

/// The first half of `run`: split, poison and train. A grid finishes one trained model with several
/// specs that differ only after training (detectors, repairs, transfer), so it trains once.
pub async fn train_model(
    spec: &ExperimentSpec,
    source: &DataSource,
    device: &Device,
    host: &mut dyn Host,
) -> Result<Trained> {
    let (t0, mut seconds, split) = begin(spec, source, host)?;

    stage(Stage::Poison, host)?;
    let t = host.now();
    let mut poisoned = spec.attack.poison(&split.train, spec.seed)?;
    let dims = spec.dims();
    let trigger = spec.attack.trigger(dims, spec.seed)?;
    let mut craft = Craft {
        clean: &split.train,
        poisoned: &mut poisoned,
        trigger: &trigger,
        target: spec.attack.target_label,
        model: spec.model,
        train: &spec.train,
        seed: spec.seed,
        device,
        host: &mut *host,
        base: None,
    };
    spec.attack.method.craft(&mut craft).await?;
    let base = craft.base;
    let triggered = spec.attack.triggered_test(&split.train, &split.test, &trigger)?;
    let mix = spec.attack.loss_mix(&split.train, &trigger);
    seconds.poison = host.now() - t;

    stage(Stage::Train, host)?;
    let t = host.now();
    let train_device = device.clone().autodiff();
    // An attacker who ships the architecture wires its trigger branch in before training starts; in
    // the transfer setting the victim fine-tunes the published model's last layer.
    let model = match base {
        Some(base) => base.fork(&train_device).train().frozen(true),
        None => {
            fresh_model(spec.model, dims, spec.seed, &train_device).with_branch(spec.attack.branch(&trigger, dims.0))
        }
    };
    let (model, epochs) = train(
        model,
        &poisoned.set,
        &spec.train,
        spec.seed,
        &train_device,
        &split.test,
        &triggered,
        device,
        mix.as_ref(),
        host,
    )
    .await?;
    seconds.train = host.now() - t;
    let train_only: f64 = epochs.iter().map(|e| e.seconds).sum();
    let samples_per_second = (poisoned.set.len() * epochs.len()) as f64 / train_only.max(1e-9);
    let ready = host.now() - t0;
    Ok(Trained { split, poisoned, triggered, model, epochs, samples_per_second, scanned: None, seconds, ready })
}

/// Scans a model trained elsewhere: the spec's data, detectors and repairs, with `model` in place of
/// training. The training split is the defender's clean data (nothing in it is poisoned); the
/// spec's attack is only the trigger ASR is measured with, a guess unless the user knows it.
pub async fn scan(
    spec: &ExperimentSpec,
    source: &DataSource,
    model: Model,
    scanned: Scanned,
    device: &Device,
    kind: DeviceKind,
    host: &mut dyn Host,
) -> Result<Outcome> {
    let (t0, seconds, split) = begin(spec, source, host)?;
    let trigger = spec.attack.trigger(spec.dims(), spec.seed)?;
    let triggered = spec.attack.triggered_test(&split.train, &split.test, &trigger)?;
    let poisoned = Poisoned {
        set: split.train.clone(),
        poisoned: Vec::new(),
        true_labels: split.train.labels.clone(),
        altered: Vec::new(),
    };
    let done = Trained {
        split,
        poisoned,
        triggered,
        model,
        epochs: Vec::new(),
        samples_per_second: 0.0,
        scanned: Some(scanned),
        ready: host.now() - t0,
        seconds,
    };
    let report = finish(spec, &done, source, device, kind, host).await?;
    Ok(done.into_outcome(report))
}

/// The first ten triggered test inputs with their predictions, for the report's pictures.
fn examples(test: &ImageSet, triggered: &TriggeredTest, clean_pred: &[u8], trig_pred: &[u8]) -> Vec<Example> {
    (0..triggered.source.len().min(10))
        .map(|k| {
            let i = triggered.source[k];
            Example { test_index: i, label: test.labels[i], clean_pred: clean_pred[i], triggered_pred: trig_pred[k] }
        })
        .collect()
}

/// A scanned model measured again with another guess of its attack (`attack`: the trigger and the
/// target): for a model trained elsewhere the attack is unknown, and ASR and RA mean only what the
/// guess means. The triggered test inputs, CA/ASR/RA and the examples follow the guess; later
/// detectors, repairs and transfers on this outcome use it too. Of what the report holds, the parts
/// measured on triggered inputs (repairs, the transfer, an input sanitizer, STRIP and occlusion) are
/// dropped, to be run again with the new guess; the parts that never see a trigger (Neural Cleanse,
/// Activation Clustering, Spectral Signatures, loss isolation) stay.
pub async fn remeasure(outcome: &Outcome, attack: &AttackSpec, device: &Device) -> Result<Outcome> {
    if outcome.report.scanned.is_none() {
        return Err(LabError::spec(
            "only a scanned model is measured with another trigger: a model trained here is measured with the attack it was trained with",
        ));
    }
    let mut spec = outcome.report.spec.clone();
    spec.attack = attack.clone();
    spec.validate()?;
    let trigger = spec.attack.trigger(spec.dims(), spec.seed)?;
    let triggered = spec.attack.triggered_test(&outcome.split.train, &outcome.split.test, &trigger)?;
    let clean_pred = predict(&outcome.model, &outcome.split.test, device).await?;
    let trig_pred = predict(&outcome.model, &triggered.set, device).await?;
    let mut report = outcome.report.clone();
    report.final_metrics = Metrics::from_predictions(&outcome.split.test, &clean_pred, &triggered, &trig_pred);
    report.examples = examples(&outcome.split.test, &triggered, &clean_pred, &trig_pred);
    report.link = spec.to_link();
    report.spec = spec;
    report.detect.strip = None;
    report.detect.occlusion = None;
    report.repair = RepairReport::default();
    report.transfer = None;
    report.final_unsanitized = None;
    report.sanitize = None;
    Ok(Outcome {
        report,
        model: outcome.model.clone(),
        split: outcome.split.clone(),
        poisoned: outcome.poisoned.clone(),
        triggered,
    })
}

/// What a run and a scan begin with: the checked spec, the clock and the split. The transfer victim's
/// clean images are drawn too when the spec has a transfer stage, so that a split too large for them
/// fails before any training.
fn begin(spec: &ExperimentSpec, source: &DataSource, host: &mut dyn Host) -> Result<(f64, StageSeconds, Split)> {
    spec.validate()?;
    let t0 = host.now();
    stage(Stage::Data, host)?;
    let split = source.split(&spec.data, spec.seed)?;
    victim(spec, source)?;
    let seconds = StageSeconds { data: host.now() - t0, ..StageSeconds::default() };
    Ok((t0, seconds, split))
}

/// The transfer victim's own clean images, when the spec fine-tunes.
fn victim(spec: &ExperimentSpec, source: &DataSource) -> Result<Option<ImageSet>> {
    if spec.finetune.is_off() {
        return Ok(None);
    }
    source.held_out(&spec.data, spec.seed, spec.finetune.size).map(Some)
}

fn stage(s: Stage, host: &mut dyn Host) -> Result<()> {
    if host.emit(&Event::Stage { stage: s }).is_break() {
        return Err(LabError::Cancelled);
    }
    Ok(())
}

/// A model ready for evaluation, with the data it was (or is assumed to be) trained on.
pub struct Trained {
    split: Split,
    poisoned: Poisoned,
    triggered: TriggeredTest,
    model: Model,
    epochs: Vec<EpochRecord>,
    samples_per_second: f64,
    scanned: Option<Scanned>,
    /// The stages so far, and how long they took together.
    seconds: StageSeconds,
    ready: f64,
}

impl Trained {
    fn into_outcome(self, report: Report) -> Outcome {
        Outcome { report, model: self.model, split: self.split, poisoned: self.poisoned, triggered: self.triggered }
    }
}

/// Evaluate, detect and repair as `spec` says, and write the report. `spec` may differ from the spec
/// that trained `done` only after training (detectors, repairs, transfer); the training's stage times
/// are counted in every report made from it.
pub async fn finish(
    spec: &ExperimentSpec,
    done: &Trained,
    source: &DataSource,
    device: &Device,
    kind: DeviceKind,
    host: &mut dyn Host,
) -> Result<Report> {
    spec.validate()?;
    let Trained { split, poisoned, triggered, model, epochs, samples_per_second, scanned, .. } = done;
    let victim = victim(spec, source)?;
    let mut seconds = done.seconds.clone();
    // The report's total is this spec's own: the shared stages plus what follows them here.
    let resumed = host.now();
    stage(Stage::Evaluate, host)?;
    let t = host.now();
    let clean_pred = predict(model, &split.test, device).await?;
    let trig_pred = predict(model, &triggered.set, device).await?;
    let raw = Metrics::from_predictions(&split.test, &clean_pred, triggered, &trig_pred);
    // A deployment-time sanitizer: every test input passes through it, the trigger's copies too.
    let (final_metrics, clean_pred, trig_pred, final_unsanitized, sanitize) = if spec.sanitize.is_off() {
        (raw, clean_pred, trig_pred, None, None)
    } else {
        let t = host.now();
        let test = spec.sanitize.sanitized(&split.test, spec.seed, 1);
        let mut trig = triggered.clone();
        trig.set = spec.sanitize.sanitized(&triggered.set, spec.seed, 2);
        let clean_pred = predict(model, &test, device).await?;
        let trig_pred = predict(model, &trig.set, device).await?;
        let m = Metrics::from_predictions(&test, &clean_pred, &trig, &trig_pred);
        let before = repair::Baseline { clean_acc: raw.clean_acc, asr: raw.asr, robust_acc: raw.robust_acc };
        let report = SanitizeReport { der: repair::der(&before, m.clean_acc, m.asr), seconds: host.now() - t };
        (m, clean_pred, trig_pred, Some(raw), Some(report))
    };
    let examples = examples(&split.test, triggered, &clean_pred, &trig_pred);
    seconds.evaluate = host.now() - t;

    let detect = if spec.detect.is_empty() {
        DetectReport::default()
    } else {
        stage(Stage::Detect, host)?;
        let t = host.now();
        let (setting, answers) = (spec.setting(), spec.answers()?);
        let input = DetectInput { setting, model, poisoned, test: &split.test, triggered, answers };
        let found = detect::run_all(&spec.detect, &input, device, host).await?;
        seconds.detect = host.now() - t;
        found
    };
    let repair = if spec.repair.is_empty() {
        RepairReport::default()
    } else {
        stage(Stage::Repair, host)?;
        let t = host.now();
        let (setting, detectors, answers) = (spec.setting(), spec.detect.clone(), spec.answers()?);
        let input = RepairInput {
            setting,
            detectors,
            answers,
            model,
            poisoned,
            test: &split.test,
            triggered,
            detected: &detect,
        };
        let fixed = repair::run_all(&spec.repair, &input, device, host).await?;
        seconds.repair = host.now() - t;
        fixed
    };
    let transfer = match &victim {
        None => None,
        Some(victim) => {
            stage(Stage::Transfer, host)?;
            let t = host.now();
            let done = transfer::fine_tune(
                &spec.finetune,
                &spec.train,
                spec.seed,
                model,
                victim,
                &split.test,
                triggered,
                device,
                host,
            )
            .await?;
            seconds.transfer = host.now() - t;
            Some(done)
        }
    };
    seconds.total = done.ready + host.now() - resumed;

    let semantic = spec.attack.method.selection() == crate::lab::attack::Selection::SubPopulation;
    let source_class = spec.attack.method.source_class().filter(|_| semantic).map(|class| {
        let rest: Vec<usize> = (0..split.test.len())
            .filter(|&i| split.test.labels[i] == class && triggered.source.binary_search(&i).is_err())
            .collect();
        let right = rest.iter().filter(|&&i| clean_pred[i] == class).count();
        SourceClass {
            class,
            train_members: poisoned.poisoned.len(),
            test_members: triggered.source.len(),
            rest: rest.len(),
            rest_ca: right as f64 / rest.len().max(1) as f64,
        }
    });
    let target = spec.attack.target_label;
    let labelled_target = poisoned.set.labels.iter().filter(|&&y| y == target).count();
    let poisoned_target = poisoned.poisoned.iter().filter(|&&i| poisoned.set.labels[i] == target).count();
    let privacy = (spec.train.dp() && scanned.is_none())
        .then(|| crate::lab::dp::privacy(spec.train.dp_sigma, spec.train.batch_size, poisoned.set.len(), epochs.len()));
    let report = Report {
        spec: spec.clone(),
        link: spec.to_link(),
        final_metrics,
        train_samples_per_second: *samples_per_second,
        epochs: epochs.clone(),
        device: kind.name().to_string(),
        seconds,
        poison: PoisonSummary {
            count: poisoned.poisoned.len(),
            indices: poisoned.poisoned.clone(),
            target_class_share: poisoned_target as f64 / labelled_target.max(1) as f64,
        },
        examples,
        version: env!("CARGO_PKG_VERSION").to_string(),
        detect,
        repair,
        scanned: scanned.clone(),
        transfer,
        final_unsanitized,
        sanitize,
        source_class,
        privacy,
    };
    Ok(report)
}
