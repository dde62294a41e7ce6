//! Type constraints (`list(object({ port = optional(number, 80) }))`) and value conversion.

use std::collections::BTreeMap;
use std::fmt;

use flotilla_syntax::hcl_edit::expr::{Expression, ObjectKey};
use flotilla_syntax::{Diagnostic, FileId, Span};

use crate::eval::{EmptyScope, EvalContext, Evaluator};
use crate::value::Value;

/// A type constraint.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// Any value.
    Any,
    /// A string (numbers and bools convert).
    String,
    /// A number (numeric strings convert).
    Number,
    /// A bool (`"true"`/`"false"` convert).
    Bool,
    /// A list of one element type.
    List(Box<Type>),
    /// A set of one element type.
    Set(Box<Type>),
    /// A map of one element type.
    Map(Box<Type>),
    /// A tuple with a type per position.
    Tuple(Vec<Type>),
    /// An object with typed attributes.
    Object(BTreeMap<String, ObjectAttr>),
}

/// One attribute of an object type.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectAttr {
    /// The attribute's type.
    pub ty: Type,
    /// `optional(...)`: may be omitted.
    pub optional: bool,
    /// The default for an omitted optional attribute.
    pub default: Option<Value>,
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Any => f.write_str("any"),
            Type::String => f.write_str("string"),
            Type::Number => f.write_str("number"),
            Type::Bool => f.write_str("bool"),
            Type::List(t) => write!(f, "list({t})"),
            Type::Set(t) => write!(f, "set({t})"),
            Type::Map(t) => write!(f, "map({t})"),
            Type::Tuple(ts) => {
                f.write_str("tuple([")?;
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str("])")
            }
            Type::Object(attrs) => {
                f.write_str("object({")?;
                for (i, (k, a)) in attrs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if a.optional {
                        write!(f, "{k} = optional({})", a.ty)?;
                    } else {
                        write!(f, "{k} = {}", a.ty)?;
                    }
                }
                f.write_str("})")
            }
        }
    }
}

fn type_error(file: FileId, expr: &Expression, detail: impl Into<String>) -> Diagnostic {
    use flotilla_syntax::hcl_edit::Span as _;
    Diagnostic::error("invalid type constraint")
        .with_span(Span::new(file, expr.span().unwrap_or(0..0)))
        .with_detail(detail)
        .with_help("types are string, number, bool, any, list(T), set(T), map(T), tuple([T, ...]) and object({ name = T, other = optional(T, default) })")
}

/// Parses a type constraint expression.
pub fn parse_type(file: FileId, expr: &Expression) -> Result<Type, Diagnostic> {
    parse_type_inner(file, expr, false).map(|(t, _, _)| t)
}

