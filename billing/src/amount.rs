//! Money as exact fixed-point decimals. Billing exports carry many fractional digits (a second of
//! compute costs $0.0000000417), and allocation must add back up to the bill to the cent, so
//! amounts are never floats: they are integers of 10⁻¹⁰ of the currency unit.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub};

/// Fractional digits kept. Ten covers every provider export seen (AWS CUR has at most ten);
/// further digits are rounded half to even, and the import report counts such values.
pub const SCALE: u32 = 10;
const UNIT: i128 = 10i128.pow(SCALE);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i128);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAmount {
    pub amount: Amount,
    /// The text had more than [`SCALE`] fractional digits and was rounded.
    pub rounded: bool,
}

impl Amount {
    pub const ZERO: Amount = Amount(0);
    /// The most one resource can cost in a day (per charge category and service): what a 64-bit
    /// count of 10⁻¹⁰ units holds, about 922 million. Read models store daily costs that way.
    pub const LINE_LIMIT: Amount = Amount(i64::MAX as i128);

    /// From a count of 10⁻¹⁰ units.
    pub const fn from_units(units: i128) -> Self {
        Self(units)
    }

    pub const fn units(self) -> i128 {
        self.0
    }

    pub fn from_cents(cents: i64) -> Self {
        Self(i128::from(cents) * (UNIT / 100))
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Parses a plain or scientific decimal (`12.5`, `-0.0000000417`, `1.2E-7`, `+3`), exactly.
    pub fn parse(text: &str) -> Result<ParsedAmount, &'static str> {
        let text = text.trim();
        let (negative, body) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            Some(_) => (false, text),
            None => return Err("is empty"),
        };
        let (mantissa, exponent) = match body.find(['e', 'E']) {
            Some(i) => {
                let exp: i32 = body[i + 1..].parse().map_err(|_| "has a malformed exponent")?;
                (&body[..i], exp)
            }
            None => (body, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int.is_empty() && frac.is_empty() {
            return Err("is not a number");
        }
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return Err("is not a number");
        }
        // digits × 10^(exponent − frac digits), brought to SCALE fractional digits.
        let digits = int.bytes().chain(frac.bytes()).skip_while(|b| *b == b'0');
        // Checked: a crafted exponent must be refused, not overflow.
        let shift = i32::try_from(frac.len())
            .ok()
            .and_then(|f| exponent.checked_sub(f))
            .and_then(|s| s.checked_add(SCALE as i32))
            .ok_or("is out of range")?;
        if !(-80..=80).contains(&shift) || digits.clone().count() > 38 {
            return Err("is out of range");
        }
        let mut value: i128 = digits.fold(0i128, |v, b| v * 10 + i128::from(b - b'0'));
        let mut rounded = false;
        if shift >= 0 {
            value = 10i128
                .checked_pow(shift as u32)
                .and_then(|p| value.checked_mul(p))
                .ok_or("is out of range")?;
        } else {
            let divisor = 10i128.checked_pow(shift.unsigned_abs()).unwrap_or(i128::MAX);
            let (q, r) = (value / divisor, value % divisor);
            rounded = r != 0;
            // Half to even: the rounding that does not drift when many values are summed.
            let twice = r.saturating_mul(2);
            value = if twice > divisor || (twice == divisor && q % 2 == 1) { q + 1 } else { q };
        }
        // The whole-currency part must fit a Postgres NUMERIC(38,10) and sums of millions of rows.
        if value.unsigned_abs() >= 10u128.pow(28) {
            return Err("is out of range");
        }
        Ok(ParsedAmount { amount: Amount(if negative { -value } else { value }), rounded })
    }

    /// Rounded half to even to whole cents (for display and cent-level comparison).
    pub fn to_cents(self) -> i128 {
        let divisor = UNIT / 100;
        let (q, r) = (self.0.div_euclid(divisor), self.0.rem_euclid(divisor));
        if r * 2 > divisor || (r * 2 == divisor && q % 2 != 0) {
            q + 1
        } else {
            q
        }
    }
}

impl fmt::Display for Amount {
    /// Exact, without trailing zeros: `12.5`, `-0.0000000417`, `3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let (int, frac) = (abs / UNIT as u128, abs % UNIT as u128);
        if frac == 0 {
            return write!(f, "{sign}{int}");
        }
        let frac = format!("{frac:010}");
        write!(f, "{sign}{int}.{}", frac.trim_end_matches('0'))
    }
}

impl Add for Amount {
    type Output = Amount;
    fn add(self, rhs: Amount) -> Amount {
        Amount(self.0 + rhs.0)
    }
}

impl AddAssign for Amount {
    fn add_assign(&mut self, rhs: Amount) {
        self.0 += rhs.0;
    }
}

impl Sub for Amount {
    type Output = Amount;
    fn sub(self, rhs: Amount) -> Amount {
        Amount(self.0 - rhs.0)
    }
}

impl Neg for Amount {
    type Output = Amount;
    fn neg(self) -> Amount {
        Amount(-self.0)
    }
}

impl Sum for Amount {
    fn sum<I: Iterator<Item = Amount>>(iter: I) -> Amount {
        iter.fold(Amount::ZERO, Add::add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Amount {
        Amount::parse(s).unwrap().amount
    }

    #[test]
    fn parses_exactly() {
        assert_eq!(p("12.5").units(), 125_000_000_000);
        assert_eq!(p("-0.0000000417").units(), -417);
        assert_eq!(p("+3").units(), 30_000_000_000);
        assert_eq!(p(".5").units(), 5_000_000_000);
        assert_eq!(p("7.").units(), 70_000_000_000);
        assert_eq!(p("1.2E-7").units(), 1200);
        assert_eq!(p("4.17e-8").units(), 417);
        assert_eq!(p("1e3").units(), 10_000_000_000_000);
        assert_eq!(p("0").units(), 0);
        assert_eq!(p("000123.4500"), p("123.45"));
    }

    #[test]
    fn rounds_extra_digits_half_to_even_and_says_so() {
        let r = Amount::parse("0.00000000005").unwrap();
        assert_eq!((r.amount.units(), r.rounded), (0, true));
        assert_eq!(p("0.00000000015").units(), 2);
        assert_eq!(p("0.000000000151").units(), 2);
        assert_eq!(p("-0.00000000025").units(), -2);
        assert!(!Amount::parse("0.0000000001").unwrap().rounded);
    }

    #[test]
    fn refuses_what_is_not_a_number() {
        for bad in ["", "abc", "1.2.3", "1,5", "--1", "1e", "$5", "NaN", "inf", "1e99", "1 2", "1e2147483647", "1e-2147483648"] {
            assert!(Amount::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn displays_exactly_and_round_trips() {
        for s in ["12.5", "-0.0000000417", "3", "0", "123456789.0123456789", "-1"] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn rounds_to_cents_half_to_even() {
        assert_eq!(p("1.005").to_cents(), 100);
        assert_eq!(p("1.015").to_cents(), 102);
        assert_eq!(p("1.0051").to_cents(), 101);
        assert_eq!(p("-1.005").to_cents(), -100);
        assert_eq!(p("-1.0051").to_cents(), -101);
    }
}
