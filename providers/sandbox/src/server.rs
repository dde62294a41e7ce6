//! The HTTP layer: TLS, bearer-token auth, routing of Kubernetes API paths, discovery, the
//! OpenAPI index kubectl checks, list/get/create/update/patch/delete, watch streams, and
//! content negotiation (JSON, YAML bodies, Table and metadata-only responses).

use crate::Cluster;
use crate::faults::{Fault, FaultConfig};
use crate::kinds::{ResourceType, version_priority};
use crate::patch::PatchType;
use crate::query::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{
    DeleteOptions, EventType, FieldValidation, Key, Outcome, Propagation, Store, Target,
    WriteOptions,
};
use crate::table;
use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The API server's request body limit.
const MAX_BODY: usize = 3 * 1024 * 1024;

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

/// Serves one cluster until `shutdown` turns true.
pub async fn serve(
    cluster: Arc<Cluster>,
    listener: TcpListener,
    config: Arc<ServerConfig>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(config);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let (acceptor, cluster, shutdown) = (acceptor.clone(), cluster.clone(), shutdown.clone());
                connections.spawn(connection(acceptor, tcp, cluster, shutdown));
            }
            _ = shutdown.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(2), drain)
        .await
        .is_err()
    {
        connections.abort_all();
    }
}

async fn connection(
    acceptor: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    cluster: Arc<Cluster>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
    else {
        return;
    };
    let watch_shutdown = shutdown.clone();
    let service = service_fn(move |req| {
        let (cluster, shutdown) = (cluster.clone(), watch_shutdown.clone());
        async move { handle(cluster, req, shutdown).await.ok_or(Dropped) }
    });
    let conn = http1::Builder::new().serve_connection(TokioIo::new(tls), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

fn full(code: u16, content_type: &str, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    response
}

fn json_response(code: u16, body: &Value, warnings: &[String]) -> Response<Body> {
    let mut response = full(
        code,
        "application/json",
        serde_json::to_vec(body).expect("JSON values serialize"),
    );
    for warning in warnings {
        let text = format!(
            "299 - {}",
            serde_json::to_string(warning).expect("strings serialize")
        );
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

fn error_response(error: &ApiError) -> Response<Body> {
    let mut response = json_response(error.code, &error.to_status(), &[]);
    if let Some(seconds) = error.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Decoded query parameters.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: &str) -> Query {
        Query(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true" | "True"))
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the client asked to get back.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    Full,
    Table,
    Metadata,
}

fn shape(headers: &HeaderMap) -> Shape {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // The first acceptable media type wins, as content negotiation orders them.
    for media in accept.split(',') {
        if media.contains("as=Table") {
            return Shape::Table;
        }
        if media.contains("as=PartialObjectMetadata") {
            return Shape::Metadata;
        }
        if media.trim_start().starts_with("application/json")
            || media.trim_start().starts_with("*/*")
            || media.trim_start().starts_with("application/yaml")
        {
            return Shape::Full;
        }
    }
    Shape::Full
}

/// A fault that closes the connection without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

/// The admin endpoint for fault injection (never subject to faults itself).
const FAULTS_PATH: &str = "/flotilla/v1/faults";

/// Answers a request; `None` drops the connection (an injected fault).
async fn handle(
    cluster: Arc<Cluster>,
    req: Request<Incoming>,
    shutdown: watch::Receiver<bool>,
) -> Option<Response<Body>> {
    let path = req.uri().path().to_string();
    let authorized = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| token.trim() == cluster.token);
    if path != FAULTS_PATH {
        let is_update = req.method() == Method::PUT
            || (req.method() == Method::PATCH
                && !req
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|t| t.contains("apply-patch")));
        let (latency, fault) = cluster.faults.decide(req.method().as_str(), is_update);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match fault {
            None => {}
            Some(Fault::Drop) => return None,
            Some(Fault::Status(503)) => {
                return Some(error_response(&ApiError::new(
                    503,
                    "ServiceUnavailable",
                    "the server is currently unable to handle the request (injected fault)",
                )));
            }
            Some(Fault::Status(code)) => {
                return Some(error_response(&ApiError::internal(format!(
                    "an error on the server (\"injected fault\") has prevented the request from succeeding (code {code})"
                ))));
            }
            Some(Fault::Throttle(seconds)) => {
                let mut error = ApiError::new(
                    429,
                    "TooManyRequests",
                    "the server has received too many requests and has asked us to try again later (injected fault)",
                );
                error.retry_after = Some(seconds);
                return Some(error_response(&error));
            }
            Some(Fault::Conflict) => {
                return Some(error_response(&ApiError::new(
                    409,
                    "Conflict",
                    "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again (injected fault)",
                )));
            }
        }
    }
    if matches!(path.as_str(), "/healthz" | "/livez" | "/readyz") {
        return Some(full(200, "text/plain; charset=utf-8", b"ok".to_vec()));
    }
    if !authorized {
        return Some(error_response(&ApiError::unauthorized()));
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Some(error_response(&ApiError::new(
                413,
                "RequestEntityTooLarge",
                "the request body is larger than the server accepts (3 MiB)",
            )));
        }
    };
    let query = Query::parse(parts.uri.query().unwrap_or(""));
    let request = ApiRequest {
        method: parts.method,
        path,
        query,
        headers: parts.headers,
        body,
    };
    let result = if request.path == FAULTS_PATH {
        faults_endpoint(&cluster, &request)
    } else {
        route(&cluster, &request, shutdown)
    };
    Some(match result {
        Ok(response) => response,
        Err(error) => error_response(&error),
    })
}

/// `GET` shows the cluster's fault configuration; `PUT` replaces it (JSON, see
/// [`FaultConfig`]).
fn faults_endpoint(cluster: &Cluster, req: &ApiRequest) -> Result<Response<Body>, ApiError> {
    match req.method {
        Method::GET => {}
        Method::PUT => {
            let config: FaultConfig = serde_json::from_slice(&req.body)
                .map_err(|e| ApiError::bad_request(format!("invalid fault configuration: {e}")))?;
            config.check().map_err(ApiError::bad_request)?;
            cluster.faults.set(config);
        }
        _ => {
            return Err(ApiError::method_not_allowed(
                "use GET to read the fault configuration and PUT to replace it",
            ));
        }
    }
    let body =
        serde_json::to_value(cluster.faults.config()).expect("fault configurations serialize");
    Ok(json_response(200, &body, &[]))
}

struct ApiRequest {
    method: Method,
    path: String,
    query: Query,
    headers: HeaderMap,
    body: Bytes,
}

impl ApiRequest {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The body as a JSON value, from JSON or YAML.
    fn object(&self, kind: &str) -> Result<Value, ApiError> {
        if self.body.is_empty() {
            return Err(ApiError::bad_request(
                "the request body is empty; send the object as JSON or YAML",
            ));
        }
        let content_type = self.header(header::CONTENT_TYPE);
        let unrecognized = |e: String| {
            ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {kind}): couldn't get version/kind; json parse error: {e}"
            ))
        };
        if content_type.contains("protobuf") {
            return crate::protobuf::decode(&self.body)
                .map_err(|e| ApiError::new(415, "UnsupportedMediaType", e));
        }
        if content_type.contains("cbor") {
            return Err(ApiError::unsupported_media_type(content_type));
        }
        if content_type.contains("yaml") {
            let value: Value = serde_yaml::from_slice(&self.body).map_err(|e| {
                ApiError::bad_request(format!(
                    "the object provided is unrecognized (must be of type {kind}): yaml: {e}"
                ))
            })?;
            return Ok(value);
        }
        serde_json::from_slice(&self.body).map_err(|e| unrecognized(e.to_string()))
    }
}

