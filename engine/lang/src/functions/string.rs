//! String functions, including `format` with Terraform's verbs.
use super::*;

fn s0(a: &[Value]) -> Result<String, String> {
    str_arg(&a[0], "the string")
}

pub fn chomp(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    Ok(Value::String(
        s0(&a)?.trim_end_matches(['\n', '\r']).to_string(),
    ))
}
pub fn lower(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    Ok(Value::String(s0(&a)?.to_lowercase()))
}
pub fn upper(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    Ok(Value::String(s0(&a)?.to_uppercase()))
}
pub fn strrev(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    Ok(Value::String(s0(&a)?.chars().rev().collect()))
}
pub fn trimspace(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    Ok(Value::String(s0(&a)?.trim().to_string()))
}
pub fn title(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let s = s0(&a)?;
    let mut out = String::with_capacity(s.len());
    let mut at_word_start = true;
    for c in s.chars() {
        if at_word_start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_word_start = !c.is_alphanumeric();
    }
    Ok(Value::String(out))
}
pub fn startswith(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    Ok(Value::Bool(
        s0(&a)?.starts_with(&str_arg(&a[1], "the prefix")?),
    ))
}
pub fn endswith(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    Ok(Value::Bool(
        s0(&a)?.ends_with(&str_arg(&a[1], "the suffix")?),
    ))
}
pub fn trimprefix(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let s = s0(&a)?;
    let p = str_arg(&a[1], "the prefix")?;
    Ok(Value::String(
        s.strip_prefix(p.as_str()).unwrap_or(&s).to_string(),
    ))
}
pub fn trimsuffix(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let s = s0(&a)?;
    let p = str_arg(&a[1], "the suffix")?;
    Ok(Value::String(
        s.strip_suffix(p.as_str()).unwrap_or(&s).to_string(),
    ))
}
pub fn trim(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let s = s0(&a)?;
    let cut: Vec<char> = str_arg(&a[1], "the characters")?.chars().collect();
    Ok(Value::String(
        s.trim_matches(|c| cut.contains(&c)).to_string(),
    ))
}
pub fn indent(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let n = int_arg(&a[0], "the number of spaces")?.max(0) as usize;
    let s = str_arg(&a[1], "the string")?;
    let pad = " ".repeat(n);
    let mut out = String::new();
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&pad);
            }
        }
        out.push_str(line);
    }
    Ok(Value::String(out))
}
pub fn join(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let mut it = a.into_iter();
    let sep = str_arg(&it.next().unwrap_or_default(), "the separator")?;
    let mut parts = Vec::new();
    for list in it {
        for item in list_arg(list, "each list")? {
            if item.is_null() {
                return Err("lists to join must not contain null".into());
            }
            parts.push(str_arg(&item, "each element")?);
        }
    }
    Ok(Value::String(parts.join(&sep)))
}
pub fn split(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let sep = str_arg(&a[0], "the separator")?;
    let s = str_arg(&a[1], "the string")?;
    if s.is_empty() {
        return Ok(Value::List(vec![Value::string("")]));
    }
    Ok(Value::List(
        s.split(sep.as_str()).map(Value::string).collect(),
    ))
}
pub fn substr(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let chars: Vec<char> = s0(&a)?.chars().collect();
    let len = chars.len() as i64;
    let mut offset = int_arg(&a[1], "the offset")?;
    let mut length = int_arg(&a[2], "the length")?;
    if offset < 0 {
        offset += len;
    }
    if offset < 0 || offset > len {
        return Err("the offset is outside the string".into());
    }
    if length < 0 || offset + length > len {
        length = len - offset;
    }
    Ok(Value::String(
        chars[offset as usize..(offset + length) as usize]
            .iter()
            .collect(),
    ))
}

fn compile(pattern: &str) -> Result<::regex::Regex, String> {
    ::regex::Regex::new(pattern).map_err(|e| format!("invalid regular expression: {e}"))
}

pub fn replace(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let s = s0(&a)?;
    let sub = str_arg(&a[1], "the substring")?;
    let rep = str_arg(&a[2], "the replacement")?;
    if sub.len() >= 2 && sub.starts_with('/') && sub.ends_with('/') {
        let re = compile(&sub[1..sub.len() - 1])?;
        return Ok(Value::String(re.replace_all(&s, rep.as_str()).into_owned()));
    }
    Ok(Value::String(s.replace(&sub, &rep)))
}

fn captures(re: &::regex::Regex, caps: &::regex::Captures<'_>) -> Value {
    let named: Vec<Option<&str>> = re.capture_names().skip(1).collect();
    if named.is_empty() {
        return caps
            .get(0)
            .map_or(Value::Null, |m| Value::string(m.as_str()));
    }
    if named.iter().all(Option::is_some) {
        return Value::Map(
            named
                .iter()
                .flatten()
                .map(|n| {
                    (
                        n.to_string(),
                        caps.name(n)
                            .map_or(Value::Null, |m| Value::string(m.as_str())),
                    )
                })
                .collect(),
        );
    }
    Value::List(
        (1..caps.len())
            .map(|i| {
                caps.get(i)
                    .map_or(Value::Null, |m| Value::string(m.as_str()))
            })
            .collect(),
    )
}

