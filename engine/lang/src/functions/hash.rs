//! Hash and UUID functions.
use super::*;
use sha2::Digest as _;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn md5(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    Ok(Value::String(hex(&md5::Md5::digest(str_arg(
        &a[0],
        "the string",
    )?))))
}
pub fn sha1(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    Ok(Value::String(hex(&::sha1::Sha1::digest(str_arg(
        &a[0],
        "the string",
    )?))))
}
pub fn sha256(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    Ok(Value::String(hex(&sha2::Sha256::digest(str_arg(
        &a[0],
        "the string",
    )?))))
}
pub fn sha512(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    Ok(Value::String(hex(&sha2::Sha512::digest(str_arg(
        &a[0],
        "the string",
    )?))))
}

pub fn uuidv5(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let ns = str_arg(&a[0], "the namespace")?;
    let name = str_arg(&a[1], "the name")?;
    let namespace = match ns.as_str() {
        "dns" => uuid::Uuid::NAMESPACE_DNS,
        "url" => uuid::Uuid::NAMESPACE_URL,
        "oid" => uuid::Uuid::NAMESPACE_OID,
        "x500" => uuid::Uuid::NAMESPACE_X500,
        other => uuid::Uuid::parse_str(other).map_err(|_| {
            format!("the namespace must be dns, url, oid, x500 or a UUID, got {other:?}")
        })?,
    };
    Ok(Value::String(
        uuid::Uuid::new_v5(&namespace, name.as_bytes()).to_string(),
    ))
}
