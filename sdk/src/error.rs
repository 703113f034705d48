//! Errors the host sees when it loads a plugin or calls one of its functions.

use std::path::PathBuf;

/// A plugin library could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file is not a loadable dynamic library.
    #[error("{path}: not a loadable dynamic library: {reason}")]
    NotALibrary {
        /// The file.
        path: PathBuf,
        /// What the dynamic loader said.
        reason: String,
    },
    /// A library without a commute plugin declaration.
    #[error("{path}: a dynamic library, but not a commute plugin (it exports no `{symbol}`; plugins declare themselves with `commute_sdk::export_plugin!`)")]
    NotAPlugin {
        /// The file.
        path: PathBuf,
        /// The symbol looked for.
        symbol: &'static str,
    },
    /// The declaration is not one this host can read.
    #[error("{path}: its `commute_plugin_declaration` is malformed (bad magic bytes); the file is not a commute plugin or is corrupt")]
    BadDeclaration {
        /// The file.
        path: PathBuf,
    },
    /// Built against a plugin ABI this host does not speak.
    #[error(
        "{path}: built against commute plugin ABI {plugin_major}.{plugin_minor} (commute-sdk {sdk_version}), \
         but this host speaks ABI {host_major}.{host_minor}. Rebuild the plugin against a commute-sdk with \
         ABI {host_major}.x (the `sdk/` beside this host), or use a host of ABI {plugin_major}.x"
    )]
    AbiMismatch {
        /// The file.
        path: PathBuf,
        /// The plugin's ABI major version.
        plugin_major: u32,
        /// The plugin's ABI minor version.
        plugin_minor: u32,
        /// The commute-sdk version it was built with.
        sdk_version: String,
        /// This host's ABI major version.
        host_major: u32,
        /// This host's ABI minor version.
        host_minor: u32,
    },
    /// Built with `panic = "abort"`.
    #[error(
        "{path}: built with `panic = \"abort\"`, so a panic inside it would end the host instead of being \
         reported. Build it with `panic = \"unwind\"` (the default): remove `panic = \"abort\"` from the \
         profile in its Cargo.toml"
    )]
    PanicAbort {
        /// The file.
        path: PathBuf,
    },
    /// The declaration matched but the root module's layout did not.
    #[error("{path}: its plugin interface does not match this host's although the ABI versions agree (a modified SDK?): {detail}")]
    Layout {
        /// The file.
        path: PathBuf,
        /// A shortened account of the mismatch.
        detail: String,
    },
    /// The plugin failed to start or describe itself.
    #[error("{path}: the plugin failed to start: {message}")]
    Init {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// A call into a plugin failed. Every variant names the plugin and the function.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The function panicked; its instance is poisoned.
    #[error("plugin `{plugin}` panicked in `{function}` at {location}: {message} (this instance is now poisoned; other instances and plugins are unaffected)")]
    Panicked {
        /// Plugin name.
        plugin: String,
        /// Function name.
        function: String,
        /// Panic message.
        message: String,
        /// `file:line:col` in the plugin's source.
        location: String,
    },
    /// The instance panicked before and refuses calls.
    #[error("plugin `{plugin}` function `{function}`: this instance panicked earlier and is poisoned; open a new one")]
    Poisoned {
        /// Plugin name.
        plugin: String,
        /// Function name.
        function: String,
    },
    /// Parameters rejected.
    #[error("plugin `{plugin}` function `{function}`: bad parameters: {message}")]
    BadParams {
        /// Plugin name.
        plugin: String,
        /// Function name.
        function: String,
        /// Why.
        message: String,
    },
    /// Inputs rejected.
    #[error("plugin `{plugin}` function `{function}`: bad input: {message}")]
    BadInput {
        /// Plugin name.
        plugin: String,
        /// Function name.
        function: String,
        /// Why.
        message: String,
    },
    /// The function returned an error for the whole call.
    #[error("plugin `{plugin}` function `{function}` failed: {message}")]
    Failed {
        /// Plugin name.
        plugin: String,
        /// Function name.
        function: String,
        /// Why.
        message: String,
    },
    /// No such function.
    #[error("plugin `{plugin}` has no function `{function}`; it has: {known}")]
    UnknownFunction {
        /// Plugin name.
        plugin: String,
        /// The name asked for.
        function: String,
        /// The names it has, comma-separated.
        known: String,
    },
    /// A declared asset could not be provided (not fetched, not verified).
    #[error("plugin `{plugin}` function `{function}`: {message}")]
    Asset {
        /// Plugin name.
        plugin: String,
        /// Function name.
        function: String,
        /// What failed and how to fix it.
        message: String,
    },
    /// The plugin answered something the host cannot read.
    #[error("plugin `{plugin}` function `{function}` broke the protocol: {message}")]
    Protocol {
        /// Plugin name.
        plugin: String,
        /// Function name.
        function: String,
        /// What was wrong.
        message: String,
    },
}
