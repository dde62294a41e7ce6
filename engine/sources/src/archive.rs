//! Module packages as `.tar.gz` archives: deterministic packing and safe unpacking.
//!
//! Packing sorts entries by path and fixes every header field that varies between machines
//! (mtime 0, uid/gid 0, mode 0644 or 0755, no user names), so one directory packs to the
//! same bytes everywhere. Unpacking accepts regular files and directories only and refuses
//! any path that is absolute or climbs out with `..`.

use std::io::{self, Read};
use std::path::{Component, Path};

use crate::cache::collect;

/// Packs the files below `dir` (as [`crate::cache::tree_hash`] sees them) into a `.tar.gz`.
pub fn pack(dir: &Path) -> io::Result<Vec<u8>> {
    let mut files = Vec::new();
    collect(dir, Path::new(""), &mut files)?;
    files.sort();
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::new(6));
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for (rel, exec) in files {
        let bytes = std::fs::read(dir.join(&rel))?;
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(if exec { 0o755 } else { 0o644 });
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, &rel, bytes.as_slice())?;
    }
    tar.into_inner()?.finish()
}

/// Unpacks a `.tar.gz` into `dir`.
pub fn unpack(bytes: &[u8], dir: &Path) -> io::Result<()> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        if path.is_absolute()
            || path
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the archive holds `{}`, outside the package",
                    path.display()
                ),
            ));
        }
        let target = dir.join(&path);
        match entry.header().entry_type() {
            tar::EntryType::Directory => std::fs::create_dir_all(&target)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut data = Vec::new();
                entry.read_to_end(&mut data)?;
                std::fs::write(&target, data)?;
                #[cfg(unix)]
                if entry.header().mode().unwrap_or(0) & 0o111 != 0 {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
                }
            }
            // Links, devices and metadata entries are not part of a module package.
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_is_deterministic_and_round_trips() {
        let a = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(a.path().join("sub")).unwrap();
        std::fs::write(a.path().join("main.hcl"), "x = 1").unwrap();
        std::fs::write(a.path().join("sub/b.hcl"), "y = 2").unwrap();
        let one = pack(a.path()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(a.path().join("main.hcl"), "x = 1").unwrap();
        assert_eq!(pack(a.path()).unwrap(), one);
        let b = tempfile::tempdir().unwrap();
        unpack(&one, b.path()).unwrap();
        assert_eq!(
            crate::cache::tree_hash(a.path()).unwrap(),
            crate::cache::tree_hash(b.path()).unwrap()
        );
    }

    #[test]
    fn unpacking_refuses_paths_outside_the_package() {
        let mut raw = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        let data = b"boom";
        h.set_size(data.len() as u64);
        h.set_entry_type(tar::EntryType::Regular);
        // `append_data` refuses `..` itself, so write the name into the header directly.
        h.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
        h.set_cksum();
        raw.append(&h, &data[..]).unwrap();
        let tarball = raw.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tarball).unwrap();
        let bytes = gz.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = unpack(&bytes, &dir.path().join("pkg")).unwrap_err();
        assert!(err.to_string().contains("outside the package"), "{err}");
    }
}
