//! The built-in function library, with Terraform's names and semantics.
//!
//! Every function receives its arguments with the sensitive mark removed; the caller marks the
//! result sensitive when any argument was. A top-level unknown argument makes the result unknown
//! without calling the function; functions flagged `nested_unknowns` also accept collections
//! that contain unknowns (for example `length([x, unknown])` is 2), the others return unknown.

mod collection;
mod encoding;
mod filesys;
mod hash;
mod net;
mod numeric;
mod string;
mod time;
mod yaml;

use std::collections::BTreeMap;

use crate::Number;
use crate::value::Value;

/// What a function can see besides its arguments.
pub struct FnCtx<'a> {
    /// Directory that relative paths in file functions resolve against, in its tree.
    pub dir: flotilla_config::Dir<'a>,
}

/// A function implementation.
pub type FnImpl = fn(&FnCtx<'_>, Vec<Value>) -> Result<Value, String>;

/// One entry of the library.
pub struct FnDef {
    /// The name users call.
    pub name: &'static str,
    /// Minimum number of arguments.
    pub min: usize,
    /// Maximum number of arguments (`None`: variadic).
    pub max: Option<usize>,
    /// Whether the function copes with unknowns nested inside collection arguments.
    pub nested_unknowns: bool,
    /// The implementation.
    pub imp: FnImpl,
}

const fn f(
    name: &'static str,
    min: usize,
    max: Option<usize>,
    nested_unknowns: bool,
    imp: FnImpl,
) -> FnDef {
    FnDef {
        name,
        min,
        max,
        nested_unknowns,
        imp,
    }
}

/// The library, sorted by name (a test keeps it sorted).
static FUNCTIONS: &[FnDef] = &[
    f("abs", 1, Some(1), false, numeric::abs),
    f("abspath", 1, Some(1), false, filesys::abspath),
    f("alltrue", 1, Some(1), false, collection::alltrue),
    f("anytrue", 1, Some(1), false, collection::anytrue),
    f("base64decode", 1, Some(1), false, encoding::base64decode),
    f("base64encode", 1, Some(1), false, encoding::base64encode),
    f("basename", 1, Some(1), false, filesys::basename),
    f("ceil", 1, Some(1), false, numeric::ceil),
    f("chomp", 1, Some(1), false, string::chomp),
    f("chunklist", 2, Some(2), true, collection::chunklist),
    f("cidrhost", 2, Some(2), false, net::cidrhost),
    f("cidrnetmask", 1, Some(1), false, net::cidrnetmask),
    f("cidrsubnet", 3, Some(3), false, net::cidrsubnet),
    f("cidrsubnets", 1, None, false, net::cidrsubnets),
    f("coalesce", 1, None, false, collection::coalesce),
    f("coalescelist", 1, None, true, collection::coalescelist),
    f("compact", 1, Some(1), false, collection::compact),
    f("concat", 0, None, true, collection::concat),
    f("contains", 2, Some(2), false, collection::contains),
    f("csvdecode", 1, Some(1), false, encoding::csvdecode),
    f("dirname", 1, Some(1), false, filesys::dirname),
    f("distinct", 1, Some(1), false, collection::distinct),
    f("element", 2, Some(2), true, collection::element),
    f("endswith", 2, Some(2), false, string::endswith),
    f("file", 1, Some(1), false, filesys::file),
    f("fileexists", 1, Some(1), false, filesys::fileexists),
    f("flatten", 1, Some(1), true, collection::flatten),
    f("floor", 1, Some(1), false, numeric::floor),
    f("format", 1, None, false, string::format),
    f("formatdate", 2, Some(2), false, time::formatdate),
    f("formatlist", 1, None, false, string::formatlist),
    f("indent", 2, Some(2), false, string::indent),
    f("index", 2, Some(2), false, collection::index),
    f("join", 2, None, false, string::join),
    f("jsondecode", 1, Some(1), false, encoding::jsondecode),
    f("jsonencode", 1, Some(1), false, encoding::jsonencode),
    f("keys", 1, Some(1), true, collection::keys),
    f("length", 1, Some(1), true, collection::length),
    f("lookup", 2, Some(3), true, collection::lookup),
    f("lower", 1, Some(1), false, string::lower),
    f("max", 1, None, false, numeric::max),
    f("md5", 1, Some(1), false, hash::md5),
    f("merge", 0, None, true, collection::merge),
    f("min", 1, None, false, numeric::min),
    f("nonsensitive", 1, Some(1), true, marks_unreachable),
    f("one", 1, Some(1), true, collection::one),
    f("parseint", 2, Some(2), false, numeric::parseint),
    f("pathexpand", 1, Some(1), false, filesys::pathexpand),
    f("pow", 2, Some(2), false, numeric::pow),
    f("range", 1, Some(3), false, collection::range),
    f("regex", 2, Some(2), false, string::regex),
    f("regexall", 2, Some(2), false, string::regexall),
    f("replace", 3, Some(3), false, string::replace),
    f("reverse", 1, Some(1), true, collection::reverse),
    f("sensitive", 1, Some(1), true, marks_unreachable),
    f(
        "setintersection",
        1,
        None,
        false,
        collection::setintersection,
    ),
    f("setproduct", 1, None, false, collection::setproduct),
    f("setsubtract", 2, Some(2), false, collection::setsubtract),
    f("setunion", 1, None, false, collection::setunion),
    f("sha1", 1, Some(1), false, hash::sha1),
    f("sha256", 1, Some(1), false, hash::sha256),
    f("sha512", 1, Some(1), false, hash::sha512),
    f("signum", 1, Some(1), false, numeric::signum),
    f("slice", 3, Some(3), true, collection::slice),
    f("sort", 1, Some(1), false, collection::sort),
    f("split", 2, Some(2), false, string::split),
    f("startswith", 2, Some(2), false, string::startswith),
    f("strrev", 1, Some(1), false, string::strrev),
    f("substr", 3, Some(3), false, string::substr),
    f("sum", 1, Some(1), false, collection::sum),
    f("templatefile", 2, Some(2), false, filesys::templatefile),
    f("timeadd", 2, Some(2), false, time::timeadd),
    f("title", 1, Some(1), false, string::title),
    f("tobool", 1, Some(1), false, types::tobool),
    f("tolist", 1, Some(1), true, types::tolist),
    f("tomap", 1, Some(1), true, types::tomap),
    f("tonumber", 1, Some(1), false, types::tonumber),
    f("toset", 1, Some(1), false, types::toset),
    f("tostring", 1, Some(1), false, types::tostring),
    f("transpose", 1, Some(1), false, collection::transpose),
    f("trim", 2, Some(2), false, string::trim),
    f("trimprefix", 2, Some(2), false, string::trimprefix),
    f("trimspace", 1, Some(1), false, string::trimspace),
    f("trimsuffix", 2, Some(2), false, string::trimsuffix),
    f("type", 1, Some(1), true, types::type_of),
    f("upper", 1, Some(1), false, string::upper),
    f("urlencode", 1, Some(1), false, encoding::urlencode),
    f("uuidv5", 2, Some(2), false, hash::uuidv5),
    f("values", 1, Some(1), true, collection::values),
    f("yamldecode", 1, Some(1), false, encoding::yamldecode),
    f("yamlencode", 1, Some(1), false, encoding::yamlencode),
    f("zipmap", 2, Some(2), true, collection::zipmap),
];

fn marks_unreachable(_: &FnCtx<'_>, _: Vec<Value>) -> Result<Value, String> {
    Err("handled by the caller".into())
}

/// The function with this name.
pub fn lookup(name: &str) -> Option<&'static FnDef> {
    FUNCTIONS
        .binary_search_by(|d| d.name.cmp(name))
        .ok()
        .map(|i| &FUNCTIONS[i])
}

