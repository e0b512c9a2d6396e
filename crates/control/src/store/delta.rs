//! What one change did to one service's state, small enough to append per change:
//! the scalar fields whole, the undo stack and history as splices (they only grow
//! at the end, shrink at the end, or lose their oldest entries at the limit).

use crate::rollout::Rollout;
use crate::state::{Event, ServiceState};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use switchyard_config::Traffic;

/// Most entries a splice looks for at the front of a list (the limit drops one per change).
const MAX_DROP: usize = 4;

/// One service's change, as the journal holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Delta {
    version: u64,
    traffic: Traffic,
    config_traffic: Traffic,
    undo: Splice<Arc<Traffic>>,
    history: Splice<Arc<Event>>,
    rollout: Option<Box<Rollout>>,
}

/// `after = before[drop .. drop + keep] ++ push`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Splice<T> {
    #[serde(default, skip_serializing_if = "is_zero")]
    drop: usize,
    keep: usize,
    #[serde(default = "Vec::new", skip_serializing_if = "Vec::is_empty")]
    push: Vec<T>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl<T: PartialEq + Clone> Splice<T> {
    /// The splice that turns `before` into `after`, keeping as much of `before` as it can.
    fn between(before: &[T], after: &[T]) -> Splice<T> {
        let common = |d: usize| before[d..].iter().zip(after).take_while(|(a, b)| a == b).count();
        let (mut drop, mut keep) = (0, common(0));
        for d in 1..=before.len().min(MAX_DROP) {
            let k = common(d);
            if k > keep {
                (drop, keep) = (d, k);
            }
        }
        Splice { drop, keep, push: after[keep..].to_vec() }
    }

    fn fits(&self, list: &[T]) -> Result<(), String> {
        if self.drop.saturating_add(self.keep) > list.len() {
            return Err(format!("keeps {} of {} entries after dropping {}", self.keep, list.len(), self.drop));
        }
        Ok(())
    }

    fn apply(&self, list: &mut Vec<T>) -> Result<(), String> {
        self.fits(list)?;
        list.drain(..self.drop);
        list.truncate(self.keep);
        list.extend(self.push.iter().cloned());
        Ok(())
    }
}

impl Delta {
    /// The change from `before` to `after`.
    pub(crate) fn between(before: &ServiceState, after: &ServiceState) -> Delta {
        Delta {
            version: after.version,
            traffic: after.traffic.clone(),
            config_traffic: after.config_traffic.clone(),
            undo: Splice::between(&before.undo, &after.undo),
            history: Splice::between(&before.history, &after.history),
            rollout: after.rollout.clone(),
        }
    }

    /// Replays it on the state it was taken from; `Err` says why it does not fit.
    pub(crate) fn apply(&self, st: &mut ServiceState) -> Result<(), String> {
        // Checked first, so that a delta that does not fit changes nothing.
        self.undo.fits(&st.undo).map_err(|e| format!("undo: {e}"))?;
        self.history.fits(&st.history).map_err(|e| format!("history: {e}"))?;
        st.version = self.version;
        st.traffic = self.traffic.clone();
        st.config_traffic = self.config_traffic.clone();
        self.undo.apply(&mut st.undo)?;
        self.history.apply(&mut st.history)?;
        st.rollout = self.rollout.clone();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(before: &[u32], after: &[u32]) -> Splice<u32> {
        let s = Splice::between(before, after);
        let mut v = before.to_vec();
        s.apply(&mut v).unwrap();
        assert_eq!(v, after, "{s:?}");
        s
    }

    #[test]
    fn splices_keep_what_they_can() {
        assert_eq!(check(&[1, 2, 3], &[1, 2, 3, 4]).push, vec![4]);
        assert_eq!(check(&[1, 2, 3], &[1, 2]).push, Vec::<u32>::new());
        let at_limit = check(&[1, 2, 3], &[2, 3, 4]);
        assert_eq!((at_limit.drop, at_limit.keep, at_limit.push), (1, 2, vec![4]));
        assert_eq!(check(&[], &[7]).push, vec![7]);
        assert_eq!(check(&[1, 2], &[]).keep, 0);
        assert_eq!(check(&[1, 2, 3], &[9, 9]).push, vec![9, 9]);
        check(&[1, 1, 1, 1, 1, 1], &[1, 1, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn a_splice_that_does_not_fit_is_refused() {
        let s = Splice::between(&[1, 2, 3], &[1, 2, 3, 4]);
        assert!(s.apply(&mut vec![1]).is_err());
    }
}
