//! The Compare step's worker pool: a grid's runs split over up to four lab workers of its own (the main
//! worker stays free), each training its share of the models once; their results come back as they
//! finish, and a failed or cancelled grid stops them all.

use super::*;

thread_local! {
    /// The Compare step's own lab workers while a grid runs (the main worker stays free).
    static POOL: RefCell<Vec<Worker>> = const { RefCell::new(Vec::new()) };
}

/// Most workers a grid uses: each holds a copy of the engine and the data.
pub(super) const MAX_WORKERS: usize = 4;

pub(super) fn now() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now() / 1000.0).unwrap_or(0.0)
}

pub(super) fn stop_pool() {
    POOL.with(|p| p.borrow_mut().drain(..).for_each(|w| w.terminate()));
}

/// Starts `grid` in up to `MAX_WORKERS` fresh workers, the models dealt out round robin.
pub(super) fn start(c: Ctx, grid: &Grid, job: RwSignal<Option<Job>>) -> Result<(), String> {
    let plan = grid.plan().map_err(|e| e.to_string())?;
    let models = crate::lab::grid::model_count(&plan);
    let cores = web_sys::window().map(|w| w.navigator().hardware_concurrency() as usize).unwrap_or(1);
    let k = cores.clamp(1, MAX_WORKERS).min(models.max(1));
    stop_pool();
    let link = grid.to_link();
    job.set(Some(Job {
        results: GridResults {
            version: RESULTS_VERSION,
            grid: link.clone(),
            runs: Vec::new(),
            models,
            trainings: Some(0),
            missing: (0..plan.len()).collect(),
        },
        planned: plan.len(),
        workers: k,
        finished: 0,
        running: true,
        started: now(),
        seconds: 0.0,
        failed: Vec::new(),
    }));
    let shares: Vec<Vec<usize>> =
        (0..k).map(|w| plan.iter().filter(|r| r.model % k == w).map(|r| r.index).collect()).collect();
    spawn_worker(c, job, std::rc::Rc::new(Share { link, shares, device: c.preference() }), 0)
}

/// What each worker of a grid gets: the grid, and its runs.
pub(super) struct Share {
    link: String,
    shares: Vec<Vec<usize>>,
    device: crate::web::protocol::DevicePreference,
}

/// Starts worker `w`; once it is ready it gets its share and the next worker starts. One at a time:
/// Chromium aborted the engine's download in one of two workers that fetched it at the same moment.
pub(super) fn spawn_worker(
    c: Ctx,
    job: RwSignal<Option<Job>>,
    share: std::rc::Rc<Share>,
    w: usize,
) -> Result<(), String> {
    let worker = Worker::new("./worker_loader.js").map_err(|e| format!("a lab worker could not start: {e:?}"))?;
    let me = worker.clone();
    // A worker whose engine never loads says nothing at all: give it a minute.
    let ready = std::rc::Rc::new(std::cell::Cell::new(false));
    let waiting = ready.clone();
    gloo_timers::callback::Timeout::new(60_000, move || {
        if !waiting.get() && job.with_untracked(|j| j.as_ref().is_some_and(|j| j.running)) {
            fail(c, job, "a lab worker did not start within a minute; try again".into());
        }
    })
    .forget();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        let text = e.data().as_string().unwrap_or_default();
        match serde_json::from_str::<FromWorker>(&text) {
            // The worker listens once it has loaded: only then does it get its share.
            Ok(FromWorker::Ready { .. }) => {
                ready.set(true);
                let msg =
                    ToWorker::Grid { grid: share.link.clone(), runs: share.shares[w].clone(), device: share.device };
                let _ = me.post_message(&JsValue::from_str(&msg.to_json()));
                if w + 1 < share.shares.len() && job.with_untracked(|j| j.as_ref().is_some_and(|j| j.running)) {
                    if let Err(e) = spawn_worker(c, job, share.clone(), w + 1) {
                        fail(c, job, e);
                    }
                }
            }
            Ok(FromWorker::GridRun { result }) => job.update(|j| {
                if let Some(j) = j {
                    j.results.missing.retain(|&i| i != result.index);
                    let at = j.results.runs.partition_point(|r| r.index < result.index);
                    j.results.runs.insert(at, *result);
                }
            }),
            Ok(FromWorker::GridRunFailed { index, message }) => job.update(|j| {
                if let Some(j) = j {
                    j.failed.push((index, message));
                }
            }),
            Ok(FromWorker::GridDone { trainings }) => {
                job.update(|j| {
                    if let Some(j) = j {
                        j.finished += 1;
                        j.results.trainings = Some(j.results.trainings.unwrap_or(0) + trainings);
                        if j.finished == j.workers {
                            j.running = false;
                            j.seconds = now() - j.started;
                        }
                    }
                });
                if job.with_untracked(|j| j.as_ref().is_some_and(|j| !j.running)) {
                    stop_pool();
                }
            }
            Ok(FromWorker::Failed { message }) => fail(c, job, format!("a grid run failed: {message}")),
            _ => {}
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    let on_error = Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |e: web_sys::ErrorEvent| {
        fail(c, job, format!("a grid worker stopped: {}", e.message()));
    });
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    POOL.with(|p| p.borrow_mut().push(worker));
    Ok(())
}

pub(super) fn fail(c: Ctx, job: RwSignal<Option<Job>>, message: String) {
    stop_pool();
    job.update(|j| {
        if let Some(j) = j {
            j.running = false;
        }
    });
    c.begin(Place::Compare);
    c.fail(Place::Compare, message);
}
