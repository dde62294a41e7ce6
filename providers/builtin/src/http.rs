//! The `builtin_http` data source: one request with reqwest (rustls with ring, as the rest of
//! flotilla), its response as a value.

use std::collections::BTreeMap;
use std::time::Duration;

use flotilla_provider::{AttrPath, ProviderError, ProviderResult, Value};

use crate::{attrs, string_attr};

/// Reads `url` as the configuration says.
pub(crate) async fn read(config: &Value) -> ProviderResult<Value> {
    let mut m = attrs(config);
    let url = string_attr(&m, "url")
        .ok_or_else(|| ProviderError::new("`url` is required").at(AttrPath::attr("url")))?;
    let method = string_attr(&m, "method").unwrap_or_else(|| "GET".into());
    let method = match method.to_ascii_uppercase().as_str() {
        "GET" => reqwest::Method::GET,
        "HEAD" => reqwest::Method::HEAD,
        "POST" => reqwest::Method::POST,
        other => {
            return Err(ProviderError::new(format!("unsupported method {other:?}"))
                .with_detail("`method` is GET, HEAD or POST")
                .at(AttrPath::attr("method")));
        }
    };
    let timeout = match string_attr(&m, "request_timeout") {
        None => Duration::from_secs(10),
        Some(t) => parse_seconds(&t).ok_or_else(|| {
            ProviderError::new(format!("`request_timeout` {t:?} is not a duration"))
                .with_detail("write durations like 500ms, 10s, 1m")
                .at(AttrPath::attr("request_timeout"))
        })?,
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("flotilla/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ProviderError::new("cannot set up HTTPS").with_detail(e.to_string()))?;
    let mut request = client.request(method, &url);
    if let Some(Value::Map(headers)) = m.get("request_headers").map(|v| v.clone().unmark().0) {
        for (k, v) in headers {
            if let Value::String(v) = v {
                request = request.header(k, v);
            }
        }
    }
    if let Some(body) = string_attr(&m, "request_body") {
        request = request.body(body);
    }
    let response = request.send().await.map_err(|e| {
        ProviderError::new(format!("cannot reach {url}"))
            .with_detail(describe(&e))
            .at(AttrPath::attr("url"))
    })?;
    let status = response.status().as_u16();
    let mut headers: BTreeMap<String, Value> = BTreeMap::new();
    for (k, v) in response.headers() {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        headers
            .entry(k.as_str().to_string())
            .and_modify(|e| {
                if let Value::String(s) = e {
                    s.push_str(", ");
                    s.push_str(&v);
                }
            })
            .or_insert(Value::String(v));
    }
    let body = response.text().await.map_err(|e| {
        ProviderError::new(format!("cannot read the response of {url}")).with_detail(describe(&e))
    })?;
    let json = serde_json::from_str::<serde_json::Value>(&body)
        .map(|j| Value::from_json(&j))
        .unwrap_or(Value::Null);
    m.insert("status_code".into(), Value::int(i64::from(status)));
    m.insert("response_headers".into(), Value::Map(headers));
    m.insert("response_body".into(), Value::String(body));
    m.insert("json".into(), json);
    Ok(Value::Map(m))
}

/// The error and its causes, on one line.
fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `500ms`, `10s`, `1m`.
fn parse_seconds(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (n, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit() && c != '.')?);
    let n: f64 = n.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Serves one request on loopback with `status` and `body`; the request's first line.
    fn serve_once(status: u16, body: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let n = conn.read(&mut buf).unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            write!(
                conn,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            request
        });
        (url, handle)
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_response_is_a_value_whatever_its_status() {
        let (url, server) = serve_once(503, r#"{"status":"degraded","ratio":"0.97"}"#);
        let config = Value::object([
            ("url", Value::string(url)),
            (
                "request_headers",
                Value::object([("x-check", Value::string("rollout"))]),
            ),
        ]);
        let v = rt().block_on(read(&config)).unwrap().to_json();
        assert_eq!(v["status_code"], 503);
        assert_eq!(v["json"]["status"], "degraded");
        assert_eq!(v["response_headers"]["content-type"], "application/json");
        let request = server.join().unwrap();
        assert!(request.starts_with("GET /health HTTP/1.1"), "{request}");
        assert!(request.contains("x-check: rollout"), "{request}");
    }

    #[test]
    fn an_unreachable_host_or_a_bad_method_is_an_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let config = Value::object([("url", Value::string(url.clone()))]);
        let e = rt().block_on(read(&config)).unwrap_err();
        assert!(e.describe().contains("cannot reach"), "{}", e.describe());
        let config = Value::object([
            ("url", Value::string(url)),
            ("method", Value::string("PATCH")),
        ]);
        assert!(rt().block_on(read(&config)).is_err());
        assert_eq!(parse_seconds("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_seconds("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_seconds("soon"), None);
    }
}
