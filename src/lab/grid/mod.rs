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
use crate::lab::device::DeviceKind;
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

mod execute;
mod matrix;
mod results;

pub use execute::execute;
pub use matrix::{Cell, Column, ColumnKind, Matrix, MatrixRow, Stat};
pub use results::{DetectorResult, GridResults, RepairResult, RunResult, RunSeconds};
