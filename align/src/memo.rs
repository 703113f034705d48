//! `ActionMemo`: operator actions kept across fits, keyed by the content of the rows each was
//! fitted on, so that fits which see the same operator rows (every refinement round, the
//! permutation null, the shuffled-operator control, every anchor count, when the preprocessing is
//! fitted once on a pool) fit each action once.
//!
//! An action is a deterministic function of its two row matrices, so a remembered action is the
//! one a new fit would compute, bit for bit: the memo changes the time a fit takes, never its
//! result.

use super::error::AlignError;
use super::operator::OperatorAction;
use super::scalar::Real;
use faer::MatRef;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// What identifies one action's inputs: the scalar type and a 128-bit hash of both matrices'
/// shapes and values.
type Key = (TypeId, u64, u64);

/// Operator actions remembered across fits (see the module docs); shared by reference through
/// [`FitData::memo`](crate::FitData::memo), safe to use from several threads.
///
/// It holds at most `capacity` actions (each d × d): once full it still answers what it has but
/// remembers nothing new, so a memo given to fits whose rows never repeat (preprocessing fitted
/// on each anchor set) costs a bounded amount of memory.
#[derive(Debug)]
pub struct ActionMemo {
    actions: Mutex<HashMap<Key, Arc<dyn Any + Send + Sync>>>,
    capacity: usize,
    hits: AtomicUsize,
    misses: AtomicUsize,
}

impl ActionMemo {
    /// An empty memo that remembers at most `capacity` actions.
    pub fn new(capacity: usize) -> Self {
        ActionMemo {
            actions: Mutex::new(HashMap::new()),
            capacity,
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
        }
    }

    /// Actions answered from the memo so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }

    /// Actions fitted so far (not found in the memo).
    pub fn misses(&self) -> usize {
        self.misses.load(Ordering::Relaxed)
    }

    /// The action `fit` computes from `inputs` and `tag` alone (an operator's rows and images; a
    /// graph's rows and its k): remembered, or fitted (and remembered while there is room).
    /// Errors are not remembered.
    pub(crate) fn get_or_fit<T: Real>(
        &self,
        inputs: &[MatRef<'_, T>],
        tag: u64,
        fit: impl FnOnce() -> Result<OperatorAction<T>, AlignError>,
    ) -> Result<OperatorAction<T>, AlignError> {
        let (a, b) = fingerprint(inputs, tag);
        let key = (TypeId::of::<T>(), a, b);
        let lock = || self.actions.lock().unwrap_or_else(PoisonError::into_inner);
        let found = lock().get(&key).cloned();
        if let Some(action) = found.as_ref().and_then(|a| a.downcast_ref::<OperatorAction<T>>()) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(action.clone());
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let action = fit()?;
        let mut actions = lock();
        if actions.len() < self.capacity {
            actions.insert(key, Arc::new(action.clone()));
        }
        Ok(action)
    }
}

/// Two independent 64-bit hashes of `tag` and the shapes and values' bits of `inputs`, column by
/// column (a multiply-rotate hash: fast, and not an adversarial setting).
pub(crate) fn fingerprint<T: Real>(inputs: &[MatRef<'_, T>], tag: u64) -> (u64, u64) {
    const K1: u64 = 0x9e37_79b9_7f4a_7c15;
    const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;
    let (mut a, mut b) = (0x243f_6a88_85a3_08d3u64, 0x1319_8a2e_0370_7344u64);
    let mut mix = |word: u64| {
        a = (a ^ word).wrapping_mul(K1).rotate_left(31);
        b = (b.rotate_left(27) ^ word).wrapping_mul(K2).wrapping_add(a);
    };
    mix(tag);
    for &m in inputs {
        mix(m.nrows() as u64);
        mix(m.ncols() as u64);
        for j in 0..m.ncols() {
            match m.col(j).try_as_col_major() {
                Some(col) => col.as_slice().iter().for_each(|v| mix(v.to_f64().to_bits())),
                None => (0..m.nrows()).for_each(|i| mix(m[(i, j)].to_f64().to_bits())),
            }
        }
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::fit_action;
    use crate::testing::{gaussian, rng};

    #[test]
    fn a_remembered_action_is_the_one_a_fit_computes() {
        let mut r = rng(5);
        let (x, fx) = (gaussian(&mut r, 40, 6), gaussian(&mut r, 40, 6));
        let memo = ActionMemo::new(8);
        let direct = fit_action(x.as_ref(), fx.as_ref()).unwrap();
        let first =
            memo.get_or_fit(&[x.as_ref(), fx.as_ref()], 0, || fit_action(x.as_ref(), fx.as_ref())).unwrap();
        let again = memo.get_or_fit(&[x.as_ref(), fx.as_ref()], 0, || panic!("fitted twice")).unwrap();
        assert_eq!((memo.hits(), memo.misses()), (1, 1));
        assert_eq!(first.f, direct.f);
        assert_eq!(again.f, direct.f);
        assert_eq!(again.c, direct.c);
        // One changed value, or the same values in another shape, is another action.
        let mut y = x.clone();
        y[(3, 2)] += 1e-12;
        let other =
            memo.get_or_fit(&[y.as_ref(), fx.as_ref()], 0, || fit_action(y.as_ref(), fx.as_ref())).unwrap();
        assert_eq!(memo.misses(), 2);
        assert_ne!(other.f, direct.f);
        let key = fingerprint(&[x.as_ref(), fx.as_ref()], 0);
        assert_ne!(key, fingerprint(&[fx.as_ref(), x.as_ref()], 0));
        assert_ne!(key, fingerprint(&[x.as_ref(), fx.as_ref()], 1));
        let reshaped = faer::Mat::from_fn(6, 40, |i, j| x[(j, i)]);
        assert_ne!(key, fingerprint(&[reshaped.as_ref(), fx.as_ref()], 0));
    }

    #[test]
    fn a_full_memo_answers_what_it_has_and_remembers_nothing_new() {
        let mut r = rng(6);
        let pairs: Vec<_> = (0..3).map(|_| (gaussian(&mut r, 30, 4), gaussian(&mut r, 30, 4))).collect();
        let memo = ActionMemo::new(1);
        for (x, fx) in pairs.iter().chain(&pairs) {
            memo.get_or_fit(&[x.as_ref(), fx.as_ref()], 0, || fit_action(x.as_ref(), fx.as_ref())).unwrap();
        }
        assert_eq!((memo.hits(), memo.misses()), (1, 5));
        // f32 rows are another key than the same values in f64.
        let (x, fx) = &pairs[0];
        let f32s = |m: &faer::Mat<f64>| faer::Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)] as f32);
        let (x32, fx32) = (f32s(x), f32s(fx));
        let memo = ActionMemo::new(4);
        memo.get_or_fit(&[x.as_ref(), fx.as_ref()], 0, || fit_action(x.as_ref(), fx.as_ref())).unwrap();
        memo.get_or_fit(&[x32.as_ref(), fx32.as_ref()], 0, || fit_action(x32.as_ref(), fx32.as_ref()))
            .unwrap();
        assert_eq!(memo.misses(), 2);
    }
}
