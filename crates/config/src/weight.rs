//! Traffic weights: percentages with at most two decimals, held exactly as hundredths.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A pool's share of traffic in hundredths of a percent: `Weight(10_000)` is 100 %.
/// Exact integers, so "adds up to exactly 100" needs no float tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Weight(pub u32);

impl Weight {
    /// 100 %.
    pub const FULL: Weight = Weight(10_000);
    /// 0 %.
    pub const ZERO: Weight = Weight(0);

    /// Parses the text of a number (`90`, `33.33`, `12.5`) as written in TOML or JSON.
    pub fn parse(text: &str) -> Result<Weight, String> {
        let text = text.trim().replace('_', "");
        if text.starts_with('-') {
            return Err(format!("weight {text} is negative"));
        }
        if text.contains(['e', 'E']) || text == "inf" || text == "nan" || text.starts_with('+') {
            return Err(format!("weight {text} is not a plain number"));
        }
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        if frac.len() > 2 {
            return Err(format!("weight {text} has more than two decimals"));
        }
        let int: u32 = int.parse().map_err(|_| format!("weight {text} is not a number"))?;
        let frac_val: u32 = if frac.is_empty() {
            0
        } else {
            let v: u32 = frac.parse().map_err(|_| format!("weight {text} is not a number"))?;
            if frac.len() == 1 { v * 10 } else { v }
        };
        if int > 100 || (int == 100 && frac_val > 0) {
            return Err(format!("weight {text} is above 100"));
        }
        Ok(Weight(int * 100 + frac_val))
    }

    /// The weight as a float percentage (for metrics and JSON).
    pub fn as_percent(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (int, frac) = (self.0 / 100, self.0 % 100);
        match frac {
            0 => write!(f, "{int}"),
            f10 if f10.is_multiple_of(10) => write!(f, "{int}.{}", f10 / 10),
            _ => write!(f, "{int}.{frac:02}"),
        }
    }
}

impl Serialize for Weight {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_multiple_of(100) {
            s.serialize_u64(u64::from(self.0 / 100))
        } else {
            s.serialize_f64(self.as_percent())
        }
    }
}

impl<'de> Deserialize<'de> for Weight {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = f64::deserialize(d)?;
        from_f64(n).map_err(serde::de::Error::custom)
    }
}

/// Converts a JSON number to a weight, refusing what `parse` would refuse.
pub fn from_f64(n: f64) -> Result<Weight, String> {
    if !n.is_finite() {
        return Err("weight is not a number".into());
    }
    if n < 0.0 {
        return Err(format!("weight {n} is negative"));
    }
    let hundredths = (n * 100.0).round();
    if (hundredths - n * 100.0).abs() > 1e-6 {
        return Err(format!("weight {n} has more than two decimals"));
    }
    if hundredths > 10_000.0 {
        return Err(format!("weight {n} is above 100"));
    }
    // In range 0..=10_000 and integral, checked just above.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(Weight(hundredths as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_integers_and_two_decimals() {
        assert_eq!(Weight::parse("90"), Ok(Weight(9000)));
        assert_eq!(Weight::parse("33.33"), Ok(Weight(3333)));
        assert_eq!(Weight::parse("12.5"), Ok(Weight(1250)));
        assert_eq!(Weight::parse("100.0"), Ok(Weight::FULL));
    }

    #[test]
    fn refuses_negative_three_decimals_and_over_100() {
        assert!(Weight::parse("-1").unwrap_err().contains("negative"));
        assert!(Weight::parse("1.234").unwrap_err().contains("two decimals"));
        assert!(Weight::parse("100.01").unwrap_err().contains("above 100"));
        assert!(Weight::parse("1e2").is_err());
    }

    #[test]
    fn displays_and_converts_from_json_numbers() {
        assert_eq!(Weight(3333).to_string(), "33.33");
        assert_eq!(Weight(1250).to_string(), "12.5");
        assert_eq!(Weight(9000).to_string(), "90");
        assert_eq!(from_f64(33.33), Ok(Weight(3333)));
        assert!(from_f64(0.001).is_err());
        assert!(from_f64(-5.0).is_err());
    }
}
