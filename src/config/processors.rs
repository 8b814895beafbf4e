//! `dataProcessingOptions`: each entry → a [`ProcessorConfig`], as the Java agent reads
//! it (what it refuses is refused, what it reads without a check loads with a warning).

use std::time::Duration;

use serde_yaml::Value;

use super::fields::{key_string, untag, Checker};
use super::names::{CONTAINER_FORMATS, CONTAINER_OUTPUTS, JSON_FORMATS, LOG_FORMATS};
use super::{ContainerLog, ContainerOutput, LogFormat, ProcessorConfig};

#[derive(Clone, Copy)]
pub(super) enum ProcessorKind {
    SingleLine,
    CsvToJson,
    LogToJson,
    AddMetadata,
    AddBrackets,
    AddEc2Metadata,
    Container,
}

pub(super) const PROCESSOR_KINDS: &[(&str, ProcessorKind)] = &[
    ("SINGLELINE", ProcessorKind::SingleLine),
    ("CSVTOJSON", ProcessorKind::CsvToJson),
    ("LOGTOJSON", ProcessorKind::LogToJson),
    ("ADDMETADATA", ProcessorKind::AddMetadata),
    ("ADDBRACKETS", ProcessorKind::AddBrackets),
    ("ADDEC2METADATA", ProcessorKind::AddEc2Metadata),
    ("CRI", ProcessorKind::Container),
];

/// The CSV delimiter: one ASCII character, written plainly (`"|"`, a tab) or as a Java
/// regex escape of one character (`"\\t"`, `"\\|"`).
pub(crate) fn parse_delimiter(s: &str) -> Option<u8> {
    let chars: Vec<char> = s.chars().collect();
    let c = match chars.as_slice() {
        [c] => *c,
        ['\\', 't'] => '\t',
        ['\\', e] if e.is_ascii_punctuation() => *e,
        _ => return None,
    };
    (c.is_ascii() && !matches!(c, '\n' | '\r' | '"')).then_some(c as u8)
}