fn route(
    cluster: &Arc<Cluster>,
    req: &ApiRequest,
    shutdown: watch::Receiver<bool>,
) -> Result<Response<Body>, ApiError> {
    let segments: Vec<&str> = req
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let get_only = |r: Result<Value, ApiError>| -> Result<Response<Body>, ApiError> {
        if req.method != Method::GET {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({})",
                req.method
            )));
        }
        r.map(|v| json_response(200, &v, &[]))
    };
    match segments.as_slice() {
        ["version"] => get_only(Ok(version())),
        ["api"] => get_only(Ok(
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": format!("127.0.0.1:{}", cluster.port)}]}),
        )),
        ["apis"] => get_only(Ok(group_list(&cluster.store()))),
        ["apis", group] => {
            get_only(group_doc(&cluster.store(), group).ok_or_else(ApiError::not_found_path))
        }
        ["api", version] => get_only(resource_list(&cluster.store(), "", version)),
        ["apis", group, version] => get_only(resource_list(&cluster.store(), group, version)),
        ["openapi", "v2"] => {
            // An empty protobuf document: kubectl downloads it before it checks OpenAPI v3 for
            // server-side field validation, which is what the sandbox offers.
            Ok(full(
                200,
                "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                Vec::new(),
            ))
        }
        ["openapi", "v3"] => get_only(Ok(openapi_index(&cluster.store()))),
        ["openapi", "v3", "api", version] => get_only(openapi_doc(&cluster.store(), "", version)),
        ["openapi", "v3", "apis", group, version] => {
            get_only(openapi_doc(&cluster.store(), group, version))
        }
        ["api", version, rest @ ..] => resource(cluster, req, "", version, rest, shutdown),
        ["apis", group, version, rest @ ..] => {
            resource(cluster, req, group, version, rest, shutdown)
        }
        _ => Err(ApiError::not_found_path()),
    }
}

