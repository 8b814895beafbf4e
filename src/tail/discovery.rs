//! Discovery: which files match a flow's `filePattern`.
//!
//! The pattern is a glob over the whole path. Its static prefix (the components before the
//! first wildcard) is the root that is scanned and watched: non-recursively when only the
//! last component has wildcards, recursively otherwise (`/var/log/**/*.log`,
//! `/var/lib/docker/containers/*/*.log`). Directory symlinks are not followed while
//! walking (nor by the daemon's recursive inotify watch), so a symlink loop cannot trap
//! the scan and a link to a large tree costs nothing; symlinked files are followed.
//!
//! Candidates that cannot be tailed (compressed names, directories, FIFOs, sockets,
//! dangling links, unreadable files) are reported once per path and reason.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

/// Names with these endings are never tailed (SPEC §4).
pub const COMPRESSED_SUFFIXES: &[&str] = &[".gz", ".bz2", ".zip", ".xz", ".zst"];

/// How deep a recursive scan goes below its root: deeper trees are not log layouts.
pub const MAX_SCAN_DEPTH: usize = 32;

/// A compiled `filePattern` and where to look for it.
#[derive(Debug, Clone)]
pub struct Pattern {
    glob: globset::GlobMatcher,
    /// The deepest directory without wildcards.
    pub root: PathBuf,
    /// True when wildcards appear above the last component.
    pub recursive: bool,
}

impl Pattern {
    /// Splits `pattern` (already compiled as `glob`) into its root and depth.
    pub fn new(pattern: &str, glob: globset::GlobMatcher) -> Self {
        let path = Path::new(pattern);
        let comps: Vec<Component<'_>> = path.components().collect();
        let wild = |c: &Component<'_>| {
            c.as_os_str()
                .to_string_lossy()
                .chars()
                .any(|ch| matches!(ch, '*' | '?' | '[' | '{'))
        };
        let first_wild = comps.iter().position(wild).unwrap_or(comps.len() - 1);
        let root: PathBuf = comps[..first_wild].iter().collect();
        let recursive = first_wild + 1 < comps.len();
        Pattern {
            glob,
            root: if root.as_os_str().is_empty() {
                PathBuf::from("/")
            } else {
                root
            },
            recursive,
        }
    }

    /// True when `path` matches the pattern and is not a compressed file.
    pub fn matches(&self, path: &Path) -> bool {
        if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            if COMPRESSED_SUFFIXES.iter().any(|s| name.ends_with(s)) {
                return false;
            }
        }
        self.glob.is_match(path)
    }
}

/// A regular file that matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The path it matched under.
    pub path: PathBuf,
    /// `st_dev` (of the target, for a symlink).
    pub dev: u64,
    /// `st_ino`
    pub ino: u64,
    /// Size at scan time.
    pub size: u64,
}

/// Remembers what was already reported, so each problem is logged once per path.
#[derive(Debug, Default)]
pub struct Reported {
    seen: HashMap<PathBuf, String>,
}

impl Reported {
    /// Logs `why` for `path` unless it was the last thing logged for it. Returns true when
    /// it logged.
    pub fn warn(&mut self, path: &Path, why: String) -> bool {
        if self.seen.get(path) == Some(&why) {
            return false;
        }
        tracing::warn!("skipping {}: {why}", path.display());
        self.seen.insert(path.to_path_buf(), why);
        true
    }

    /// Forgets paths no longer present, so a problem that comes back is logged again.
    pub fn retain(&mut self, keep: impl Fn(&Path) -> bool) {
        self.seen.retain(|p, _| keep(p));
    }

    /// Number of paths currently reported.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True when nothing is reported.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// Lists every regular file matching `pattern`.
pub fn scan(pattern: &Pattern, reported: &mut Reported) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut seen_paths = Vec::new();
    walk(
        pattern,
        &pattern.root,
        0,
        reported,
        &mut out,
        &mut seen_paths,
    );
    reported.retain(|p| seen_paths.iter().any(|s| s == p));
    out
}

