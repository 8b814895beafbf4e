//! The checkpoint file on disk: versioned JSON, written atomically (write to a temporary
//! file, fsync, rename, fsync the directory), mode 0640.
//!
//! This module only reads and writes the file; what goes into it is decided by
//! [`crate::ack`], the only place that moves a checkpoint forward.
//!
//! Format, version 2 (pinned by a golden test; change it only with a new version).
//! Version 1 files (the same without `head`, `anchor` and `recordsOf`) still load.
//!
//! ```json
//! {"version":2,"flows":{"<flow id>":[{"dev":2049,"ino":131073,"fingerprint":"00ab..",
//!   "generation":0,"offset":1234,"path":"/var/log/app.log","lastSeen":1795000000,
//!   "head":{"len":4096,"sum":"9c.."},"anchor":{"len":256,"sum":"41.."},
//!   "recordsOf":"23cf28467fdd4d1f"}]}}
//! ```
//!
//! A flow may hold several entries for one inode: every generation that still had
//! unacknowledged ranges when the file was written, besides the newest.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::FileKey;

/// The format version written by this build.
pub const CHECKPOINT_VERSION: u32 = 2;
/// The oldest format version this build reads.
pub const OLDEST_READABLE_VERSION: u32 = 1;

/// A checksum of `len` bytes of a file (which bytes, the field that holds it says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sum {
    /// How many bytes it covers.
    pub len: u64,
    /// FNV-1a of them, as 16 hex digits.
    #[serde(with = "hex_u64")]
    pub sum: u64,
}

/// What is known of one file: its identity and how far it is shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// `st_dev`
    pub dev: u64,
    /// `st_ino`
    pub ino: u64,
    /// Checksum of the first line, as 16 hex digits (JSON numbers lose 64-bit precision in
    /// many readers).
    #[serde(with = "hex_u64")]
    pub fingerprint: u64,
    /// Truncation generation.
    pub generation: u32,
    /// Every byte before this offset is acknowledged by the destination.
    pub offset: u64,
    /// The path the file was last seen at (informational; identity is not the path).
    pub path: PathBuf,
    /// Unix seconds when the file was last seen; entries older than
    /// `checkpointTimeToLiveDays` are dropped.
    pub last_seen: u64,
    /// Checksum of the file's first bytes (up to 4 KiB) when the entry was written: with
    /// the fingerprint, the evidence that a file found at start is still this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<Sum>,
    /// Checksum of the bytes just before `offset`: where reading resumes must hold what
    /// was read there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<Sum>,
    /// For a copy made by copytruncate: the [`FileKey::digest`] of the original, which
    /// its record IDs carry (same bytes, same IDs).
    #[serde(
        default,
        rename = "recordsOf",
        skip_serializing_if = "Option::is_none",
        with = "hex_u64_opt"
    )]
    pub records_of: Option<u64>,
}

impl Entry {
    /// The file identity this entry is for.
    pub fn key(&self) -> FileKey {
        FileKey {
            dev: self.dev,
            ino: self.ino,
            fingerprint: self.fingerprint,
            generation: self.generation,
        }
    }
}

mod hex_u64_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&format!("{v:016x}")),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| u64::from_str_radix(&s, 16).map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod hex_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:016x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s = String::deserialize(d)?;
        u64::from_str_radix(&s, 16).map_err(serde::de::Error::custom)
    }
}

/// The whole file: entries per flow id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoints {
    /// Format version.
    pub version: u32,
    /// Entries per flow id.
    pub flows: BTreeMap<String, Vec<Entry>>,
}

/// What loading the checkpoint file found.
#[derive(Debug)]
pub struct LoadResult {
    /// The checkpoints (empty when there was no usable file).
    pub checkpoints: Checkpoints,
    /// True when no checkpoint file existed: the agent's first start, where
    /// `initialPosition: END_OF_FILE` applies to the files already there.
    pub first_start: bool,
    /// Where a corrupt file was moved, if one was.
    pub moved_aside: Option<PathBuf>,
}