fn version() -> Value {
    let minor = crate::KUBERNETES_VERSION.split('.').nth(1).unwrap_or("0");
    json!({
        "major": "1",
        "minor": minor,
        "gitVersion": crate::KUBERNETES_VERSION,
        "gitCommit": "flotilla-sandbox",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// Groups with their served versions, preferred first.
fn groups(store: &Store) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rt in store.types() {
        if rt.group.is_empty() || rt.versions.is_empty() {
            continue;
        }
        let versions = groups.entry(rt.group.clone()).or_default();
        for v in &rt.versions {
            if !versions.contains(v) {
                versions.push(v.clone());
            }
        }
    }
    for versions in groups.values_mut() {
        versions.sort_by_key(|v| version_priority(v));
    }
    groups
}

fn group_json(group: &str, versions: &[String]) -> Value {
    let list: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": list, "preferredVersion": list[0]})
}

fn group_list(store: &Store) -> Value {
    let groups: Vec<Value> = groups(store)
        .iter()
        .map(|(g, v)| group_json(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn group_doc(store: &Store, group: &str) -> Option<Value> {
    let groups = groups(store);
    let versions = groups.get(group)?;
    let mut doc = group_json(group, versions);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// The resource types served at a group-version; 404 when there are none.
fn served<'s>(
    store: &'s Store,
    group: &str,
    version: &str,
) -> Result<Vec<&'s Arc<ResourceType>>, ApiError> {
    let served: Vec<&Arc<ResourceType>> = store
        .types()
        .iter()
        .filter(|t| t.group == group && t.versions.iter().any(|v| v == version))
        .collect();
    if served.is_empty() {
        Err(ApiError::not_found_path())
    } else {
        Ok(served)
    }
}

fn resource_list(store: &Store, group: &str, version: &str) -> Result<Value, ApiError> {
    let served = served(store, group, version)?;
    let resources: Vec<Value> = served.iter().flat_map(|t| t.discovery()).collect();
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

fn openapi_index(store: &Store) -> Value {
    let mut paths = serde_json::Map::new();
    paths.insert("api/v1".into(), json!({"serverRelativeURL": format!("/openapi/v3/api/v1?hash={}", store.resource_version())}));
    for (group, versions) in groups(store) {
        for v in versions {
            paths.insert(format!("apis/{group}/{v}"), json!({"serverRelativeURL": format!("/openapi/v3/apis/{group}/{v}?hash={}", store.resource_version())}));
        }
    }
    json!({"paths": paths})
}

/// A minimal OpenAPI v3 document per group-version: the PATCH operations with their
/// group-version-kind and the `fieldValidation` parameter, which is what kubectl looks up.
fn openapi_doc(store: &Store, group: &str, version: &str) -> Result<Value, ApiError> {
    let served = served(store, group, version)?;
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let mut paths = serde_json::Map::new();
    for rt in served {
        let path = if rt.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", rt.plural)
        } else {
            format!("{prefix}/{}/{{name}}", rt.plural)
        };
        let params: Vec<Value> = ["dryRun", "fieldManager", "fieldValidation", "force"]
            .iter()
            .map(|p| json!({"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": true}}))
            .collect();
        paths.insert(
            path,
            json!({"patch": {
                "operationId": format!("patch{}", rt.kind),
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": rt.kind},
            }}),
        );
    }
    Ok(
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": crate::KUBERNETES_VERSION}, "paths": paths}),
    )
}

/// `?dryRun=All`, the only value the API server accepts.
fn dry_run(req: &ApiRequest) -> Result<bool, ApiError> {
    match req.query.get("dryRun") {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid dry run value: {other:?}: supported values: \"All\""
        ))),
    }
}

