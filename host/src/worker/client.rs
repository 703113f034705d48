//! The host side of an isolated worker: spawns `commute worker --library PATH`, opens one
//! function in it and calls it over the framed protocol, with a time limit on every answer.
//!
//! Whatever happens to the worker — a segfault, an abort (out of memory under a memory cap), a
//! hang, an exit — becomes a [`WorkerError`] naming the plugin, the function, what the host was
//! asking for and how the worker ended. The worker's stderr passes through to the host's stderr;
//! its last lines are kept to quote in that error.

use super::protocol::{
    encode_call, read_frame, write_frame, ProtocolError, Reply, Request, PROTOCOL_VERSION,
};
use super::{WorkerError, WorkerOptions};
use commute_sdk::abi::client::ItemResult;
use commute_sdk::{Context, FunctionKind, FunctionSpec, Value};
use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader, Write as _};
#[cfg(target_os = "linux")]
use std::os::fd::AsFd as _;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a worker may take to exit once the host closed its input or saw its output end.
const EXIT_GRACE: Duration = Duration::from_secs(3);
/// The size asked for the pipes to and from a worker (Linux caps it at `/proc/sys/fs/pipe-max-size`,
/// 1 MiB by default).
#[cfg(target_os = "linux")]
const PIPE_SIZE: usize = 1 << 20;
/// Lines of the worker's stderr kept for an error message.
const LAST_WORDS: usize = 4;

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCause {
    /// Killed by a signal (Unix).
    Signal(i32),
    /// Exited with a status code.
    Code(i32),
    /// Still running after its output ended (it was killed), or the status was unavailable.
    Unknown,
}

impl ExitCause {
    fn of(status: ExitStatus) -> ExitCause {
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt as _;
            if let Some(signal) = status.signal() {
                return ExitCause::Signal(signal);
            }
        }
        status.code().map_or(ExitCause::Unknown, ExitCause::Code)
    }
}

impl std::fmt::Display for ExitCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            ExitCause::Signal(s) => {
                let what = match s {
                    11 => " (SIGSEGV, a segmentation fault: an invalid memory access)",
                    6 => " (SIGABRT: the plugin aborted, possibly out of memory)",
                    9 => " (SIGKILL: killed from outside, often by the kernel's out-of-memory killer)",
                    7 => " (SIGBUS, a bus error: an invalid memory access)",
                    4 => " (SIGILL, an illegal instruction)",
                    8 => " (SIGFPE, an arithmetic fault)",
                    15 => " (SIGTERM: terminated from outside)",
                    _ => "",
                };
                write!(f, "killed by signal {s}{what}")
            }
            ExitCause::Code(c) => write!(f, "the worker exited with status {c}"),
            ExitCause::Unknown => f.write_str("the worker closed its output and did not exit; it was killed"),
        }
    }
}

/// `30 s`, `2.5 s`, `250 ms`.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The last lines a worker wrote on stderr, and a signal when it closed stderr.
struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    closed: Receiver<()>,
}

impl StderrTail {
    /// Forwards `stderr` line by line to the host's stderr, keeping the last few lines.
    fn forward(stderr: std::process::ChildStderr) -> StderrTail {
        let lines = Arc::new(Mutex::new(VecDeque::with_capacity(LAST_WORDS)));
        let (done, closed) = mpsc::channel();
        let keep = Arc::clone(&lines);
        let spawned = std::thread::Builder::new().name("commute-worker-stderr".into()).spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let _ = std::io::stderr().lock().write_all(&line);
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                if worth_quoting(&text) {
                    if let Ok(mut kept) = keep.lock() {
                        if kept.len() == LAST_WORDS {
                            kept.pop_front();
                        }
                        kept.push_back(text);
                    }
                }
                line.clear();
            }
            let _ = done.send(());
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot forward an isolated worker's stderr");
        }
        StderrTail { lines, closed }
    }

    /// The kept lines once stderr is closed (or after a short wait), as `; its last words …`.
    fn last_words(&self) -> String {
        let _ = self.closed.recv_timeout(Duration::from_secs(1));
        let lines = self.lines.lock().map(|l| l.iter().cloned().collect::<Vec<_>>()).unwrap_or_default();
        if lines.is_empty() {
            String::new()
        } else {
            format!("; its last words on stderr: {}", lines.join(" | "))
        }
    }
}

