//! Numbers as Terraform has them: binary floating point with a 512-bit mantissa (Go's
//! `big.Float` as cty uses it), rounded to nearest-even, printed as the shortest decimal
//! that identifies the value at its precision.
//!
//! Most numbers in configurations are small integers (counts, ports, replicas), so a
//! [`Number`] is an `i64` until an operation leaves the integers or overflows; only then is
//! it a big float (`Big`). Both forms compare and print the same way, so which one a value
//! is never shows.
//!
//! What follows Terraform exactly: `0.1 + 0.2` is `0.3`; `12345678901234567890` and
//! `1e400` are exact; `1 / 3` prints 155 digits, as Terraform does; `1 == 1.0`; values that
//! came from `f64` functions (`pow`, `log`) carry 53 bits and print as Terraform prints
//! them (`pow(2, 100)` is `1267650600228229400000000000000`). What does not: `-0` is `0`.

use std::cmp::Ordering;
use std::sync::Arc;

use num_bigint::BigUint;
use num_traits::{One, ToPrimitive, Zero};

/// Mantissa bits of numbers parsed from text and of arithmetic results.
pub const PRECISION: u32 = 512;
/// Mantissa bits of numbers that came from an `f64`.
const F64_PRECISION: u32 = 53;
/// Decimal exponents beyond this are refused when parsing (Go's limit is far larger, but no
/// configuration needs 10^100000 and the digits would fill memory).
const MAX_DECIMAL_EXPONENT: i64 = 100_000;

/// A number.
#[derive(Clone)]
pub struct Number(Repr);

#[derive(Clone)]
enum Repr {
    Int(i64),
    Big(Arc<Big>),
}

/// `(-1)^neg × mant × 2^exp`, `mant` odd (or zero), at `prec` bits; or an infinity.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Big {
    neg: bool,
    mag: Mag,
    prec: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mag {
    Finite { mant: BigUint, exp: i64 },
    Inf,
}

/// Why an operation has no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberError {
    /// `0 / 0` or `∞ / ∞` (Terraform: "can't divide zero by zero or infinity by infinity").
    Indeterminate,
}

fn bits(m: &BigUint) -> i64 {
    m.bits() as i64
}

/// Rounds `(-1)^neg × mant × 2^exp` to `prec` bits, nearest-even; `sticky` says nonzero bits
/// below `mant` were dropped already.
fn round(neg: bool, mut mant: BigUint, mut exp: i64, sticky: bool, prec: u32) -> Big {
    if mant.is_zero() {
        return Big {
            neg: false,
            mag: Mag::Finite { mant, exp: 0 },
            prec,
        };
    }
    let excess = bits(&mant) - prec as i64;
    if excess > 0 {
        let shift = excess as u64;
        let half = mant.bit(shift - 1);
        let below_half = sticky || (mant.trailing_zeros().unwrap_or(0) < shift - 1);
        mant >>= shift;
        exp += excess;
        if half && (below_half || mant.bit(0)) {
            mant += 1u32;
        }
    }
    let tz = mant.trailing_zeros().unwrap_or(0);
    if tz > 0 {
        mant >>= tz;
        exp += tz as i64;
    }
    Big {
        neg,
        mag: Mag::Finite { mant, exp },
        prec,
    }
}

fn pow10(n: u64) -> BigUint {
    num_traits::pow(BigUint::from(10u32), n as usize)
}

impl Big {
    fn inf(neg: bool) -> Big {
        Big {
            neg,
            mag: Mag::Inf,
            prec: PRECISION,
        }
    }

    fn from_i64(n: i64, prec: u32) -> Big {
        round(n < 0, BigUint::from(n.unsigned_abs()), 0, false, prec)
    }

    fn is_zero(&self) -> bool {
        matches!(&self.mag, Mag::Finite { mant, .. } if mant.is_zero())
    }

    /// The value as an `i64`, when it is an integer that fits.
    fn to_i64(&self) -> Option<i64> {
        let Mag::Finite { mant, exp } = &self.mag else {
            return None;
        };
        if *exp < 0 || bits(mant) + exp > 64 {
            return None;
        }
        let m = (mant << (*exp as u64)).to_u64()?;
        if self.neg {
            0i64.checked_sub_unsigned(m)
        } else {
            i64::try_from(m).ok()
        }
    }

