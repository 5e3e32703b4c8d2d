//! Grids of experiments: a base spec and axes over any link keys (the attack, the detectors, the
//! repairs, the seed, any parameter), as a link (`g=1&attack=badnets|blended&repair=fp|ft&seed=0|1`)
//! or a small TOML/JSON file. The plan is the axes' product in a stable order, so run i is the same run
//! on every machine; runs that differ only after training (detectors, repairs, transfer) share one
//! trained model, which `execute` trains once. Results reduce to one row per run (`RunResult`) and to a
//! matrix (rows: the axes that shape the model; columns: no defense, each repair, each detector) with
//! mean ± std over seeds, written as JSON, markdown and CSV.

use std::fmt::Write as _;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::lab::attack::AttackMethod;
use crate::lab::data::DataSource;
use crate::lab::detect::{DETECT, DetectSpec, Truth, Verdict};
use crate::lab::error::{LabError, Result};
use crate::lab::event::Host;
use crate::lab::params::{Params, clip};
use crate::lab::repair::{REPAIR, RepairSpec};
use crate::lab::run::{self, Report};
use crate::lab::spec::{ExperimentSpec, SEED_KEY};
use crate::lab::transfer::TransferSpec;

/// The grid format this build reads and writes (the `g=` of a grid link).
pub const GRID_VERSION: u32 = 1;
/// The link key that marks a grid and gives its version.
pub const GRID_KEY: &str = "g";
/// Separates an axis' values in a grid link (a comma already separates detectors and repairs).
pub const ALT: char = '|';
/// The largest plan accepted: a typo such as 0..100000 should fail at once, not run for a year.
pub const MAX_RUNS: usize = 100_000;
/// The version of RESULTS.json.
pub const RESULTS_VERSION: u32 = 1;

/// One axis: a link key and the values it takes, in the order given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

/// A base (link pairs that need not form a valid spec on their own: a key of a method applies to the
/// runs that choose it) and axes, both in the parameter table's order with the seed last, whatever
/// order they were written in.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    base: Vec<(String, String)>,
    axes: Vec<Axis>,
}

/// One run of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    /// Position in the plan: the same on every machine for the same grid.
    pub index: usize,
    pub spec: ExperimentSpec,
    pub link: String,
    /// Names the run's report file: 16 hex digits of the SHA-256 of its link.
    pub hash: String,
    /// The axis values of this run (keys that do not apply to it left out), in axis order.
    pub values: Vec<(String, String)>,
    /// The trained model it shares with other runs: an index into the plan's distinct models.
    pub model: usize,
}

/// Where each key sits in the parameter table (the seed goes last, so one cell's seeds are adjacent).
fn key_rank(key: &str) -> Option<usize> {
    if key == SEED_KEY {
        return Some(usize::MAX);
    }
    ExperimentSpec::every_param().iter().position(|p| p.key == key)
}

fn unknown(key: &str) -> LabError {
    LabError::spec(format!("unknown link key '{}' in the grid", clip(key)))
}

impl Grid {
    /// Checks and orders a grid: every key known, none twice, no empty axis or repeated value.
    /// An axis of one value is a base pair.
    pub fn new(base: Vec<(String, String)>, axes: Vec<Axis>) -> Result<Self> {
        let mut out = Self { base: Vec::new(), axes: Vec::new() };
        let mut seen: Vec<String> = Vec::new();
        let mut claim = |key: &str| -> Result<()> {
            key_rank(key).ok_or_else(|| unknown(key))?;
            if seen.iter().any(|k| k == key) {
                return Err(LabError::spec(format!("grid key '{}' is given twice", clip(key))));
            }
            seen.push(key.to_string());
            Ok(())
        };
        for (k, v) in base {
            if k == "v" || k == GRID_KEY {
                continue;
            }
            claim(&k)?;
            out.base.push((k, v));
        }
        for axis in axes {
            claim(&axis.key)?;
            match axis.values.as_slice() {
                [] => return Err(LabError::spec(format!("grid axis '{}' has no values", clip(&axis.key)))),
                [one] => out.base.push((axis.key.clone(), one.clone())),
                values => {
                    if let Some(v) = values.iter().enumerate().find(|(i, v)| values[..*i].contains(v)).map(|x| x.1) {
                        return Err(LabError::spec(format!(
                            "grid axis '{}' lists the value '{}' twice",
                            clip(&axis.key),
                            clip(v)
                        )));
                    }
                    out.axes.push(axis);
                }
            }
        }
        let rank = |k: &str| key_rank(k).unwrap_or(usize::MAX);
        out.base.sort_by_key(|(k, _)| rank(k));
        out.axes.sort_by_key(|a| rank(&a.key));
        let runs: usize =
            out.axes.iter().map(|a| a.values.len()).try_fold(1usize, |n, k| n.checked_mul(k)).unwrap_or(usize::MAX);
        if runs > MAX_RUNS {
            return Err(LabError::spec(format!("the grid has {runs} runs; at most {MAX_RUNS} are planned at once")));
        }
        Ok(out)
    }

