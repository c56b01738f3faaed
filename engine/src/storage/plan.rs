//! Query planning: pick the index whose conditions narrow the scan most and turn its
//! conditions into one byte range `[lower, upper)` over encoded keys.

use super::filter::{Op, Resolved, Target};
use super::keycodec::{prefix_successor, TAG_VALUE};
use super::spec::TypeSpec;

/// The chosen scan: index `idx`, keys in `[lower, upper)` (relative to the index prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) idx: usize,
    pub(crate) lower: Vec<u8>,
    pub(crate) upper: Option<Vec<u8>>,
    /// The whole primary key, when a condition names all its parts with `==`: at most the one
    /// entry of that key can match, and a read of it replaces the walk.
    pub(crate) exact: Option<Vec<u8>>,
}

impl Plan {
    /// No key can be in the range.
    pub(crate) fn is_empty(&self) -> bool {
        self.upper.as_ref().is_some_and(|u| &self.lower >= u)
    }

    /// Whether an encoded key (without pk/version) lies in the range.
    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        key >= self.lower.as_slice() && self.upper.as_ref().is_none_or(|u| key < u.as_slice())
    }
}

/// Lower bound that skips null first parts when comparing with a value (`age < 4` excludes
/// objects without age).
fn not_null(key: &[u8]) -> Option<Vec<u8>> {
    (key.first() == Some(&TAG_VALUE)).then(|| vec![TAG_VALUE])
}

fn bounds(idx: usize, conds: &[Resolved]) -> (Plan, u32) {
    let mut plan = Plan { idx, lower: Vec::new(), upper: None, exact: None };
    let (mut eq_parts, mut has_lo, mut has_hi, mut like_prefix) = (0, false, false, false);
    let raise = |plan: &mut Plan, lo: Option<Vec<u8>>, hi: Option<Vec<u8>>| {
        if let Some(lo) = lo {
            plan.lower = plan.lower.clone().max(lo);
        }
        if let Some(hi) = hi {
            plan.upper = Some(plan.upper.take().map_or(hi.clone(), |u| u.min(hi)));
        }
    };
    for r in conds {
        let Target::Index { idx: i, nparts, key } = &r.target else {
            continue;
        };
        if *i != idx {
            continue;
        }
        let succ = prefix_successor(key);
        match r.op {
            Op::Eq => {
                eq_parts = eq_parts.max(*nparts as u32);
                raise(&mut plan, Some(key.clone()), succ);
            }
            Op::Ge => {
                has_lo = true;
                raise(&mut plan, Some(key.clone()), None);
            }
            Op::Gt => {
                has_lo = true;
                // nothing is greater than a key without successor: make the range empty
                let lo = succ.unwrap_or_else(|| vec![0xFF; key.len() + 1]);
                raise(&mut plan, Some(lo), None);
            }
            Op::Lt => {
                has_hi = true;
                raise(&mut plan, not_null(key), Some(key.clone()));
            }
            Op::Le => {
                has_hi = true;
                raise(&mut plan, not_null(key), succ);
            }
            Op::Like => {
                like_prefix |= key.len() > 1;
                raise(&mut plan, Some(key.clone()), succ);
            }
            Op::Ne => {}
        }
    }
    let score = if eq_parts > 0 {
        100 + 10 * eq_parts
    } else if like_prefix {
        50
    } else if has_lo && has_hi {
        45
    } else if has_lo || has_hi {
        40
    } else {
        0
    };
    (plan, score)
}

/// Chooses the scan. A full primary-key equality wins; otherwise the best-scored index; with no
/// usable condition, the whole primary index in key order.
pub(crate) fn plan(spec: &TypeSpec, conds: &[Resolved]) -> Plan {
    let mut best = (Plan { idx: 0, lower: Vec::new(), upper: None, exact: None }, 0);
    for idx in 0..spec.indexes.len() {
        let (p, mut score) = bounds(idx, conds);
        if idx == 0 && score == 100 + 10 * spec.indexes[0].parts.len() as u32 {
            score = 1000;
            let whole = spec.indexes[0].parts.len();
            let exact = conds.iter().find_map(|r| match &r.target {
                Target::Index { idx: 0, nparts, key } if r.op == Op::Eq && *nparts == whole => Some(key.clone()),
                _ => None,
            });
            best = (Plan { exact, ..p }, score);
            continue;
        }
        if score > best.1 || (idx == 0 && best.1 == 0) {
            best = (p, score);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::super::filter::{resolve, Condition};
    use super::super::test_util::user_spec;
    use super::*;
    use serde_json::json;

    fn plan_for(conds: &[Condition]) -> Plan {
        let spec = user_spec();
        plan(&spec, &resolve(&spec, conds).unwrap())
    }

    #[test]
    fn chooses_the_narrowest_index() {
        let p = plan_for(&[Condition::new("age", Op::Gt, json!(3)), Condition::new("id", Op::Eq, json!(1))]);
        assert_eq!(p.idx, 0, "primary key equality wins");
        assert_eq!(p.exact, Some(p.lower.clone()), "and is read at its key");
        let p = plan_for(&[Condition::new("age", Op::Gt, json!(3)), Condition::new("username", Op::Eq, json!("a"))]);
        assert_eq!(p.idx, 1, "equality beats a range");
        assert_eq!(p.exact, None);
        let p = plan_for(&[Condition::new("full_name", Op::Eq, json!(["L1"]))]);
        assert_eq!(p.exact, None, "only the primary key is read at its key");
        let p = plan_for(&[Condition::new("age", Op::Ge, json!(3)), Condition::new("age", Op::Lt, json!(9))]);
        assert_eq!(p.idx, 2);
        assert!(p.upper.is_some() && !p.lower.is_empty());
        let p = plan_for(&[Condition::new("nickname", Op::Eq, json!("x"))]);
        assert_eq!(p, Plan { idx: 0, lower: vec![], upper: None, exact: None }, "no usable index: full scan");
        let p = plan_for(&[Condition::new("age", Op::Gt, json!(9)), Condition::new("age", Op::Lt, json!(3))]);
        assert!(p.is_empty(), "contradicting bounds scan nothing");
    }
}
