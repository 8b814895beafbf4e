//! `ADDEC2METADATA`: the chain's side of [`Ec2Metadata`]: a cached snapshot, renewed when
//! the shared version changes (one atomic load per record, no lock).

use crate::ec2::{Ec2Metadata, Fields};

/// Warn once per process that a chain has no metadata source.
static NO_SOURCE_WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// One `ADDEC2METADATA` step.
#[derive(Debug)]
pub(crate) struct AddEc2 {
    source: Option<Ec2Metadata>,
    version: u64,
    fields: Option<Fields>,
}

impl AddEc2 {
    pub(crate) fn new(source: Option<Ec2Metadata>) -> Self {
        if source.is_none() && !NO_SOURCE_WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                "ADDEC2METADATA has no instance metadata source; records go through unchanged"
            );
        }
        AddEc2 {
            source,
            version: 0,
            fields: None,
        }
    }

    /// The fields to add, if known.
    pub(crate) fn fields(&mut self) -> Option<&Fields> {
        if let Some(src) = &self.source {
            if src.version() != self.version {
                (self.version, self.fields) = src.snapshot();
            }
        }
        self.fields.as_ref()
    }
}
