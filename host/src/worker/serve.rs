//! The worker side of isolated mode: what `commute worker --library PATH` runs. It loads one
//! plugin library with the registry's loader, greets the host, then answers `open` and `call`
//! requests on stdin/stdout until the host closes its stdin.
//!
//! Stdout carries frames only: before anything else runs, the frame stream takes a private copy
//! of stdout and stdout itself is pointed at stderr, so a plugin that prints (or a tool it
//! starts) cannot corrupt the protocol; its text shows up on the host's stderr instead.

use super::protocol::{read_frame, write_frame, ProtocolError, Reply, Request, PROTOCOL_VERSION};
use crate::HostError;
use commute_sdk::abi::client::Instance;
use commute_sdk::asset::AssetStore;
use commute_sdk::{CallError, Context};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// What a worker loads and how it is limited.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The plugin library.
    pub library: PathBuf,
    /// Address-space cap in MiB (`RLIMIT_AS`), applied before the library is loaded.
    pub memory_mib: Option<u64>,
}

/// Runs the worker until the host closes stdin. An error here means the worker could not talk to
/// the host at all; plugin failures are answered as [`Reply::Error`].
pub fn serve(options: &ServeOptions) -> Result<(), HostError> {
    let mut frames = take_stdout()?;
    if let Some(mib) = options.memory_mib {
        limit_memory(mib)?;
    }
    let send = |out: &mut File, reply: &Reply| -> Result<(), HostError> {
        let payload = reply.encode().map_err(|e| HostError::Usage(format!("worker: {e}")))?;
        write_frame(out, &payload)
            .map_err(|e| HostError::Usage(format!("worker: cannot answer the host: {e}")))
    };
    let plugin = match commute_sdk::abi::load::load(&options.library) {
        Ok(p) => p,
        Err(e) => {
            send(&mut frames, &Reply::LoadFailed(e.to_string()))?;
            return Err(e.into());
        }
    };
    let name = plugin.name().to_owned();
    send(&mut frames, &Reply::Hello { version: PROTOCOL_VERSION, plugin: name.clone() })?;
    tracing::debug!(plugin = %name, pid = std::process::id(), "worker ready");

    let mut input = BufReader::new(std::io::stdin().lock());
    let mut open: Option<Instance> = None;
    loop {
        let payload = match read_frame(&mut input) {
            Ok(p) => p,
            Err(ProtocolError::Eof) => return Ok(()),
            Err(e) => return Err(HostError::Usage(format!("worker: cannot read a request: {e}"))),
        };
        let reply = match Request::decode(&payload) {
            Err(e) => Reply::Error(CallError::Protocol {
                plugin: name.clone(),
                function: open.as_ref().map(|i| i.spec().name.clone()).unwrap_or_default(),
                message: format!("the worker received a bad request: {e}"),
            }),
            Ok(Request::Open { function, params_toml, context_json, asset_root }) => {
                open = None;
                match opened(&plugin, &function, &params_toml, &context_json, asset_root.as_deref()) {
                    Ok(instance) => {
                        let spec_json = serde_json::to_string(instance.spec()).unwrap_or_default();
                        let dim = instance.dim().map(|d| d as u64);
                        let frame_rate = instance.frame_rate();
                        open = Some(instance);
                        Reply::Opened { spec_json, dim, frame_rate }
                    }
                    Err(e) => Reply::Error(e),
                }
            }
            Ok(Request::Call(values)) => match open.as_mut() {
                Some(instance) => match instance.call(&values) {
                    Ok(items) => Reply::Results(items),
                    Err(e) => Reply::Error(e),
                },
                None => Reply::Error(CallError::Protocol {
                    plugin: name.clone(),
                    function: String::new(),
                    message: "a call before any function was opened".to_owned(),
                }),
            },
        };
        send(&mut frames, &reply)?;
    }
}

fn opened(
    plugin: &commute_sdk::abi::client::Plugin,
    function: &str,
    params_toml: &str,
    context_json: &str,
    asset_root: Option<&str>,
) -> Result<Instance, CallError> {
    let ctx = read_context(context_json).map_err(|e| CallError::Protocol {
        plugin: plugin.name().to_owned(),
        function: function.to_owned(),
        message: format!("unreadable context: {e}"),
    })?;
    let store = asset_root.map(|root| AssetStore::new(Path::new(root)));
    plugin.open_with(function, params_toml, &ctx, store.as_ref())
}

/// The context an open request carries (see [`super::client::open_request`]).
pub(crate) fn read_context(context_json: &str) -> Result<Context, serde_json::Error> {
    serde_json::from_str(context_json)
}

/// The frame stream: a copy of stdout, with stdout itself redirected to stderr.
#[cfg(unix)]
fn take_stdout() -> Result<File, HostError> {
    use std::os::fd::AsFd as _;
    let io = |e: std::io::Error| HostError::Usage(format!("worker: cannot set up its output: {e}"));
    let frames = std::io::stdout().as_fd().try_clone_to_owned().map_err(io)?;
    rustix::stdio::dup2_stdout(std::io::stderr().as_fd()).map_err(|e| io(e.into()))?;
    Ok(File::from(frames))
}

/// The frame stream (elsewhere stdout stays as it is: plugins must not print).
#[cfg(not(unix))]
fn take_stdout() -> Result<File, HostError> {
    Err(HostError::Usage("isolated workers need a Unix host".to_owned()))
}

/// Caps the process's address space so that an allocation beyond it fails (Rust then aborts
/// with "memory allocation of N bytes failed") instead of the machine running out of memory.
#[cfg(unix)]
fn limit_memory(mib: u64) -> Result<(), HostError> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let bytes = mib.saturating_mul(1024 * 1024);
    let hard = getrlimit(Resource::As).maximum;
    let current = Some(hard.map_or(bytes, |h| h.min(bytes)));
    setrlimit(Resource::As, Rlimit { current, maximum: hard })
        .map_err(|e| HostError::Usage(format!("worker: cannot cap its memory at {mib} MiB: {e}")))?;
    tracing::debug!(mib, "worker memory capped");
    Ok(())
}

#[cfg(not(unix))]
fn limit_memory(_mib: u64) -> Result<(), HostError> {
    Err(HostError::Usage("a worker memory limit needs a Unix host".to_owned()))
}