    fn cmp_magnitude(&self, other: &Big) -> Ordering {
        match (&self.mag, &other.mag) {
            (Mag::Inf, Mag::Inf) => Ordering::Equal,
            (Mag::Inf, _) => Ordering::Greater,
            (_, Mag::Inf) => Ordering::Less,
            (Mag::Finite { mant: a, exp: ea }, Mag::Finite { mant: b, exp: eb }) => {
                match (a.is_zero(), b.is_zero()) {
                    (true, true) => return Ordering::Equal,
                    (true, false) => return Ordering::Less,
                    (false, true) => return Ordering::Greater,
                    _ => {}
                }
                let (ta, tb) = (bits(a) + ea, bits(b) + eb);
                if ta != tb {
                    return ta.cmp(&tb);
                }
                let e = (*ea).min(*eb);
                (a << ((ea - e) as u64)).cmp(&(b << ((eb - e) as u64)))
            }
        }
    }

    fn cmp(&self, other: &Big) -> Ordering {
        let sign = |b: &Big| {
            if b.is_zero() {
                0
            } else if b.neg {
                -1
            } else {
                1
            }
        };
        match sign(self).cmp(&sign(other)) {
            Ordering::Equal if sign(self) < 0 => other.cmp_magnitude(self),
            Ordering::Equal => self.cmp_magnitude(other),
            o => o,
        }
    }

    fn neg(&self) -> Big {
        let mut b = self.clone();
        b.neg = !b.neg && !b.is_zero();
        b
    }

    fn add(&self, other: &Big) -> Big {
        let prec = self.prec.max(other.prec);
        let (a, ea, b, eb) = match (&self.mag, &other.mag) {
            (Mag::Inf, Mag::Inf) if self.neg != other.neg => {
                // ∞ - ∞: Go panics; Terraform never gets here in practice. Call it ∞.
                return Big::inf(self.neg);
            }
            (Mag::Inf, _) => return self.clone(),
            (_, Mag::Inf) => return other.clone(),
            (Mag::Finite { mant: a, exp: ea }, Mag::Finite { mant: b, exp: eb }) => {
                (a, *ea, b, *eb)
            }
        };
        if a.is_zero() {
            return other.clone();
        }
        if b.is_zero() {
            return self.clone();
        }
        // A term far below the other's last bit only decides rounding; keep a sticky bit.
        let (ta, tb) = (bits(a) + ea, bits(b) + eb);
        let gap = prec as i64 + 2;
        if ta - gap > tb {
            return self.nudge(prec, other.neg);
        }
        if tb - gap > ta {
            return other.nudge(prec, self.neg);
        }
        let e = ea.min(eb);
        let a = a << ((ea - e) as u64);
        let b = b << ((eb - e) as u64);
        if self.neg == other.neg {
            round(self.neg, a + b, e, false, prec)
        } else {
            match a.cmp(&b) {
                Ordering::Equal => round(false, BigUint::zero(), 0, false, prec),
                Ordering::Greater => round(self.neg, a - b, e, false, prec),
                Ordering::Less => round(other.neg, b - a, e, false, prec),
            }
        }
    }

    /// `self` plus a term too small to show (of sign `neg`), rounded at `prec`.
    fn nudge(&self, prec: u32, neg: bool) -> Big {
        let Mag::Finite { mant, exp } = &self.mag else {
            return self.clone();
        };
        // Two guard bits, then a sticky one for the tiny term.
        let m = mant << (prec as u64 + 2);
        let e = exp - (prec as i64 + 2);
        if neg == self.neg {
            round(self.neg, (m << 1u8) + 1u32, e - 1, false, prec)
        } else {
            round(self.neg, (m << 1u8) - 1u32, e - 1, false, prec)
        }
    }

    fn mul(&self, other: &Big) -> Big {
        let prec = self.prec.max(other.prec);
        let neg = self.neg != other.neg;
        match (&self.mag, &other.mag) {
            (Mag::Inf, _) | (_, Mag::Inf) => Big::inf(neg),
            (Mag::Finite { mant: a, exp: ea }, Mag::Finite { mant: b, exp: eb }) => {
                round(neg, a * b, ea + eb, false, prec)
            }
        }
    }

