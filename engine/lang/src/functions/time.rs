//! Time functions over RFC 3339 timestamps.
use super::*;
use ::time::format_description::well_known::Rfc3339;
use ::time::{Duration, OffsetDateTime};

fn parse_ts(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| format!("{s:?} is not an RFC 3339 timestamp like \"2024-01-02T15:04:05Z\""))
}

fn format_ts(t: OffsetDateTime) -> String {
    let mut s = t.format(&Rfc3339).unwrap_or_default();
    if s.ends_with("+00:00") {
        s.truncate(s.len() - 6);
        s.push('Z');
    }
    s
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration like \"1h30m\" or \"-10s\"");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return Err(bad());
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        nanos += n * scale;
        rest = &rest[unit_end..];
    }
    let d = Duration::nanoseconds(nanos as i64);
    Ok(if neg { -d } else { d })
}

pub fn timeadd(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let t = parse_ts(&str_arg(&a[0], "the timestamp")?)?;
    let d = parse_duration(&str_arg(&a[1], "the duration")?)?;
    Ok(Value::String(format_ts(t + d)))
}

pub fn formatdate(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let spec = str_arg(&a[0], "the format")?;
    let t = parse_ts(&str_arg(&a[1], "the timestamp")?)?;
    let chars: Vec<char> = spec.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '\'' {
                out.push(chars[j]);
                j += 1;
            }
            if j == chars.len() {
                return Err("unterminated quoted literal in the format".into());
            }
            i = j + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && chars[j] == c {
            j += 1;
        }
        let token: String = chars[i..j].iter().collect();
        let hour12 = match t.hour() % 12 {
            0 => 12,
            h => h,
        };
        let off = t.offset();
        let (oh, om) = (off.whole_hours(), off.minutes_past_hour().abs());
        let piece = match token.as_str() {
            "YYYY" => format!("{:04}", t.year()),
            "YY" => format!("{:02}", t.year() % 100),
            "MMMM" => t.month().to_string(),
            "MMM" => t.month().to_string()[..3].to_string(),
            "MM" => format!("{:02}", u8::from(t.month())),
            "M" => format!("{}", u8::from(t.month())),
            "DD" => format!("{:02}", t.day()),
            "D" => format!("{}", t.day()),
            "EEEE" => t.weekday().to_string(),
            "EEE" => t.weekday().to_string()[..3].to_string(),
            "hh" => format!("{:02}", t.hour()),
            "h" => format!("{}", t.hour()),
            "HH" => format!("{hour12:02}"),
            "H" => format!("{hour12}"),
            "AA" => (if t.hour() < 12 { "AM" } else { "PM" }).to_string(),
            "aa" => (if t.hour() < 12 { "am" } else { "pm" }).to_string(),
            "mm" => format!("{:02}", t.minute()),
            "m" => format!("{}", t.minute()),
            "ss" => format!("{:02}", t.second()),
            "s" => format!("{}", t.second()),
            "ZZZZZ" => format!(
                "{}{:02}:{om:02}",
                if off.is_negative() { '-' } else { '+' },
                oh.abs()
            ),
            "ZZZZ" => format!(
                "{}{:02}{om:02}",
                if off.is_negative() { '-' } else { '+' },
                oh.abs()
            ),
            "ZZZ" if off.is_utc() => "UTC".to_string(),
            "ZZZ" => format!(
                "{}{:02}{om:02}",
                if off.is_negative() { '-' } else { '+' },
                oh.abs()
            ),
            "Z" if off.is_utc() => "Z".to_string(),
            "Z" => format!(
                "{}{:02}:{om:02}",
                if off.is_negative() { '-' } else { '+' },
                oh.abs()
            ),
            other => return Err(format!("invalid date format sequence {other:?}")),
        };
        out.push_str(&piece);
        i = j;
    }
    Ok(Value::String(out))
}
