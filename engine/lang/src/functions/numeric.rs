//! Numeric functions.
use super::*;

fn one(a: &[Value]) -> Result<Number, String> {
    num_arg(&a[0], "the argument")
}

pub fn abs(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    Ok(Value::Number(one(&a)?.abs()))
}
pub fn ceil(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    Ok(Value::Number(one(&a)?.ceil()))
}
pub fn floor(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    Ok(Value::Number(one(&a)?.floor()))
}
/// As in Terraform, defined on whole numbers only.
pub fn signum(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    Ok(Value::int(int_arg(&a[0], "the argument")?.signum()))
}
/// Computed in 64-bit floats, as Terraform does (`pow(2, 100)` prints 17 digits).
pub fn pow(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let r = float_arg(&a[0], "the base")?.powf(float_arg(&a[1], "the exponent")?);
    if r.is_nan() {
        return Err(
            "the result is not a number (a negative base with a fractional exponent)".into(),
        );
    }
    Ok(Value::float(r))
}

fn fold(a: &[Value], keep_new: fn(&Number, &Number) -> bool) -> Result<Value, String> {
    let mut out: Option<Number> = None;
    for v in a {
        let n = num_arg(v, "every argument")?;
        out = Some(match out {
            Some(o) if !keep_new(&o, &n) => o,
            _ => n,
        });
    }
    out.map(Value::Number)
        .ok_or_else(|| "at least one number is required".into())
}
pub fn max(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    fold(&a, |old, new| new > old)
}
pub fn min(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    fold(&a, |old, new| new < old)
}

pub fn parseint(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let s = str_arg(&a[0], "the number")?;
    let base = int_arg(&a[1], "the base")?;
    if !(2..=62).contains(&base) {
        return Err(format!("the base must be between 2 and 62, got {base}"));
    }
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(&s)),
    };
    if digits.is_empty() {
        return Err(format!("cannot parse {s:?} as a base {base} integer"));
    }
    let mut n = Number::zero();
    let radix = Number::from(base);
    for c in digits.chars() {
        let d = match c {
            '0'..='9' => c as i64 - '0' as i64,
            'a'..='z' => c as i64 - 'a' as i64 + 10,
            'A'..='Z' if base <= 36 => c as i64 - 'A' as i64 + 10,
            'A'..='Z' => c as i64 - 'A' as i64 + 36,
            _ => return Err(format!("cannot parse {s:?} as a base {base} integer")),
        };
        if d >= base {
            return Err(format!("cannot parse {s:?} as a base {base} integer"));
        }
        n = n.mul(&radix).add(&Number::from(d));
    }
    Ok(Value::Number(if neg { n.neg() } else { n }))
}