pub fn regex(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let re = compile(&str_arg(&a[0], "the pattern")?)?;
    let s = str_arg(&a[1], "the string")?;
    match re.captures(&s) {
        Some(caps) => Ok(captures(&re, &caps)),
        None => Err("the pattern did not match any part of the string".into()),
    }
}

pub fn regexall(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let re = compile(&str_arg(&a[0], "the pattern")?)?;
    let s = str_arg(&a[1], "the string")?;
    Ok(Value::List(
        re.captures_iter(&s).map(|c| captures(&re, &c)).collect(),
    ))
}

pub fn format(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let spec = str_arg(&a[0], "the format")?;
    format_with(&spec, &a[1..]).map(Value::String)
}

pub fn formatlist(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let spec = str_arg(&a[0], "the format")?;
    let mut len: Option<usize> = None;
    for v in &a[1..] {
        if let Value::List(items) | Value::Set(items) = v {
            match len {
                Some(l) if l != items.len() => {
                    return Err("all list arguments must have the same length".into());
                }
                _ => len = Some(items.len()),
            }
        }
    }
    let n = len.unwrap_or(1);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let row: Vec<Value> = a[1..]
            .iter()
            .map(|v| match v {
                Value::List(items) | Value::Set(items) => items[i].clone(),
                other => other.clone(),
            })
            .collect();
        out.push(Value::String(format_with(&spec, &row)?));
    }
    Ok(Value::List(out))
}

/// Terraform's `format` verbs: `%v %s %d %f %e %g %t %q %b %o %x %X %%`, with flags, width and precision.
fn format_with(spec: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = spec.chars().peekable();
    let mut next = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek() {
            if "-+# 0".contains(f) {
                flags.push(f);
                chars.next();
            } else {
                break;
            }
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|c| c.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|c| c.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            precision = Some(p.parse().unwrap_or(0));
        }
        let verb = chars
            .next()
            .ok_or("the format ends with an unfinished verb")?;
        let arg = args
            .get(next)
            .ok_or_else(|| format!("not enough arguments for the format: verb %{verb} has none"))?;
        next += 1;
        let body = match verb {
            'v' if flags.contains('#') => serde_json::to_string(&arg.to_json()).unwrap_or_default(),
            'v' => match arg {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => "null".into(),
                other => serde_json::to_string(&other.to_json()).unwrap_or_default(),
            },
            's' => str_arg(arg, "a %s argument")?,
            'q' => serde_json::to_string(&str_arg(arg, "a %q argument")?).unwrap_or_default(),
            't' => bool_arg(arg, "a %t argument")?.to_string(),
            'd' => {
                let n = num_arg(arg, "a %d argument")?;
                if !n.is_integer() {
                    return Err(format!("%d needs a whole number, got {n}"));
                }
                let s = n.to_string();
                if flags.contains('+') && !n.is_negative() {
                    format!("+{s}")
                } else {
                    s
                }
            }
            'f' => {
                let n = float_arg(arg, "a %f argument")?;
                let s = format!("{:.*}", precision.unwrap_or(6), n);
                if flags.contains('+') && n >= 0.0 {
                    format!("+{s}")
                } else {
                    s
                }
            }
            'e' | 'E' => {
                let n = float_arg(arg, "a %e argument")?;
                let s = format!("{:.*e}", precision.unwrap_or(6), n);
                let s = go_exponent(&s);
                if verb == 'E' { s.to_uppercase() } else { s }
            }
            'g' | 'G' => {
                let s = num_arg(arg, "a %g argument")?.to_g();
                if verb == 'G' { s.to_uppercase() } else { s }
            }
            'b' => format!("{:b}", int_arg(arg, "a %b argument")?),
            'o' => format!("{:o}", int_arg(arg, "a %o argument")?),
            'x' | 'X' => {
                let s = match arg {
                    Value::String(s) => s.bytes().map(|b| format!("{b:02x}")).collect(),
                    other => format!("{:x}", int_arg(other, "a %x argument")?),
                };
                if verb == 'X' { s.to_uppercase() } else { s }
            }
            other => return Err(format!("unsupported format verb %{other}")),
        };
        let body = match precision {
            Some(p) if verb == 's' => body.chars().take(p).collect(),
            _ => body,
        };
        let width: usize = width.parse().unwrap_or(0);
        let len = body.chars().count();
        if len < width {
            let pad = width - len;
            if flags.contains('-') {
                out.push_str(&body);
                out.push_str(&" ".repeat(pad));
            } else if flags.contains('0') && "dfeEbxXo".contains(verb) {
                let (sign, digits) = match body.strip_prefix(['-', '+']) {
                    Some(d) => (&body[..1], d),
                    None => ("", body.as_str()),
                };
                out.push_str(sign);
                out.push_str(&"0".repeat(pad));
                out.push_str(digits);
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(&body);
            }
        } else {
            out.push_str(&body);
        }
    }
    if next < args.len() {
        return Err(format!(
            "too many arguments: the format uses {next}, got {}",
            args.len()
        ));
    }
    Ok(out)
}

/// Rust prints `1.5e3`; Go (and so Terraform) prints `1.5e+03`.
fn go_exponent(s: &str) -> String {
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s.to_string(),
    }
}
