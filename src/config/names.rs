//! The names of the configuration's enums, written once: read with [`Checker::choice`]
//! (case-insensitive) and shown by `check`.
//!
//! [`Checker::choice`]: super::fields::Checker::choice

use super::{
    Aggregation, ContainerFormat, ContainerOutput, InitialPosition, JsonFormat, LogFormat,
    OnParseError,
};

pub(super) const INITIAL_POSITIONS: &[(&str, InitialPosition)] = &[
    ("START_OF_FILE", InitialPosition::StartOfFile),
    ("END_OF_FILE", InitialPosition::EndOfFile),
];
pub(super) const AGGREGATIONS: &[(&str, Aggregation)] =
    &[("NONE", Aggregation::None), ("KPL", Aggregation::Kpl)];
pub(super) const JSON_FORMATS: &[(&str, JsonFormat)] = &[
    ("COMPACT", JsonFormat::Compact),
    ("PRETTYPRINT", JsonFormat::PrettyPrint),
];
pub(super) const ON_PARSE_ERRORS: &[(&str, OnParseError)] = &[
    ("drop", OnParseError::Drop),
    ("keepRaw", OnParseError::KeepRaw),
];
pub(super) const LOG_FORMATS: &[(&str, LogFormat)] = &[
    ("COMMONAPACHELOG", LogFormat::CommonApacheLog),
    ("COMBINEDAPACHELOG", LogFormat::CombinedApacheLog),
    ("APACHEERRORLOG", LogFormat::ApacheErrorLog),
    ("SYSLOG", LogFormat::Syslog),
    ("RFC3339SYSLOG", LogFormat::Rfc3339Syslog),
    ("RFC5424SYSLOG", LogFormat::Rfc5424Syslog),
    ("JSON", LogFormat::Json),
];

pub(super) const CONTAINER_FORMATS: &[(&str, ContainerFormat)] = &[
    ("auto", ContainerFormat::Auto),
    ("cri", ContainerFormat::Cri),
    ("docker", ContainerFormat::Docker),
];
pub(super) const CONTAINER_OUTPUTS: &[(&str, ContainerOutput)] = &[
    ("message", ContainerOutput::Message),
    ("json", ContainerOutput::Json),
];

/// The name of `v` in `table` (its canonical spelling).
pub(super) fn name_of<T: PartialEq + Copy>(table: &[(&'static str, T)], v: T) -> &'static str {
    table.iter().find(|(_, x)| *x == v).map_or("?", |(n, _)| n)
}
