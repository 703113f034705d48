//! The host's side of assets: the declarations collected from plugin manifests, and the verified
//! local paths handed to each function before it opens.

use crate::registry::Registry;
use crate::HostError;
use commute_sdk::asset::AssetStore;
use commute_sdk::{AssetSpec, Context, FunctionSpec};

/// One declared asset and the functions that use it.
#[derive(Debug, Clone)]
pub struct Declared {
    /// The declaration.
    pub spec: AssetSpec,
    /// `plugin/function` of each user, in manifest order.
    pub users: Vec<String>,
}

/// Every asset declared by the loaded plugins, by name, in first-declared order. Two different
/// declarations under one name are an error.
pub fn declared(registry: &Registry) -> Result<Vec<Declared>, HostError> {
    let mut out: Vec<Declared> = Vec::new();
    for loaded in registry.plugins() {
        let manifest = loaded.plugin.manifest();
        for function in &manifest.functions {
            let user = format!("{}/{}", manifest.name, function.name);
            for spec in &function.assets {
                match out.iter_mut().find(|d| d.spec.name == spec.name) {
                    Some(d) if d.spec == *spec => d.users.push(user.clone()),
                    Some(d) => {
                        return Err(HostError::AssetConflict {
                            name: spec.name.to_string(),
                            first: d.users.first().cloned().unwrap_or_default(),
                            second: user,
                        })
                    }
                    None => out.push(Declared { spec: spec.clone(), users: vec![user.clone()] }),
                }
            }
        }
    }
    Ok(out)
}

/// Makes every asset `function` declares present and verified in `store` (fetching what is
/// missing) and records their paths in `ctx`.
pub fn provide(store: &AssetStore, function: &FunctionSpec, ctx: &mut Context) -> Result<(), HostError> {
    for spec in &function.assets {
        if !ctx.assets.contains_key(spec.name.as_ref()) {
            let path = store.ensure(spec)?;
            ctx.assets.insert(spec.name.to_string(), path);
        }
    }
    Ok(())
}