fn parse_type_inner(
    file: FileId,
    expr: &Expression,
    in_object: bool,
) -> Result<(Type, bool, Option<Value>), Diagnostic> {
    match expr {
        Expression::Variable(v) => {
            let t = match v.as_str() {
                "string" => Type::String,
                "number" => Type::Number,
                "bool" => Type::Bool,
                "any" => Type::Any,
                other => return Err(type_error(file, expr, format!("`{other}` is not a type"))),
            };
            Ok((t, false, None))
        }
        Expression::FuncCall(call) => {
            let name = call.name.name.as_str();
            let args: Vec<&Expression> = call.args.iter().collect();
            let one = |args: &[&Expression]| -> Result<Type, Diagnostic> {
                match args {
                    [a] => parse_type(file, a),
                    _ => Err(type_error(
                        file,
                        expr,
                        format!("`{name}` takes exactly one type"),
                    )),
                }
            };
            let t = match name {
                "list" => Type::List(Box::new(one(&args)?)),
                "set" => Type::Set(Box::new(one(&args)?)),
                "map" => Type::Map(Box::new(one(&args)?)),
                "tuple" => match args.as_slice() {
                    [Expression::Array(items)] => Type::Tuple(
                        items
                            .iter()
                            .map(|i| parse_type(file, i))
                            .collect::<Result<_, _>>()?,
                    ),
                    _ => return Err(type_error(file, expr, "`tuple` takes a list of types")),
                },
                "object" => match args.as_slice() {
                    [Expression::Object(obj)] => {
                        let mut attrs = BTreeMap::new();
                        for (k, v) in obj.iter() {
                            let key = match k {
                                ObjectKey::Ident(i) => i.as_str().to_string(),
                                ObjectKey::Expression(e) => match crate::eval::literal_string(e) {
                                    Some(s) => s,
                                    None => {
                                        return Err(type_error(
                                            file,
                                            e,
                                            "object attribute names must be literal",
                                        ));
                                    }
                                },
                            };
                            let (ty, optional, default) = parse_type_inner(file, v.expr(), true)?;
                            attrs.insert(
                                key,
                                ObjectAttr {
                                    ty,
                                    optional,
                                    default,
                                },
                            );
                        }
                        Type::Object(attrs)
                    }
                    _ => {
                        return Err(type_error(
                            file,
                            expr,
                            "`object` takes an object of attribute types",
                        ));
                    }
                },
                "optional" if in_object => {
                    let (ty, default) = match args.as_slice() {
                        [t] => (parse_type(file, t)?, None),
                        [t, d] => {
                            let ty = parse_type(file, t)?;
                            let ctx = EvalContext::new(file, std::path::Path::new("."));
                            let v = Evaluator::new(&EmptyScope, &ctx).eval(d)?;
                            let v = convert(v, &ty).map_err(|e| {
                                type_error(file, d, format!("default does not match its type: {e}"))
                            })?;
                            (ty, Some(v))
                        }
                        _ => {
                            return Err(type_error(
                                file,
                                expr,
                                "`optional` takes a type and an optional default",
                            ));
                        }
                    };
                    return Ok((ty, true, default));
                }
                "optional" => {
                    return Err(type_error(
                        file,
                        expr,
                        "`optional` is only allowed for object attributes",
                    ));
                }
                other => {
                    return Err(type_error(
                        file,
                        expr,
                        format!("`{other}` is not a type constructor"),
                    ));
                }
            };
            Ok((t, false, None))
        }
        _ => Err(type_error(
            file,
            expr,
            "expected a type such as `string` or `list(number)`",
        )),
    }
}

/// Converts a value to a type, following Terraform's conversion rules.
///
/// The error says which part of the value failed (`.ports[1]: a number is required`).
pub fn convert(value: Value, ty: &Type) -> Result<Value, String> {
    convert_at(value, ty, &mut String::new())
}

fn at(path: &str, msg: impl fmt::Display) -> String {
    if path.is_empty() {
        msg.to_string()
    } else {
        format!("{path}: {msg}")
    }
}

fn convert_at(value: Value, ty: &Type, path: &mut String) -> Result<Value, String> {
    match value {
        Value::Unknown | Value::Null => return Ok(value),
        Value::Sensitive(inner) => return convert_at(*inner, ty, path).map(Value::sensitive),
        _ => {}
    }
    match ty {
        Type::Any => Ok(value),
        Type::String => match value {
            Value::String(_) => Ok(value),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) => Ok(Value::String(b.to_string())),
            other => Err(at(
                path,
                format!("a string is required, got {}", other.type_name()),
            )),
        },
        Type::Number => match value {
            Value::Number(_) => Ok(value),
            Value::String(ref s) => crate::Number::parse(s).map(Value::Number).ok_or_else(|| {
                at(
                    path,
                    format!("a number is required, got the string {:?}", s),
                )
            }),
            other => Err(at(
                path,
                format!("a number is required, got {}", other.type_name()),
            )),
        },
        Type::Bool => match value {
            Value::Bool(_) => Ok(value),
            Value::String(ref s) if s == "true" => Ok(Value::Bool(true)),
            Value::String(ref s) if s == "false" => Ok(Value::Bool(false)),
            other => Err(at(
                path,
                format!("a bool is required, got {}", other.type_name()),
            )),
        },
        Type::List(elem) | Type::Set(elem) => {
            let items = match value {
                Value::List(items) | Value::Set(items) => items,
                other => {
                    return Err(at(
                        path,
                        format!(
                            "a {} is required, got {}",
                            if matches!(ty, Type::Set(_)) {
                                "set"
                            } else {
                                "list"
                            },
                            other.type_name()
                        ),
                    ));
                }
            };
            let items = convert_items(items, elem, path)?;
            Ok(if matches!(ty, Type::Set(_)) {
                Value::set(items)
            } else {
                Value::List(items)
            })
        }
        Type::Tuple(types) => {
            let items = match value {
                Value::List(items) | Value::Set(items) => items,
                other => {
                    return Err(at(
                        path,
                        format!("a tuple is required, got {}", other.type_name()),
                    ));
                }
            };
            if items.len() != types.len() {
                return Err(at(
                    path,
                    format!(
                        "a tuple of {} elements is required, got {}",
                        types.len(),
                        items.len()
                    ),
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, (item, t)) in items.into_iter().zip(types).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                out.push(convert_at(item, t, path)?);
                path.truncate(len);
            }
            Ok(Value::List(out))
        }
        Type::Map(elem) => {
            let Value::Map(m) = value else {
                return Err(at(
                    path,
                    format!("a map is required, got {}", value.type_name()),
                ));
            };
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let len = path.len();
                path.push_str(&format!("[{}]", flotilla_config::addr::quote(&k)));
                out.insert(k, convert_at(v, elem, path)?);
                path.truncate(len);
            }
            Ok(Value::Map(out))
        }
        Type::Object(attrs) => {
            let Value::Map(mut m) = value else {
                return Err(at(
                    path,
                    format!("an object is required, got {}", value.type_name()),
                ));
            };
            let mut out = BTreeMap::new();
            for (name, attr) in attrs {
                let len = path.len();
                path.push('.');
                path.push_str(name);
                let v = match m.remove(name) {
                    Some(Value::Null) | None if attr.optional => {
                        attr.default.clone().unwrap_or(Value::Null)
                    }
                    Some(v) => convert_at(v, &attr.ty, path)?,
                    None => return Err(at(path, "attribute is required")),
                };
                path.truncate(len);
                out.insert(name.clone(), v);
            }
            Ok(Value::Map(out))
        }
    }
}

