//! On-disk cache of compiled kernel images, so that NVRTC (about 50 ms per file and architecture) runs
//! once per machine rather than once per process.
//!
//! A file's name carries a hash of everything that determines its content: the source text, the target
//! architecture, the NVRTC version and the options. Changing any of them simply misses the cache, and
//! stale files are never overwritten in place, so no invalidation logic is needed. The cache is only an
//! optimisation: every failure to read or write it falls back to compiling.

use std::path::{Path, PathBuf};

use super::nvrtc::{self, Target};

/// Bump when the file layout or compile options change in a way the key does not capture.
const FORMAT: &str = "deephide-cuda-image-v1";

/// Where compiled kernels are cached: `$DEEPHIDE_CACHE`, else `$XDG_CACHE_HOME/deephide`, else
/// `~/.cache/deephide`, with a `cuda/` sub-directory. `None` when none of these is set.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let root = var("DEEPHIDE_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("deephide")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("deephide")))?;
    Some(root.join("cuda"))
}

/// The cache file for kernels/`file` compiled for `target` with NVRTC options `options`.
pub fn image_path(file: &str, source: &str, target: Target, options: &[&str]) -> Option<PathBuf> {
    let dir = cache_dir()?;
    let version = nvrtc::version_string();
    let arch = target.arch();
    let mut parts: Vec<&[u8]> =
        vec![FORMAT.as_bytes(), source.as_bytes(), arch.as_bytes(), version.as_bytes()];
    parts.extend(options.iter().map(|o| o.as_bytes()));
    let hash = fnv1a64(&parts);
    let stem = file.strip_suffix(".cu").unwrap_or(file);
    let ext = match target {
        Target::Cubin(_) => "cubin",
        Target::Ptx(_) => "ptx",
    };
    Some(dir.join(format!("{stem}-{arch}-{hash:016x}.{ext}")))
}

/// The cached image, if the file exists and is not empty.
pub fn load(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok().filter(|bytes| !bytes.is_empty())
}

/// Writes `image` to `path` through a temporary file and a rename, so that a concurrent reader (another
/// process compiling the same kernel) sees either no file or the whole file, never a torn one.
pub fn store(path: &Path, image: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| std::io::Error::other("cache path has no parent"))?;
    std::fs::create_dir_all(dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = path.with_extension(format!("{}.{nanos}.tmp", std::process::id()));
    let written = std::fs::write(&tmp, image).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// 64-bit FNV-1a over the parts, each followed by a 0xff separator (a byte that never occurs in UTF-8)
/// so that moving text from one part to the next changes the hash. Written out because std's hasher is
/// not guaranteed stable across Rust releases, and the key must survive toolchain updates.
pub(crate) fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in part.iter().chain(&[0xffu8]) {
            h ^= byte as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_separates_parts() {
        assert_ne!(fnv1a64(&[b"ab", b"c"]), fnv1a64(&[b"a", b"bc"]));
        // No parts: the offset basis, unchanged.
        assert_eq!(fnv1a64(&[]), 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn store_then_load_round_trips() {
        let dir = std::env::temp_dir().join(format!("deephide-cache-test-{}", std::process::id()));
        let path = dir.join("k-sm_80-0.cubin");
        store(&path, b"image").unwrap();
        assert_eq!(load(&path).as_deref(), Some(&b"image"[..]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