/// Every function name, for suggestions and docs.
pub fn names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS.iter().map(|d| d.name).chain(["can", "try"])
}

/// Calls a function with evaluated arguments, applying the mark rules.
pub fn call(def: &FnDef, args: Vec<Value>, ctx: &FnCtx<'_>) -> Result<Value, String> {
    let n = args.len();
    if n < def.min || def.max.is_some_and(|m| n > m) {
        let expected = match def.max {
            Some(m) if m == def.min => format!("{m}"),
            Some(m) => format!("{} to {m}", def.min),
            None => format!("at least {}", def.min),
        };
        return Err(format!("expected {expected} argument(s), got {n}"));
    }
    match def.name {
        "sensitive" => return Ok(args.into_iter().next().unwrap_or_default().sensitive()),
        "nonsensitive" => return Ok(args.into_iter().next().unwrap_or_default().unmark().0),
        _ => {}
    }
    // Functions that return only the shape of their argument (its keys, its length) are
    // marked by the argument's own mark, not by what it holds, as in Terraform: the keys
    // of a map of kubeconfigs are not secret.
    let shape_only = matches!(def.name, "keys" | "length");
    // Functions that move elements without looking into them keep each element's own
    // mark, as Terraform's do: `values(cluster.site)` is a list of clusters, each with its
    // sensitive kubeconfig, not one sensitive list.
    let passes_elements = matches!(
        def.name,
        "values" | "concat" | "element" | "slice" | "reverse" | "merge" | "lookup"
    );
    let mut sensitive = false;
    let args: Vec<Value> = args
        .into_iter()
        .map(|a| {
            let top = matches!(a, Value::Sensitive(_));
            if passes_elements {
                sensitive |= top;
                return match a {
                    Value::Sensitive(inner) => *inner,
                    other => other,
                };
            }
            let (v, s) = a.unmark();
            sensitive |= if shape_only { top } else { s };
            v
        })
        .collect();
    let unknown = if def.nested_unknowns {
        args.iter().any(Value::is_unknown)
    } else {
        args.iter().any(Value::contains_unknown)
    };
    let out = if unknown {
        Value::Unknown
    } else {
        (def.imp)(ctx, args)?
    };
    Ok(if sensitive { out.sensitive() } else { out })
}

