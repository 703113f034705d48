//! The `#[params]` attribute: makes a struct (or an enum used inside one) a function's
//! parameters through commute-sdk's own re-exports of serde and schemars, so plugin crates depend
//! on commute-sdk alone.
//!
//! It only prepends attributes after finding the `struct` or `enum` keyword, which keeps this
//! crate free of dependencies.

use proc_macro::{TokenStream, TokenTree};

/// Derives `Serialize`, `Deserialize` and `JsonSchema` for a parameter struct (rejecting unknown
/// keys) or an enum used in one, with kebab-case names. Field doc comments become the parameter
/// docs shown by `commute describe`; `#[serde(default = "…")]` gives a default.
#[proc_macro_attribute]
pub fn params(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return error("#[params] takes no arguments");
    }
    let keyword = item.clone().into_iter().find_map(|t| match t {
        TokenTree::Ident(i) if matches!(i.to_string().as_str(), "struct" | "enum") => Some(i.to_string()),
        _ => None,
    });
    let serde_extra = match keyword.as_deref() {
        Some("struct") => ", deny_unknown_fields",
        Some(_) => "",
        None => return error("#[params] goes on a struct or an enum"),
    };
    let prefix = format!(
        r#"
        #[derive(
            ::commute_sdk::serde::Serialize,
            ::commute_sdk::serde::Deserialize,
            ::commute_sdk::schemars::JsonSchema
        )]
        #[serde(crate = "::commute_sdk::serde", rename_all = "kebab-case"{serde_extra})]
        #[schemars(crate = "::commute_sdk::schemars")]
        "#
    );
    let mut out: TokenStream = prefix.parse().unwrap_or_default();
    out.extend(item);
    out
}

fn error(message: &str) -> TokenStream {
    format!("compile_error!({message:?});").parse().unwrap_or_default()
}