pub(super) fn processor(c: &mut Checker, i: usize, v: &Value) -> Option<ProcessorConfig> {
    let at = format!("dataProcessingOptions[{i}]");
    let key = |k: &str| format!("{at}.{k}");
    let mut f = c.mapping(&at, v, "a dataProcessingOptions entry")?;
    let names: Vec<&str> = PROCESSOR_KINDS.iter().map(|(n, _)| *n).collect();
    let kind = match f.get("optionName") {
        None => {
            c.error(
                &key("optionName"),
                None,
                format!("optionName is required: one of {}", names.join(", ")),
            );
            None
        }
        Some(n) => c.choice(&key("optionName"), n, PROCESSOR_KINDS),
    };
    let json_format = f
        .get("jsonFormat")
        .and_then(|jf| c.choice(&key("jsonFormat"), jf, JSON_FORMATS));
    let mut flag = |c: &mut Checker, name: &'static str| {
        f.get(name)
            .and_then(|v| c.bool(&key(name), v))
            .unwrap_or(false)
    };
    let quoted = flag(c, "quoted");
    let lenient = flag(c, "lenient");
    let nest_objects = flag(c, "nestObjects");
    let out = match kind? {
        ProcessorKind::SingleLine => {
            let (mut no_trim, mut escape_new_line) = (false, false);
            if let Some(v) = f.get("parseOptions") {
                let k = key("parseOptions");
                let opts: Vec<String> = match untag(v) {
                    Value::String(_) => c
                        .string(&k, v)
                        .map(|s| {
                            s.split([',', '|', ' ', '\t'])
                                .filter(|p| !p.is_empty())
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                    _ => c.string_list(&k, v).unwrap_or_default(),
                };
                for o in opts {
                    match o.trim().to_ascii_uppercase().as_str() {
                        "NO_TRIM" => no_trim = true,
                        "ESCAPE_NEW_LINE" => escape_new_line = true,
                        // The Java agent ignores other options.
                        _ => c.warn(format!(
                            "{k}: unknown parse option {o:?} is ignored (known: NO_TRIM, ESCAPE_NEW_LINE)"
                        )),
                    }
                }
            }
            Some(ProcessorConfig::SingleLine {
                no_trim,
                escape_new_line,
            })
        }
        ProcessorKind::CsvToJson => {
            let field_names = match f.get("customFieldNames") {
                None => {
                    c.error(
                        &key("customFieldNames"),
                        None,
                        "customFieldNames is required for CSVTOJSON (the column names, in order)",
                    );
                    None
                }
                Some(v) => c.string_list(&key("customFieldNames"), v),
            };
            let delimiter = match f.get("delimiter") {
                None => Some(",".to_string()),
                Some(v) => c.string(&key("delimiter"), v).and_then(|s| {
                    if quoted && parse_delimiter(&s).is_none() {
                        c.error(
                            &key("delimiter"),
                            Some(v),
                            format!("with quoted: true the delimiter must be one character (such as \",\", \"|\", \"\\\\t\"); got {s:?}"),
                        );
                        return None;
                    }
                    match crate::java::compile(&s) {
                        Ok(_) => Some(s),
                        Err(e) => {
                            c.error(
                                &key("delimiter"),
                                Some(v),
                                format!("the delimiter is a Java regular expression and {s:?} is not one: {e}"),
                            );
                            None
                        }
                    }
                }),
            };
            Some(ProcessorConfig::CsvToJson {
                field_names: field_names?,
                delimiter: delimiter?,
                quoted,
                json_format,
            })
        }
        ProcessorKind::LogToJson => {
            let format = match f.get("logFormat") {
                None => {
                    let formats: Vec<&str> = LOG_FORMATS.iter().map(|(n, _)| *n).collect();
                    c.error(
                        &key("logFormat"),
                        None,
                        format!(
                            "logFormat is required for LOGTOJSON: one of {}",
                            formats.join(", ")
                        ),
                    );
                    None
                }
                Some(v) => c.choice(&key("logFormat"), v, LOG_FORMATS),
            };
            let match_pattern = f.get("matchPattern").and_then(|v| {
                let s = c.string(&key("matchPattern"), v)?;
                match crate::java::compile(&s) {
                    Ok(r) => {
                        c.sources.insert(r.as_str().to_string(), s);
                        Some(r)
                    }
                    Err(e) => {
                        c.error(
                            &key("matchPattern"),
                            Some(v),
                            format!("invalid regular expression: {e}"),
                        );
                        None
                    }
                }
            });
            let custom_field_names = f
                .get("customFieldNames")
                .and_then(|v| c.string_list(&key("customFieldNames"), v));
            if let (Some(re), Some(names)) = (&match_pattern, &custom_field_names) {
                let groups = re.captures_len() - 1;
                if names.len() != groups {
                    // The Java agent loads this and then drops every line.
                    c.warn(format!(
                        "{}: {} field names but matchPattern has {groups} capture groups: \
                         name i takes group i, missing groups are null (the Java agent \
                         drops every line of such a flow)",
                        key("customFieldNames"),
                        names.len()
                    ));
                }
            }
            // As the Java agent: without matchPattern, names replace a Java format's
            // fields one for one.
            if let (None, Some(names), Some(f)) = (&match_pattern, &custom_field_names, format) {
                let n = f.default_fields().len();
                let java_format = !matches!(f, LogFormat::Rfc5424Syslog | LogFormat::Json);
                if java_format && names.len() != n {
                    c.error(
                        &key("customFieldNames"),
                        None,
                        format!(
                            "{} has {n} fields, so customFieldNames must name {n} (got {}); \
                             give a matchPattern to parse other fields",
                            LOG_FORMATS
                                .iter()
                                .find(|(_, x)| *x == f)
                                .map_or("", |(n, _)| n),
                            names.len()
                        ),
                    );
                }
            }
            Some(ProcessorConfig::LogToJson {
                format: format?,
                match_pattern,
                custom_field_names,
                lenient,
                json_format,
            })
        }
        ProcessorKind::AddMetadata => {
            let metadata = match f.get("metadata") {
                None => serde_json::Value::Null,
                Some(v) => to_json(c, &key("metadata"), v)?,
            };
            let timestamp = match f.get("timestamp") {
                None => false,
                // The Java agent takes only a string, true when it is "true" in any case;
                // a JSON boolean made it fail to start.
                Some(v) => match untag(v) {
                    Value::Bool(b) => *b,
                    Value::String(_) => {
                        let s = c.string(&key("timestamp"), v).unwrap_or_default();
                        let on = s.eq_ignore_ascii_case("true");
                        if !on && !s.eq_ignore_ascii_case("false") {
                            c.warn(format!(
                                "{}: {s:?} is not \"true\", so no timestamp is added (as the Java agent)",
                                key("timestamp")
                            ));
                        }
                        on
                    }
                    _ => c.bool(&key("timestamp"), v).unwrap_or(false),
                },
            };
            Some(ProcessorConfig::AddMetadata {
                metadata,
                timestamp,
                nest_objects,
                json_format,
            })
        }
        ProcessorKind::AddBrackets => Some(ProcessorConfig::AddBrackets),
        ProcessorKind::Container => {
            if i != 0 {
                c.error(
                    &key("optionName"),
                    None,
                    "CRI must be the first dataProcessingOptions entry: it turns the \
                     runtime's lines back into the application's, which the other \
                     entries then process",
                );
            }
            let format = f
                .get("format")
                .and_then(|v| c.choice(&key("format"), v, CONTAINER_FORMATS))
                .unwrap_or_default();
            let output = f
                .get("output")
                .and_then(|v| c.choice(&key("output"), v, CONTAINER_OUTPUTS))
                .unwrap_or_default();
            let kubernetes = f.get("kubernetesMetadata").map(|v| {
                if output != ContainerOutput::Json {
                    c.warn(format!(
                        "{}: ignored with output: message (the fields go into JSON records)",
                        key("kubernetesMetadata")
                    ));
                }
                c.bool(&key("kubernetesMetadata"), v).unwrap_or(true)
            });
            Some(ProcessorConfig::Container(ContainerLog {
                format,
                output,
                kubernetes: kubernetes.unwrap_or(true),
            }))
        }
        ProcessorKind::AddEc2Metadata => {
            let ttl = c.ranged(&mut f, "metadataTTL", 1, 31_536_000, 3600);
            if f.get("logFormat").is_some() {
                c.warn(format!(
                    "{at}: \"logFormat\" of ADDEC2METADATA is ignored (parse with a LOGTOJSON entry before it)"
                ));
            }
            Some(ProcessorConfig::AddEc2Metadata {
                ttl: Duration::from_secs(ttl),
            })
        }
    };
    c.leftovers(&f, &[], &format!(" in {at}"));
    out
}

/// Converts a YAML value to JSON, expanding `${VAR}` in its strings.
pub(super) fn to_json(c: &mut Checker, key: &str, v: &Value) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    Some(match untag(v) {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                J::from(u)
            } else if let Some(i) = n.as_i64() {
                J::from(i)
            } else {
                match n.as_f64().and_then(serde_json::Number::from_f64) {
                    Some(x) => J::Number(x),
                    None => {
                        c.error(key, None, format!("{n} cannot be written in JSON"));
                        return None;
                    }
                }
            }
        }
        Value::String(s) => J::String(c.expand(key, v, s)?),
        Value::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(to_json(c, key, item)?);
            }
            J::Array(out)
        }
        Value::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, item) in m {
                let Some(k) = key_string(k) else {
                    c.error(key, None, "keys must be strings");
                    return None;
                };
                out.insert(k, to_json(c, key, item)?);
            }
            J::Object(out)
        }
        Value::Tagged(_) => unreachable!("untagged above"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters() {
        assert_eq!(parse_delimiter(","), Some(b','));
        assert_eq!(parse_delimiter("\\t"), Some(b'\t'));
        assert_eq!(parse_delimiter("\t"), Some(b'\t'));
        assert_eq!(parse_delimiter("\\|"), Some(b'|'));
        assert_eq!(parse_delimiter("|"), Some(b'|'));
        assert_eq!(parse_delimiter(";"), Some(b';'));
        assert_eq!(parse_delimiter("\\s"), None);
        assert_eq!(parse_delimiter(",,"), None);
        assert_eq!(parse_delimiter(""), None);
        assert_eq!(parse_delimiter("§"), None);
        assert_eq!(parse_delimiter("\""), None);
    }
}
