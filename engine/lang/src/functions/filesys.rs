//! File and path functions. Relative paths resolve against the working directory (the root
//! module's directory), as in Terraform, in the tree the module was read from.
use super::*;
use std::path::PathBuf;

use flotilla_config::{Disk, EntryKind, SourceTree};

use crate::eval::{EmptyScope, EvalContext, Evaluator};

/// The path a file function reads, and the tree it reads it in: a relative path resolves
/// against the module's directory in the module's tree; an absolute or `~` path is on disk.
fn resolve<'a>(ctx: &FnCtx<'a>, p: &str) -> (PathBuf, &'a dyn SourceTree) {
    let path = expand_home(p);
    if path.is_absolute() {
        (path, &Disk)
    } else {
        (ctx.dir.path.join(path), ctx.dir.tree)
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
    let (path, tree) = resolve(ctx, p);
    tree.read_string(&path).map_err(|e| {
        let shown = tree.display(&path);
        let msg = e.to_string();
        if msg.contains(&shown.display().to_string()) {
            format!("cannot read {msg}")
        } else {
            format!("cannot read {}: {msg}", shown.display())
        }
    })
}

pub fn file(ctx: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    read(ctx, &str_arg(&a[0], "the path")?).map(Value::String)
}

pub fn fileexists(ctx: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let (path, tree) = resolve(ctx, &str_arg(&a[0], "the path")?);
    match tree.kind(&path) {
        Ok(Some(EntryKind::File)) => Ok(Value::Bool(true)),
        Ok(Some(EntryKind::Dir)) => Err(format!(
            "{} is not a regular file",
            tree.display(&path).display()
        )),
        Ok(None) => Ok(Value::Bool(false)),
        Err(e) => Err(format!(
            "cannot stat {}: {e}",
            tree.display(&path).display()
        )),
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
    let ectx = EvalContext::in_dir(flotilla_syntax::FileId::default(), ctx.dir);
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