fn convert_items(items: Vec<Value>, elem: &Type, path: &mut String) -> Result<Vec<Value>, String> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let len = path.len();
        path.push_str(&format!("[{i}]"));
        out.push(convert_at(item, elem, path)?);
        path.truncate(len);
    }
    Ok(out)
}

/// Terraform's type unification: `items` converted to one common type, the way `tolist`,
/// `toset`, `tomap` and conditional results need them. Primitives unify to string when any
/// is a string (`1` → `"1"`, `true` → `"true"`), and otherwise must be of one type; lists and
/// sets unify their elements across all of them; objects and maps unify each attribute across
/// the ones that have it. Nulls and unknowns fit any type. The error names the two types that
/// have no common one.
pub fn unify(items: Vec<Value>) -> Result<Vec<Value>, String> {
    #[derive(PartialEq, Clone, Copy)]
    enum Kind {
        Bool,
        Number,
        String,
        Seq,
        Map,
    }
    let kind = |v: &Value| match v {
        Value::Sensitive(inner) => match **inner {
            Value::Bool(_) => Some(Kind::Bool),
            Value::Number(_) => Some(Kind::Number),
            Value::String(_) => Some(Kind::String),
            Value::List(_) | Value::Set(_) => Some(Kind::Seq),
            Value::Map(_) => Some(Kind::Map),
            _ => None,
        },
        Value::Bool(_) => Some(Kind::Bool),
        Value::Number(_) => Some(Kind::Number),
        Value::String(_) => Some(Kind::String),
        Value::List(_) | Value::Set(_) => Some(Kind::Seq),
        Value::Map(_) => Some(Kind::Map),
        Value::Null | Value::Unknown => None,
    };
    let kinds: Vec<(Kind, &Value)> = items
        .iter()
        .filter_map(|v| kind(v).map(|k| (k, v)))
        .collect();
    let Some(&(first, first_value)) = kinds.first() else {
        return Ok(items);
    };
    let primitive = |k: Kind| matches!(k, Kind::Bool | Kind::Number | Kind::String);
    if kinds.iter().all(|(k, _)| *k == first) && primitive(first) {
        return Ok(items);
    }
    if kinds.iter().all(|(k, _)| primitive(*k)) {
        if let Some((_, other)) = kinds.iter().find(|(k, _)| *k != first)
            && !kinds.iter().any(|(k, _)| *k == Kind::String)
        {
            return Err(format!(
                "no common type for {} and {}",
                first_value.type_name(),
                other.type_name()
            ));
        }
        return Ok(items.into_iter().map(to_string_value).collect());
    }
    if let Some((_, other)) = kinds.iter().find(|(k, _)| *k != first) {
        return Err(format!(
            "no common type for {} and {}",
            first_value.type_name(),
            other.type_name()
        ));
    }
    match first {
        Kind::Seq => {
            // Every element of every list, unified together, then put back.
            let mut lens = Vec::new();
            let mut all = Vec::new();
            for v in &items {
                let inner = match peel(v) {
                    Value::List(xs) | Value::Set(xs) => xs.clone(),
                    _ => Vec::new(),
                };
                lens.push(inner.len());
                all.extend(inner);
            }
            let mut unified = unify(all)?.into_iter();
            Ok(items
                .into_iter()
                .zip(lens)
                .map(|(v, n)| {
                    rebuild(v, |shape| match shape {
                        Value::List(_) => Value::List(unified.by_ref().take(n).collect()),
                        Value::Set(_) => Value::set(unified.by_ref().take(n).collect()),
                        other => other,
                    })
                })
                .collect())
        }
        _ => {
            // Each attribute across the objects that have it.
            let mut keys: Vec<String> = items
                .iter()
                .filter_map(|v| match peel(v) {
                    Value::Map(m) => Some(m.keys().cloned().collect::<Vec<_>>()),
                    _ => None,
                })
                .flatten()
                .collect();
            keys.sort();
            keys.dedup();
            let mut maps: Vec<Option<std::collections::BTreeMap<String, Value>>> = items
                .iter()
                .map(|v| match peel(v) {
                    Value::Map(m) => Some(m.clone()),
                    _ => None,
                })
                .collect();
            for key in keys {
                let at: Vec<usize> = (0..maps.len())
                    .filter(|&i| maps[i].as_ref().is_some_and(|m| m.contains_key(&key)))
                    .collect();
                let values: Vec<Value> = at
                    .iter()
                    .map(|&i| {
                        maps[i]
                            .as_ref()
                            .map(|m| m[&key].clone())
                            .unwrap_or_default()
                    })
                    .collect();
                let unified = unify(values).map_err(|e| format!("attribute `{key}`: {e}"))?;
                for (i, v) in at.into_iter().zip(unified) {
                    if let Some(m) = maps[i].as_mut() {
                        m.insert(key.clone(), v);
                    }
                }
            }
            Ok(items
                .into_iter()
                .zip(maps)
                .map(|(v, m)| match m {
                    Some(m) => rebuild(v, |_| Value::Map(m)),
                    None => v,
                })
                .collect())
        }
    }
}