/// Whether a line of a worker's stderr says something about its end: not empty, not a frame of a
/// backtrace (indented) nor the backtrace's header or hint.
fn worth_quoting(line: &str) -> bool {
    !line.is_empty()
        && !line.starts_with(char::is_whitespace)
        && !line.starts_with("stack backtrace:")
        && !line.starts_with("note: run with `RUST_BACKTRACE")
        && !line.starts_with("note: Some details are omitted")
}

/// One function of one plugin, open in its own worker process.
pub struct WorkerInstance {
    child: Child,
    stdin: Option<ChildStdin>,
    replies: Receiver<Result<Vec<u8>, ProtocolError>>,
    stderr: StderrTail,
    plugin: String,
    function: String,
    spec: FunctionSpec,
    dim: Option<usize>,
    frame_rate: Option<f64>,
    timeout: Duration,
    /// Set once the worker is gone: every later call fails with this.
    dead: Option<String>,
}

impl std::fmt::Debug for WorkerInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerInstance")
            .field("plugin", &self.plugin)
            .field("function", &self.function)
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

/// The request that opens `function` in a worker: the whole context travels as JSON (threads,
/// device, cache folder, assets), so the worker opens it exactly as the host would in-process.
pub(crate) fn open_request(
    function: &str,
    params_toml: &str,
    ctx: &Context,
    asset_root: Option<&Path>,
) -> Result<Request, serde_json::Error> {
    Ok(Request::Open {
        function: function.to_owned(),
        params_toml: params_toml.to_owned(),
        context_json: serde_json::to_string(ctx)?,
        asset_root: asset_root.map(|p| p.to_string_lossy().into_owned()),
    })
}

impl WorkerInstance {
    /// Starts a worker on `library` (the library of plugin `plugin`) and opens `function` in it
    /// with these parameters and context; declared assets are found or fetched in `asset_root`.
    pub fn open(
        library: &Path,
        plugin: &str,
        function: &str,
        params_toml: &str,
        ctx: &Context,
        asset_root: Option<&Path>,
        options: &WorkerOptions,
    ) -> Result<WorkerInstance, WorkerError> {
        let program = match &options.program {
            Some(p) => p.clone(),
            None => std::env::current_exe().map_err(|source| WorkerError::Spawn {
                plugin: plugin.to_owned(),
                program: "the current executable".into(),
                source,
            })?,
        };
        let mut cmd = Command::new(&program);
        cmd.arg("worker").arg("--library").arg(library);
        if let Some(mib) = options.memory_mib {
            cmd.arg("--memory-mib").arg(mib.to_string());
        }
        if let Some(flag) = verbosity_flag() {
            cmd.arg(flag);
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| WorkerError::Spawn {
            plugin: plugin.to_owned(),
            program: program.clone(),
            source,
        })?;
        tracing::debug!(plugin, function, pid = child.id(), library = %library.display(), "isolated worker started");
        let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        #[cfg(target_os = "linux")]
        {
            // Larger pipes: a batch of audio crosses in fewer wake-ups of the other process.
            for fd in
                [stdin.as_ref().map(|s| s.as_fd()), stdout.as_ref().map(|s| s.as_fd())].into_iter().flatten()
            {
                if let Err(e) = rustix::pipe::fcntl_setpipe_size(fd, PIPE_SIZE) {
                    tracing::debug!(error = %e, "cannot enlarge a worker pipe");
                }
            }
        }
        let stderr = match stderr {
            Some(s) => StderrTail::forward(s),
            None => StderrTail { lines: Arc::default(), closed: mpsc::channel().1 },
        };
        let (tx, replies) = mpsc::channel();
        if let Some(stdout) = stdout {
            let spawned = std::thread::Builder::new().name("commute-worker-reader".into()).spawn(move || {
                let mut out = BufReader::new(stdout);
                loop {
                    let frame = read_frame(&mut out);
                    let end = frame.is_err();
                    if tx.send(frame).is_err() || end {
                        break;
                    }
                }
            });
            if let Err(source) = spawned {
                let _ = child.kill();
                let _ = child.wait();
                return Err(WorkerError::Spawn { plugin: plugin.to_owned(), program, source });
            }
        }
        let mut worker = WorkerInstance {
            child,
            stdin,
            replies,
            stderr,
            plugin: plugin.to_owned(),
            function: function.to_owned(),
            spec: FunctionSpec {
                name: function.to_owned(),
                kind: FunctionKind::Encoder,
                input: None,
                output: commute_sdk::ValueKind::Any,
                doc: String::new(),
                params: Vec::new(),
                assets: Vec::new(),
                cuda: false,
                version: None,
            },
            dim: None,
            frame_rate: None,
            timeout: options.timeout,
            dead: None,
        };
        worker.handshake(library)?;
        let open = open_request(function, params_toml, ctx, asset_root)
            .map_err(|e| worker.protocol(format!("cannot serialise the context: {e}")))?;
        let payload = open.encode().map_err(|e| worker.protocol(e.to_string()))?;
        match worker.exchange(&payload, "while opening it")? {
            Reply::Opened { spec_json, dim, frame_rate } => {
                worker.spec = serde_json::from_str(&spec_json)
                    .map_err(|e| worker.protocol(format!("unreadable function spec: {e}")))?;
                worker.dim = dim.map(|d| d as usize);
                worker.frame_rate = frame_rate;
                Ok(worker)
            }
            Reply::Error(e) => Err(WorkerError::Call(e)),
            other => Err(worker.protocol(format!("answered an open with {}", reply_name(&other)))),
        }
    }