/// Reads `path`. A missing file is a first start; a corrupt or unreadable one is reported,
/// moved aside (`<path>.corrupt-<unix seconds>`) and treated as empty, never fatal: the
/// agent must not crash-loop on it.
pub fn load(path: &Path) -> LoadResult {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return LoadResult {
                checkpoints: Checkpoints::default(),
                first_start: true,
                moved_aside: None,
            }
        }
        Err(e) => {
            tracing::error!(
                "cannot read checkpoint file {}: {e}; starting without checkpoints",
                path.display()
            );
            return LoadResult {
                checkpoints: Checkpoints::default(),
                first_start: false,
                moved_aside: None,
            };
        }
    };
    match parse(&bytes) {
        Ok(c) => LoadResult {
            checkpoints: c,
            first_start: false,
            moved_aside: None,
        },
        Err(why) => {
            let aside = PathBuf::from(format!("{}.corrupt-{}", path.display(), unix_now()));
            match fs::rename(path, &aside) {
                Ok(()) => tracing::error!(
                    "checkpoint file {} is corrupt ({why}); moved it to {} and starting without checkpoints",
                    path.display(),
                    aside.display()
                ),
                Err(e) => tracing::error!(
                    "checkpoint file {} is corrupt ({why}) and cannot be moved aside ({e}); starting without checkpoints",
                    path.display()
                ),
            }
            LoadResult {
                checkpoints: Checkpoints::default(),
                first_start: false,
                moved_aside: Some(aside),
            }
        }
    }
}