    fn div(&self, other: &Big) -> Result<Big, NumberError> {
        let prec = self.prec.max(other.prec);
        let neg = self.neg != other.neg;
        match (&self.mag, &other.mag) {
            (Mag::Inf, Mag::Inf) => Err(NumberError::Indeterminate),
            (Mag::Inf, _) => Ok(Big::inf(neg)),
            (_, Mag::Inf) => Ok(round(false, BigUint::zero(), 0, false, prec)),
            (Mag::Finite { mant: a, exp: ea }, Mag::Finite { mant: b, exp: eb }) => {
                match (a.is_zero(), b.is_zero()) {
                    (true, true) => return Err(NumberError::Indeterminate),
                    (false, true) => return Ok(Big::inf(neg)),
                    (true, false) => return Ok(round(false, BigUint::zero(), 0, false, prec)),
                    _ => {}
                }
                let k = (prec as i64 + 2 + bits(b) - bits(a)).max(0);
                let num = a << (k as u64);
                let q = &num / b;
                let sticky = !(num % b).is_zero();
                Ok(round(neg, q, ea - eb - k, sticky, prec))
            }
        }
    }

    /// Terraform's `%`: `a - b × trunc(a / b)`, exact, with the sign of `a`; `a % 0` is `a`.
    fn rem(&self, other: &Big) -> Big {
        let prec = self.prec.max(other.prec);
        match (&self.mag, &other.mag) {
            (Mag::Inf, _) => self.clone(),
            (_, Mag::Inf) => self.clone(),
            (Mag::Finite { mant: a, exp: ea }, Mag::Finite { mant: b, exp: eb }) => {
                if b.is_zero() {
                    return self.clone();
                }
                let e = (*ea).min(*eb);
                let a = a << ((ea - e) as u64);
                let b = b << ((eb - e) as u64);
                round(self.neg, a % b, e, false, prec)
            }
        }
    }

    /// Rounds toward negative (`floor`) or positive (`ceil`) infinity to an integer.
    fn to_integer(&self, up: bool) -> Big {
        let Mag::Finite { mant, exp } = &self.mag else {
            return self.clone();
        };
        if *exp >= 0 {
            return self.clone();
        }
        let shift = (-exp) as u64;
        let whole = mant >> shift;
        // mant is odd, so with a negative exponent there is always a fraction.
        let away = up != self.neg;
        let whole = if away { whole + 1u32 } else { whole };
        round(self.neg, whole, 0, false, self.prec)
    }

