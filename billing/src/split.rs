//! Shared-cost split rules: a pool of cost nobody owns directly (untagged shared networking,
//! support fees, tax) is shared out across the values of an allocation key — evenly, in proportion
//! to each value's own cost, or by fixed percentages.
//!
//! Rounding rule: shares are computed in 10⁻¹⁰ of the currency by the largest-remainder method —
//! each share is first rounded down, then the units left over go one each to the shares with the
//! largest remainders (ties to the earlier target) — so the shares of a pool always add up to the
//! pool exactly, and so to the cent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vtag_domain::{TagKey, TagValue};

use crate::amount::Amount;
use crate::charge::ChargeCategory;

/// A tenant's split rules, in order: a cost matching several pools goes to the first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitsDoc {
    #[serde(default)]
    pub splits: Vec<SplitRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitRule {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The allocation key whose values share the pool.
    pub key: String,
    pub pool: PoolSelector,
    pub method: SplitMethod,
    /// The values that share (even, proportional). Empty: every value with cost of its own in the
    /// period.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// Value → percentage (fixed); they add up to 100.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub percentages: BTreeMap<String, Percentage>,
}

/// Which cost is the pool. `untagged`, `unallocatable` and `tag` each add cost to it; `service`
/// and `charge_category` narrow it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSelector {
    /// Resources without the split's key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub untagged: bool,
    /// Cost without a resource (fees, support, tax, other providers).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unallocatable: bool,
    /// Resources carrying this tag (e.g. `team: shared`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<TagMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_category: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagMatch {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitMethod {
    Even,
    Proportional,
    Fixed,
}

/// A percentage as written: a number or decimal text (`33.33`), kept exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Percentage {
    Number(serde_json::Number),
    Text(String),
}

impl Percentage {
    pub fn amount(&self) -> Option<Amount> {
        let text = match self {
            Self::Number(n) => n.to_string(),
            Self::Text(t) => t.clone(),
        };
        Amount::parse(&text).ok().filter(|p| !p.rounded).map(|p| p.amount)
    }
}

/// A refused part of a splits document: where, which rule, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitError {
    pub path: String,
    pub rule: &'static str,
    pub message: String,
}

impl SplitsDoc {
    /// Every mistake of the document at once.
    pub fn check(&self) -> Vec<SplitError> {
        let mut errors = Vec::new();
        let mut err = |path: String, rule: &'static str, message: String| errors.push(SplitError { path, rule, message });
        let mut ids = std::collections::HashSet::new();
        if self.splits.len() > 100 {
            err("splits".into(), "max_items", "at most 100 split rules".into());
        }
        for (i, s) in self.splits.iter().enumerate() {
            let at = |field: &str| format!("splits[{i}].{field}");
            if s.id.trim().is_empty() || s.id.len() > 64 || !s.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                err(at("id"), "format", "1 to 64 letters, digits, '-' or '_'".into());
            } else if !ids.insert(s.id.as_str()) {
                err(at("id"), "unique", format!("split id '{}' is used twice", s.id));
            }
            if let Err(e) = TagKey::parse(&s.key) {
                err(at("key"), e.rule, e.message);
            }
            let p = &s.pool;
            if !p.untagged && !p.unallocatable && p.tag.is_none() {
                err(at("pool"), "required", "say which cost is shared: untagged, unallocatable and/or tag".into());
            }
            if let Some(t) = &p.tag {
                if let Err(e) = TagKey::parse(&t.key) {
                    err(at("pool.tag.key"), e.rule, e.message);
                }
                if let Err(e) = TagValue::parse(&t.value) {
                    err(at("pool.tag.value"), e.rule, e.message);
                }
            }
            if let Some(c) = &p.charge_category {
                if ChargeCategory::parse(c).is_none() {
                    err(at("pool.charge_category"), "one_of", "one of Usage, Purchase, Tax, Credit, Adjustment".into());
                }
            }
            for (j, v) in s.to.iter().enumerate() {
                if let Err(e) = TagValue::parse(v) {
                    err(at(&format!("to[{j}]")), e.rule, e.message);
                }
            }
            match s.method {
                SplitMethod::Fixed => {
                    if !s.to.is_empty() {
                        err(at("to"), "exclusive", "fixed splits name their values in percentages".into());
                    }
                    if s.percentages.is_empty() {
                        err(at("percentages"), "required", "a fixed split needs value: percentage pairs".into());
                    }
                    let mut sum = Amount::ZERO;
                    for (value, pct) in &s.percentages {
                        if let Err(e) = TagValue::parse(value) {
                            err(at(&format!("percentages.{value}")), e.rule, e.message);
                        }
                        match pct.amount() {
                            Some(a) if a > Amount::ZERO && a <= Amount::from_cents(10_000) => sum += a,
                            _ => err(at(&format!("percentages.{value}")), "range", "a percentage above 0 and at most 100".into()),
                        }
                    }
                    if !s.percentages.is_empty() && sum != Amount::from_cents(10_000) {
                        err(at("percentages"), "sum", format!("percentages add up to {sum}, not 100"));
                    }
                }
                SplitMethod::Even | SplitMethod::Proportional => {
                    if !s.percentages.is_empty() {
                        err(at("percentages"), "exclusive", "percentages apply to fixed splits only".into());
                    }
                }
            }
        }
        errors
    }
}

