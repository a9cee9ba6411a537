//! YCSB's `Client` and `ClientThread`: N closed-loop client threads, each with its own
//! ZooKeeper session, an optional target throughput, `maxexecutiontime`, status lines and the
//! final report.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::RngExt;
use tokio::sync::watch;
use tokio::time::{sleep, sleep_until, Instant};

use super::db::{Db, Status, ZkConfig};
use super::measurements::{self, Measurement, Measurements, Timing};
use super::output;
use super::properties::{CommandLine, Phase};
use super::throttle::Throttle;
use super::workload::{Operation, ThreadState, Workload};

/// Everything a run needs, validated before anything connects.
pub struct Settings {
    phase: Phase,
    threads: usize,
    /// Operations per thread per second; `None` runs unthrottled.
    target_per_thread: Option<f64>,
    operation_count: u64,
    max_execution_time: Option<Duration>,
    status_interval: Option<Duration>,
    label: String,
    /// Where the results go (`exportfile`); stdout if `None`.
    pub export_file: Option<PathBuf>,
    workload: Workload,
    zookeeper: ZkConfig,
    measurements: Arc<measurements::Settings>,
}

impl Settings {
    /// Reads the client properties with YCSB's defaults.
    pub fn new(cl: &CommandLine) -> Result<Self> {
        let p = &cl.props;
        let workload = Workload::new(p)?;
        let zookeeper = ZkConfig::new(p, &workload.table)?;
        let measurements = Arc::new(measurements::Settings::new(p)?);
        let operation_count: u64 = match cl.phase {
            Phase::Run => p.number("operationcount", 0)?,
            Phase::Load if p.get("insertcount").is_some() => p.number("insertcount", 0)?,
            Phase::Load => p.number("recordcount", 0)?,
        };
        let max_execution_time: u64 = p.number("maxexecutiontime", 0)?;
        if operation_count == 0 && max_execution_time == 0 {
            let what = match cl.phase {
                Phase::Run => "operationcount",
                Phase::Load => "recordcount",
            };
            bail!(
                "{what} is 0 and there is no maxexecutiontime: the {} would never end",
                phase_name(cl.phase)
            );
        }
        if cl.phase == Phase::Run && !workload.has_operations() {
            bail!("readproportion, updateproportion, insertproportion and readmodifywriteproportion are all 0");
        }
        let mut threads: usize = p.number("threadcount", 1)?;
        if threads == 0 {
            bail!("threadcount must be at least 1");
        }
        if operation_count > 0 && threads as u64 > operation_count {
            eprintln!("Warning: the threadcount is bigger than recordcount, the threadcount will be recordcount!");
            threads = operation_count as usize;
        }
        let target: f64 = p.number("target", 0.0)?;
        let status_interval: u64 = p.number("status.interval", 10)?;
        Ok(Self {
            phase: cl.phase,
            threads,
            target_per_thread: (target > 0.0).then(|| target / threads as f64),
            operation_count,
            max_execution_time: (max_execution_time > 0)
                .then(|| Duration::from_secs(max_execution_time)),
            status_interval: p
                .flag("status", false)
                .then(|| Duration::from_secs(status_interval.max(1))),
            label: p.string("label", ""),
            export_file: p.get("exportfile").map(PathBuf::from),
            workload,
            zookeeper,
            measurements,
        })
    }

    /// Worker threads for the async runtime: no more than there are client threads or cores.
    pub fn runtime_threads(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.threads.min(cores)
    }
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Load => "load",
        Phase::Run => "run",
    }
}

/// What one client thread shares with the status line and the report.
struct ThreadShared {
    done: AtomicU64,
    todo: u64,
    measurements: Mutex<Measurements>,
}

