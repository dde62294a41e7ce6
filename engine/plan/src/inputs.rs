//! Root variable values from the command line, variable files and the environment.
//!
//! Precedence, lowest first: `FLOTILLA_VAR_name` environment variables, `*.auto.vars.hcl` files
//! in the root directory (alphabetical), then `-var` and `-var-file` in the order given.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flotilla_config::Module;
use flotilla_lang::{EmptyScope, EvalContext, Evaluator, Value};
use flotilla_syntax::hcl_edit::structure::Structure;
use flotilla_syntax::{Diagnostic, Diagnostics, SourceMap, Span, did_you_mean, parse_body};

use crate::eval::InputValue;

/// One `-var` or `-var-file` argument.
#[derive(Debug, Clone)]
pub enum VarArg {
    /// `-var 'name=value'`
    Var(String),
    /// `-var-file path`
    File(PathBuf),
}

/// Whether a variable takes raw strings from `-var` and the environment: untyped and primitive
/// types do (the string is converted to the type later); collections are parsed as HCL.
fn takes_raw_string(config: &Module, name: &str) -> bool {
    match config
        .variables
        .get(name)
        .and_then(|v| v.type_expr.as_ref())
    {
        None => true,
        Some(t) => {
            matches!(&t.expr, flotilla_syntax::hcl_edit::expr::Expression::Variable(v) if matches!(v.as_str(), "string" | "number" | "bool"))
        }
    }
}

fn parse_value(
    config: &Module,
    sources: &mut SourceMap,
    name: &str,
    raw: &str,
    origin: &str,
) -> Result<(Value, Option<Span>), Diagnostic> {
    if takes_raw_string(config, name) {
        return Ok((Value::String(raw.to_string()), None));
    }
    let file = sources.add(origin, raw);
    let expr = flotilla_syntax::parse_expr_in(file, raw).map_err(|d| {
        d.with_detail(format!(
            "the value of `{name}` from {origin} is not a valid expression"
        ))
    })?;
    let ectx = EvalContext::new(file, Path::new("."));
    let v = Evaluator::new(&EmptyScope, &ectx).eval(&expr)?;
    Ok((v, Some(Span::new(file, 0..raw.len()))))
}

/// Collects root variable values. `env` is the process environment.
pub fn collect(
    config: &Module,
    root_dir: &Path,
    sources: &mut SourceMap,
    args: &[VarArg],
    env: impl IntoIterator<Item = (String, String)>,
) -> (BTreeMap<String, InputValue>, Diagnostics) {
    collect_with(config, Some(root_dir), sources, args, env)
}

/// Like [`collect`]; `*.auto.vars.hcl` files are read from `auto_dir` only when given (a
/// configuration read from git has no directory on disk).
pub fn collect_with(
    config: &Module,
    auto_dir: Option<&Path>,
    sources: &mut SourceMap,
    args: &[VarArg],
    env: impl IntoIterator<Item = (String, String)>,
) -> (BTreeMap<String, InputValue>, Diagnostics) {
    let mut out = BTreeMap::new();
    let mut diags = Diagnostics::new();
    let mut env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("FLOTILLA_VAR_"))
        .collect();
    env.sort();
    for (k, raw) in env {
        let name = &k["FLOTILLA_VAR_".len()..];
        if !config.variables.contains_key(name) {
            continue;
        }
        match parse_value(config, sources, name, &raw, &format!("<environment {k}>")) {
            Ok((value, span)) => {
                out.insert(
                    name.to_string(),
                    InputValue {
                        value,
                        span,
                        source: format!("the environment variable {k}"),
                    },
                );
            }
            Err(d) => diags.push(d),
        }
    }
    let mut auto: Vec<PathBuf> = auto_dir
        .map(std::fs::read_dir)
        .into_iter()
        .flatten()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".auto.vars.hcl"))
        })
        .collect();
    auto.sort();
    for file in auto {
        read_var_file(config, sources, &file, false, &mut out, &mut diags);
    }
    for arg in args {
        match arg {
            VarArg::Var(text) => {
                let Some((name, raw)) = text.split_once('=') else {
                    diags.push(
                        Diagnostic::error("invalid -var option")
                            .with_detail(format!("`{text}` is not `NAME=VALUE`"))
                            .with_help("write -var 'region=eu-west-1'"),
                    );
                    continue;
                };
                let name = name.trim();
                if !config.variables.contains_key(name) {
                    let mut d = Diagnostic::error("value for undeclared variable").with_detail(
                        format!("-var sets `{name}`, which the root module does not declare"),
                    );
                    d = match did_you_mean(name, config.variables.keys().map(String::as_str)) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help(format!("declare it with `variable \"{name}\" {{}}`")),
                    };
                    diags.push(d);
                    continue;
                }
                match parse_value(config, sources, name, raw, &format!("<-var {name}>")) {
                    Ok((value, span)) => {
                        out.insert(
                            name.to_string(),
                            InputValue {
                                value,
                                span,
                                source: "-var".into(),
                            },
                        );
                    }
                    Err(d) => diags.push(d),
                }
            }
            VarArg::File(path) => read_var_file(config, sources, path, true, &mut out, &mut diags),
        }
    }
    (out, diags)
}

fn read_var_file(
    config: &Module,
    sources: &mut SourceMap,
    path: &Path,
    explicit: bool,
    out: &mut BTreeMap<String, InputValue>,
    diags: &mut Diagnostics,
) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            diags.push(
                Diagnostic::error("cannot read variable file")
                    .with_detail(format!("{}: {e}", path.display()))
                    .with_help("check the -var-file path"),
            );
            return;
        }
    };
    let file = sources.add(path, text.as_str());
    let body = match parse_body(file, &text) {
        Ok(b) => b,
        Err(d) => {
            diags.push(d);
            return;
        }
    };
    for s in body.iter() {
        match s {
            Structure::Attribute(a) => {
                let name = a.key.as_str();
                let span = Span::new(
                    file,
                    flotilla_syntax::hcl_edit::Span::span(a).unwrap_or(0..0),
                );
                if !config.variables.contains_key(name) {
                    let mut d = if explicit {
                        Diagnostic::error("value for undeclared variable")
                    } else {
                        Diagnostic::warning("value for undeclared variable")
                    };
                    d = d
                        .with_span(span)
                        .with_detail(format!("the root module declares no variable `{name}`"));
                    if let Some(s) = did_you_mean(name, config.variables.keys().map(String::as_str))
                    {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    diags.push(d);
                    continue;
                }
                let ectx = EvalContext::new(file, path.parent().unwrap_or(Path::new(".")));
                match Evaluator::new(&EmptyScope, &ectx).eval(&a.value) {
                    Ok(value) => {
                        out.insert(
                            name.to_string(),
                            InputValue {
                                value,
                                span: Some(span),
                                source: path.display().to_string(),
                            },
                        );
                    }
                    Err(d) => diags.push(d),
                }
            }
            Structure::Block(b) => diags.push(
                Diagnostic::error("unexpected block in variable file")
                    .with_span(Span::new(
                        file,
                        flotilla_syntax::hcl_edit::Span::span(b).unwrap_or(0..0),
                    ))
                    .with_help("variable files hold only `name = value` lines"),
            ),
        }
    }
}