/// Shares `pool` in proportion to `weights` (all ≥ 0, not all 0), exactly: the result has one
/// share per weight and adds up to `pool` (largest remainder, ties to the earlier weight).
pub fn largest_remainder(pool: i128, weights: &[i128]) -> Vec<i128> {
    assert!(weights.iter().all(|w| *w >= 0) && weights.iter().any(|w| *w > 0), "weights must be non-negative and not all zero");
    // Keep remainder × weight within u128: weights only need their proportions, and a weight
    // 2⁶⁰ times smaller than the total could not move a unit anyway.
    let mut weights: Vec<i128> = weights.to_vec();
    while weights.iter().sum::<i128>() > 1 << 60 {
        weights.iter_mut().for_each(|w| *w >>= 1);
    }
    let total: i128 = weights.iter().sum();
    let negative = pool < 0;
    let pool_abs = pool.unsigned_abs();
    // pool × weight can overflow i128 for huge pools; u128 arithmetic in two steps keeps it exact.
    let mut shares: Vec<(u128, u128, usize)> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let (w, t) = (*w as u128, total as u128);
            let (q, r) = (pool_abs / t, pool_abs % t);
            // pool × w / t = q × w + r × w / t
            let product = r * w;
            (q * w + product / t, product % t, i)
        })
        .collect();
    let given: u128 = shares.iter().map(|s| s.0).sum();
    let mut left = pool_abs - given;
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|a, b| shares[*b].1.cmp(&shares[*a].1).then(a.cmp(b)));
    for i in order {
        if left == 0 {
            break;
        }
        shares[i].0 += 1;
        left -= 1;
    }
    shares.into_iter().map(|(s, _, _)| if negative { -(s as i128) } else { s as i128 }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_pool_exactly() {
        assert_eq!(largest_remainder(100, &[1, 1, 1]), [34, 33, 33]);
        assert_eq!(largest_remainder(-100, &[1, 1, 1]), [-34, -33, -33]);
        assert_eq!(largest_remainder(10, &[0, 3, 7]), [0, 3, 7]);
        assert_eq!(largest_remainder(1, &[5, 5]), [1, 0], "ties to the earlier weight");
        assert_eq!(largest_remainder(7, &[1, 2, 4]), [1, 2, 4]);
        let huge = [i128::MAX / 4, i128::MAX / 4, 1];
        assert_eq!(largest_remainder(1_000_001, &huge), [500_001, 500_000, 0]);
        for pool in [0i128, 1, 99, 1_000_000_007, -12_345, i128::MAX / 3] {
            let weights = [3333, 3333, 3334, 1];
            assert_eq!(largest_remainder(pool, &weights).iter().sum::<i128>(), pool);
        }
    }

    fn doc(json: serde_json::Value) -> SplitsDoc {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_valid_document_has_no_errors() {
        let d = doc(serde_json::json!({"splits": [
            {"id": "support", "key": "team", "pool": {"unallocatable": true, "charge_category": "Purchase"}, "method": "proportional"},
            {"id": "network", "key": "team", "pool": {"untagged": true, "service": "Amazon VPC"}, "method": "even", "to": ["payments", "search"]},
            {"id": "shared", "key": "team", "pool": {"tag": {"key": "team", "value": "shared"}}, "method": "fixed",
             "percentages": {"payments": 33.33, "search": "33.33", "web": 33.34}}
        ]}));
        assert_eq!(d.check(), []);
    }

    #[test]
    fn every_mistake_is_named() {
        let d = doc(serde_json::json!({"splits": [
            {"id": "a", "key": "Team Name", "pool": {}, "method": "fixed", "percentages": {"x": 50, "y": 40}},
            {"id": "a", "key": "team", "pool": {"untagged": true, "charge_category": "Refund"}, "method": "even", "percentages": {"x": 100}}
        ]}));
        let got: Vec<(String, &str)> = d.check().into_iter().map(|e| (e.path, e.rule)).collect();
        assert!(got.contains(&("splits[0].key".into(), "format")) || got.iter().any(|(p, _)| p == "splits[0].key"), "{got:?}");
        assert!(got.contains(&("splits[0].pool".into(), "required")), "{got:?}");
        assert!(got.contains(&("splits[0].percentages".into(), "sum")), "{got:?}");
        assert!(got.contains(&("splits[1].id".into(), "unique")), "{got:?}");
        assert!(got.contains(&("splits[1].pool.charge_category".into(), "one_of")), "{got:?}");
        assert!(got.contains(&("splits[1].percentages".into(), "exclusive")), "{got:?}");
    }
}