    fn from_f64(f: f64) -> Big {
        if f.is_infinite() {
            return Big::inf(f < 0.0);
        }
        let bits = f.to_bits();
        let neg = bits >> 63 == 1;
        let exp_bits = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1u64 << 52) - 1);
        let (mant, exp) = if exp_bits == 0 {
            (frac, -1074)
        } else {
            (frac | (1u64 << 52), exp_bits - 1075)
        };
        round(neg, BigUint::from(mant), exp, false, F64_PRECISION)
    }

    fn to_f64(&self) -> f64 {
        let sign = if self.neg { -1.0 } else { 1.0 };
        let Mag::Finite { mant, exp } = &self.mag else {
            return sign * f64::INFINITY;
        };
        let r = round(false, mant.clone(), *exp, false, F64_PRECISION);
        let Mag::Finite { mant, exp } = r.mag else {
            return 0.0;
        };
        let m = mant.to_u64().unwrap_or(0) as f64;
        // Scale in steps so neither factor leaves f64's range before the result does.
        let mut e = exp;
        let mut v = m;
        while e > 0 {
            let step = e.min(1000);
            v *= 2f64.powi(step as i32);
            e -= step;
        }
        while e < 0 {
            let step = (-e).min(1000);
            v /= 2f64.powi(step as i32);
            e += step;
        }
        sign * v
    }

    /// Parses a decimal (`-12.5e3`), exactly rounded to [`PRECISION`] bits.
    fn parse(s: &str) -> Option<Big> {
        let (neg, body) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        if body == "Inf" || body == "inf" {
            return Some(Big::inf(neg));
        }
        let (num, exp_part) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let (int, frac) = match num.find('.') {
            Some(i) => (&num[..i], &num[i + 1..]),
            None => (num, ""),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut exp10: i64 = match exp_part {
            Some(e) => {
                let (eneg, digits) = match e.as_bytes().first()? {
                    b'-' => (true, &e[1..]),
                    b'+' => (false, &e[1..]),
                    _ => (false, e),
                };
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let v: i64 = digits.parse().ok().filter(|v| *v <= MAX_DECIMAL_EXPONENT)?;
                if eneg { -v } else { v }
            }
            None => 0,
        };
        exp10 -= frac.len() as i64;
        let digits = format!("{int}{frac}");
        let d = BigUint::parse_bytes(digits.as_bytes(), 10)?;
        if exp10.abs() > MAX_DECIMAL_EXPONENT {
            return None;
        }
        if exp10 >= 0 {
            return Some(round(neg, d * pow10(exp10 as u64), 0, false, PRECISION));
        }
        if d.is_zero() {
            return Some(round(false, d, 0, false, PRECISION));
        }
        let den = pow10((-exp10) as u64);
        let k = (PRECISION as i64 + 2 + bits(&den) - bits(&d)).max(0);
        let num = d << (k as u64);
        let q = &num / &den;
        let sticky = !(num % &den).is_zero();
        Some(round(neg, q, -k, sticky, PRECISION))
    }

    /// The shortest decimal that identifies the value at its precision, in positional
    /// notation (Go's `Text('f', -1)`).
    fn to_text(&self) -> String {
        let sign = if self.neg { "-" } else { "" };
        let Mag::Finite { mant, exp } = &self.mag else {
            return format!("{}Inf", if self.neg { "-" } else { "+" });
        };
        if mant.is_zero() {
            return "0".into();
        }
        let (digits, point) = shortest(mant, *exp, self.prec);
        let mut out = String::from(sign);
        let point = point as isize;
        let n = digits.len() as isize;
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-point) as usize));
            out.push_str(&digits);
        } else if point >= n {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', (point - n) as usize));
        } else {
            out.push_str(&digits[..point as usize]);
            out.push('.');
            out.push_str(&digits[point as usize..]);
        }
        out
    }
}

/// The exact decimal digits of `m × 2^e` (no trailing zeros) and the decimal point's place:
/// the value is `0.DIGITS × 10^point`.
fn exact_decimal(m: &BigUint, e: i64) -> (Vec<u8>, i64) {
    let (n, scale) = if e >= 0 {
        (m << (e as u64), 0)
    } else {
        (m * num_traits::pow(BigUint::from(5u32), (-e) as usize), -e)
    };
    let s = n.to_str_radix(10);
    let point = s.len() as i64 - scale;
    let trimmed = s.trim_end_matches('0');
    (trimmed.as_bytes().to_vec(), point)
}

/// Go's `shortest`: the fewest digits of `m × 2^e` that still round to it at `prec` bits.
/// Like Go, it walks the digits of the value and of its half-ulp neighbours by index.
fn shortest(m: &BigUint, e: i64, prec: u32) -> (String, i64) {
    let (d, point) = exact_decimal(m, e);
    // Normalise to prec + 1 bits so one unit is half an ulp.
    let s = bits(m) - (prec as i64 + 1);
    let (mant, exp) = if s < 0 {
        (m << ((-s) as u64), e + s)
    } else {
        (m >> (s as u64), e + s)
    };
    let (lower, _) = exact_decimal(&(&mant - BigUint::one()), exp);
    let (upper, _) = exact_decimal(&(&mant + BigUint::one()), exp);
    let inclusive = !mant.bit(1);
    let at = |digits: &[u8], i: usize| digits.get(i).copied().unwrap_or(b'0');
    for (i, &m) in d.iter().enumerate() {
        let l = at(&lower, i);
        let u = at(&upper, i);
        let okdown = l != m || inclusive && i + 1 == lower.len();
        let okup = m != u && (inclusive || m + 1 < u || i + 1 < upper.len());
        let how = match (okdown, okup) {
            (true, true) => Rounding::Nearest,
            (true, false) => Rounding::Down,
            (false, true) => Rounding::Up,
            (false, false) => continue,
        };
        let (digits, carry) = round_digits(&d, i + 1, how);
        return finish(digits, point + carry);
    }
    finish(d, point)
}