fn write_options(req: &ApiRequest) -> Result<WriteOptions, ApiError> {
    let dry_run = dry_run(req)?;
    let field_validation = match req.query.get("fieldValidation") {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            )));
        }
    };
    let field_manager = req
        .query
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    if field_manager.as_ref().is_some_and(|m| m.len() > 128) {
        return Err(ApiError::bad_request(
            "fieldManager: Too long: may not be more than 128 bytes",
        ));
    }
    Ok(WriteOptions {
        dry_run,
        field_manager,
        field_validation,
        force: req.query.flag("force"),
        user_agent: req.header(header::USER_AGENT).to_string(),
    })
}

/// A parsed resource path.
struct ResourcePath<'a> {
    namespace: Option<&'a str>,
    plural: &'a str,
    name: Option<&'a str>,
    subresource: Option<&'a str>,
}

fn parse_resource_path<'a>(rest: &[&'a str]) -> Option<ResourcePath<'a>> {
    let p = |namespace, plural, name, subresource| {
        Some(ResourcePath {
            namespace,
            plural,
            name,
            subresource,
        })
    };
    match *rest {
        [plural] => p(None, plural, None, None),
        ["namespaces", name, sub @ ("status" | "finalize")] => {
            p(None, "namespaces", Some(name), Some(sub))
        }
        ["namespaces", ns, plural] => p(Some(ns), plural, None, None),
        ["namespaces", ns, plural, name] => p(Some(ns), plural, Some(name), None),
        ["namespaces", ns, plural, name, sub] => p(Some(ns), plural, Some(name), Some(sub)),
        [plural, name] => p(None, plural, Some(name), None),
        [plural, name, sub] => p(None, plural, Some(name), Some(sub)),
        _ => None,
    }
}

