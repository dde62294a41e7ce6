//! `yamldecode` as Terraform's: YAML read with YAML 1.1's resolution of plain scalars, so
//! `y`, `yes`, `on` (and `Y`, `Yes`, `ON`, ...) are `true` and `n`, `no`, `off` are `false`;
//! quoted scalars are always strings; anchors and aliases are followed; `!!str`, `!!int`,
//! `!!float`, `!!bool` and `!!null` tags are honoured. Only the first document is read.

use std::collections::BTreeMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::value::Value;

/// Parses `text`; the error names the line and column.
pub fn decode(text: &str) -> Result<Value, String> {
    let mut builder = Builder::default();
    Parser::new_from_str(text)
        .load(&mut builder, false)
        .map_err(|e| format!("invalid YAML: {e}"))?;
    if let Some(e) = builder.error {
        return Err(e);
    }
    Ok(builder.done.unwrap_or(Value::Null))
}

enum Open {
    Seq(Vec<Value>, usize),
    Map(BTreeMap<String, Value>, Option<String>, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    anchors: BTreeMap<usize, Value>,
    done: Option<Value>,
    error: Option<String>,
}

impl Builder {
    fn push(&mut self, v: Value, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, v.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.done.is_none() {
                    self.done = Some(v);
                }
            }
            Some(Open::Seq(items, _)) => items.push(v),
            Some(Open::Map(map, key, _)) => match key.take() {
                None => {
                    *key = Some(match v {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Null => "null".to_string(),
                        _ => {
                            self.error.get_or_insert_with(|| {
                                "invalid YAML: a mapping key must be a scalar".into()
                            });
                            String::new()
                        }
                    })
                }
                Some(k) => {
                    map.insert(k, v);
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, _mark: Marker) {
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let v = scalar(text, style, tag.as_ref());
                self.push(v, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Open::Seq(Vec::new(), anchor)),
            Event::MappingStart(anchor, _) => {
                self.stack.push(Open::Map(BTreeMap::new(), None, anchor))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (v, anchor) = match self.stack.pop() {
                    Some(Open::Seq(items, a)) => (Value::List(items), a),
                    Some(Open::Map(map, _, a)) => (Value::Map(map), a),
                    None => return,
                };
                self.push(v, anchor);
            }
            Event::Alias(id) => {
                let v = self.anchors.get(&id).cloned().unwrap_or(Value::Null);
                self.push(v, 0);
            }
            _ => {}
        }
    }
}

fn scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(t) = tag
        && t.handle == "tag:yaml.org,2002:"
    {
        return match t.suffix.as_str() {
            "str" => Value::String(text),
            "null" => Value::Null,
            "bool" => resolve(&text)
                .filter(|v| matches!(v, Value::Bool(_)))
                .unwrap_or(Value::String(text)),
            "int" | "float" => resolve(&text)
                .filter(|v| matches!(v, Value::Number(_)))
                .unwrap_or(Value::String(text)),
            _ => Value::String(text),
        };
    }
    if style != TScalarStyle::Plain {
        return Value::String(text);
    }
    resolve(&text).unwrap_or(Value::String(text))
}

/// YAML 1.1's resolution of a plain scalar, as Terraform's decoder does it.
fn resolve(text: &str) -> Option<Value> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Some(Value::Bool(true));
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Some(Value::Bool(false));
        }
        _ => {}
    }
    let unsigned = text.trim_start_matches(['+', '-']);
    let negative = text.starts_with('-');
    if let Some(hex) = unsigned.strip_prefix("0x") {
        let n = crate::Number::from(i64::from_str_radix(&hex.replace('_', ""), 16).ok()?);
        return Some(Value::Number(if negative { n.neg() } else { n }));
    }
    let plain = text.replace('_', "");
    let numeric = !plain.is_empty()
        && plain
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E'))
        && plain.chars().any(|c| c.is_ascii_digit());
    if numeric && let Some(n) = crate::Number::parse(plain.trim_start_matches('+')) {
        return Some(Value::Number(n));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_resolve_as_yaml_1_1() {
        let v = decode(
            "b: [x, y, yes, on, off, no, n, true, Yes, ON, 'yes', \"on\", 3, 0x1F, 1.5, ~, null]",
        )
        .unwrap();
        let Value::Map(m) = v else { panic!() };
        let Value::List(items) = &m["b"] else {
            panic!()
        };
        let t = Value::Bool(true);
        let f = Value::Bool(false);
        assert_eq!(
            items,
            &vec![
                Value::string("x"),
                t.clone(),
                t.clone(),
                t.clone(),
                f.clone(),
                f.clone(),
                f,
                t.clone(),
                t.clone(),
                t,
                Value::string("yes"),
                Value::string("on"),
                Value::int(3),
                Value::int(31),
                Value::Number(crate::Number::parse("1.5").unwrap()),
                Value::Null,
                Value::Null,
            ]
        );
    }

    #[test]
    fn anchors_tags_and_errors() {
        let v = decode("a: &x {k: 1}\nb: *x\nc: !!str 12\n").unwrap();
        let Value::Map(m) = v else { panic!() };
        assert_eq!(m["a"], m["b"]);
        assert_eq!(m["c"], Value::string("12"));
        assert!(decode("a: [1, 2").unwrap_err().contains("invalid YAML"));
    }
}