/// Runs the phase and returns YCSB's text results.
pub async fn run(s: Settings) -> Result<String> {
    match s.phase {
        Phase::Load => s.zookeeper.create_chroot().await?,
        Phase::Run => s.zookeeper.check_chroot().await?,
    }
    let s = Arc::new(s);
    let threads: Vec<Arc<ThreadShared>> = (0..s.threads)
        .map(|i| {
            let mut todo = s.operation_count / s.threads as u64;
            if (i as u64) < s.operation_count % s.threads as u64 {
                todo += 1;
            }
            Arc::new(ThreadShared {
                done: AtomicU64::new(0),
                todo,
                measurements: Mutex::new(Measurements::new(s.measurements.clone())),
            })
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));

    eprintln!("Starting test.");
    let start = Instant::now();
    let (finished_tx, finished_rx) = watch::channel(false);
    let status = s.status_interval.map(|every| {
        tokio::spawn(status_lines(
            s.clone(),
            threads.clone(),
            start,
            every,
            finished_rx.clone(),
        ))
    });
    if let Some(limit) = s.max_execution_time {
        eprintln!(
            "Maximum execution time specified as: {} secs",
            limit.as_secs()
        );
        let stop = stop.clone();
        let mut finished = finished_rx.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = sleep(limit) => {
                    eprintln!("Maximum time elapsed. Requesting stop for the workload.");
                    stop.store(true, Ordering::Relaxed);
                }
                _ = finished.wait_for(|f| *f) => {}
            }
        });
    }
    let tasks: Vec<_> = threads
        .iter()
        .map(|t| tokio::spawn(client_thread(s.clone(), t.clone(), stop.clone())))
        .collect();
    let mut failure = None;
    for task in tasks {
        if let Err(e) = task.await.context("a client thread panicked")? {
            stop.store(true, Ordering::Relaxed);
            failure.get_or_insert(e);
        }
    }
    let runtime_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    finished_tx.send_replace(true);
    if let Some(status) = status {
        status.await.context("the status thread panicked")?;
    }
    if let Some(e) = failure {
        return Err(e);
    }

    let operations: u64 = threads.iter().map(|t| t.done.load(Ordering::Relaxed)).sum();
    let locked: Vec<_> = threads
        .iter()
        .map(|t| t.measurements.lock().expect("measurements lock"))
        .collect();
    let merged: Vec<Measurement> = measurements::merge(locked.iter().map(|m| &**m));
    Ok(output::results(
        runtime_ms,
        operations,
        &merged,
        &s.measurements,
    ))
}

/// One client thread (`ClientThread.run`): own session, closed loop, optional pacing.
async fn client_thread(
    s: Arc<Settings>,
    me: Arc<ThreadShared>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let db = match Db::connect(&s.zookeeper).await {
        Ok(db) => db,
        Err(e) => {
            stop.store(true, Ordering::Relaxed);
            return Err(e);
        }
    };
    let mut rng: StdRng = rand::make_rng();
    let tick_ns = s.target_per_thread.map(|per_s| (1e9 / per_s) as u64);
    if let (Some(tick_ns), Some(per_s)) = (tick_ns, s.target_per_thread) {
        // Spread the threads' first operations so they do not all hit the servers at once.
        if per_s <= 1000.0 && tick_ns > 0 {
            sleep(Duration::from_nanos(rng.random_range(0..tick_ns))).await;
        }
    }
    let mut state = s.workload.thread_state(rng);
    let w = &s.workload;
    let mut throttle = Throttle::new(Instant::now(), tick_ns);
    let mut done = 0u64;
    while (me.todo == 0 || done < me.todo) && !stop.load(Ordering::Relaxed) {
        let go_on = match s.phase {
            Phase::Load => insert_record(&s, &me, &throttle, &db, &mut state).await,
            Phase::Run => {
                transaction(w, &me, &throttle, &db, &mut state).await;
                true
            }
        };
        if !go_on {
            break;
        }
        done += 1;
        me.done.store(done, Ordering::Relaxed);
        throttle.wait(done).await;
    }
    throttle.clear();
    let cleanup = Instant::now();
    db.cleanup().await;
    me.measurements
        .lock()
        .expect("measurements lock")
        .measure("CLEANUP", ended(&throttle, cleanup));
    Ok(())
}

/// Runs `call` and records its latency and status under `op`, from its start and from when
/// the throttle schedule wanted it started.
async fn timed(
    me: &ThreadShared,
    throttle: &Throttle,
    op: &str,
    call: impl Future<Output = Status>,
) -> Status {
    let start = Instant::now();
    let status = call.await;
    me.measurements
        .lock()
        .expect("measurements lock")
        .record(op, status, ended(throttle, start));
    status
}

/// The timing of a call that started at `start` and has just ended.
fn ended(throttle: &Throttle, start: Instant) -> Timing {
    Timing {
        intended: throttle.intended(start).into_std(),
        start: start.into_std(),
        end: std::time::Instant::now(),
    }
}