enum Rounding {
    Nearest,
    Down,
    Up,
}

/// `d` cut to `n` digits; the extra decimal place when rounding up carries out (999 → 1000).
fn round_digits(d: &[u8], n: usize, how: Rounding) -> (Vec<u8>, i64) {
    if n >= d.len() {
        return (d.to_vec(), 0);
    }
    let up = match how {
        Rounding::Down => false,
        Rounding::Up => true,
        Rounding::Nearest => match d[n] {
            b'5' if n + 1 == d.len() => n > 0 && (d[n - 1] - b'0') % 2 == 1,
            c => c >= b'5',
        },
    };
    let mut out = d[..n].to_vec();
    if !up {
        return (out, 0);
    }
    let mut i = out.len();
    loop {
        if i == 0 {
            out.insert(0, b'1');
            return (out, 1);
        }
        i -= 1;
        if out[i] == b'9' {
            out[i] = b'0';
        } else {
            out[i] += 1;
            return (out, 0);
        }
    }
}

fn finish(mut digits: Vec<u8>, point: i64) -> (String, i64) {
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    (String::from_utf8(digits).unwrap_or_default(), point)
}

impl Number {
    /// Zero.
    pub fn zero() -> Number {
        Number(Repr::Int(0))
    }

    /// Parses a decimal literal (`42`, `-0.5`, `1e400`, `Inf`); `None` when it is not one.
    pub fn parse(s: &str) -> Option<Number> {
        if let Ok(i) = s.parse::<i64>()
            && !s.starts_with('+')
        {
            return Some(Number(Repr::Int(i)));
        }
        Big::parse(s).map(Number::from_big)
    }

