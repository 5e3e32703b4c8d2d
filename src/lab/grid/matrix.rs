//! The matrix of a grid's results: rows are the axes that shape the model, columns no defense, each
//! repair and each detector, cells mean ± std over seeds; as markdown and CSV.

use super::*;

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