fn resource(
    cluster: &Arc<Cluster>,
    req: &ApiRequest,
    group: &str,
    version: &str,
    rest: &[&str],
    shutdown: watch::Receiver<bool>,
) -> Result<Response<Body>, ApiError> {
    let path = parse_resource_path(rest).ok_or_else(ApiError::not_found_path)?;
    let rt = cluster
        .store()
        .resolve(group, version, path.plural)
        .ok_or_else(ApiError::not_found_path)?;
    if (!rt.namespaced && path.namespace.is_some())
        || (rt.namespaced && path.name.is_some() && path.namespace.is_none())
    {
        return Err(ApiError::not_found_path());
    }
    let subresource = match path.subresource {
        None => "",
        Some("status") if rt.status_subresource => "status",
        Some("finalize") if rt.plural == "namespaces" && rt.group.is_empty() => "finalize",
        Some("scale")
            if rt.group == "apps"
                && matches!(
                    rt.plural.as_str(),
                    "deployments" | "replicasets" | "statefulsets"
                ) =>
        {
            "scale"
        }
        Some(_) => return Err(ApiError::not_found_path()),
    };
    let namespace = path.namespace.unwrap_or("");
    let target = Target {
        rt: &rt,
        version,
        namespace,
    };
    if subresource == "scale" {
        let name = path.name.ok_or_else(ApiError::not_found_path)?;
        return scale(cluster, req, &target, name);
    }
    let shape = shape(&req.headers);
    let method = req.method.clone();
    let result = match (&method, path.name) {
        (&Method::GET, None) if req.query.flag("watch") => {
            return watch_response(cluster, req, &rt, version, path.namespace, shutdown);
        }
        (&Method::GET, None) => return list(cluster, req, &rt, version, path.namespace, shape),
        (&Method::GET, Some(name)) => {
            let obj = cluster.store().get(&target, name)?;
            let rv = cluster.store().resource_version().to_string();
            let body = match shape {
                Shape::Full => obj,
                Shape::Metadata => table::partial(&obj),
                Shape::Table => table::table(
                    &rt,
                    version,
                    &[obj],
                    &rv,
                    req.query.get("includeObject").unwrap_or(""),
                ),
            };
            return Ok(json_response(200, &body, &[]));
        }
        (&Method::POST, None) => {
            let body = req.object(&rt.kind)?;
            let opts = write_options(req)?;
            cluster.store().create(&target, body, &opts)
        }
        (&Method::PUT, Some(name)) => {
            let body = req.object(&rt.kind)?;
            let opts = write_options(req)?;
            if subresource == "finalize" {
                let mut store = cluster.store();
                let mut current = store.get(&target, name)?;
                current["spec"]["finalizers"] = body
                    .pointer("/spec/finalizers")
                    .cloned()
                    .unwrap_or(json!([]));
                store.update(&target, name, current, &opts, "")
            } else {
                cluster
                    .store()
                    .update(&target, name, body, &opts, subresource)
            }
        }
        (&Method::PATCH, Some(name)) => {
            let content_type = req.header(header::CONTENT_TYPE);
            let patch_type = PatchType::from_content_type(content_type)
                .ok_or_else(|| ApiError::unsupported_media_type(content_type))?;
            let body = if patch_type == PatchType::Apply {
                if req.body.is_empty() {
                    return Err(ApiError::bad_request("the apply patch is empty"));
                }
                serde_yaml::from_slice::<Value>(&req.body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
            } else {
                serde_json::from_slice::<Value>(&req.body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
            };
            let opts = write_options(req)?;
            if opts.force && patch_type != PatchType::Apply {
                return Err(ApiError::bad_request(
                    "force: Invalid value: true: may not be specified for non-apply patch",
                ));
            }
            cluster
                .store()
                .patch(&target, name, patch_type, body, &opts, subresource)
        }
        (&Method::DELETE, Some(name)) => {
            let (delete, dry_run) = delete_options(req)?;
            cluster.store().delete(&target, name, &delete, dry_run)
        }
        (&Method::DELETE, None) => delete_collection(cluster, req, &target),
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method})"
        ))),
    };
    let outcome = result?;
    cluster.changed();
    Ok(json_response(
        outcome.code,
        &outcome.body,
        &outcome.warnings,
    ))
}

/// The `autoscaling/v1` Scale of a workload.
fn scale_of(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": { "replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1)) },
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