    /// Reads the worker's greeting: protocol version and plugin name.
    fn handshake(&mut self, library: &Path) -> Result<(), WorkerError> {
        let reply = self.receive(Instant::now(), "while loading its library")?;
        match reply {
            Reply::Hello { version, plugin } if version == PROTOCOL_VERSION && plugin == self.plugin => Ok(()),
            Reply::Hello { version, .. } if version != PROTOCOL_VERSION => Err(self.protocol(format!(
                "the worker speaks protocol {version}, this host {PROTOCOL_VERSION} (is `commute worker` the same executable?)"
            ))),
            Reply::Hello { plugin, .. } => {
                Err(self.protocol(format!("the worker loaded plugin `{plugin}` from {}", library.display())))
            }
            Reply::LoadFailed(message) => {
                let _ = self.finish();
                Err(WorkerError::Load { plugin: self.plugin.clone(), message })
            }
            other => Err(self.protocol(format!("greeted with {}", reply_name(&other)))),
        }
    }

    /// The function's signature and parameters.
    pub fn spec(&self) -> &FunctionSpec {
        &self.spec
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// An encoder's embedding dimension.
    pub fn dim(&self) -> Option<usize> {
        self.dim
    }

    /// A frame-level encoder's frames per second.
    pub fn frame_rate(&self) -> Option<f64> {
        self.frame_rate
    }

    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Calls the function on a batch in the worker; same contract as
    /// [`Instance::call`](commute_sdk::abi::client::Instance::call).
    pub fn call(&mut self, batch: &[Value]) -> Result<Vec<ItemResult>, WorkerError> {
        let payload = encode_call(batch).map_err(|e| self.protocol(e.to_string()))?;
        let during =
            format!("during a call on {} item{}", batch.len(), if batch.len() == 1 { "" } else { "s" });
        match self.exchange(&payload, &during)? {
            Reply::Results(items) => {
                let is_source = self.spec.kind == FunctionKind::Source && batch.is_empty();
                if !is_source && items.len() != batch.len() {
                    return Err(self.protocol(format!(
                        "returned {} results for {} items",
                        items.len(),
                        batch.len()
                    )));
                }
                Ok(items)
            }
            Reply::Error(e) => Err(WorkerError::Call(e)),
            other => Err(self.protocol(format!("answered a call with {}", reply_name(&other)))),
        }
    }

    /// Sends one request and waits for its reply, within the time limit.
    fn exchange(&mut self, payload: &[u8], during: &str) -> Result<Reply, WorkerError> {
        if let Some(message) = &self.dead {
            return Err(WorkerError::Gone {
                plugin: self.plugin.clone(),
                function: self.function.clone(),
                message: message.clone(),
            });
        }
        let started = Instant::now();
        let written = match self.stdin.as_mut() {
            Some(stdin) => write_frame(stdin, payload),
            None => Err(ProtocolError::Eof),
        };
        if written.is_err() {
            // A closed pipe: the worker is gone. Its exit status says why.
            return Err(self.died(during));
        }
        self.receive(started, during)
    }

    fn receive(&mut self, started: Instant, during: &str) -> Result<Reply, WorkerError> {
        let left = self.timeout.saturating_sub(started.elapsed());
        match self.replies.recv_timeout(left) {
            Ok(Ok(payload)) => Reply::decode(&payload).map_err(|e| self.protocol(e.to_string())),
            Ok(Err(ProtocolError::Malformed(m))) => Err(self.protocol(m)),
            Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => Err(self.died(during)),
            Err(RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let error = WorkerError::TimedOut {
                    plugin: self.plugin.clone(),
                    function: self.function.clone(),
                    during: during.to_owned(),
                    timeout: format_duration(self.timeout),
                };
                tracing::warn!(plugin = %self.plugin, function = %self.function, pid = self.child.id(), "isolated worker killed after its time limit");
                self.dead = Some(error.to_string());
                Err(error)
            }
        }
    }

    /// The worker's output ended: waits for it to exit and describes how it did.
    fn died(&mut self, during: &str) -> WorkerError {
        let cause = self.finish();
        let error = WorkerError::Crashed {
            plugin: self.plugin.clone(),
            function: self.function.clone(),
            during: during.to_owned(),
            cause,
            last_words: self.stderr.last_words(),
        };
        self.dead = Some(error.to_string());
        error
    }

    /// Closes the worker's input and waits (briefly) for it to exit, killing it if it does not.
    fn finish(&mut self) -> ExitCause {
        self.stdin = None;
        let deadline = Instant::now() + EXIT_GRACE;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return ExitCause::of(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return ExitCause::Unknown;
                }
            }
        }
    }

    fn protocol(&mut self, message: String) -> WorkerError {
        // A worker that broke the protocol cannot be trusted with another request.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let error =
            WorkerError::Protocol { plugin: self.plugin.clone(), function: self.function.clone(), message };
        self.dead = Some(error.to_string());
        error
    }
}

impl Drop for WorkerInstance {
    fn drop(&mut self) {
        if self.dead.is_none() {
            let cause = self.finish();
            if cause != ExitCause::Code(0) {
                tracing::debug!(plugin = %self.plugin, function = %self.function, %cause, "isolated worker ended");
            }
        }
    }
}

fn reply_name(reply: &Reply) -> &'static str {
    match reply {
        Reply::Hello { .. } => "a greeting",
        Reply::LoadFailed(_) => "a load failure",
        Reply::Opened { .. } => "an `opened`",
        Reply::Results(_) => "results",
        Reply::Error(_) => "an error",
    }
}

/// The `-q`/`-v…` flag that gives the worker the host's current log level.
fn verbosity_flag() -> Option<&'static str> {
    use tracing::level_filters::LevelFilter;
    match LevelFilter::current() {
        LevelFilter::OFF | LevelFilter::ERROR => Some("-q"),
        LevelFilter::WARN => None,
        LevelFilter::INFO => Some("-v"),
        LevelFilter::DEBUG => Some("-vv"),
        _ => Some("-vvv"),
    }
}
