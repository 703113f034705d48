//! Tables loaded once per process and shared by every instance that needs them (GloVe's 80 MB
//! matrix, the French vectors, WordNet, the relations built from them).
//!
//! A table is keyed by its type and a string (its file paths and options); the first open loads
//! it, later opens reuse it, and it stays loaded for the life of the process. Two different tables
//! load in parallel; two opens of the same table wait for one load. A failed load is not kept, so
//! a later open tries again.

use commute_sdk::anyhow::Result;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

type Slot = Arc<Mutex<Option<Arc<dyn Any + Send + Sync>>>>;

static TABLES: Mutex<Option<HashMap<(TypeId, String), Slot>>> = Mutex::new(None);

/// The table of type `T` under `key`, loading it with `load` if no instance has yet.
pub fn shared<T: Send + Sync + 'static>(key: &str, load: impl FnOnce() -> Result<T>) -> Result<Arc<T>> {
    let slot = {
        let mut tables = TABLES.lock().unwrap_or_else(PoisonError::into_inner);
        tables
            .get_or_insert_with(HashMap::new)
            .entry((TypeId::of::<T>(), key.to_owned()))
            .or_default()
            .clone()
    };
    let mut guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(table) = guard.as_ref().and_then(|t| Arc::clone(t).downcast::<T>().ok()) {
        return Ok(table);
    }
    let table = Arc::new(load()?);
    *guard = Some(table.clone());
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn loads_once_per_key_and_retries_after_a_failure() {
        static LOADS: AtomicUsize = AtomicUsize::new(0);
        let load = || {
            LOADS.fetch_add(1, Ordering::SeqCst);
            Ok(vec![1u8, 2, 3])
        };
        let a = shared("shared-test-a", load).unwrap();
        let b = shared("shared-test-a", load).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(LOADS.load(Ordering::SeqCst), 1);
        // Another type under the same key is another table.
        let c: Arc<String> = shared("shared-test-a", || Ok("x".to_owned())).unwrap();
        assert_eq!(*c, "x");
        assert!(shared::<u32>("shared-test-b", || commute_sdk::anyhow::bail!("broken file")).is_err());
        assert_eq!(*shared::<u32>("shared-test-b", || Ok(7)).unwrap(), 7);
    }
}
