//! [`Config::describe`]: what `check` prints.

use std::fmt::{self, Write as _};

use super::names::{
    name_of, AGGREGATIONS, CONTAINER_FORMATS, CONTAINER_OUTPUTS, INITIAL_POSITIONS, JSON_FORMATS,
    LOG_FORMATS, ON_PARSE_ERRORS,
};
use super::{Config, ContainerOutput, JsonFormat, PartitionKeyOption, ProcessorConfig};

fn ms(d: std::time::Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn or_default(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("(default)")
}

fn describe_processor(
    p: &ProcessorConfig,
    sources: &std::collections::HashMap<String, String>,
) -> String {
    match p {
        ProcessorConfig::SingleLine {
            no_trim,
            escape_new_line,
        } => {
            let mut opts = Vec::new();
            if *no_trim {
                opts.push("NO_TRIM");
            }
            if *escape_new_line {
                opts.push("ESCAPE_NEW_LINE");
            }
            if opts.is_empty() {
                "SINGLELINE".to_string()
            } else {
                format!("SINGLELINE parseOptions={}", opts.join(","))
            }
        }
        ProcessorConfig::CsvToJson {
            field_names,
            delimiter,
            quoted,
            json_format,
        } => format!(
            "CSVTOJSON customFieldNames={} delimiter={delimiter:?}{}{}",
            field_names.join(","),
            if *quoted { " quoted" } else { "" },
            json_format_note(*json_format)
        ),
        ProcessorConfig::LogToJson {
            format,
            match_pattern,
            custom_field_names,
            lenient,
            json_format,
        } => {
            let mut s = format!("LOGTOJSON logFormat={}", name_of(LOG_FORMATS, *format));
            if *lenient {
                s.push_str(" lenient");
            }
            s.push_str(&json_format_note(*json_format));
            if let Some(re) = match_pattern {
                let written = sources.get(re.as_str()).map_or(re.as_str(), String::as_str);
                let _ = write!(s, " matchPattern={written:?}");
            }
            if let Some(names) = custom_field_names {
                let _ = write!(s, " customFieldNames={}", names.join(","));
            }
            s
        }
        ProcessorConfig::AddMetadata {
            metadata,
            timestamp,
            nest_objects,
            json_format,
        } => format!(
            "ADDMETADATA metadata={metadata} timestamp={timestamp}{}{}",
            if *nest_objects { " nestObjects" } else { "" },
            json_format_note(*json_format)
        ),
        ProcessorConfig::AddBrackets => "ADDBRACKETS".to_string(),
        ProcessorConfig::Container(c) => format!(
            "CRI format={} output={}{}",
            name_of(CONTAINER_FORMATS, c.format),
            name_of(CONTAINER_OUTPUTS, c.output),
            if c.output == ContainerOutput::Json && c.kubernetes {
                " kubernetesMetadata"
            } else {
                ""
            }
        ),
        ProcessorConfig::AddEc2Metadata { ttl } => {
            format!("ADDEC2METADATA metadataTTL={}s", ttl.as_secs())
        }
    }
}

fn json_format_note(f: Option<JsonFormat>) -> String {
    f.map_or_else(String::new, |f| {
        format!(" jsonFormat={}", name_of(JSON_FORMATS, f))
    })
}

fn partition_key_name(p: &PartitionKeyOption) -> String {
    match p {
        PartitionKeyOption::Random => "RANDOM".to_string(),
        PartitionKeyOption::Deterministic => "DETERMINISTIC".to_string(),
        PartitionKeyOption::Constant(k) => format!("CONSTANT:{k}"),
        PartitionKeyOption::JsonField(f) => format!("JSONFIELD:{f}"),
        PartitionKeyOption::Regex(r) => format!("REGEX:{}", r.as_str()),
    }
}

impl Config {
    /// What `check` prints: every resolved flow (pattern, destination, processors, buffer
    /// limits) and the checkpoint file. Never prints a secret.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_description(&mut s);
        s
    }

    fn write_description(&self, s: &mut String) -> fmt::Result {
        writeln!(s, "configuration: {}", self.source.display())?;
        writeln!(s, "{} flow(s)", self.flows.len())?;
        for f in &self.flows {
            writeln!(s)?;
            writeln!(s, "flows[{}]: {}", f.index, f.file_pattern)?;
            writeln!(s, "  destination:        {}", f.destination)?;
            writeln!(
                s,
                "  partition key:      {}",
                partition_key_name(&f.partition_key)
            )?;
            let position = name_of(INITIAL_POSITIONS, f.initial_position);
            writeln!(s, "  initial position:   {position}")?;
            let aggregation = name_of(AGGREGATIONS, f.aggregation);
            match f.aggregated_record_size_bytes {
                Some(n) => writeln!(
                    s,
                    "  aggregation:        {aggregation} (aggregatedRecordSizeBytes {n})"
                )?,
                None => writeln!(s, "  aggregation:        {aggregation}")?,
            }
            let written = |p: &str| {
                f.pattern_sources
                    .get(p)
                    .cloned()
                    .unwrap_or_else(|| p.to_string())
            };
            if let Some(re) = &f.multi_line_start_pattern {
                writeln!(s, "  multi-line start:   {:?}", written(re.as_str()))?;
            }
            if f.skip_header_lines > 0 {
                writeln!(s, "  skip header lines:  {}", f.skip_header_lines)?;
            }
            if let Some(re) = &f.file_footer_pattern {
                writeln!(s, "  file footer:        {:?}", written(re.as_str()))?;
            }
            if f.processors.is_empty() {
                writeln!(
                    s,
                    "  processors:         (none: lines are sent as they are)"
                )?;
            } else {
                writeln!(s, "  processors:")?;
                for (i, p) in f.processors.iter().enumerate() {
                    writeln!(
                        s,
                        "    {}. {}",
                        i + 1,
                        describe_processor(p, &f.pattern_sources)
                    )?;
                }
                let json = name_of(JSON_FORMATS, f.json_format);
                let on_error = name_of(ON_PARSE_ERRORS, f.on_parse_error);
                writeln!(s, "  json format:        {json}, onParseError {on_error}")?;
            }
            writeln!(
                s,
                "  buffer:             {} age, {} bytes, {} records",
                ms(f.max_buffer_age),
                f.max_buffer_size_bytes,
                f.max_buffer_size_records
            )?;
            writeln!(
                s,
                "  publish queue:      {} batches, {} request(s) in flight",
                f.publish_queue_capacity, f.max_in_flight
            )?;
            writeln!(
                s,
                "  retry backoff:      {} .. {}",
                ms(f.retry_initial_backoff),
                ms(f.retry_max_backoff)
            )?;
            writeln!(
                s,
                "  record id field:    {}",
                f.record_id_field.as_deref().unwrap_or("(off)")
            )?;
            if f.remove_after_shipped {
                writeln!(s, "  removeAfterShipped: true")?;
            }
        }
        writeln!(s)?;
        writeln!(
            s,
            "checkpoint file:      {}",
            self.checkpoint_file.display()
        )?;
        writeln!(
            s,
            "checkpoint TTL:       {} days",
            self.checkpoint_ttl.as_secs() / 86_400
        )?;
        writeln!(
            s,
            "kinesis:              endpoint {}, region {}",
            or_default(&self.kinesis.endpoint),
            or_default(&self.kinesis.region)
        )?;
        writeln!(
            s,
            "firehose:             endpoint {}, region {}",
            or_default(&self.firehose.endpoint),
            or_default(&self.firehose.region)
        )?;
        let cw = &self.cloudwatch;
        if cw.emit_metrics {
            writeln!(
                s,
                "cloudwatch:           namespace {}, every {}, endpoint {}, region {}{}",
                cw.namespace,
                ms(cw.buffer_time),
                or_default(&cw.endpoint),
                or_default(&cw.region),
                if cw.tag_instance { ", tagInstance" } else { "" }
            )?;
        } else {
            writeln!(s, "cloudwatch:           off")?;
        }
        writeln!(
            s,
            "sts:                  endpoint {}",
            or_default(&self.sts_endpoint)
        )?;
        let credentials = match (&self.static_credentials, &self.assume_role_arn) {
            (Some(_), _) => "static keys from the configuration",
            (None, _) => "default AWS credential chain",
        };
        writeln!(s, "credentials:          {credentials}")?;
        if let Some(arn) = &self.assume_role_arn {
            writeln!(s, "assume role:          {arn}")?;
        }
        match self.metrics_listen_address {
            Some(a) => writeln!(s, "metrics:              http://{a}/metrics")?,
            None => writeln!(s, "metrics:              off")?,
        }
        writeln!(s, "ec2 metadata:         {}", self.ec2_metadata_endpoint)?;
        Ok(())
    }
}
