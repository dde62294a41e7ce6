//! File and path functions. Relative paths resolve against the module directory.
use super::*;
use std::path::PathBuf;

use crate::eval::{EmptyScope, EvalContext, Evaluator};

fn resolve(ctx: &FnCtx<'_>, p: &str) -> PathBuf {
    let path = expand_home(p);
    if path.is_absolute() {
        path
    } else {
        ctx.base_dir.join(path)
    }
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ if p == "~" => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(p)),
        _ => PathBuf::from(p),
    }
}

fn read(ctx: &FnCtx<'_>, p: &str) -> Result<String, String> {
    let path = resolve(ctx, p);
    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

pub fn file(ctx: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    read(ctx, &str_arg(&a[0], "the path")?).map(Value::String)
}

pub fn fileexists(ctx: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let path = resolve(ctx, &str_arg(&a[0], "the path")?);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(Value::Bool(true)),
        Ok(_) => Err(format!("{} is not a regular file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Bool(false)),
        Err(e) => Err(format!("cannot stat {}: {e}", path.display())),
    }
}

pub fn templatefile(ctx: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let p = str_arg(&a[0], "the path")?;
    let text = read(ctx, &p)?;
    let vars = map_arg(a[1].clone(), "the variables")?;
    let template = flotilla_syntax::hcl_edit::parser::parse_template(&text).map_err(|e| {
        format!(
            "{p}:{}:{}: {}",
            e.location().line(),
            e.location().column(),
            e.message()
        )
    })?;
    let ectx = EvalContext::new(flotilla_syntax::FileId::default(), ctx.base_dir);
    let mut ev = Evaluator::new(&EmptyScope, &ectx).with_bindings(vars.into_iter().collect());
    ev.eval_template(&template)
        .map_err(|d| format!("in {p}: {d}"))
}

pub fn abspath(ctx: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let p = PathBuf::from(str_arg(&a[0], "the path")?);
    let abs = if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map_err(|e| e.to_string())?.join(p)
    };
    let _ = ctx;
    Ok(Value::String(clean(&abs)))
}

fn clean(p: &std::path::Path) -> String {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.display().to_string()
}

pub fn basename(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let p = str_arg(&a[0], "the path")?;
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(Value::string(if p.is_empty() { "." } else { "/" }));
    }
    Ok(Value::string(trimmed.rsplit('/').next().unwrap_or(trimmed)))
}

pub fn dirname(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let p = str_arg(&a[0], "the path")?;
    let trimmed = p.trim_end_matches('/');
    Ok(Value::string(match trimmed.rfind('/') {
        Some(0) => "/",
        Some(i) => &trimmed[..i],
        None => ".",
    }))
}

pub fn pathexpand(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    Ok(Value::String(
        expand_home(&str_arg(&a[0], "the path")?)
            .display()
            .to_string(),
    ))
}