fn parse(bytes: &[u8]) -> Result<Checkpoints, String> {
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let v: Version = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if !(OLDEST_READABLE_VERSION..=CHECKPOINT_VERSION).contains(&v.version) {
        return Err(format!(
            "version {} is not supported (this build reads versions {OLDEST_READABLE_VERSION} to {CHECKPOINT_VERSION})",
            v.version
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// Serializes `checkpoints` (with the current version) as written to disk.
pub fn to_bytes(checkpoints: &Checkpoints) -> Vec<u8> {
    let mut out = serde_json::to_vec(&Checkpoints {
        version: CHECKPOINT_VERSION,
        flows: checkpoints.flows.clone(),
    })
    .expect("checkpoints serialize");
    out.push(b'\n');
    out
}

/// Test hook, never set in production: milliseconds `save` pauses halfway through writing
/// the temporary file. A checkpoint write otherwise takes well under a millisecond, too
/// short for a crash test to kill the agent inside it on purpose; with the pause, a test
/// that sees `<checkpointFile>.tmp` appear can SIGKILL the agent while the file is torn.
pub const PAUSE_IN_WRITE_ENV: &str = "KINESIS_TAIL_TEST_CHECKPOINT_PAUSE_MS";

fn pause_in_write() -> Option<std::time::Duration> {
    static PAUSE: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    *PAUSE.get_or_init(|| {
        std::env::var(PAUSE_IN_WRITE_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .map(std::time::Duration::from_millis)
    })
}

/// Writes `checkpoints` to `path` atomically: a crash leaves either the old or the new
/// file, never a torn one. Creates the parent directory (mode 0750) when missing.
///
/// The temporary file is always a new one: a leftover (a crash, an older agent) is
/// removed rather than reused, as it could have a wider mode or be a symlink to another
/// file, and `create_new` never follows a link. The usual write, every second of
/// shipping, costs the file's creation, write, fsync and rename, nothing more: the
/// leftover and the missing directory are looked for only when the creation says so.
///
/// The directory is not synced after the rename. A process crash loses nothing written
/// (the kernel has it). A power loss may bring back the previous file, complete, since
/// its contents were synced before it was renamed: on a journaling filesystem (ext4,
/// XFS) the rename is committed by the next write's fsync or within the journal's commit
/// interval (5 s on ext4). The acknowledgements of that interval are then sent again;
/// nothing is lost. Syncing the directory too made each write about 60 % dearer.
pub fn save(path: &Path, checkpoints: &Checkpoints) -> io::Result<()> {
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(&tmp)
    };
    let mut f = match create() {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(&tmp)?;
            create()?
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(dir.unwrap_or(Path::new(".")))?;
            create()?
        }
        Err(e) => return Err(e),
    };
    let bytes = to_bytes(checkpoints);
    match pause_in_write() {
        None => f.write_all(&bytes)?,
        Some(pause) => {
            let (head, tail) = bytes.split_at(bytes.len() / 2);
            f.write_all(head)?;
            std::thread::sleep(pause);
            f.write_all(tail)?;
        }
    }
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)
}

use std::os::unix::fs::DirBuilderExt;

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoints {
        let mut flows = BTreeMap::new();
        flows.insert(
            "KinesisStream:logs|/var/log/app/*.log".to_string(),
            vec![Entry {
                dev: 2049,
                ino: 131_073,
                fingerprint: 0x00ab_cdef_0123_4567,
                generation: 1,
                offset: 1234,
                path: PathBuf::from("/var/log/app/a.log"),
                last_seen: 1_795_000_000,
                head: Some(Sum {
                    len: 4096,
                    sum: 0x9c00_0000_0000_0001,
                }),
                anchor: Some(Sum {
                    len: 256,
                    sum: 0x4100_0000_0000_0002,
                }),
                records_of: Some(0x23cf_2846_7fdd_4d1f),
            }],
        );
        Checkpoints {
            version: CHECKPOINT_VERSION,
            flows,
        }
    }

    /// The on-disk format is a contract with older and newer agents: a change to this
    /// string must come with a new version number.
    #[test]
    fn golden_format_v2() {
        let golden = "{\"version\":2,\"flows\":{\"KinesisStream:logs|/var/log/app/*.log\":[{\"dev\":2049,\"ino\":131073,\"fingerprint\":\"00abcdef01234567\",\"generation\":1,\"offset\":1234,\"path\":\"/var/log/app/a.log\",\"lastSeen\":1795000000,\"head\":{\"len\":4096,\"sum\":\"9c00000000000001\"},\"anchor\":{\"len\":256,\"sum\":\"4100000000000002\"},\"recordsOf\":\"23cf28467fdd4d1f\"}]}}\n";
        assert_eq!(String::from_utf8(to_bytes(&sample())).unwrap(), golden);
        assert_eq!(parse(golden.as_bytes()).unwrap(), sample());
    }

    /// Files written by version 1 agents load: the same entries without the checksums.
    #[test]
    fn version_1_still_loads() {
        let v1 = "{\"version\":1,\"flows\":{\"KinesisStream:logs|/var/log/app/*.log\":[{\"dev\":2049,\"ino\":131073,\"fingerprint\":\"00abcdef01234567\",\"generation\":1,\"offset\":1234,\"path\":\"/var/log/app/a.log\",\"lastSeen\":1795000000}]}}\n";
        let c = parse(v1.as_bytes()).unwrap();
        let e = &c.flows["KinesisStream:logs|/var/log/app/*.log"][0];
        assert_eq!((e.ino, e.offset, e.generation), (131_073, 1234, 1));
        assert_eq!((e.head, e.anchor, e.records_of), (None, None, None));
    }

    #[test]
    fn save_then_load_round_trips_with_mode_0640() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/checkpoints");
        let r = load(&path);
        assert!(r.first_start);
        save(&path, &sample()).unwrap();
        let r = load(&path);
        assert!(!r.first_start);
        assert_eq!(r.checkpoints, sample());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o027, 0, "mode {mode:o} must be 0640 or stricter");
    }

    #[test]
    fn a_leftover_temporary_file_is_replaced_not_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints");
        let tmp = dir.path().join("checkpoints.tmp");
        // World-writable leftover: the new file must not inherit its mode.
        fs::write(&tmp, b"old").unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o666)).unwrap();
        save(&path, &sample()).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o027, 0, "mode {mode:o} must be 0640 or stricter");
        assert_eq!(load(&path).checkpoints, sample());
        // A symlink planted at the temporary path: its target is left alone.
        let target = dir.path().join("victim");
        fs::write(&target, b"untouched").unwrap();
        std::os::unix::fs::symlink(&target, &tmp).unwrap();
        save(&path, &sample()).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"untouched");
        assert!(!fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(load(&path).checkpoints, sample());
    }

    #[test]
    fn corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints");
        fs::write(&path, b"{\"version\":1,\"flows\":{\"x\":[{\"dev\":").unwrap();
        let r = load(&path);
        assert!(!r.first_start);
        assert!(r.checkpoints.flows.is_empty());
        let aside = r.moved_aside.unwrap();
        assert!(aside.exists());
        assert!(!path.exists());
    }

    #[test]
    fn unknown_version_is_moved_aside_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints");
        fs::write(&path, b"{\"version\":99,\"flows\":{}}").unwrap();
        let r = load(&path);
        assert!(r.moved_aside.is_some());
    }
}
