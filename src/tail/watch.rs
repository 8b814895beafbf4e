//! Discovery's events: inotify (through `notify`) on a pattern's root, turned into
//! [`Wake`]s for a flow's reader loop. A lost or overflowing event only asks for a rescan:
//! the rescans of [`super::discovery`] stay the source of truth.
//!
//! This module owns no file state; the loop in [`crate::pipeline`] decides what an event
//! means.

use std::path::PathBuf;
use std::sync::mpsc;

use super::discovery::Pattern;

/// Something that should wake the loop.
#[derive(Debug)]
pub enum Wake {
    /// Data may have been appended to this path.
    Modified(PathBuf),
    /// Something changed in a directory: rescan.
    Rescan,
}

/// inotify through `notify`, on the pattern's root; dropped to stop watching.
pub struct Watcher {
    inner: notify::RecommendedWatcher,
    watching: bool,
    recursive: bool,
}

impl Watcher {
    pub fn new(pattern: &Pattern, tx: mpsc::SyncSender<Wake>) -> Option<Self> {
        use notify::event::{AccessKind, AccessMode, ModifyKind};
        use notify::EventKind;
        let handler = move |res: notify::Result<notify::Event>| {
            let send = |w: Wake| {
                // A full queue loses events; ask for a rescan instead.
                if let Err(mpsc::TrySendError::Full(_)) = tx.try_send(w) {
                    let _ = tx.try_send(Wake::Rescan);
                }
            };
            match res {
                Ok(ev) => match ev.kind {
                    EventKind::Modify(ModifyKind::Data(_))
                    | EventKind::Modify(ModifyKind::Any)
                    | EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                        for p in ev.paths {
                            send(Wake::Modified(p));
                        }
                    }
                    // Opens, reads and closes after reading are mostly our own (reading a
                    // file, listing a directory): waking on them would make an idle agent
                    // spin. Metadata changes carry no data.
                    EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) => {}
                    _ => send(Wake::Rescan),
                },
                Err(_) => send(Wake::Rescan),
            }
        };
        // Directory symlinks are not followed, as in the scan: a link to a large tree
        // (or an NFS mount) would otherwise cost a watch per directory below it.
        let config = notify::Config::default().with_follow_symlinks(false);
        match <notify::RecommendedWatcher as notify::Watcher>::new(handler, config) {
            Ok(inner) => {
                let mut w = Watcher {
                    inner,
                    watching: false,
                    recursive: pattern.recursive,
                };
                w.retry_missing_root(pattern);
                Some(w)
            }
            Err(e) => {
                tracing::warn!(
                    "cannot start inotify ({e}); discovery falls back to rescans every interval"
                );
                None
            }
        }
    }

    /// Watches the root once it exists (directories created after the start).
    pub fn retry_missing_root(&mut self, pattern: &Pattern) {
        use notify::Watcher as _;
        if self.watching || !pattern.root.is_dir() {
            return;
        }
        let mode = if self.recursive {
            notify::RecursiveMode::Recursive
        } else {
            notify::RecursiveMode::NonRecursive
        };
        match self.inner.watch(&pattern.root, mode) {
            Ok(()) => self.watching = true,
            Err(e) => {
                tracing::warn!(
                    "cannot watch {} ({e}); relying on rescans",
                    pattern.root.display()
                );
                self.watching = true;
            }
        }
    }
}
