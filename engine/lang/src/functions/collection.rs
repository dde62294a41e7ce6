//! Collection functions.
use super::*;
use crate::eval::values_equal;

fn first(a: Vec<Value>) -> Value {
    a.into_iter().next().unwrap_or_default()
}

pub fn length(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let n = match &a[0] {
        Value::String(s) => s.chars().count(),
        Value::List(items) | Value::Set(items) => items.len(),
        Value::Map(m) => m.len(),
        Value::Null => return Err("cannot take the length of null".into()),
        other => return Err(format!("cannot take the length of a {}", other.type_name())),
    };
    Ok(Value::Number(Number::from(n)))
}

pub fn alltrue(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let items = list_arg(first(a), "the argument")?;
    let mut all = true;
    for i in &items {
        all &= bool_arg(i, "every element")?;
    }
    Ok(Value::Bool(all))
}

pub fn anytrue(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let items = list_arg(first(a), "the argument")?;
    let mut any = false;
    for i in &items {
        any |= bool_arg(i, "every element")?;
    }
    Ok(Value::Bool(any))
}

pub fn chunklist(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let size = int_arg(&a[1], "the chunk size")?;
    if size < 0 {
        return Err("the chunk size must not be negative".into());
    }
    let items = list_arg(first(a), "the list")?;
    if size == 0 {
        return Ok(Value::List(vec![Value::List(items)]));
    }
    Ok(Value::List(
        items
            .chunks(size as usize)
            .map(|c| Value::List(c.to_vec()))
            .collect(),
    ))
}

pub fn coalesce(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    a.into_iter()
        .find(|v| !v.is_null() && *v != Value::string(""))
        .ok_or_else(|| "no non-null, non-empty argument".into())
}

pub fn coalescelist(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    for v in a {
        match v {
            Value::List(ref items) | Value::Set(ref items) if !items.is_empty() => return Ok(v),
            Value::List(_) | Value::Set(_) => {}
            other => {
                return Err(format!(
                    "every argument must be a list, got {}",
                    other.type_name()
                ));
            }
        }
    }
    Err("no non-empty list argument".into())
}

pub fn compact(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let items = list_arg(first(a), "the list")?;
    Ok(Value::List(
        items
            .into_iter()
            .filter(|v| !v.is_null() && *v != Value::string(""))
            .collect(),
    ))
}

pub fn concat(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let mut out = Vec::new();
    for v in a {
        out.extend(list_arg(v, "every argument")?);
    }
    Ok(Value::List(out))
}

pub fn contains(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let mut it = a.into_iter();
    let items = list_arg(it.next().unwrap_or_default(), "the list")?;
    let needle = it.next().unwrap_or_default();
    Ok(Value::Bool(items.iter().any(|i| values_equal(i, &needle))))
}

pub fn distinct(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let mut out: Vec<Value> = Vec::new();
    for v in list_arg(first(a), "the list")? {
        if !out.iter().any(|o| values_equal(o, &v)) {
            out.push(v);
        }
    }
    Ok(Value::List(out))
}

pub fn element(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let i = int_arg(&a[1], "the index")?;
    let items = list_arg(first(a), "the list")?;
    if items.is_empty() {
        return Err("cannot use element on an empty list".into());
    }
    if i < 0 {
        return Err("the index must not be negative".into());
    }
    Ok(items[i as usize % items.len()].clone())
}

pub fn flatten(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    fn go(items: Vec<Value>, out: &mut Vec<Value>) -> bool {
        for v in items {
            match v {
                Value::List(inner) | Value::Set(inner) => {
                    if !go(inner, out) {
                        return false;
                    }
                }
                Value::Unknown => return false,
                other => out.push(other),
            }
        }
        true
    }
    let mut out = Vec::new();
    if go(list_arg(first(a), "the list")?, &mut out) {
        Ok(Value::List(out))
    } else {
        Ok(Value::Unknown)
    }
}

pub fn index(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let mut it = a.into_iter();
    let items = list_arg(it.next().unwrap_or_default(), "the list")?;
    let needle = it.next().unwrap_or_default();
    items
        .iter()
        .position(|i| values_equal(i, &needle))
        .map(|p| Value::Number(Number::from(p)))
        .ok_or_else(|| "the item was not found in the list".into())
}

pub fn keys(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let m = map_arg(first(a), "the argument")?;
    Ok(Value::List(m.into_keys().map(Value::String).collect()))
}

pub fn values(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let m = map_arg(first(a), "the argument")?;
    Ok(Value::List(m.into_values().collect()))
}

pub fn lookup(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let mut it = a.into_iter();
    let m = map_arg(it.next().unwrap_or_default(), "the map")?;
    let key = str_arg(&it.next().unwrap_or_default(), "the key")?;
    match (m.get(&key), it.next()) {
        (Some(v), _) => Ok(v.clone()),
        (None, Some(default)) => Ok(default),
        (None, None) => Err(format!(
            "the map has no key {key:?} and no default was given"
        )),
    }
}

pub fn merge(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let mut out = BTreeMap::new();
    for v in a {
        match v {
            Value::Null => {}
            other => out.extend(map_arg(other, "every argument")?),
        }
    }
    Ok(Value::Map(out))
}

