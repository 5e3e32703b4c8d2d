//! A run's figures in one row, and a whole grid's results (RESULTS.json).

use super::*;

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