// ---- argument helpers shared by the categories ----

pub(crate) fn str_arg(v: &Value, what: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err(format!("{what} must not be null")),
        other => Err(format!(
            "{what} must be a string, got {}",
            other.type_name()
        )),
    }
}

pub(crate) fn num_arg(v: &Value, what: &str) -> Result<Number, String> {
    match v {
        Value::Number(n) => Ok(n.clone()),
        Value::String(s) => {
            Number::parse(s).ok_or_else(|| format!("{what} must be a number, got {s:?}"))
        }
        Value::Null => Err(format!("{what} must not be null")),
        other => Err(format!(
            "{what} must be a number, got {}",
            other.type_name()
        )),
    }
}

/// A number argument as the nearest `f64` (for functions defined on floats).
pub(crate) fn float_arg(v: &Value, what: &str) -> Result<f64, String> {
    num_arg(v, what).map(|n| n.to_f64())
}

/// A whole-number argument (Terraform: "value must be a whole number").
pub(crate) fn int_arg(v: &Value, what: &str) -> Result<i64, String> {
    let n = num_arg(v, what)?;
    n.to_i64().ok_or_else(|| {
        if n.is_integer() {
            format!("{what} must be a whole number between -9223372036854775808 and 9223372036854775807, got {n}")
        } else {
            format!("{what} must be a whole number, got {n}")
        }
    })
}

pub(crate) fn bool_arg(v: &Value, what: &str) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        other => Err(format!("{what} must be a bool, got {}", other.type_name())),
    }
}

pub(crate) fn list_arg(v: Value, what: &str) -> Result<Vec<Value>, String> {
    match v {
        Value::List(items) | Value::Set(items) => Ok(items),
        other => Err(format!(
            "{what} must be a list or set, got {}",
            other.type_name()
        )),
    }
}

pub(crate) fn map_arg(v: Value, what: &str) -> Result<BTreeMap<String, Value>, String> {
    match v {
        Value::Map(m) => Ok(m),
        other => Err(format!(
            "{what} must be a map or object, got {}",
            other.type_name()
        )),
    }
}

mod types {
    //! Type conversion functions.
    use super::*;

    pub fn tobool(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
        match &a[0] {
            Value::Null => Ok(Value::Null),
            v => bool_arg(v, "the value").map(Value::Bool),
        }
    }

    pub fn tonumber(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
        match &a[0] {
            Value::Null => Ok(Value::Null),
            v => num_arg(v, "the value").map(Value::Number),
        }
    }

    pub fn tostring(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
        match &a[0] {
            Value::Null => Ok(Value::Null),
            v => str_arg(v, "the value").map(Value::String),
        }
    }

    /// The elements of a list or set, unified to one type (Terraform: "cannot convert tuple
    /// to list of any single type" when there is none).
    fn unified(items: Vec<Value>, what: &str) -> Result<Vec<Value>, String> {
        crate::types::unify(items)
            .map_err(|e| format!("cannot convert to {what} of any single type: {e}"))
    }

    pub fn tolist(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
        let items = list_arg(a.into_iter().next().unwrap_or_default(), "the value")?;
        unified(items, "a list").map(Value::List)
    }

    pub fn toset(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
        let items = list_arg(a.into_iter().next().unwrap_or_default(), "the value")?;
        unified(items, "a set").map(Value::set)
    }

    pub fn tomap(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
        let m = map_arg(a.into_iter().next().unwrap_or_default(), "the value")?;
        let (keys, values): (Vec<String>, Vec<Value>) = m.into_iter().unzip();
        let values = unified(values, "a map")?;
        Ok(Value::Map(keys.into_iter().zip(values).collect()))
    }

    pub fn type_of(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
        Ok(Value::String(describe(&a[0])))
    }

    fn describe(v: &Value) -> String {
        match v {
            Value::Null => "dynamic".into(),
            Value::Bool(_) => "bool".into(),
            Value::Number(_) => "number".into(),
            Value::String(_) => "string".into(),
            Value::Unknown => "dynamic".into(),
            Value::Sensitive(v) => describe(v),
            Value::Set(items) => {
                format!("set({})", items.first().map_or("dynamic".into(), describe))
            }
            Value::List(items) => {
                let types: Vec<String> = items.iter().map(describe).collect();
                format!("tuple([{}])", types.join(", "))
            }
            Value::Map(m) => {
                let attrs: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k} = {}", describe(v)))
                    .collect();
                format!("object({{{}}})", attrs.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_is_sorted_for_binary_search() {
        let names: Vec<&str> = FUNCTIONS.iter().map(|d| d.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }
}
