//! IP network functions (IPv4 and IPv6).
use super::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A parsed prefix: network address as a u128, total bits (32 or 128), prefix length.
struct Prefix {
    addr: u128,
    bits: u32,
    len: u32,
}

fn parse_prefix(s: &str) -> Result<Prefix, String> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not a CIDR prefix like \"10.0.0.0/16\""))?;
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IP address"))?;
    let len: u32 = len
        .parse()
        .map_err(|_| format!("{len:?} is not a prefix length"))?;
    let (addr, bits) = match ip {
        IpAddr::V4(v4) => (u32::from(v4) as u128, 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    };
    if len > bits {
        return Err(format!(
            "prefix length {len} is too long for a {bits}-bit address"
        ));
    }
    Ok(Prefix {
        addr: addr & mask(bits, len),
        bits,
        len,
    })
}

fn mask(bits: u32, len: u32) -> u128 {
    let all = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    if len == 0 {
        0
    } else {
        all & !((1u128 << (bits - len)) - 1).min(all) & (all << (bits - len))
    }
}

fn show(addr: u128, bits: u32) -> String {
    if bits == 32 {
        Ipv4Addr::from(addr as u32).to_string()
    } else {
        Ipv6Addr::from(addr).to_string()
    }
}

pub fn cidrhost(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let p = parse_prefix(&str_arg(&a[0], "the prefix")?)?;
    let host = int_arg(&a[1], "the host number")?;
    let size: u128 = 1u128.checked_shl(p.bits - p.len).unwrap_or(0);
    let offset = if host < 0 {
        size.checked_sub(host.unsigned_abs() as u128)
    } else {
        Some(host as u128)
    };
    match offset {
        Some(o) if size == 0 || o < size => Ok(Value::String(show(p.addr + o, p.bits))),
        _ => Err(format!(
            "host number {host} does not fit in a /{} prefix",
            p.len
        )),
    }
}

pub fn cidrnetmask(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let p = parse_prefix(&str_arg(&a[0], "the prefix")?)?;
    if p.bits != 32 {
        return Err("only IPv4 prefixes have a netmask".into());
    }
    Ok(Value::String(show(mask(32, p.len), 32)))
}

fn subnet(p: &Prefix, newbits: i64, netnum: i64) -> Result<Prefix, String> {
    if newbits < 0 {
        return Err("newbits must not be negative".into());
    }
    let len = p.len + newbits as u32;
    if len > p.bits {
        return Err(format!(
            "cannot extend a /{} prefix by {newbits} bits",
            p.len
        ));
    }
    if netnum < 0 || (newbits < 64 && netnum as u128 >= 1u128 << newbits) {
        return Err(format!(
            "network number {netnum} does not fit in {newbits} bits"
        ));
    }
    Ok(Prefix {
        addr: p.addr | ((netnum as u128) << (p.bits - len)),
        bits: p.bits,
        len,
    })
}

pub fn cidrsubnet(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let p = parse_prefix(&str_arg(&a[0], "the prefix")?)?;
    let s = subnet(
        &p,
        int_arg(&a[1], "newbits")?,
        int_arg(&a[2], "the network number")?,
    )?;
    Ok(Value::String(format!("{}/{}", show(s.addr, s.bits), s.len)))
}

pub fn cidrsubnets(_: &FnCtx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let p = parse_prefix(&str_arg(&a[0], "the prefix")?)?;
    let end = p.addr + (1u128.checked_shl(p.bits - p.len).unwrap_or(0));
    let mut next = p.addr;
    let mut out = Vec::new();
    for nb in &a[1..] {
        let nb = int_arg(nb, "each newbits")?;
        let len = p.len + nb as u32;
        if nb < 1 || len > p.bits {
            return Err(format!("cannot extend a /{} prefix by {nb} bits", p.len));
        }
        let size = 1u128 << (p.bits - len);
        let start = next.div_ceil(size) * size;
        if start + size > end && !(p.bits == 128 && p.len == 0) {
            return Err(format!(
                "not enough room left in {} for a /{len}",
                show(p.addr, p.bits)
            ));
        }
        out.push(Value::String(format!("{}/{len}", show(start, p.bits))));
        next = start + size;
    }
    Ok(Value::List(out))
}
