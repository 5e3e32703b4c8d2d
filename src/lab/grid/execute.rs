//! Running a plan: each shared model trained once, each run finished from it.

use super::*;

/// Runs `runs` (a plan or any part of it) in order of their models, training each model once, and
/// hands each report to `done` as soon as it exists. A run the spec makes impossible (e.g. more
/// clean-label poisons than the target class has) reaches `done` as its error and the grid goes on;
/// cancelling, a failing device or unreadable data end it. Returns how many models were trained.
pub async fn execute(
    runs: &[&PlannedRun],
    source: &DataSource,
    device: &Device,
    kind: DeviceKind,
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
            match run::finish(&r.spec, &trained, source, device, kind, host).await {
                Ok(report) => done(r, Ok(report))?,
                Err(e @ LabError::Spec(_)) => done(r, Err(e))?,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(trainings)
}
