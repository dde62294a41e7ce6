//! Embeds the standard library (the repository's `modules/` directory) in the binary.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir.join(rel)) else {
        return;
    };
    for entry in entries.flatten() {
        let path = rel.join(entry.file_name());
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect(dir, &path, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let modules = manifest.join("../../modules");
    println!("cargo:rerun-if-changed={}", modules.display());
    let mut files = Vec::new();
    collect(&modules, Path::new(""), &mut files);
    files.sort();
    let mut code = String::from(
        "/// The standard library's files: (path under modules/, contents).\npub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for f in &files {
        let abs = modules.join(f).canonicalize().expect("file exists");
        println!("cargo:rerun-if-changed={}", abs.display());
        let rel = f
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        code.push_str(&format!(
            "    ({rel:?}, include_bytes!({:?})),\n",
            abs.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("std_modules.rs");
    std::fs::write(out, code).expect("write std_modules.rs");
}