pub fn one(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let items = list_arg(first(a), "the argument")?;
    match items.len() {
        0 => Ok(Value::Null),
        1 => Ok(items.into_iter().next().unwrap_or_default()),
        n => Err(format!(
            "must be a list or set with at most one element, got {n}"
        )),
    }
}

pub fn range(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let nums: Vec<Number> = a
        .iter()
        .map(|v| num_arg(v, "every argument"))
        .collect::<Result<_, _>>()?;
    let one = Number::from(1i64);
    let (start, end, step) = match nums.as_slice() {
        [e] => (Number::zero(), e.clone(), one),
        [s, e] => {
            let step = if s <= e { one } else { one.neg() };
            (s.clone(), e.clone(), step)
        }
        [s, e, st] => (s.clone(), e.clone(), st.clone()),
        _ => return Err("expected 1 to 3 arguments".into()),
    };
    if step.is_zero() {
        return Err("the step must not be zero".into());
    }
    let up = !step.is_negative();
    if (up && start > end) || (!up && start < end) {
        return Err("the step moves away from the end".into());
    }
    let mut out = Vec::new();
    let mut x = start;
    while (up && x < end) || (!up && x > end) {
        out.push(Value::Number(x.clone()));
        if out.len() > 1_024 * 1_024 {
            return Err("more than 1048576 elements".into());
        }
        x = x.add(&step);
    }
    Ok(Value::List(out))
}

pub fn reverse(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let mut items = list_arg(first(a), "the list")?;
    items.reverse();
    Ok(Value::List(items))
}

fn sets(a: Vec<Value>) -> Result<Vec<Vec<Value>>, String> {
    a.into_iter()
        .map(|v| list_arg(v, "every argument"))
        .collect()
}

pub fn setintersection(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let mut sets = sets(a)?.into_iter();
    let mut acc = sets.next().unwrap_or_default();
    for s in sets {
        acc.retain(|v| s.iter().any(|x| values_equal(x, v)));
    }
    Ok(Value::set(acc))
}

pub fn setunion(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    Ok(Value::set(sets(a)?.into_iter().flatten().collect()))
}

pub fn setsubtract(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let mut sets = sets(a)?.into_iter();
    let mut acc = sets.next().unwrap_or_default();
    let minus = sets.next().unwrap_or_default();
    acc.retain(|v| !minus.iter().any(|x| values_equal(x, v)));
    Ok(Value::set(acc))
}

pub fn setproduct(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let all_sets = a.iter().all(|v| matches!(v, Value::Set(_)));
    let mut acc: Vec<Vec<Value>> = vec![Vec::new()];
    for s in sets(a)? {
        let mut next = Vec::with_capacity(acc.len() * s.len());
        for prefix in &acc {
            for v in &s {
                let mut p = prefix.clone();
                p.push(v.clone());
                next.push(p);
            }
        }
        acc = next;
    }
    let items: Vec<Value> = acc.into_iter().map(Value::List).collect();
    Ok(if all_sets {
        Value::set(items)
    } else {
        Value::List(items)
    })
}

pub fn slice(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let start = int_arg(&a[1], "the start index")?;
    let end = int_arg(&a[2], "the end index")?;
    let items = list_arg(first(a), "the list")?;
    if start < 0 || end < start || end as usize > items.len() {
        return Err(format!(
            "invalid range [{start}, {end}) for a list of {} elements",
            items.len()
        ));
    }
    Ok(Value::List(items[start as usize..end as usize].to_vec()))
}

pub fn sort(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let mut items: Vec<String> = list_arg(first(a), "the list")?
        .iter()
        .map(|v| str_arg(v, "every element"))
        .collect::<Result<_, _>>()?;
    items.sort();
    Ok(Value::List(items.into_iter().map(Value::String).collect()))
}

pub fn sum(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let items = list_arg(first(a), "the list")?;
    if items.is_empty() {
        return Err("cannot sum an empty list".into());
    }
    let mut total = Number::zero();
    for i in &items {
        total = total.add(&num_arg(i, "every element")?);
    }
    Ok(Value::Number(total))
}

pub fn transpose(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let m = map_arg(first(a), "the argument")?;
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (k, list) in m {
        for v in list_arg(list, "every value")? {
            out.entry(str_arg(&v, "every element")?)
                .or_default()
                .push(Value::String(k.clone()));
        }
    }
    Ok(Value::Map(
        out.into_iter().map(|(k, v)| (k, Value::List(v))).collect(),
    ))
}

pub fn zipmap(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let mut it = a.into_iter();
    let keys = list_arg(it.next().unwrap_or_default(), "the keys")?;
    let values = list_arg(it.next().unwrap_or_default(), "the values")?;
    if keys.len() != values.len() {
        return Err(format!("{} keys but {} values", keys.len(), values.len()));
    }
    let mut out = BTreeMap::new();
    for (k, v) in keys.into_iter().zip(values) {
        if k.is_unknown() {
            return Ok(Value::Unknown);
        }
        out.insert(str_arg(&k, "every key")?, v);
    }
    Ok(Value::Map(out))
}