/// The value under a sensitive mark.
fn peel(v: &Value) -> &Value {
    match v {
        Value::Sensitive(inner) => inner,
        other => other,
    }
}

/// `v` with its contents replaced by `f` (keeping a sensitive mark).
fn rebuild(v: Value, f: impl FnOnce(Value) -> Value) -> Value {
    match v {
        Value::Sensitive(inner) => f(*inner).sensitive(),
        other => f(other),
    }
}

/// A primitive as a string (`1` → `"1"`, `true` → `"true"`), keeping marks and others.
fn to_string_value(v: Value) -> Value {
    rebuild(v, |inner| match inner {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_syntax::hcl_edit::parser::parse_expr;

    fn ty(s: &str) -> Type {
        parse_type(FileId(0), &parse_expr(s).unwrap()).unwrap()
    }

    #[test]
    fn parses_and_displays() {
        let t = ty("list(object({ name = string, port = optional(number, 80) }))");
        assert_eq!(
            t.to_string(),
            "list(object({name = string, port = optional(number)}))"
        );
    }

    #[test]
    fn converts_with_defaults_and_paths() {
        let t = ty("list(object({ name = string, port = optional(number, 80) }))");
        let v = Value::List(vec![Value::object([("name", Value::string("a"))])]);
        let out = convert(v, &t).unwrap();
        assert_eq!(
            out,
            Value::List(vec![Value::object([
                ("name", Value::string("a")),
                ("port", Value::int(80))
            ])])
        );
        let bad = Value::List(vec![Value::object([("name", Value::List(vec![]))])]);
        assert_eq!(
            convert(bad, &t).unwrap_err(),
            "[0].name: a string is required, got list"
        );
    }

    #[test]
    fn rejects_non_types() {
        assert!(parse_type(FileId(0), &parse_expr("strin").unwrap()).is_err());
        assert!(parse_type(FileId(0), &parse_expr("optional(string)").unwrap()).is_err());
    }
}