    /// An `f64` as the 53-bit number it is (what Terraform's `f64` functions give); NaN,
    /// which no number is, becomes zero (callers refuse it first).
    pub fn from_f64(f: f64) -> Number {
        if f.is_nan() {
            return Number::zero();
        }
        if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
            return Number(Repr::Int(f as i64));
        }
        Number::from_big(Big::from_f64(f))
    }

    fn from_big(b: Big) -> Number {
        match b.to_i64() {
            // Integers below 2^53 print the same at any precision, so they can drop it.
            Some(i) if b.prec >= 64 || i.unsigned_abs() < (1u64 << 53) => Number(Repr::Int(i)),
            _ => Number(Repr::Big(Arc::new(b))),
        }
    }

    fn big(&self) -> std::borrow::Cow<'_, Big> {
        match &self.0 {
            Repr::Int(i) => std::borrow::Cow::Owned(Big::from_i64(*i, PRECISION)),
            Repr::Big(b) => std::borrow::Cow::Borrowed(b),
        }
    }

    /// The nearest `f64` (for functions defined on floats and for JSON).
    pub fn to_f64(&self) -> f64 {
        match &self.0 {
            Repr::Int(i) => *i as f64,
            Repr::Big(b) => b.to_f64(),
        }
    }

    /// The value when it is an integer that fits an `i64`.
    pub fn to_i64(&self) -> Option<i64> {
        match &self.0 {
            Repr::Int(i) => Some(*i),
            Repr::Big(b) => b.to_i64(),
        }
    }

    /// The value when it is a whole number from 0 to `usize::MAX`.
    pub fn to_usize(&self) -> Option<usize> {
        self.to_i64().and_then(|i| usize::try_from(i).ok())
    }

    /// Whether it is a whole number (infinities are not).
    pub fn is_integer(&self) -> bool {
        match &self.0 {
            Repr::Int(_) => true,
            Repr::Big(b) => {
                matches!(&b.mag, Mag::Finite { exp, mant } if *exp >= 0 || mant.is_zero())
            }
        }
    }

    /// Whether it is below zero.
    pub fn is_negative(&self) -> bool {
        match &self.0 {
            Repr::Int(i) => *i < 0,
            Repr::Big(b) => b.neg,
        }
    }

    /// Whether it is zero.
    pub fn is_zero(&self) -> bool {
        match &self.0 {
            Repr::Int(i) => *i == 0,
            Repr::Big(b) => b.is_zero(),
        }
    }

    /// `self + other`.
    pub fn add(&self, other: &Number) -> Number {
        if let (Repr::Int(a), Repr::Int(b)) = (&self.0, &other.0)
            && let Some(s) = a.checked_add(*b)
        {
            return Number(Repr::Int(s));
        }
        Number::from_big(self.big().add(&other.big()))
    }

    /// `self - other`.
    pub fn sub(&self, other: &Number) -> Number {
        if let (Repr::Int(a), Repr::Int(b)) = (&self.0, &other.0)
            && let Some(s) = a.checked_sub(*b)
        {
            return Number(Repr::Int(s));
        }
        Number::from_big(self.big().add(&other.big().neg()))
    }

    /// `self × other`.
    pub fn mul(&self, other: &Number) -> Number {
        if let (Repr::Int(a), Repr::Int(b)) = (&self.0, &other.0)
            && let Some(s) = a.checked_mul(*b)
        {
            return Number(Repr::Int(s));
        }
        Number::from_big(self.big().mul(&other.big()))
    }

    /// `self / other`; dividing by zero gives an infinity, `0 / 0` an error.
    pub fn div(&self, other: &Number) -> Result<Number, NumberError> {
        if let (Repr::Int(a), Repr::Int(b)) = (&self.0, &other.0)
            && *b != 0
            && a.checked_rem(*b) == Some(0)
            && let Some(q) = a.checked_div(*b)
        {
            return Ok(Number(Repr::Int(q)));
        }
        self.big().div(&other.big()).map(Number::from_big)
    }

    /// Terraform's `%` (the sign of `self`; `x % 0` is `x`).
    pub fn rem(&self, other: &Number) -> Number {
        if let (Repr::Int(a), Repr::Int(b)) = (&self.0, &other.0) {
            return match a.checked_rem(*b) {
                Some(r) => Number(Repr::Int(r)),
                None if *b == 0 => self.clone(),
                None => Number(Repr::Int(0)), // i64::MIN % -1
            };
        }
        Number::from_big(self.big().rem(&other.big()))
    }

    /// `-self`.
    pub fn neg(&self) -> Number {
        if let Repr::Int(a) = &self.0
            && let Some(n) = a.checked_neg()
        {
            return Number(Repr::Int(n));
        }
        Number::from_big(self.big().neg())
    }

    /// `|self|`.
    pub fn abs(&self) -> Number {
        if self.is_negative() {
            self.neg()
        } else {
            self.clone()
        }
    }

    /// The shortest digits (no leading or trailing zeros) and the decimal point's place
    /// (`0.DIGITS × 10^point`), for a finite nonzero value.
    fn digits(&self) -> Option<(bool, String, i64)> {
        match &self.0 {
            Repr::Int(0) => None,
            Repr::Int(i) => {
                let s = i.unsigned_abs().to_string();
                let point = s.len() as i64;
                Some((*i < 0, s.trim_end_matches('0').to_string(), point))
            }
            Repr::Big(b) => match &b.mag {
                Mag::Finite { mant, exp } if !mant.is_zero() => {
                    let (d, p) = shortest(mant, *exp, b.prec);
                    Some((b.neg, d, p))
                }
                _ => None,
            },
        }
    }

    /// `format("%g", n)` as Go prints a big float: the shortest digits, in exponent form
    /// when the exponent is below -4 or at least 6 (`1.234567890123456789e+19`).
    pub fn to_g(&self) -> String {
        let Some((neg, d, point)) = self.digits() else {
            return self.to_string();
        };
        let exp = point - 1;
        if (-4..6).contains(&exp) {
            return self.to_string();
        }
        let mut out = String::from(if neg { "-" } else { "" });
        out.push_str(&d[..1]);
        if d.len() > 1 {
            out.push('.');
            out.push_str(&d[1..]);
        }
        out.push_str(&format!(
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        ));
        out
    }

    /// The greatest integer not above it.
    pub fn floor(&self) -> Number {
        match &self.0 {
            Repr::Int(_) => self.clone(),
            Repr::Big(b) => Number::from_big(b.to_integer(false)),
        }
    }

    /// The least integer not below it.
    pub fn ceil(&self) -> Number {
        match &self.0 {
            Repr::Int(_) => self.clone(),
            Repr::Big(b) => Number::from_big(b.to_integer(true)),
        }
    }
}