fn walk(
    pattern: &Pattern,
    dir: &Path,
    depth: usize,
    reported: &mut Reported,
    out: &mut Vec<Candidate>,
    seen: &mut Vec<PathBuf>,
) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            if depth == 0 || pattern.recursive {
                seen.push(dir.to_path_buf());
                reported.warn(dir, format!("cannot list directory: {e}"));
            }
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            if pattern.recursive && depth < MAX_SCAN_DEPTH {
                walk(pattern, &path, depth + 1, reported, out, seen);
            } else if !pattern.recursive && pattern.matches(&path) {
                seen.push(path.clone());
                reported.warn(&path, "a directory, not a regular file".to_string());
            }
            continue;
        }
        if !pattern.matches(&path) {
            continue;
        }
        seen.push(path.clone());
        // Follows a symlink to its target: a linked log file is tailed.
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                let why = if ft.is_symlink() {
                    format!("dangling or unreadable symlink: {e}")
                } else {
                    format!("cannot stat: {e}")
                };
                reported.warn(&path, why);
                continue;
            }
        };
        let kind = meta.file_type();
        if kind.is_file() {
            out.push(Candidate {
                path,
                dev: meta.dev(),
                ino: meta.ino(),
                size: meta.len(),
            });
        } else {
            let what = if kind.is_dir() {
                "a directory"
            } else if kind.is_fifo() {
                "a FIFO"
            } else if kind.is_socket() {
                "a socket"
            } else if kind.is_block_device() || kind.is_char_device() {
                "a device"
            } else {
                "not a regular file"
            };
            reported.warn(&path, format!("{what}, not a regular file"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(p: &str) -> Pattern {
        let glob = globset::GlobBuilder::new(p)
            .literal_separator(true)
            .build()
            .unwrap()
            .compile_matcher();
        Pattern::new(p, glob)
    }

    #[test]
    fn roots_and_recursion() {
        let p = pattern("/var/log/app/*.log");
        assert_eq!(p.root, PathBuf::from("/var/log/app"));
        assert!(!p.recursive);
        let p = pattern("/var/lib/docker/containers/*/*.log");
        assert_eq!(p.root, PathBuf::from("/var/lib/docker/containers"));
        assert!(p.recursive);
        let p = pattern("/var/log/syslog");
        assert_eq!(p.root, PathBuf::from("/var/log"));
        assert!(!p.recursive);
        let p = pattern("/var/log/**/*.log");
        assert!(p.recursive);
        assert!(p.matches(Path::new("/var/log/a/b/c.log")));
        assert!(!p.matches(Path::new("/var/log/a/b/c.log.gz")));
    }

    #[test]
    fn scan_skips_what_cannot_be_tailed_and_survives_symlink_loops() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("a/b")).unwrap();
        fs::write(d.join("a/one.log"), b"x\n").unwrap();
        fs::write(d.join("a/b/two.log"), b"y\n").unwrap();
        fs::write(d.join("a/b/old.log.gz"), b"z").unwrap();
        fs::create_dir(d.join("a/dir.log")).unwrap();
        std::os::unix::fs::symlink(d.join("nowhere"), d.join("a/dangling.log")).unwrap();
        std::os::unix::fs::symlink(d.join("a"), d.join("a/b/loop")).unwrap();
        let fifo = d.join("a/fifo.log");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let p = pattern(&format!("{}/**/*.log", d.display()));
        let mut rep = Reported::default();
        let mut found: Vec<_> = scan(&p, &mut rep).into_iter().map(|c| c.path).collect();
        found.sort();
        assert_eq!(found, vec![d.join("a/b/two.log"), d.join("a/one.log")]);
        assert_eq!(rep.len(), 2, "the dangling link and the FIFO are reported");
        // Reported once: a second scan logs nothing new.
        assert!(!rep.warn(&d.join("a/fifo.log"), "a FIFO, not a regular file".into()));
    }
}