    pub fn axes(&self) -> &[Axis] {
        &self.axes
    }

    pub fn base(&self) -> &[(String, String)] {
        &self.base
    }

    /// Reads a grid link: `g=1&key=value&key=v1|v2|...` (a full URL or a `#fragment` too). Every value
    /// with a `|` is an axis.
    pub fn from_link(link: &str) -> Result<Self> {
        let fragment = link.find('#').map_or(link, |i| &link[i + 1..]).trim().trim_start_matches(['?', '&']);
        let mut base = Vec::new();
        let mut axes = Vec::new();
        let mut version = None;
        for part in fragment.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| LabError::spec(format!("grid link part '{}' is not key=value", clip(part))))?;
            if k == GRID_KEY {
                version = Some(v);
            } else if v.contains(ALT) {
                axes.push(Axis { key: k.into(), values: v.split(ALT).map(str::to_string).collect() });
            } else {
                base.push((k.to_string(), v.to_string()));
            }
        }
        match version {
            None => return Err(LabError::spec(format!("a grid link starts with {GRID_KEY}={GRID_VERSION}"))),
            Some(v) if v != GRID_VERSION.to_string() => {
                return Err(LabError::spec(format!(
                    "unknown grid version '{}' (this build reads {GRID_VERSION})",
                    clip(v)
                )));
            }
            Some(_) => {}
        }
        Self::new(base, axes)
    }

    /// The canonical link: the version, the base pairs, then the axes, each in table order.
    pub fn to_link(&self) -> String {
        let mut out = format!("{GRID_KEY}={GRID_VERSION}");
        for (k, v) in &self.base {
            let _ = write!(out, "&{k}={v}");
        }
        for a in &self.axes {
            let _ = write!(out, "&{}={}", a.key, a.values.join(&ALT.to_string()));
        }
        out
    }

    /// Reads a grid file's content, parsed to a JSON value (TOML files arrive converted): an object
    /// whose `base` is a link (or `spec` a JSON spec, read by `spec_file`), and whose other entries are
    /// link keys: a list is an axis, a single value a base pair.
    pub fn from_value(value: &Value, spec_file: &dyn Fn(&str) -> Result<ExperimentSpec>) -> Result<Self> {
        let Value::Object(map) = value else {
            return Err(LabError::spec("a grid file holds one table (TOML) or object (JSON) of keys"));
        };
        let mut base: Vec<(String, String)> = Vec::new();
        let mut axes = Vec::new();
        let link_pairs = |link: &str| -> Result<Vec<(String, String)>> {
            let fragment = link.find('#').map_or(link, |i| &link[i + 1..]);
            fragment
                .split('&')
                .filter(|p| !p.trim().is_empty())
                .map(|p| {
                    p.split_once('=')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .ok_or_else(|| LabError::spec(format!("base link part '{}' is not key=value", clip(p))))
                })
                .collect()
        };
        for (key, v) in map {
            match key.as_str() {
                "base" => {
                    let Value::String(link) = v else {
                        return Err(LabError::spec("the grid's base is an experiment link (a string)"));
                    };
                    if link.split(['#', '&']).any(|p| p.trim().starts_with("j=")) {
                        base.extend(link_pairs(&ExperimentSpec::from_link(link)?.to_link())?);
                    } else {
                        base.extend(link_pairs(link)?);
                    }
                }
                "spec" => {
                    let Value::String(path) = v else {
                        return Err(LabError::spec("the grid's spec is the path of a JSON spec file"));
                    };
                    base.extend(link_pairs(&spec_file(path)?.to_link())?);
                }
                _ => match v {
                    Value::Array(items) => axes.push(Axis {
                        key: key.clone(),
                        values: items.iter().map(|x| scalar(key, x)).collect::<Result<_>>()?,
                    }),
                    x => base.push((key.clone(), scalar(key, x)?)),
                },
            }
        }
        // A key both in the base link and as an entry: the entry is the grid's own choice.
        base.retain(|(k, _)| !axes.iter().any(|a: &Axis| &a.key == k));
        let mut deduped: Vec<(String, String)> = Vec::new();
        for (k, v) in base.into_iter().rev() {
            if !deduped.iter().any(|(d, _)| *d == k) {
                deduped.push((k, v));
            }
        }
        Self::new(deduped, axes)
    }

    /// Reads a JSON grid file.
    pub fn from_json(text: &str, spec_file: &dyn Fn(&str) -> Result<ExperimentSpec>) -> Result<Self> {
        let value: Value = serde_json::from_str(text).map_err(|e| LabError::spec(format!("bad grid JSON: {e}")))?;
        Self::from_value(&value, spec_file)
    }

    /// The runs in plan order: the axes' product, the first axis slowest. Specs equal to an earlier
    /// run's (an axis key that does not apply, such as `alpha` for BadNets) are left out.
    pub fn plan(&self) -> Result<Vec<PlannedRun>> {
        let (runs, used) = self.plan_and_uses()?;
        if let Some(i) = used.iter().position(|u| !u) {
            let (k, _) = &self.base[i];
            return Err(LabError::spec(format!(
                "grid key '{k}' applies to no run: it belongs to a method no run chooses{}",
                owner_hint(k)
            )));
        }
        Ok(runs)
    }

    /// This grid without the base keys that apply to no run (the page builds grids from the current
    /// experiment, whose attack's keys may not apply to the attacks compared).
    pub fn prune(self) -> Result<Self> {
        let (_, used) = self.plan_and_uses()?;
        let base = self.base.into_iter().zip(used).filter(|(_, u)| *u).map(|(p, _)| p).collect();
        Self::new(base, self.axes)
    }

    /// The runs, and for each base pair whether it applied to some run.
    fn plan_and_uses(&self) -> Result<(Vec<PlannedRun>, Vec<bool>)> {
        let mut runs: Vec<PlannedRun> = Vec::new();
        let mut models: Vec<String> = Vec::new();
        let mut used = vec![false; self.base.len()];
        let total: usize = self.axes.iter().map(|a| a.values.len()).product();
        for n in 0..total {
            // Mixed-radix digits of n, the last axis fastest.
            let mut rest = n;
            let mut choice = vec![0; self.axes.len()];
            for (i, a) in self.axes.iter().enumerate().rev() {
                choice[i] = rest % a.values.len();
                rest /= a.values.len();
            }
            let axis_pairs: Vec<(&str, &str)> =
                self.axes.iter().zip(&choice).map(|(a, &c)| (a.key.as_str(), a.values[c].as_str())).collect();
            let mut pairs: Vec<(&str, &str)> = self.base.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            pairs.extend(&axis_pairs);
            let describe = || axis_pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
            let (spec, applied) = build(&pairs).map_err(|e| match e {
                LabError::Spec(m) => LabError::spec(format!("grid run {n} ({}): {m}", describe())),
                e => e,
            })?;
            for (i, _) in self.base.iter().enumerate() {
                used[i] |= applied[i];
            }
            let link = spec.to_link();
            if runs.iter().any(|r| r.link == link) {
                continue;
            }
            let values = axis_pairs
                .iter()
                .enumerate()
                .filter(|(i, _)| applied[self.base.len() + i])
                .map(|(_, (k, v))| (k.to_string(), v.to_string()))
                .collect();
            let key = training_key(&spec);
            let model = models.iter().position(|m| *m == key).unwrap_or_else(|| {
                models.push(key);
                models.len() - 1
            });
            runs.push(PlannedRun { index: runs.len(), hash: hash(&link), link, spec, values, model });
        }
        Ok((runs, used))
    }
}