impl From<i64> for Number {
    fn from(i: i64) -> Number {
        Number(Repr::Int(i))
    }
}

impl From<usize> for Number {
    fn from(u: usize) -> Number {
        match i64::try_from(u) {
            Ok(i) => Number(Repr::Int(i)),
            Err(_) => Number::from_big(round(false, BigUint::from(u), 0, false, PRECISION)),
        }
    }
}

impl From<u64> for Number {
    fn from(u: u64) -> Number {
        match i64::try_from(u) {
            Ok(i) => Number(Repr::Int(i)),
            Err(_) => Number::from_big(round(false, BigUint::from(u), 0, false, PRECISION)),
        }
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Number) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Number {}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        match (&self.0, &other.0) {
            (Repr::Int(a), Repr::Int(b)) => a.cmp(b),
            _ => self.big().cmp(&other.big()),
        }
    }
}

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Repr::Int(i) => write!(f, "{i}"),
            Repr::Big(b) => f.write_str(&b.to_text()),
        }
    }
}

impl std::fmt::Debug for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Number {
        Number::parse(s).unwrap_or_else(|| panic!("{s} parses"))
    }

    #[test]
    fn prints_as_terraform_does() {
        // Each pair: an expression's value and what Terraform 1.11 prints for it.
        let third = n("1").div(&n("3")).unwrap();
        let cases: Vec<(Number, &str)> = vec![
            (n("0.1").add(&n("0.2")), "0.3"),
            (n("12345678901234567890"), "12345678901234567890"),
            (
                n("12345678901234567890").add(&n("1")),
                "12345678901234567891",
            ),
            (
                third.clone(),
                "0.33333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333335",
            ),
            (
                n("2").div(&n("3")).unwrap(),
                "0.6666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666667",
            ),
            (n("10").div(&n("4")).unwrap(), "2.5"),
            (n("0.1").mul(&n("3")), "0.3"),
            (n("2e20"), "200000000000000000000"),
            (n("1.5e-7"), "0.00000015"),
            (n("1e21"), "1000000000000000000000"),
            (n("7.5").rem(&n("2")), "1.5"),
            (n("-7").rem(&n("3")), "-1"),
            (n("2.5").rem(&n("0.5")), "0"),
            (n("5").rem(&n("0")), "5"),
            (n("3").div(&n("0")).unwrap(), "+Inf"),
            (n("-3").div(&n("0")).unwrap(), "-Inf"),
            (
                Number::from_f64(2f64.powi(100)),
                "1267650600228229400000000000000",
            ),
            (Number::from_f64(2f64.sqrt()), "1.4142135623730951"),
            (n("-1.5").ceil(), "-1"),
            (n("7.5").floor(), "7"),
            (n("-7.5").floor(), "-8"),
            (third.mul(&n("3")), "1"),
        ];
        for (v, want) in cases {
            assert_eq!(v.to_string(), want);
        }
        assert_eq!(n("1e400").to_string(), format!("1{}", "0".repeat(400)));
        assert!(n("0").div(&n("0")).is_err());
    }

    #[test]
    fn compares_by_value() {
        assert_eq!(n("1"), n("1.0"));
        assert_eq!(n("0.1").add(&n("0.2")), n("0.3"));
        assert!(n("0.1") < n("0.2"));
        assert!(n("-1e400") < n("-1"));
        assert!(n("12345678901234567891") > n("12345678901234567890"));
        assert_eq!(n("1").div(&n("3")).unwrap().mul(&n("3")), n("1"));
        assert!(!n("1.5").is_integer() && n("1e3").is_integer());
        assert_eq!(n("1e3").to_i64(), Some(1000));
        assert_eq!(Number::parse("x"), None);
        assert_eq!(Number::parse("1.2.3"), None);
        assert_eq!(Number::parse("1e"), None);
    }

    #[test]
    fn converts_to_f64_and_back() {
        for f in [0.1, 0.3, 1.5e-7, 2.5, -1e300, 123456.789] {
            assert_eq!(Number::from_f64(f).to_f64(), f);
            assert_eq!(n(&f.to_string()).to_f64(), f);
        }
    }
}
