//! The process around a command: logging, the panic hook, and the Tokio runtimes that
//! keep query work, commits and analyst SQL apart.

/// The one panic a dependency raises and catches by design: deltalake aborts the
/// buffered upload of a data file whose completion failed (a full disk, a failed
/// write), object_store's `BufWriter::abort` panics once shutdown has begun, and
/// deltalake catches that panic and returns the write's error. It is not a failure of
/// ours and must not read like one on stderr.
fn is_caught_upload_abort(info: &std::panic::PanicHookInfo<'_>) -> bool {
    let from_buffered = info
        .location()
        .is_some_and(|l| l.file().contains("object_store") && l.file().ends_with("buffered.rs"));
    let text = info
        .payload()
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str));
    from_buffered && text == Some("Already shut down")
}

/// The runtimes of query work (see `main`).
pub struct Runtimes {
    /// Reports, scheduled exports.
    pub query: tokio::runtime::Handle,
    /// Commits of pushes, the access log.
    pub commit: tokio::runtime::Handle,
    /// Analyst SQL, at a lower priority.
    pub sql: tokio::runtime::Handle,
}

/// Worker threads of analyst SQL. A plan that computes without waiting holds its
/// thread until it yields, which a CPU-bound operator seldom does; more threads than
/// cores (the kernel time-slices them) keep a thread free for a short query while long
/// ones run.
const SQL_THREADS: usize = 8;

/// Nice level of the analyst-SQL threads: under contention a thread at nice 10 gets
/// about a tenth of the CPU time of one at nice 0 (the kernel's weights 110 and 1024).
const SQL_THREAD_NICE: i32 = 10;

/// Lower the calling thread's priority to [`SQL_THREAD_NICE`] (Linux: the priority of a
/// thread id is the thread's own). Failure only costs fairness: it is logged.
fn lower_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), SQL_THREAD_NICE) {
        tracing::warn!(error = %e, "could not lower the priority of an analyst-SQL thread");
    }
}

/// Stack of every runtime thread.
const QUERY_STACK_BYTES: usize = 16 * 1024 * 1024;

/// Logging to stderr (filter: `GIAMSAT_LOG`) and the panic hook.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GIAMSAT_LOG").unwrap_or_else(|_| {
        // deltalake logs a failed commit at error level before returning it; the
        // command reports that error itself, once
        tracing_subscriber::EnvFilter::new(
            "warn,buoyant_kernel=off,deltalake_core=error,deltalake_core::kernel::transaction=off",
        )
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    // A panic in a query task is answered (400/500) and the server goes on: one log
    // line, not a backtrace on stderr.
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string().replace('\n', " ");
        if is_caught_upload_abort(info) {
            tracing::debug!(panic = %msg, "an upload that failed to complete was not aborted");
        } else {
            tracing::error!(panic = %msg, "panic");
        }
    }));
}

/// Build the runtimes, run the command `f` on the I/O runtime, then stop them all.
pub fn run<F, Fut>(f: F) -> anyhow::Result<()>
where
    F: FnOnce(Runtimes) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    // Query threads run plans whose depth the SQL limits bound (queries::guard);
    // 16 MiB holds every plan within them with room to spare.
    let query_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("giamsat-query")
        .thread_stack_size(QUERY_STACK_BYTES)
        .enable_all()
        .build()?;
    let io_rt = tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(QUERY_STACK_BYTES)
        .enable_all()
        .build()?;
    // analyst SQL: its own threads at a lower priority (nice), so the scheduler
    // gives the cores to reports, pushes and the HTTP threads first
    let sql_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(SQL_THREADS)
        .thread_name("giamsat-sql")
        .thread_stack_size(QUERY_STACK_BYTES)
        .on_thread_start(lower_priority)
        .enable_all()
        .build()?;
    // the writers (group commits of pushes, the access log): their own threads, so
    // reports on the query threads never hold back an acknowledgement
    let commit_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("giamsat-commit")
        .thread_stack_size(QUERY_STACK_BYTES)
        .enable_all()
        .build()?;
    let rts = Runtimes {
        query: query_rt.handle().clone(),
        sql: sql_rt.handle().clone(),
        commit: commit_rt.handle().clone(),
    };
    let r = io_rt.block_on(f(rts));
    io_rt.shutdown_background();
    query_rt.shutdown_background();
    sql_rt.shutdown_background();
    commit_rt.shutdown_background();
    r
}