/// The `scale` subresource of Deployments, ReplicaSets and StatefulSets (`kubectl scale`):
/// GET reads it; PUT and PATCH set `spec.replicas` of the workload.
fn scale(
    cluster: &Cluster,
    req: &ApiRequest,
    target: &Target<'_>,
    name: &str,
) -> Result<Response<Body>, ApiError> {
    let current = cluster.store().get(target, name)?;
    let before = scale_of(&current);
    let wanted = match req.method {
        Method::GET => return Ok(json_response(200, &before, &[])),
        Method::PUT => req.object("Scale")?,
        Method::PATCH => {
            let content_type = req.header(header::CONTENT_TYPE);
            let patch_type = PatchType::from_content_type(content_type)
                .filter(|t| *t != PatchType::Apply)
                .ok_or_else(|| ApiError::unsupported_media_type(content_type))?;
            let body: Value = serde_json::from_slice(&req.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            crate::patch::apply_patch(
                &before,
                patch_type,
                &body,
                &target.rt.schema(target.version),
            )?
        }
        ref other => {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({other})"
            )));
        }
    };
    if let Some(rv) = wanted
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        && Some(rv) != before["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {}.{} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                target.rt.plural, target.rt.group
            ),
        ));
    }
    let Some(replicas) = wanted.pointer("/spec/replicas").and_then(Value::as_i64) else {
        return Err(ApiError::bad_request("spec.replicas: Required value"));
    };
    if replicas < 0 {
        return Err(ApiError::bad_request(
            "spec.replicas: Invalid value: must be greater than or equal to 0",
        ));
    }
    let mut updated = current;
    updated["spec"]["replicas"] = json!(replicas);
    let opts = write_options(req)?;
    let outcome = cluster.store().update(target, name, updated, &opts, "")?;
    cluster.changed();
    Ok(json_response(
        200,
        &scale_of(&outcome.body),
        &outcome.warnings,
    ))
}

fn delete_options(req: &ApiRequest) -> Result<(DeleteOptions, bool), ApiError> {
    let body: Value = if req.body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    let policy = body["propagationPolicy"]
        .as_str()
        .or_else(|| req.query.get("propagationPolicy"));
    let propagation = match policy {
        None | Some("") => {
            if body["orphanDependents"].as_bool() == Some(true)
                || req.query.flag("orphanDependents")
            {
                Some(Propagation::Orphan)
            } else {
                None
            }
        }
        Some("Background") => Some(Propagation::Background),
        Some("Foreground") => Some(Propagation::Foreground),
        Some("Orphan") => Some(Propagation::Orphan),
        Some(other) => {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!(
                    "propagationPolicy: Unsupported value: {other:?}: supported values: \"Background\", \"Foreground\", \"Orphan\""
                ),
            ));
        }
    };
    let dry_run = dry_run(req)?
        || body["dryRun"]
            .as_array()
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    let options = DeleteOptions {
        propagation,
        uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        resource_version: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    Ok((options, dry_run))
}

fn selectors(
    req: &ApiRequest,
    rt: &ResourceType,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(req.query.get("labelSelector").unwrap_or(""))?;
    let supported: &[&str] = match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "secrets") => &["type"],
        ("", "namespaces") => &["status.phase"],
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.name",
            "involvedObject.namespace",
            "involvedObject.uid",
            "reason",
            "type",
            "source",
        ],
        ("", "nodes") => &["spec.unschedulable"],
        _ => &[],
    };
    let fields = FieldSelector::parse(req.query.get("fieldSelector").unwrap_or(""), supported)?;
    Ok((labels, fields))
}

fn matches(obj: &Value, labels: &LabelSelector, fields: &FieldSelector) -> bool {
    labels.matches(obj.pointer("/metadata/labels")) && fields.matches(obj)
}

fn delete_collection(
    cluster: &Arc<Cluster>,
    req: &ApiRequest,
    target: &Target<'_>,
) -> Result<Outcome, ApiError> {
    let (labels, fields) = selectors(req, target.rt)?;
    let (options, dry_run) = delete_options(req)?;
    let mut store = cluster.store();
    let namespace = target
        .rt
        .namespaced
        .then_some(target.namespace)
        .filter(|ns| !ns.is_empty());
    let names: Vec<String> = store
        .list_objects(target.rt, namespace)
        .filter(|(_, o)| {
            matches(
                &Store::present(o, target.rt, target.version),
                &labels,
                &fields,
            )
        })
        .map(|(k, _)| k.name.clone())
        .collect();
    let mut items = Vec::new();
    for name in names {
        let outcome = store.delete(target, &name, &options, dry_run)?;
        items.push(outcome.body);
    }
    let rv = store.resource_version().to_string();
    Ok(Outcome {
        code: 200,
        body: json!({"kind": target.rt.list_kind, "apiVersion": target.rt.api_version(target.version), "metadata": {"resourceVersion": rv}, "items": items}),
        warnings: Vec::new(),
    })
}

