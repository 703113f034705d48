//! The assets the loaded plugins declare, collected from their manifests (for `commute assets`
//! and `commute fetch`; functions get theirs when they open, see `Plugin::open_with`).

use crate::registry::Registry;
use crate::HostError;
use commute_sdk::AssetSpec;

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