/// `CoreWorkload.doInsert`: one load-phase record, with the configured retries. `false` stops
/// the thread, as in YCSB.
async fn insert_record(
    s: &Settings,
    me: &ThreadShared,
    throttle: &Throttle,
    db: &Db,
    state: &mut ThreadState,
) -> bool {
    let w = &s.workload;
    let key = w.next_load_key();
    let values = w.all_values(state);
    let mut attempts = 0;
    loop {
        if timed(me, throttle, "INSERT", db.insert(&key, &values)).await == Status::Ok {
            return true;
        }
        attempts += 1;
        if attempts > w.insertion_retry_limit {
            eprintln!(
                "Error inserting, not retrying any more. number of attempts: {attempts}\
                 Insertion Retry Limit: {}",
                w.insertion_retry_limit
            );
            return w.insertion_keep_going;
        }
        eprintln!("Retrying insertion, retry count: {attempts}");
        let factor = 0.8 + 0.4 * rand::random::<f64>();
        sleep(Duration::from_secs_f64(
            w.insertion_retry_interval as f64 * factor,
        ))
        .await;
    }
}

/// `CoreWorkload.doTransaction`: one operation of the mix.
async fn transaction(
    w: &Workload,
    me: &ThreadShared,
    throttle: &Throttle,
    db: &Db,
    state: &mut ThreadState,
) {
    match w.next_operation(state) {
        Operation::Read => {
            let key = w.next_key(state);
            timed(me, throttle, "READ", db.read(&key)).await;
        }
        Operation::Update => {
            let key = w.next_key(state);
            let values = w.update_values(state);
            timed(me, throttle, "UPDATE", db.update(&key, &values)).await;
        }
        Operation::Insert => {
            let (n, key) = w.begin_insert();
            let values = w.all_values(state);
            timed(me, throttle, "INSERT", db.insert(&key, &values)).await;
            w.finish_insert(n);
        }
        Operation::ReadModifyWrite => {
            let key = w.next_key(state);
            let values = w.update_values(state);
            let start = Instant::now();
            timed(me, throttle, "READ", db.read(&key)).await;
            timed(me, throttle, "UPDATE", db.update(&key, &values)).await;
            me.measurements
                .lock()
                .expect("measurements lock")
                .measure("READ-MODIFY-WRITE", ended(throttle, start));
        }
    }
}

/// `StatusThread`: a line every interval and a last one when all threads are done.
async fn status_lines(
    s: Arc<Settings>,
    threads: Vec<Arc<ThreadShared>>,
    start: Instant,
    every: Duration,
    mut finished: watch::Receiver<bool>,
) {
    let mut deadline = start + every;
    let mut interval_start = start;
    let mut last_total = 0;
    loop {
        let now = Instant::now();
        last_total = print_status(&s, &threads, start, interval_start, now, last_total);
        let done = tokio::select! {
            _ = sleep_until(deadline) => false,
            _ = finished.wait_for(|f| *f) => true,
        };
        interval_start = now;
        deadline += every;
        if done {
            break;
        }
    }
    print_status(
        &s,
        &threads,
        start,
        interval_start,
        Instant::now(),
        last_total,
    );
}

fn print_status(
    s: &Settings,
    threads: &[Arc<ThreadShared>],
    start: Instant,
    interval_start: Instant,
    now: Instant,
    last_total: u64,
) -> u64 {
    let total: u64 = threads.iter().map(|t| t.done.load(Ordering::Relaxed)).sum();
    let todo: u64 = threads
        .iter()
        .map(|t| t.todo.saturating_sub(t.done.load(Ordering::Relaxed)))
        .sum();
    let parts = threads.iter().flat_map(|t| {
        t.measurements
            .lock()
            .expect("measurements lock")
            .take_interval()
    });
    let intervals = measurements::merge_intervals(parts.collect::<Vec<_>>());
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    eprintln!(
        "{}",
        output::status_line(&output::Status {
            label: &s.label,
            now: SystemTime::now(),
            elapsed_ms: ms(now - start),
            total_ops: total,
            todo_ops: todo,
            interval_ops: total - last_total,
            interval_ms: ms(now - interval_start),
            intervals: &intervals,
            histogram: s.measurements.histogram.is_some(),
        })
    );
    total
}
