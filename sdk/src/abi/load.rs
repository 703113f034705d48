//! Loading one plugin library: declaration checks first, then abi_stable's layout check, then
//! the plugin's own start-up. Every failure is a [`LoadError`]; nothing here aborts the host.

use super::{
    FfiHost, PluginDeclaration, PluginModuleRef, ABI_MAJOR, ABI_MINOR, DECLARATION_MAGIC, DECLARATION_SYMBOL,
};
use crate::abi::client::Plugin;
use crate::error::LoadError;
use abi_stable::library::{lib_header_from_raw_library, LibraryError, RawLibrary};
use abi_stable::std_types::{RResult, RStr};
use std::path::Path;

/// Receives plugin log events and re-emits them through the host's `tracing` subscriber.
extern "C" fn host_log(level: u8, target: RStr<'_>, message: RStr<'_>) {
    let (target, message) = (target.as_str(), message.as_str());
    let _ = std::panic::catch_unwind(|| match level {
        1 => tracing::error!(target: "plugin", "{target}: {message}"),
        2 => tracing::warn!(target: "plugin", "{target}: {message}"),
        3 => tracing::info!(target: "plugin", "{target}: {message}"),
        4 => tracing::debug!(target: "plugin", "{target}: {message}"),
        _ => tracing::trace!(target: "plugin", "{target}: {message}"),
    });
}

/// The most verbose level the host's subscriber currently wants, as the plugin's level number.
fn host_max_level() -> u8 {
    use tracing::level_filters::LevelFilter;
    match LevelFilter::current() {
        LevelFilter::OFF => 0,
        LevelFilter::ERROR => 1,
        LevelFilter::WARN => 2,
        LevelFilter::INFO => 3,
        LevelFilter::DEBUG => 4,
        _ => 5,
    }
}

fn shorten(detail: &str) -> String {
    let lines: Vec<&str> = detail.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() <= 12 {
        return lines.join("\n");
    }
    let head = &lines[..3];
    let tail = &lines[lines.len() - 8..];
    format!("{}\n  … ({} lines omitted) …\n{}", head.join("\n"), lines.len() - 11, tail.join("\n"))
}

/// Loads the plugin library at `path`.
///
/// The library is never unloaded (plugins may leave threads or thread-locals behind).
pub fn load(path: &Path) -> Result<Plugin, LoadError> {
    let path_buf = path.to_path_buf();
    let raw = RawLibrary::load_at(path).map_err(|e| LoadError::NotALibrary {
        path: path_buf.clone(),
        reason: match e {
            LibraryError::OpenError { err, .. } => err.to_string(),
            other => other.to_string(),
        },
    })?;
    let raw: &'static RawLibrary = Box::leak(Box::new(raw));

    // SAFETY: the symbol, if present, is the frozen `repr(C)` declaration every SDK version exports;
    // it is only read, and the library stays loaded for the life of the process.
    #[allow(unsafe_code)]
    let declaration: PluginDeclaration = unsafe {
        match raw.get::<*const PluginDeclaration>(DECLARATION_SYMBOL.as_bytes()) {
            Ok(symbol) => **symbol,
            Err(_) => return Err(LoadError::NotAPlugin { path: path_buf, symbol: DECLARATION_SYMBOL }),
        }
    };
    if declaration.magic != DECLARATION_MAGIC {
        return Err(LoadError::BadDeclaration { path: path_buf });
    }
    if declaration.abi_major != ABI_MAJOR {
        return Err(LoadError::AbiMismatch {
            path: path_buf,
            plugin_major: declaration.abi_major,
            plugin_minor: declaration.abi_minor,
            sdk_version: declaration.sdk_version(),
            host_major: ABI_MAJOR,
            host_minor: ABI_MINOR,
        });
    }
    if declaration.panic_unwind != 1 {
        return Err(LoadError::PanicAbort { path: path_buf });
    }

    // SAFETY: the library declared itself a commute plugin of our ABI major version; abi_stable
    // then checks the root module's layout before handing it out.
    #[allow(unsafe_code)]
    let header = unsafe { lib_header_from_raw_library(raw) }
        .map_err(|e| LoadError::Layout { path: path_buf.clone(), detail: shorten(&e.to_string()) })?;
    let module = header
        .init_root_module::<PluginModuleRef>()
        .map_err(|e| LoadError::Layout { path: path_buf.clone(), detail: shorten(&e.to_string()) })?;

    if let RResult::RErr(e) = (module.init())(FfiHost { log: host_log, max_level: host_max_level() }) {
        return Err(LoadError::Init { path: path_buf, message: e.message.into_string() });
    }
    Plugin::from_module(module).map_err(|message| LoadError::Init { path: path_buf, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_file_is_not_a_library() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libfake.so");
        std::fs::write(&path, "not an ELF file").unwrap();
        let err = load(&path).unwrap_err();
        assert!(matches!(err, LoadError::NotALibrary { .. }), "{err}");
        assert!(err.to_string().contains("not a loadable dynamic library"), "{err}");
    }

    #[test]
    fn a_missing_file_is_reported() {
        let err = load(Path::new("/nonexistent/libnothing.so")).unwrap_err();
        assert!(matches!(err, LoadError::NotALibrary { .. }), "{err}");
    }

    #[test]
    fn long_layout_reports_are_shortened() {
        let long: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let short = shorten(&long);
        assert!(short.lines().count() <= 12);
        assert!(short.contains("line 0") && short.contains("line 99") && short.contains("omitted"));
    }
}
