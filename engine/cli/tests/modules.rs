//! Remote modules end to end: git repositories made here, a real OCI registry (CNCF
//! distribution, Debian's `docker-registry`) and a module registry served on loopback, the
//! lock file, the cache, and every kind of bad input.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use support::Work;
use support::git::{commit_all, tag};

/// A module repository with the packages `edge/` (calling `../common` inside the package)
/// and `common/`, one commit and tag per version.
struct Upstream {
    dir: PathBuf,
    repo: git2::Repository,
}

impl Upstream {
    fn new(w: &Work) -> Upstream {
        let dir = w.path("upstream");
        std::fs::create_dir_all(&dir).unwrap();
        let repo = git2::Repository::init(&dir).unwrap();
        Upstream { dir, repo }
    }

    fn release(&self, version: &str) -> String {
        let write = |rel: &str, text: String| {
            let p = self.dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write(
            "edge/main.hcl",
            format!(
                r#"variable "site" {{
  type = string
}}

module "common" {{
  source = "../common"
}}

resource "builtin_data" "site" {{
  input = "edge ${{var.site}} {version}"
}}

output "greeting" {{
  value = "${{module.common.banner}} for ${{var.site}}"
}}
"#
            ),
        );
        write(
            "common/main.hcl",
            "output \"banner\" {\n  value = trimspace(file(\"${path.module}/banner.txt\"))\n}\n"
                .into(),
        );
        write("common/banner.txt", format!("common {version}\n"));
        let commit = commit_all(&self.repo, &format!("release {version}"));
        tag(&self.repo, &format!("v{version}"));
        commit
    }

    fn url(&self) -> String {
        format!("git::file://{}", self.dir.display())
    }
}

fn root(source: &str, version: Option<&str>) -> String {
    let version = version
        .map(|v| format!("  version = \"{v}\"\n"))
        .unwrap_or_default();
    format!(
        "module \"edge\" {{\n  source  = \"{source}\"\n{version}  site    = \"beijing\"\n}}\n\noutput \"greeting\" {{\n  value = module.edge.greeting\n}}\n"
    )
}

fn lock(w: &Work) -> String {
    std::fs::read_to_string(w.path("flotilla.lock.hcl")).unwrap_or_default()
}

