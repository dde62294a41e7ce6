//! Encoding functions: base64, JSON, YAML, URL and CSV.
use super::*;
use base64::Engine as _;

pub fn base64encode(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let s = str_arg(&a[0], "the string")?;
    Ok(Value::String(
        base64::engine::general_purpose::STANDARD.encode(s),
    ))
}

pub fn base64decode(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let s = str_arg(&a[0], "the string")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| format!("invalid base64: {e}"))?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| "the decoded bytes are not valid UTF-8".into())
}

/// JSON with every number written exactly as it prints (`1/3` keeps its 155 digits, as in
/// Terraform), keys sorted.
fn write_json(v: &Value, out: &mut String) -> Result<(), String> {
    match v {
        Value::Null | Value::Unknown => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let text = n.to_string();
            if text.ends_with("Inf") {
                return Err(format!("JSON has no infinity ({text})"));
            }
            out.push_str(&text);
        }
        Value::String(s) => out.push_str(&serde_json::to_string(s).unwrap_or_default()),
        Value::List(items) | Value::Set(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out)?;
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push(':');
                write_json(item, out)?;
            }
            out.push('}');
        }
        Value::Sensitive(inner) => write_json(inner, out)?,
    }
    Ok(())
}

pub fn jsonencode(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let mut s = String::new();
    write_json(&a[0], &mut s)?;
    // Like Terraform, escape characters that are unsafe inside HTML.
    Ok(Value::String(
        s.replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026"),
    ))
}

pub fn jsondecode(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let s = str_arg(&a[0], "the string")?;
    let j: serde_json::Value =
        serde_json::from_str(&s).map_err(|e| format!("invalid JSON: {e}"))?;
    Ok(Value::from_json(&j))
}

pub fn yamlencode(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    serde_yaml::to_string(&a[0].to_json())
        .map(Value::String)
        .map_err(|e| e.to_string())
}

pub fn yamldecode(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let s = str_arg(&a[0], "the string")?;
    super::yaml::decode(&s)
}

pub fn urlencode(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let s = str_arg(&a[0], "the string")?;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    Ok(Value::String(out))
}

pub fn csvdecode(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let s = str_arg(&a[0], "the string")?;
    let rows = parse_csv(&s)?;
    let mut it = rows.into_iter();
    let header = it.next().ok_or("the CSV has no header row")?;
    let mut out = Vec::new();
    for (n, row) in it.enumerate() {
        if row.len() != header.len() {
            return Err(format!(
                "row {} has {} fields, the header has {}",
                n + 2,
                row.len(),
                header.len()
            ));
        }
        out.push(Value::Map(
            header
                .iter()
                .cloned()
                .zip(row.into_iter().map(Value::String))
                .collect(),
        ));
    }
    Ok(Value::List(out))
}

fn parse_csv(s: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                any = false;
            }
            c => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    if any {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}