/// " (choose X)" for a key of a detector or repair, to say what the grid lacks.
fn owner_hint(key: &str) -> String {
    let owner = |reg: &[crate::lab::params::MethodInfo]| {
        reg.iter().find(|m| (m.params)().iter().any(|p| p.key == key)).map(|m| m.name)
    };
    if let Some(d) = owner(DetectSpec::REGISTRY) {
        return format!(" (detect={d})");
    }
    if let Some(r) = owner(RepairSpec::REGISTRY) {
        return format!(" (repair={r})");
    }
    if let Some(a) = owner(AttackMethod::REGISTRY) {
        return format!(" (attack={a})");
    }
    String::new()
}

/// A TOML/JSON scalar as link text.
fn scalar(key: &str, v: &Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(if *b { "1" } else { "0" }.to_string()),
        _ => Err(LabError::spec(format!("grid key '{}': a value is a string, a number or a list of them", clip(key)))),
    }
}

/// The spec of one run, and which of `pairs` applied to it: choices first (dataset, attack, trigger,
/// detectors, repairs), then the keys that the chosen methods have.
fn build(pairs: &[(&str, &str)]) -> Result<(ExperimentSpec, Vec<bool>)> {
    let every = ExperimentSpec::every_param();
    let selects = |k: &str| every.iter().any(|p| p.key == k && p.selects);
    let choices: Vec<(&str, &str)> = pairs.iter().copied().filter(|(k, _)| selects(k)).collect();
    let chosen = ExperimentSpec::default().with_overrides(&choices)?;
    let has: Vec<&str> = chosen.params().iter().map(|p| p.key).collect();
    let applied: Vec<bool> = pairs.iter().map(|(k, _)| selects(k) || has.contains(k)).collect();
    let rest: Vec<(&str, &str)> =
        pairs.iter().zip(&applied).filter(|((k, _), a)| **a && !selects(k)).map(|(p, _)| *p).collect();
    Ok((chosen.with_overrides(&rest)?, applied))
}