/// A `continue` token: the key to start after.
fn encode_continue(key: &Key) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(key).expect("keys serialize"))
}

fn decode_continue(token: &str) -> Result<Key, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "continue key is not valid: illegal base64 data or malformed JSON",
            )
        })
}

fn list(
    cluster: &Arc<Cluster>,
    req: &ApiRequest,
    rt: &Arc<ResourceType>,
    version: &str,
    namespace: Option<&str>,
    shape: Shape,
) -> Result<Response<Body>, ApiError> {
    let (labels, fields) = selectors(req, rt)?;
    let limit: usize = req
        .query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let after = req
        .query
        .get("continue")
        .filter(|c| !c.is_empty())
        .map(decode_continue)
        .transpose()?;
    let store = cluster.store();
    let mut items = Vec::new();
    let mut next = None;
    for (key, obj) in store.list_objects(rt, namespace) {
        if after.as_ref().is_some_and(|a| key <= a) {
            continue;
        }
        let presented = Store::present(obj, rt, version);
        if !matches(&presented, &labels, &fields) {
            continue;
        }
        if items.len() == limit {
            next = Some(encode_continue(&items_key(&items, rt, namespace)));
            break;
        }
        items.push(presented);
    }
    let rv = store.resource_version().to_string();
    drop(store);
    let body = match shape {
        Shape::Table => table::table(
            rt,
            version,
            &items,
            &rv,
            req.query.get("includeObject").unwrap_or(""),
        ),
        Shape::Metadata => {
            let items: Vec<Value> = items.iter().map(table::partial).collect();
            json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv}, "items": items})
        }
        Shape::Full => {
            json!({"kind": rt.list_kind, "apiVersion": rt.api_version(version), "metadata": {"resourceVersion": rv}, "items": items})
        }
    };
    // Every shape pages the same way: kubectl's tables ask for 500 rows at a time.
    let mut body = body;
    if let Some(token) = &next {
        body["metadata"]["continue"] = json!(token);
    }
    Ok(json_response(200, &body, &[]))
}

fn items_key(items: &[Value], rt: &ResourceType, namespace: Option<&str>) -> Key {
    let last = items.last().expect("a page is full only when it has items");
    Key {
        group: rt.group.clone(),
        plural: rt.plural.clone(),
        namespace: last
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .or(namespace.filter(|_| rt.namespaced))
            .unwrap_or("")
            .to_string(),
        name: last
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    }
}

/// Everything a watch stream needs between polls.
struct WatchState {
    cluster: Arc<Cluster>,
    rt: Arc<ResourceType>,
    version: String,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    next_rv: u64,
    pending: VecDeque<Bytes>,
    changes: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
    deadline: Instant,
    bookmarks: bool,
    done: bool,
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line =
        serde_json::to_vec(&json!({"type": kind, "object": object})).expect("events serialize");
    line.push(b'\n');
    Bytes::from(line)
}

impl WatchState {
    fn selected(&self, obj: &Value) -> bool {
        let ns_ok = self.namespace.as_deref().is_none_or(|ns| {
            obj.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
        });
        ns_ok && matches(obj, &self.labels, &self.fields)
    }