#[test]
fn git_modules_resolve_lock_verify_and_upgrade() {
    let w = Work::new(&[]);
    let up = Upstream::new(&w);
    up.release("1.0.0");
    let v11 = up.release("1.1.0");
    up.release("2.0.0");
    w.write(
        "main.hcl",
        &root(&format!("{}//edge", up.url()), Some("~> 1.0")),
    );

    // Nothing is fetched outside init.
    let err = w.run(&["plan"]).expect(1);
    assert!(
        err.stderr.contains("module not installed"),
        "{}",
        err.stderr
    );
    assert!(err.stderr.contains("run `flotilla init`"), "{}", err.stderr);

    let init = w.run(&["init"]).expect(0);
    assert!(
        init.stdout.contains("Installing modules..."),
        "{}",
        init.stdout
    );
    assert!(
        init.stdout
            .contains(&format!("+ module.edge: 1.1.0 ({})", &v11[..12])),
        "{}",
        init.stdout
    );
    let locked = lock(&w);
    assert!(locked.contains("lock_version = 1"), "{locked}");
    assert!(
        locked.contains(&format!("revision   = \"{v11}\"")),
        "{locked}"
    );
    assert!(locked.contains("version    = \"1.1.0\""), "{locked}");
    assert!(locked.contains("constraint = \"~> 1.0\""), "{locked}");

    let plan = w.run(&["plan"]).expect(0);
    assert!(
        plan.stdout
            .contains("module.edge.builtin_data.site will be created"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("\"edge beijing 1.1.0\""),
        "{}",
        plan.stdout
    );
    let apply = w.run(&["apply", "-auto-approve"]).expect(0);
    assert!(
        apply
            .stdout
            .contains("greeting = \"common 1.1.0 for beijing\""),
        "{}",
        apply.stdout
    );

    // A shallow clone at a fixed ref, into a cache shared between working directories.
    let other = Work::new(&[]);
    other.write(
        "main.hcl",
        &root(&format!("{}//edge?ref=v1.0.0&depth=1", up.url()), None),
    );
    let shared = w.path("shared-cache");
    let out = other
        .command(&["init"])
        .env("FLOTILLA_MODULE_CACHE", &shared)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!other.path(".flotilla/modules").exists());
    assert!(std::fs::read_dir(&shared).unwrap().count() > 1);
    let plan = other
        .command(&["plan"])
        .env("FLOTILLA_MODULE_CACHE", &shared)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("\"edge beijing 1.0.0\""),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );

    // A new matching release changes nothing until `init -upgrade`.
    let v12 = up.release("1.2.0");
    let again = w.run(&["init"]).expect(0);
    assert!(!again.stdout.contains("module.edge: "), "{}", again.stdout);
    assert!(lock(&w).contains(&v11));
    let upgrade = w.run(&["init", "-upgrade"]).expect(0);
    assert!(
        upgrade.stdout.contains(&format!(
            "~ module.edge: 1.1.0 ({}) -> 1.2.0 ({})",
            &v11[..12],
            &v12[..12]
        )),
        "{}",
        upgrade.stdout
    );
    let plan = w.run(&["plan"]).expect(0);
    assert!(
        plan.stdout.contains("\"edge beijing 1.2.0\""),
        "{}",
        plan.stdout
    );

    // `flotilla modules` lists what is locked and whether it is intact.
    let listed = w.run(&["modules", "-json"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(doc["modules"][0]["path"], "module.edge");
    assert_eq!(doc["modules"][0]["version"], "1.2.0");
    assert_eq!(doc["modules"][0]["installed"], true);

    // A tampered cache is refused, naming both hashes, and `init` repairs it.
    let hash = doc["modules"][0]["hash"].as_str().unwrap().to_string();
    let pkg = w
        .path(".flotilla/modules")
        .join(hash.trim_start_matches("blake3:"));
    std::fs::write(pkg.join("common/banner.txt"), "tampered\n").unwrap();
    let refused = w.run(&["plan"]).expect(1);
    assert!(
        refused
            .stderr
            .contains("installed module does not match the lock file"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains(&format!("expected {hash}")),
        "{}",
        refused.stderr
    );
    assert!(w.run(&["validate"]).code == 1);
    assert_eq!(w.run(&["modules"]).code, 1);
    w.run(&["init"]).expect(0);
    w.run(&["plan"]).expect(0);
    assert_eq!(
        std::fs::read_to_string(pkg.join("common/banner.txt")).unwrap(),
        "common 1.2.0\n"
    );
}

#[test]
fn bad_sources_refs_and_constraints_are_clear_errors() {
    let w = Work::new(&[]);
    let up = Upstream::new(&w);
    up.release("1.0.0");
    up.release("1.1.0");

    // A malformed source shows the grammar.
    w.write("main.hcl", &root("git::example.com/repo", None));
    let e = w.run(&["validate"]).expect(1);
    assert!(e.stderr.contains("invalid module source"), "{}", e.stderr);
    assert!(e.stderr.contains("main.hcl:2"), "{}", e.stderr);
    assert!(
        e.stderr
            .contains("git::https://host/repo.git//sub?ref=v1.2.0"),
        "{}",
        e.stderr
    );

    // A subdirectory that climbs out of its repository.
    w.write("main.hcl", &root(&format!("{}//../etc", up.url()), None));
    let e = w.run(&["init"]).expect(1);
    assert!(e.stderr.contains("escapes its repository"), "{}", e.stderr);

    // A ref that does not exist lists what does.
    w.write(
        "main.hcl",
        &root(&format!("{}//edge?ref=v9.9.9", up.url()), None),
    );
    let e = w.run(&["init"]).expect(1);
    assert!(
        e.stderr.contains("ref `v9.9.9` does not exist"),
        "{}",
        e.stderr
    );
    assert!(e.stderr.contains("tags: v1.0.0, v1.1.0"), "{}", e.stderr);

    // No version matches: the versions that exist.
    w.write(
        "main.hcl",
        &root(&format!("{}//edge", up.url()), Some(">= 3.0")),
    );
    let e = w.run(&["init"]).expect(1);
    assert!(e.stderr.contains("matches `>= 3.0`"), "{}", e.stderr);
    assert!(e.stderr.contains("versions: 1.0.0, 1.1.0"), "{}", e.stderr);
    assert!(e.stderr.contains("main.hcl:2"), "{}", e.stderr);

    // A version constraint that does not parse.
    w.write(
        "main.hcl",
        &root(&format!("{}//edge", up.url()), Some("about 1")),
    );
    let e = w.run(&["init"]).expect(1);
    assert!(e.stderr.contains("invalid `version`"), "{}", e.stderr);

    // A ref and a version at once.
    w.write(
        "main.hcl",
        &root(&format!("{}//edge?ref=v1.0.0", up.url()), Some("~> 1.0")),
    );
    let e = w.run(&["validate"]).expect(1);
    assert!(
        e.stderr.contains("`version` does not apply"),
        "{}",
        e.stderr
    );

    // A module inside a package that calls a path outside it.
    let mut escape = std::fs::read_to_string(up.dir.join("edge/main.hcl")).unwrap();
    escape.push_str("\nmodule \"outside\" {\n  source = \"../../elsewhere\"\n}\n");
    std::fs::write(up.dir.join("edge/main.hcl"), escape).unwrap();
    commit_all(&up.repo, "escape");
    tag(&up.repo, "v1.2.0");
    w.write(
        "main.hcl",
        &root(&format!("{}//edge", up.url()), Some("1.2.0")),
    );
    let e = w.run(&["init"]).expect(1);
    assert!(
        e.stderr.contains("module source escapes its package"),
        "{}",
        e.stderr
    );
}

#[test]
fn two_calls_at_different_versions_and_hand_edited_locks() {
    let w = Work::new(&[]);
    let up = Upstream::new(&w);
    up.release("1.0.0");
    up.release("2.0.0");
    let src = format!("{}//edge", up.url());
    w.write(
        "main.hcl",
        &format!(
            "module \"old\" {{\n  source  = \"{src}\"\n  version = \"~> 1.0\"\n  site    = \"a\"\n}}\n\nmodule \"new\" {{\n  source  = \"{src}\"\n  version = \"~> 2.0\"\n  site    = \"b\"\n}}\n"
        ),
    );
    w.run(&["init"]).expect(0);
    let locked = lock(&w);
    assert!(locked.contains("module \"module.old\""), "{locked}");
    assert!(locked.contains("module \"module.new\""), "{locked}");
    let plan = w.run(&["plan"]).expect(0);
    assert!(plan.stdout.contains("\"edge a 1.0.0\""), "{}", plan.stdout);
    assert!(plan.stdout.contains("\"edge b 2.0.0\""), "{}", plan.stdout);

    // A version edited by hand no longer matches what was installed.
    std::fs::write(
        w.path("flotilla.lock.hcl"),
        locked.replacen("version    = \"1.0.0\"", "version    = \"1.9.0\"", 1),
    )
    .unwrap();
    let e = w.run(&["plan"]).expect(1);
    assert!(
        e.stderr
            .contains("lock file does not match the installed module"),
        "{}",
        e.stderr
    );
    assert!(e.stderr.contains("flotilla.lock.hcl"), "{}", e.stderr);

    // A hash edited by hand is malformed, or names nothing installed.
    std::fs::write(
        w.path("flotilla.lock.hcl"),
        locked.replacen("blake3:", "blake3:00", 1),
    )
    .unwrap();
    let e = w.run(&["plan"]).expect(1);
    assert!(e.stderr.contains("invalid lock file"), "{}", e.stderr);
    assert!(e.stderr.contains("flotilla.lock.hcl:"), "{}", e.stderr);
    let fake = format!("blake3:{}", "0".repeat(64));
    let first_hash = locked
        .lines()
        .find_map(|l| l.trim().strip_prefix("hash       = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    std::fs::write(
        w.path("flotilla.lock.hcl"),
        locked.replacen(&first_hash, &fake, 1),
    )
    .unwrap();
    let e = w.run(&["plan"]).expect(1);
    assert!(e.stderr.contains("module not installed"), "{}", e.stderr);

    // `init` with a lock whose hash the source does not produce refuses to install it.
    let e = w.run(&["init"]).expect(1);
    assert!(e.stderr.contains("the lock file says"), "{}", e.stderr);
    assert!(e.stderr.contains("init -upgrade"), "{}", e.stderr);
    std::fs::write(w.path("flotilla.lock.hcl"), &locked).unwrap();
    w.run(&["plan"]).expect(0);
}

/// A tiny static HTTP server on loopback: `routes` maps a path to (status, headers, body).
struct Http {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Route = (u16, Vec<(String, String)>, Vec<u8>);

impl Http {
    fn serve(routes: Vec<(String, Route)>) -> Http {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap_or(0);
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let (status, headers, body) = routes
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map(|(_, r)| r.clone())
                    .unwrap_or((404, Vec::new(), b"not found".to_vec()));
                let mut out = stream;
                let mut head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = out.write_all(head.as_bytes());
                let _ = out.write_all(&body);
                let mut rest = Vec::new();
                let _ = reader
                    .get_mut()
                    .set_read_timeout(Some(std::time::Duration::from_millis(1)));
                let _ = reader.read_to_end(&mut rest);
            }
        });
        Http {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn json(v: serde_json::Value) -> Route {
    (
        200,
        vec![("content-type".into(), "application/json".into())],
        v.to_string().into_bytes(),
    )
}

#[test]
fn registry_protocol_modules_install_and_keep_working_offline() {
    let w = Work::new(&[]);
    let up = Upstream::new(&w);
    up.release("1.0.0");
    let v11 = up.release("1.1.0");
    // The `mesh` package, served as an archive (OpenTofu's JSON `location`).
    let mesh = w.path("mesh-pkg");
    std::fs::create_dir_all(&mesh).unwrap();
    std::fs::write(
        mesh.join("main.hcl"),
        "output \"mode\" {\n  value = \"strict\"\n}\n",
    )
    .unwrap();
    let archive = flotilla_sources::archive::pack(&mesh).unwrap();
    let upstream_url = format!("git::file://{}", up.dir.display());
    let mut server = Http::serve(vec![
        (
            "/.well-known/terraform.json".into(),
            json(serde_json::json!({ "modules.v1": "/v1/modules/" })),
        ),
        (
            "/v1/modules/acme/edge/kube/versions".into(),
            json(serde_json::json!({ "modules": [{ "versions": [
                { "version": "1.0.0" }, { "version": "1.1.0" }, { "version": "2.0.0-rc.1" }
            ] }] })),
        ),
        (
            "/v1/modules/acme/edge/kube/1.1.0/download".into(),
            (
                204,
                vec![(
                    "X-Terraform-Get".into(),
                    format!("{upstream_url}?ref=v1.1.0"),
                )],
                Vec::new(),
            ),
        ),
        (
            "/v1/modules/acme/mesh/kube/versions".into(),
            json(serde_json::json!({ "modules": [{ "versions": [{ "version": "0.3.0" }] }] })),
        ),
        (
            "/v1/modules/acme/mesh/kube/0.3.0/download".into(),
            json(serde_json::json!({ "location": "/archives/mesh-0.3.0.tar.gz" })),
        ),
        (
            "/archives/mesh-0.3.0.tar.gz".into(),
            (200, Vec::new(), archive),
        ),
    ]);
    let host = server.addr.clone();
    w.write(
        "main.hcl",
        &format!(
            "module \"edge\" {{\n  source  = \"{host}/acme/edge/kube//edge\"\n  version = \">= 1.0\"\n  site    = \"shanghai\"\n}}\n\nmodule \"mesh\" {{\n  source = \"{host}/acme/mesh/kube\"\n}}\n\noutput \"mode\" {{\n  value = module.mesh.mode\n}}\n"
        ),
    );
    let init = w.run(&["init"]).expect(0);
    assert!(
        init.stdout.contains("+ module.edge: 1.1.0"),
        "{}",
        init.stdout
    );
    assert!(
        init.stdout.contains("+ module.mesh: 0.3.0"),
        "{}",
        init.stdout
    );
    let locked = lock(&w);
    assert!(
        locked.contains(&format!("{upstream_url}?ref=v1.1.0@{v11}")),
        "{locked}"
    );
    let plan = w.run(&["plan"]).expect(0);
    assert!(
        plan.stdout.contains("\"edge shanghai 1.1.0\""),
        "{}",
        plan.stdout
    );

    // The registry goes down: what is locked and installed keeps working, init included.
    server.shutdown();
    w.run(&["plan"]).expect(0);
    w.run(&["init"]).expect(0);
    let e = w.run(&["init", "-upgrade"]).expect(1);
    assert!(
        e.stderr.contains("cannot reach the module registry"),
        "{}",
        e.stderr
    );
    assert!(e.stderr.contains("modules already locked"), "{}", e.stderr);
    assert_eq!(
        lock(&w),
        locked,
        "a failed upgrade leaves the lock file alone"
    );
}

/// A CNCF distribution registry on a free loopback port with its storage in `dir`.
struct OciRegistry {
    child: std::process::Child,
    addr: String,
}

fn registry_binary() -> Option<PathBuf> {
    ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl OciRegistry {
    fn start(bin: &Path, dir: &Path) -> OciRegistry {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.join("storage").display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the registry did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        OciRegistry { child, addr }
    }
}

impl Drop for OciRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn oci_modules_publish_resolve_upgrade_and_refuse_tampering() {
    let Some(bin) = registry_binary() else {
        assert!(
            std::env::var_os("FLOTILLA_REQUIRE_SERVERS").is_none(),
            "docker-registry is not installed (apt-get install docker-registry)"
        );
        eprintln!("skipping: docker-registry is not installed (.ci/run installs it)");
        return;
    };
    let w = Work::new(&[]);
    std::fs::create_dir_all(w.path("registry")).unwrap();
    let reg = OciRegistry::start(&bin, &w.path("registry"));
    let publish = |version: &str| {
        w.write(
            &format!("pkg-{version}/main.hcl"),
            &format!(
                "variable \"site\" {{\n  type = string\n}}\n\nresource \"builtin_data\" \"site\" {{\n  input = \"edge ${{var.site}} {version}\"\n}}\n\noutput \"greeting\" {{\n  value = \"{version} ${{var.site}}\"\n}}\n"
            ),
        );
        let out = w
            .run(&[
                "module",
                "publish",
                &format!("pkg-{version}"),
                &format!("oci://{}/platform/edge:{version}", reg.addr),
            ])
            .expect(0);
        assert!(out.stdout.contains("digest: sha256:"), "{}", out.stdout);
        assert!(out.stdout.contains("hash:   blake3:"), "{}", out.stdout);
    };
    publish("1.0.0");
    publish("1.1.0");
    w.write(
        "main.hcl",
        &root(&format!("oci://{}/platform/edge", reg.addr), Some("~> 1.1")),
    );
    let init = w.run(&["init"]).expect(0);
    assert!(
        init.stdout.contains("+ module.edge: 1.1.0 (sha256:"),
        "{}",
        init.stdout
    );
    assert!(lock(&w).contains("revision   = \"sha256:"), "{}", lock(&w));
    let plan = w.run(&["plan"]).expect(0);
    assert!(
        plan.stdout.contains("\"edge beijing 1.1.0\""),
        "{}",
        plan.stdout
    );

    publish("1.2.0");
    publish("2.0.0");
    let upgrade = w.run(&["init", "-upgrade"]).expect(0);
    assert!(
        upgrade.stdout.contains("~ module.edge: 1.1.0 (sha256:"),
        "{}",
        upgrade.stdout
    );
    assert!(
        upgrade.stdout.contains("-> 1.2.0 (sha256:"),
        "{}",
        upgrade.stdout
    );
    w.run(&["plan"]).expect(0);

    // A tampered cache is refused; init reinstalls the locked digest.
    let listed: serde_json::Value =
        serde_json::from_str(&w.run(&["modules", "-json"]).expect(0).stdout).unwrap();
    let hash = listed["modules"][0]["hash"].as_str().unwrap().to_string();
    let pkg = w
        .path(".flotilla/modules")
        .join(hash.trim_start_matches("blake3:"));
    std::fs::write(
        pkg.join("main.hcl"),
        "output \"greeting\" { value = \"evil\" }\n",
    )
    .unwrap();
    let e = w.run(&["plan"]).expect(1);
    assert!(
        e.stderr
            .contains("installed module does not match the lock file"),
        "{}",
        e.stderr
    );
    w.run(&["init"]).expect(0);
    let plan = w.run(&["plan"]).expect(0);
    assert!(
        plan.stdout.contains("\"edge beijing 1.2.0\""),
        "{}",
        plan.stdout
    );

    // Bad publish targets and a registry that is gone.
    let e = w
        .run(&["module", "publish", "pkg-1.0.0", "oci://host/repo"])
        .expect(1);
    assert!(e.stderr.contains("names no version tag"), "{}", e.stderr);
    drop(reg);
    w.run(&["plan"]).expect(0);
    let e = w.run(&["init", "-upgrade"]).expect(1);
    assert!(e.stderr.contains("cannot list the tags of"), "{}", e.stderr);
}

#[test]
fn the_modules_from_git_example_installs_and_applies() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/modules-from-git");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    for cmd in [
        "./examples/modules-from-git/make-repo.sh",
        "-chdir=examples/modules-from-git init",
    ] {
        assert!(readme.contains(cmd), "README.md says `{cmd}`");
    }
    assert!(dir.join("make-repo.sh").is_file());
    // What make-repo.sh does, with git2, in this test's own directory.
    let w = Work::new(&[]);
    let up = Upstream::new(&w);
    let copy = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    };
    copy(&dir.join("upstream/edge-site"), &up.dir.join("edge-site"));
    for v in ["1.0.0", "1.1.0"] {
        std::fs::write(up.dir.join("edge-site/VERSION"), format!("{v}\n")).unwrap();
        commit_all(&up.repo, v);
        tag(&up.repo, &format!("v{v}"));
    }
    let main = std::fs::read_to_string(dir.join("main.hcl"))
        .unwrap()
        .replace("git::file:///tmp/flotilla-example-modules.git", &up.url());
    w.write("main.hcl", &main);
    w.run(&["init"]).expect(0);
    let applied = w.run(&["apply", "-auto-approve"]).expect(0);
    assert!(
        applied
            .stdout
            .contains("\"flotilla.dev/edge-site-release\" = \"1.1.0\""),
        "{}",
        applied.stdout
    );
    w.run(&["plan", "-detailed-exitcode"]).expect(0);
}