/// How many distinct trained models `runs` need (their `model` indices count from 0).
pub fn model_count(runs: &[PlannedRun]) -> usize {
    runs.iter().map(|r| r.model).max().map_or(0, |m| m + 1)
}

/// What decides the trained model: the spec without its post-training sections.
pub fn training_key(spec: &ExperimentSpec) -> String {
    let mut s = spec.clone();
    s.detect = DetectSpec::default();
    s.repair = RepairSpec::default();
    s.finetune = TransferSpec::default();
    s.sanitize = crate::lab::defense::SanitizeSpec::default();
    s.to_link()
}

/// 16 hex digits of the SHA-256 of a link: a report's file name.
pub fn hash(link: &str) -> String {
    Sha256::digest(link.as_bytes())[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `runs` (a plan or any part of it) in order of their models, training each model once, and
/// hands each report to `done` as soon as it exists. A run the spec makes impossible (e.g. more
/// clean-label poisons than the target class has) reaches `done` as its error and the grid goes on;
/// cancelling, a failing device or unreadable data end it. Returns how many models were trained.
pub async fn execute(
    runs: &[&PlannedRun],
    source: &DataSource,
    device: &Device,
    device_name: &str,
    host: &mut dyn Host,
    done: &mut dyn FnMut(&PlannedRun, Result<Report>) -> Result<()>,
) -> Result<usize> {
    let mut models: Vec<usize> = Vec::new();
    for r in runs {
        if !models.contains(&r.model) {
            models.push(r.model);
        }
    }
    let mut trainings = 0;
    for &m in &models {
        let group: Vec<&&PlannedRun> = runs.iter().filter(|r| r.model == m).collect();
        let trained = match run::train_model(&group[0].spec, source, device, host).await {
            Ok(t) => t,
            Err(e @ LabError::Spec(_)) => {
                for r in group {
                    done(r, Err(e.clone()))?;
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        trainings += 1;
        for r in group {
            match run::finish(&r.spec, &trained, source, device, device_name, host).await {
                Ok(report) => done(r, Ok(report))?,
                Err(e @ LabError::Spec(_)) => done(r, Err(e))?,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(trainings)
}

/// A repair's figures in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepairResult {
    pub name: String,
    pub clean_acc: f64,
    pub asr: f64,
    pub robust_acc: f64,
    pub der: f64,
}

/// A detector's verdict in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorResult {
    pub name: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Wall time of one run, seconds (tables that compare runs ignore it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSeconds {
    pub train: f64,
    pub total: f64,
}

/// One run of a grid, reduced to what the tables show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub index: usize,
    pub link: String,
    pub hash: String,
    pub model: usize,
    pub values: Vec<(String, String)>,
    pub clean_acc: f64,
    pub asr: f64,
    pub robust_acc: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repairs: Vec<RepairResult>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detectors: Vec<DetectorResult>,
    pub seconds: RunSeconds,
}

impl RunResult {
    pub fn new(run: &PlannedRun, r: &Report) -> Self {
        let truth = Truth { target: r.spec.attack.target_label, backdoored: r.spec.attack.method.name() != "none" };
        Self {
            index: run.index,
            link: run.link.clone(),
            hash: run.hash.clone(),
            model: run.model,
            values: run.values.clone(),
            clean_acc: r.final_metrics.clean_acc,
            asr: r.final_metrics.asr,
            robust_acc: r.final_metrics.robust_acc,
            repairs: r
                .repair
                .rows()
                .into_iter()
                .map(|x| RepairResult {
                    name: x.name.to_string(),
                    clean_acc: x.clean_acc,
                    asr: x.asr,
                    robust_acc: x.robust_acc,
                    der: x.der,
                })
                .collect(),
            detectors: r
                .detect
                .verdicts(&truth)
                .into_iter()
                .map(|(name, verdict)| DetectorResult { name: name.to_string(), verdict })
                .collect(),
            seconds: RunSeconds { train: r.seconds.train, total: r.seconds.total },
        }
    }
}

/// A whole grid's results: RESULTS.json, which the page opens too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridResults {
    pub version: u32,
    /// The grid's canonical link.
    pub grid: String,
    pub runs: Vec<RunResult>,
    /// Distinct trained models the plan needs.
    pub models: usize,
    /// Models actually trained (several shards may train the same one), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trainings: Option<usize>,
    /// Plan indices with no report (a partial merge).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<usize>,
}

impl GridResults {
    /// Reads RESULTS.json, checking that it is one and that its runs belong to its grid.
    pub fn from_json(text: &str) -> Result<Self> {
        let r: Self =
            serde_json::from_str(text).map_err(|e| LabError::spec(format!("not a grid results file: {e}")))?;
        if r.version != RESULTS_VERSION {
            return Err(LabError::spec(format!(
                "grid results version {} (this build reads {RESULTS_VERSION})",
                r.version
            )));
        }
        Grid::from_link(&r.grid)?;
        Ok(r)
    }

    /// The matrix of these results.
    pub fn matrix(&self) -> Result<Matrix> {
        Ok(Matrix::new(&Grid::from_link(&self.grid)?, &self.runs))
    }
}

/// Mean and sample standard deviation of a figure over the runs of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Stat {
    pub fn of(xs: &[f64]) -> Option<Self> {
        if xs.is_empty() {
            return None;
        }
        let n = xs.len();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let std =
            if n < 2 { 0.0 } else { (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() };
        Some(Self { mean, std, n })
    }

    /// In percent, "96.1 ± 0.4" (no ± for one run).
    pub fn pct(&self) -> String {
        if self.n < 2 {
            format!("{:.1}", 100.0 * self.mean)
        } else {
            format!("{:.1} ± {:.1}", 100.0 * self.mean, 100.0 * self.std)
        }
    }

    /// As a plain number, "0.95 ± 0.02".
    pub fn num(&self) -> String {
        if self.n < 2 { format!("{:.2}", self.mean) } else { format!("{:.2} ± {:.2}", self.mean, self.std) }
    }
}

/// What a matrix column shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// The model as trained.
    Undefended,
    Repair,
    Detector,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// `none`, or the repair's or detector's link name.
    pub name: String,
    pub title: String,
    pub kind: ColumnKind,
}

/// One cell: the runs of a row that have the column's defense, over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub n: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clean_acc: Option<Stat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asr: Option<Stat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robust_acc: Option<Stat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub der: Option<Stat>,
    /// Detectors: how right the verdict was (0–1), its F1 and AUROC where it has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<Stat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f1: Option<Stat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auroc: Option<Stat>,
    /// Detectors: what each run's verdict said, distinct, in run order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub said: Vec<String>,
    /// The runs' links, in plan order (a cell opens its experiment).
    pub links: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixRow {
    /// The row's values of the row axes.
    pub values: Vec<(String, String)>,
    pub cells: Vec<Cell>,
}

impl MatrixRow {
    /// The row's value of a row axis (none when that axis does not apply to the row's runs).
    pub fn value(&self, key: &str) -> Option<&str> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// BackdoorBench's leaderboard shape: rows are the settings that shape the trained model (the axes
/// other than the seed, the detectors and the repairs), columns the defenses; cells are mean ± std
/// over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    pub row_keys: Vec<String>,
    pub columns: Vec<Column>,
    pub rows: Vec<MatrixRow>,
}

/// Axis keys that are not rows: seeds are averaged over, defenses are columns.
fn is_row_key(key: &str) -> bool {
    key != SEED_KEY && key != DETECT.key && key != REPAIR.key
}

impl Matrix {
    pub fn new(grid: &Grid, runs: &[RunResult]) -> Self {
        let row_keys: Vec<String> = grid.axes().iter().map(|a| a.key.clone()).filter(|k| is_row_key(k)).collect();
        let mut columns =
            vec![Column { name: "none".into(), title: "no defense".into(), kind: ColumnKind::Undefended }];
        for m in RepairSpec::REGISTRY {
            if runs.iter().any(|r| r.repairs.iter().any(|x| x.name == m.name)) {
                columns.push(Column { name: m.name.into(), title: m.title.into(), kind: ColumnKind::Repair });
            }
        }
        for m in DetectSpec::REGISTRY {
            if runs.iter().any(|r| r.detectors.iter().any(|x| x.name == m.name)) {
                columns.push(Column { name: m.name.into(), title: m.title.into(), kind: ColumnKind::Detector });
            }
        }
        let row_of = |r: &RunResult| -> Vec<(String, String)> {
            r.values.iter().filter(|(k, _)| is_row_key(k)).cloned().collect()
        };
        let mut rows: Vec<(Vec<(String, String)>, Vec<&RunResult>)> = Vec::new();
        for r in runs {
            let values = row_of(r);
            match rows.iter_mut().find(|(v, _)| *v == values) {
                Some((_, members)) => members.push(r),
                None => rows.push((values, vec![r])),
            }
        }
        let rows = rows
            .into_iter()
            .map(|(values, members)| MatrixRow { values, cells: columns.iter().map(|c| cell(c, &members)).collect() })
            .collect();
        Self { row_keys, columns, rows }
    }

    /// A markdown table, one line per row.
    pub fn markdown(&self) -> String {
        let mut s = String::from("|");
        for k in &self.row_keys {
            let _ = write!(s, " {k} |");
        }
        for c in &self.columns {
            let _ = write!(s, " {} |", c.title);
        }
        s.push_str("\n|");
        s.push_str(&"---|".repeat(self.row_keys.len() + self.columns.len()));
        for row in &self.rows {
            s.push_str("\n|");
            for k in &self.row_keys {
                let v = row.value(k).unwrap_or("—");
                let _ = write!(s, " {v} |");
            }
            for (c, cell) in self.columns.iter().zip(&row.cells) {
                let _ = write!(s, " {} |", cell.text(c.kind));
            }
        }
        s.push('\n');
        s
    }

    /// CSV, one line per cell: the row's values, the column, the run count, then each figure's mean and
    /// standard deviation (fractions, empty where the column has no such figure).
    pub fn csv(&self) -> String {
        let mut s = String::new();
        for k in &self.row_keys {
            let _ = write!(s, "{k},");
        }
        s.push_str("defense,kind,n");
        for f in ["clean_acc", "asr", "robust_acc", "der", "score", "f1", "auroc"] {
            let _ = write!(s, ",{f}_mean,{f}_std");
        }
        s.push_str(",said\n");
        for row in &self.rows {
            for (c, cell) in self.columns.iter().zip(&row.cells) {
                if cell.n == 0 {
                    continue;
                }
                for k in &self.row_keys {
                    let v = row.value(k).unwrap_or_default();
                    let _ = write!(s, "{},", csv_field(v));
                }
                let kind = match c.kind {
                    ColumnKind::Undefended => "undefended",
                    ColumnKind::Repair => "repaired",
                    ColumnKind::Detector => "detector",
                };
                let _ = write!(s, "{},{kind},{}", c.name, cell.n);
                for st in [cell.clean_acc, cell.asr, cell.robust_acc, cell.der, cell.score, cell.f1, cell.auroc] {
                    match st {
                        Some(x) => {
                            let _ = write!(s, ",{},{}", x.mean, x.std);
                        }
                        None => s.push_str(",,"),
                    }
                }
                let _ = writeln!(s, ",{}", csv_field(&cell.said.join("; ")));
            }
        }
        s
    }
}

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v.to_string() }
}

impl Cell {
    /// The cell as one line of text: CA / ASR (and DER) for the model columns, the verdict for detectors.
    pub fn text(&self, kind: ColumnKind) -> String {
        if self.n == 0 {
            return "—".into();
        }
        let get = |s: &Option<Stat>| s.map_or("—".to_string(), |x| x.pct());
        match kind {
            ColumnKind::Undefended => format!("CA {} · ASR {}", get(&self.clean_acc), get(&self.asr)),
            ColumnKind::Repair => format!(
                "CA {} · ASR {} · DER {}",
                get(&self.clean_acc),
                get(&self.asr),
                self.der.map_or("—".into(), |x| x.num())
            ),
            ColumnKind::Detector => {
                let mut t = self.said.join("; ");
                if let Some(f1) = self.f1 {
                    let _ = write!(t, " · F1 {}", f1.num());
                }
                if let Some(a) = self.auroc {
                    let _ = write!(t, " · AUROC {}", a.num());
                }
                t
            }
        }
    }
}

fn cell(c: &Column, members: &[&RunResult]) -> Cell {
    let mut out = Cell {
        n: 0,
        clean_acc: None,
        asr: None,
        robust_acc: None,
        der: None,
        score: None,
        f1: None,
        auroc: None,
        said: Vec::new(),
        links: Vec::new(),
    };
    let (mut ca, mut asr, mut ra, mut der, mut score, mut f1, mut auroc) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut models_seen: Vec<usize> = Vec::new();
    for r in members {
        match c.kind {
            // One value per trained model: runs that share a model share these figures.
            ColumnKind::Undefended => {
                if models_seen.contains(&r.model) {
                    continue;
                }
                models_seen.push(r.model);
                ca.push(r.clean_acc);
                asr.push(r.asr);
                ra.push(r.robust_acc);
            }
            ColumnKind::Repair => {
                let Some(x) = r.repairs.iter().find(|x| x.name == c.name) else { continue };
                ca.push(x.clean_acc);
                asr.push(x.asr);
                ra.push(x.robust_acc);
                der.push(x.der);
            }
            ColumnKind::Detector => {
                let Some(x) = r.detectors.iter().find(|x| x.name == c.name) else { continue };
                score.extend(x.verdict.score);
                f1.extend(x.verdict.f1);
                auroc.extend(x.verdict.auroc);
                if !out.said.contains(&x.verdict.said) {
                    out.said.push(x.verdict.said.clone());
                }
            }
        }
        out.n += 1;
        out.links.push(r.link.clone());
    }
    out.clean_acc = Stat::of(&ca);
    out.asr = Stat::of(&asr);
    out.robust_acc = Stat::of(&ra);
    out.der = Stat::of(&der);
    out.score = Stat::of(&score);
    out.f1 = Stat::of(&f1);
    out.auroc = Stat::of(&auroc);
    out
}