    fn bookmark(&self, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": self.next_rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        event_line(
            "BOOKMARK",
            &json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(&self.version), "metadata": metadata}),
        )
    }

    /// Queues the events logged since the last poll.
    fn poll(&mut self) {
        let store = self.cluster.store();
        let events: Vec<_> = match store.events_since(self.next_rv) {
            Ok(events) => events
                .filter(|e| e.key.group == self.rt.group && e.key.plural == self.rt.plural)
                .cloned()
                .collect(),
            Err(gone) => {
                self.pending
                    .push_back(event_line("ERROR", &gone.to_status()));
                self.done = true;
                return;
            }
        };
        self.next_rv = self.next_rv.max(store.resource_version());
        drop(store);
        for event in events {
            let now = Store::present(&event.object, &self.rt, &self.version);
            let before = event
                .old
                .as_ref()
                .map(|o| Store::present(o, &self.rt, &self.version));
            let (in_now, in_before) = (
                self.selected(&now),
                before.as_ref().is_some_and(|b| self.selected(b)),
            );
            let kind = match event.kind {
                EventType::Added if in_now => "ADDED",
                EventType::Modified if in_now && in_before => "MODIFIED",
                EventType::Modified if in_now => "ADDED",
                EventType::Modified if in_before => "DELETED",
                EventType::Deleted if in_now => "DELETED",
                _ => continue,
            };
            self.pending.push_back(event_line(kind, &now));
        }
    }

    async fn next(mut self) -> Option<(Result<Frame<Bytes>, Infallible>, WatchState)> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Some((Ok(Frame::data(line)), self));
            }
            if self.done {
                return None;
            }
            self.poll();
            if !self.pending.is_empty() || self.done {
                continue;
            }
            tokio::select! {
                changed = self.changes.changed() => if changed.is_err() { self.done = true },
                _ = tokio::time::sleep_until(self.deadline) => self.done = true,
                _ = self.shutdown.changed() => self.done = true,
                _ = tokio::time::sleep(BOOKMARK_EVERY), if self.bookmarks => {
                    let line = self.bookmark(false);
                    self.pending.push_back(line);
                }
            }
        }
    }
}

fn watch_response(
    cluster: &Arc<Cluster>,
    req: &ApiRequest,
    rt: &Arc<ResourceType>,
    version: &str,
    namespace: Option<&str>,
    shutdown: watch::Receiver<bool>,
) -> Result<Response<Body>, ApiError> {
    let (labels, fields) = selectors(req, rt)?;
    let timeout = req
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let requested = req.query.get("resourceVersion").unwrap_or("");
    let send_initial = req.query.flag("sendInitialEvents");
    let bookmarks = req.query.flag("allowWatchBookmarks");
    let changes = cluster.subscribe();
    let mut state = WatchState {
        cluster: cluster.clone(),
        rt: rt.clone(),
        version: version.to_string(),
        namespace: namespace.map(str::to_string),
        labels,
        fields,
        next_rv: 0,
        pending: VecDeque::new(),
        changes,
        shutdown,
        deadline: Instant::now() + Duration::from_secs(timeout),
        bookmarks,
        done: false,
    };
    if requested.is_empty() || requested == "0" || send_initial {
        // Start from now, with synthetic ADDED events for what exists.
        let store = cluster.store();
        for (_, obj) in store.list_objects(rt, namespace) {
            let presented = Store::present(obj, rt, version);
            if state.selected(&presented) {
                state.pending.push_back(event_line("ADDED", &presented));
            }
        }
        state.next_rv = store.resource_version();
        drop(store);
        if send_initial && bookmarks {
            let line = state.bookmark(true);
            state.pending.push_back(line);
        }
    } else {
        state.next_rv = requested.parse().map_err(|_| {
            ApiError::bad_request(format!("invalid resource version {requested:?}"))
        })?;
    }
    let stream = futures_util::stream::unfold(state, WatchState::next).boxed();
    let mut response = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = Query::parse("labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=1&x");
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("x"), Some(""));
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn resource_paths() {
        let p = parse_resource_path(&["namespaces", "a", "status"]).unwrap();
        assert_eq!(
            (p.plural, p.name, p.subresource),
            ("namespaces", Some("a"), Some("status"))
        );
        let p = parse_resource_path(&["namespaces", "a", "configmaps"]).unwrap();
        assert_eq!(
            (p.namespace, p.plural, p.name),
            (Some("a"), "configmaps", None)
        );
        let p = parse_resource_path(&["namespaces", "a"]).unwrap();
        assert_eq!(
            (p.namespace, p.plural, p.name),
            (None, "namespaces", Some("a"))
        );
        assert!(parse_resource_path(&["a", "b", "c", "d"]).is_none());
    }
}
