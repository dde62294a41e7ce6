//! Offline validation: a kind's `spec` checked against the kind's OpenAPI schema (from the
//! ecosystem's CRD) without a cluster: unknown fields (with did-you-mean), wrong types,
//! missing required fields and values outside an enum. Unknown values are skipped; the
//! server checks them at plan time.

use flotilla_lang::{AttrPath, PathStep};
use flotilla_provider::{ProviderError, Value};
use serde_json::Value as Json;

/// Checks `value` (at `path`) against `schema`, adding one error per problem.
pub fn check(value: &Value, schema: &Json, path: &mut AttrPath, errors: &mut Vec<ProviderError>) {
    let value = value.shallow_unmark();
    if value.is_unknown() || value.is_null() || schema.is_null() {
        return;
    }
    if schema["x-kubernetes-preserve-unknown-fields"] == true && schema["properties"].is_null() {
        return;
    }
    let int_or_string = schema["x-kubernetes-int-or-string"] == true;
    let ty = schema["type"].as_str().unwrap_or("");
    let mut fail = |message: String| errors.push(ProviderError::new(message).at(path.clone()));
    match (ty, value) {
        ("object", Value::Map(m)) => {
            if let Some(props) = schema["properties"].as_object() {
                for (k, v) in m {
                    match props.get(k) {
                        Some(s) => {
                            path.0.push(PathStep::Key(k.clone()));
                            check(v, s, path, errors);
                            path.0.pop();
                        }
                        None if schema["x-kubernetes-preserve-unknown-fields"] == true => {}
                        None => {
                            let hint = match flotilla_provider::did_you_mean(
                                k,
                                props.keys().map(String::as_str),
                            ) {
                                Some(s) => format!("; did you mean `{s}`?"),
                                None => format!(
                                    "; known fields: {}",
                                    props.keys().cloned().collect::<Vec<_>>().join(", ")
                                ),
                            };
                            path.0.push(PathStep::Key(k.clone()));
                            errors.push(
                                ProviderError::new(format!(
                                    "unknown field `{k}` at {}{hint}",
                                    show(path)
                                ))
                                .at(path.clone()),
                            );
                            path.0.pop();
                        }
                    }
                }
                for r in schema["required"].as_array().into_iter().flatten() {
                    if let Some(r) = r.as_str()
                        && m.get(r).is_none_or(Value::is_null)
                    {
                        errors.push(
                            ProviderError::new(format!(
                                "missing required field `{r}` in {}",
                                show(path)
                            ))
                            .at(path.clone()),
                        );
                    }
                }
            } else if !schema["additionalProperties"].is_null() {
                for (k, v) in m {
                    path.0.push(PathStep::Key(k.clone()));
                    check(v, &schema["additionalProperties"], path, errors);
                    path.0.pop();
                }
            }
        }
        ("array", Value::List(items) | Value::Set(items)) => {
            for (i, v) in items.iter().enumerate() {
                path.0.push(PathStep::Index(i));
                check(v, &schema["items"], path, errors);
                path.0.pop();
            }
        }
        ("string", Value::String(s)) => {
            if let Some(options) = schema["enum"].as_array()
                && !options.iter().any(|o| o == s)
            {
                let list: Vec<String> = options.iter().map(|o| o.to_string()).collect();
                fail(format!(
                    "{} must be one of {}, not {s:?}",
                    show(path),
                    list.join(", ")
                ));
            }
        }
        ("integer", Value::Number(n)) if !n.is_integer() => {
            fail(format!("{} must be a whole number, not {n}", show(path)));
        }
        ("integer" | "number", Value::Number(n)) => {
            let (lo, hi) = (schema["minimum"].as_f64(), schema["maximum"].as_f64());
            let n_f = n.to_f64();
            if lo.is_some_and(|lo| n_f < lo) || hi.is_some_and(|hi| n_f > hi) {
                let bound = |b: Option<f64>| b.map(|b| b.to_string()).unwrap_or_default();
                fail(format!(
                    "{} must be between {} and {}, not {n}",
                    show(path),
                    bound(lo),
                    bound(hi)
                ));
            }
        }
        ("boolean", Value::Bool(_)) => {}
        (_, Value::Number(_) | Value::String(_)) if int_or_string => {}
        ("", _) => {}
        (ty, v) => fail(format!(
            "{} must be {} {ty}, not {}",
            show(path),
            if ty.starts_with(['a', 'i', 'o']) {
                "an"
            } else {
                "a"
            },
            v.type_name()
        )),
    }
}

/// `spec.clusterNetwork.pods`.
fn show(path: &AttrPath) -> String {
    if path.0.is_empty() {
        return "the value".into();
    }
    path.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(spec: Value) -> Vec<String> {
        let schema =
            flotilla_ecosystems::spec_schema("cluster.x-k8s.io/v1beta2", "Cluster").unwrap();
        let mut out = Vec::new();
        check(&spec, schema, &mut AttrPath::attr("spec"), &mut out);
        out.into_iter().map(|e| e.message).collect()
    }

    #[test]
    fn unknown_fields_get_a_suggestion() {
        let e = errors(Value::object([(
            "clusterNetwrok",
            Value::object([("pods", Value::Map(Default::default()))]),
        )]));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("unknown field `clusterNetwrok`"), "{e:?}");
        assert!(e[0].contains("did you mean `clusterNetwork`?"), "{e:?}");
    }

    #[test]
    fn wrong_types_are_named() {
        let e = errors(Value::object([("paused", Value::string("yes"))]));
        assert_eq!(
            e,
            vec!["spec.paused must be a boolean, not string".to_string()]
        );
    }

    #[test]
    fn unknown_values_are_left_to_the_server() {
        assert!(errors(Value::object([("paused", Value::Unknown)])).is_empty());
    }
}
