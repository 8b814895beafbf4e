//! The top level of the configuration and the entry point of validation: the raw value
//! trees of the main file and of `conf.d/` and `agent.d/` → a validated [`Config`].
//!
//! Every key is read through [`Fields`], which records which keys were read: what is left
//! over is an unknown key (a warning naming the closest known key) or a Java-agent setting
//! that has no meaning here (a warning saying it is ignored). Every problem is recorded in
//! [`Diag`] and validation carries on, so the operator sees all errors at once. Flows are
//! `flow.rs`, processors `processors.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_yaml::Value;

use super::error::Diag;
use super::expand::Env;
use super::fields::{key_string, kind_of, millis, untag, Checker, Fields, MAX_MILLIS};
use super::flow::flow;
use super::raw::Doc;
use super::{CloudWatchConfig, Config, ServiceConfig, StaticCredentials, DEFAULT_CHECKPOINT_FILE};

/// Default `cloudwatch.metricsBufferTimeMillis` (the Java agent's).
pub(super) const DEFAULT_CW_BUFFER_MILLIS: u64 = 30_000;
/// Default `ec2.metadataEndpoint`: the instance metadata service.
pub(crate) const DEFAULT_EC2_METADATA_ENDPOINT: &str = "http://169.254.169.254";

/// Top-level keys of the Java agent that have no meaning here: accepted, warned about.
pub(super) const JAVA_ONLY_TOP: &[&str] = &[
    "maxSendingThreads",
    "sendingThreadsKeepAliveMillis",
    "sendingThreadsMaxQueueSize",
    "maxSendingThreadsPerCore",
    "userDefinedCredentialsProvider.classname",
    "userDefinedCredentialsProvider.location",
    "cloudwatch.metricsQueueSize",
    "log.emitMetrics",
    "log.emitInternalMetrics",
    "connectionTTLMillis",
    "useTcpKeepAlive",
    "useHttpGzip",
    "assumeRoleDurationSeconds",
];
/// Top-level prefixes that may also be written as nested mappings.
pub(super) const NESTED_PREFIXES: &[&str] = &[
    "cloudwatch",
    "kinesis",
    "firehose",
    "sts",
    "log",
    "metrics",
    "ec2",
    "userDefinedCredentialsProvider",
];

/// The top-level keys, with nested forms (`cloudwatch: {emitMetrics: true}`) flattened to
/// their dotted names.
pub(super) fn top_fields<'v>(c: &mut Checker, v: &'v Value) -> Option<Fields<'v>> {
    let v = untag(v);
    if v.is_null() {
        return Some(Fields::new(Vec::new()));
    }
    let plain = c.mapping("", v, "the configuration")?;
    let mut entries: Vec<(String, &'v Value)> = Vec::new();
    let mut push = |c: &mut Checker, k: String, v: &'v Value| {
        if entries.iter().any(|(e, _)| *e == k) {
            c.error(
                &k,
                None,
                "given twice (once dotted and once nested); keep one",
            );
        } else {
            entries.push((k, v));
        }
    };
    for (k, val) in plain.entries {
        match untag(val) {
            Value::Mapping(m) if NESTED_PREFIXES.contains(&k.as_str()) => {
                for (k2, v2) in m {
                    match key_string(k2) {
                        Some(k2) => push(c, format!("{k}.{k2}"), v2),
                        None => c.error(&k, None, "keys must be strings"),
                    }
                }
            }
            _ => push(c, k, val),
        }
    }
    Some(Fields::new(entries))
}

/// The `flows` list of a mapping (already read from `f`).
pub(super) fn flow_list<'v>(c: &mut Checker, v: Option<&'v Value>) -> Vec<&'v Value> {
    match v.map(untag) {
        None => Vec::new(),
        Some(Value::Sequence(items)) => items.iter().collect(),
        Some(other) => {
            c.error(
                "flows",
                None,
                format!("flows must be a list of flows, not {}", kind_of(other)),
            );
            Vec::new()
        }
    }
}

/// The flows of a `conf.d/` or `agent.d/` file: a mapping with `flows`, or a bare list.
pub(super) fn extra_flows<'v>(doc: &'v Doc, env: Env, diag: &mut Diag) -> Vec<&'v Value> {
    let mut c = Checker::new(doc, env, diag, None);
    match untag(&doc.value) {
        Value::Null => Vec::new(),
        Value::Sequence(items) => items.iter().collect(),
        Value::Mapping(_) => {
            let Some(mut f) = top_fields(&mut c, &doc.value) else {
                return Vec::new();
            };
            let flows = f.get("flows");
            let others: Vec<String> = f.unused().map(|(k, _)| format!("{k:?}")).collect();
            if !others.is_empty() {
                c.warn(format!(
                    "only flows are read from conf.d files; ignored: {}",
                    others.join(", ")
                ));
            }
            flow_list(&mut c, flows)
        }
        other => {
            c.error(
                "",
                None,
                format!("expected a mapping with flows, not {}", kind_of(other)),
            );
            Vec::new()
        }
    }
}

/// Validates everything. `main` is `None` when the main file could not be parsed (its
/// error is already in `diag`); the flows of `extras` are still checked then.
pub(crate) fn validate(
    main: Option<&Doc>,
    extras: &[Doc],
    env: Env,
    diag: &mut Diag,
) -> Option<Config> {
    let mut flows_raw: Vec<(&Doc, &Value)> = Vec::new();
    let mut top = None;
    if let Some(doc) = main {
        let mut c = Checker::new(doc, env, &mut *diag, None);
        if let Some(mut f) = top_fields(&mut c, &doc.value) {
            let flows = f.get("flows");
            flows_raw.extend(flow_list(&mut c, flows).into_iter().map(|v| (doc, v)));
            top = Some(top_level(&mut c, &mut f));
            c.leftovers(&f, JAVA_ONLY_TOP, "");
        }
    }
    for doc in extras {
        let list = extra_flows(doc, env, diag);
        flows_raw.extend(list.into_iter().map(|v| (doc, v)));
    }

    let mut flows = Vec::with_capacity(flows_raw.len());
    for (index, &(doc, v)) in flows_raw.iter().enumerate() {
        let mut c = Checker::new(doc, env, &mut *diag, Some(index));
        if let Some(flow) = flow(&mut c, index, v) {
            flows.push((doc, flow));
        }
    }
    // Two flows with one id would share checkpoints.
    for i in 0..flows.len() {
        if let Some(j) = (0..i).find(|&j| flows[j].1.id == flows[i].1.id) {
            let (doc, flow) = (flows[i].0, &flows[i].1);
            let mut c = Checker::new(doc, env, &mut *diag, Some(flow.index));
            let message = format!(
                "same filePattern and destination as flows[{}] ({}): merge them",
                flows[j].1.index, flow.id
            );
            c.error("filePattern", None, message);
        }
    }

    let mut config = top?;
    if let Some(doc) = main {
        let flows_already_wrong = diag
            .errors
            .iter()
            .any(|e| e.flow.is_none() && e.key.as_deref() == Some("flows"));
        if flows_raw.is_empty() && !flows_already_wrong {
            let mut c = Checker::new(doc, env, &mut *diag, None);
            c.error(
                "flows",
                None,
                "no flows configured: flows is required (a list of {filePattern, kinesisStream | deliveryStream | outputFile, ...})",
            );
        }
    }
    if !diag.errors.is_empty() {
        return None;
    }
    config.flows = flows.into_iter().map(|(_, f)| f).collect();
    Some(config)
}

pub(super) fn top_level(c: &mut Checker, f: &mut Fields) -> Config {
    let checkpoint_file = f
        .get("checkpointFile")
        .and_then(|v| c.non_empty_string("checkpointFile", v))
        .map_or_else(|| PathBuf::from(DEFAULT_CHECKPOINT_FILE), PathBuf::from);
    let ttl_days = c.unchecked(f, "checkpointTimeToLiveDays", 1, 36_500, 7);

    let cloudwatch = CloudWatchConfig {
        emit_metrics: c.opt_bool(f, "cloudwatch.emitMetrics", true),
        endpoint: c.endpoint(f, "cloudwatch.endpoint"),
        region: c.region(f, "cloudwatch.region"),
        namespace: f
            .get("cloudwatch.namespace")
            .and_then(|v| c.non_empty_string("cloudwatch.namespace", v))
            .unwrap_or_else(|| "AWSKinesisAgent".to_string()),
        buffer_time: millis(c.unchecked(
            f,
            "cloudwatch.metricsBufferTimeMillis",
            1_000,
            MAX_MILLIS,
            DEFAULT_CW_BUFFER_MILLIS,
        )),
        tag_instance: c.opt_bool(f, "cloudwatch.tagInstance", false),
    };
    let kinesis = ServiceConfig {
        endpoint: c.endpoint(f, "kinesis.endpoint"),
        region: c.region(f, "kinesis.region"),
    };
    let firehose = ServiceConfig {
        endpoint: c.endpoint(f, "firehose.endpoint"),
        region: c.region(f, "firehose.region"),
    };
    let sts_endpoint = c.endpoint(f, "sts.endpoint");

    let assume_role_arn = c.opt_string(f, "assumeRoleARN");
    if let Some(arn) = &assume_role_arn {
        if !arn.starts_with("arn:") {
            let v = f.get("assumeRoleARN");
            c.error(
                "assumeRoleARN",
                v,
                format!("{arn:?} is not a role ARN (arn:aws:iam::<account>:role/<name>)"),
            );
        }
    }
    let assume_role_external_id = c.opt_string(f, "assumeRoleExternalId");
    if assume_role_external_id.is_some() && assume_role_arn.is_none() {
        c.warn("\"assumeRoleExternalId\" is ignored without assumeRoleARN".to_string());
    }
    let access = c.opt_string(f, "awsAccessKeyId");
    let secret = c.opt_string(f, "awsSecretAccessKey");
    let static_credentials = match (access, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Some(StaticCredentials {
            access_key_id,
            secret_access_key,
        }),
        (None, None) => None,
        (Some(_), None) => {
            c.error(
                "awsSecretAccessKey",
                None,
                "awsAccessKeyId is set but awsSecretAccessKey is not: give both or neither",
            );
            None
        }
        (None, Some(_)) => {
            c.error(
                "awsAccessKeyId",
                None,
                "awsSecretAccessKey is set but awsAccessKeyId is not: give both or neither",
            );
            None
        }
    };

    // As the Java agent: at least as many connections as sending threads.
    let default_connections = f
        .peek("maxSendingThreads")
        .and_then(|v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
        .map_or(50, |n| n.clamp(50, 10_000));
    let max_connections = c.unchecked(f, "maxConnections", 1, 10_000, default_connections) as usize;
    let connection_timeout =
        millis(c.unchecked(f, "connectionTimeoutMillis", 1, MAX_MILLIS, 10_000));
    let socket_timeout = millis(c.unchecked(f, "socketTimeoutMillis", 1, MAX_MILLIS, 50_000));
    let shutdown_timeout = millis(c.unchecked(f, "shutdownTimeoutMillis", 0, MAX_MILLIS, 10_000));
    let status_reporting_period =
        Duration::from_secs(c.unchecked(f, "log.statusReportingPeriodSeconds", 1, 86_400, 30));
    let user_agent = c.opt_string(f, "userAgent");
    let metrics_listen_address = f.get("metrics.listenAddress").and_then(|v| {
        let s = c.string("metrics.listenAddress", v)?;
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        match s.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                c.error(
                    "metrics.listenAddress",
                    Some(v),
                    format!("{s:?} is not an address: expected IP:port, e.g. 127.0.0.1:9780"),
                );
                None
            }
        }
    });
    let health_ack_timeout =
        Duration::from_secs(c.ranged(f, "metrics.healthAckTimeoutSeconds", 1, 86_400, 300));
    let ec2_metadata_endpoint = c
        .endpoint(f, "ec2.metadataEndpoint")
        .unwrap_or_else(|| DEFAULT_EC2_METADATA_ENDPOINT.to_string());
    let max_open_files = c.ranged(f, "maxOpenFiles", 1, 1_000_000, 1024) as usize;
    let rescan_interval = millis(c.ranged(f, "rescanIntervalMillis", 100, MAX_MILLIS, 10_000));
    let max_buffered_bytes = c.ranged(
        f,
        "maxBufferedBytes",
        1024 * 1024,
        1 << 40,
        super::DEFAULT_MAX_BUFFERED_BYTES as u64,
    ) as usize;

    Config {
        source: c.doc.path.clone(),
        flows: Vec::new(),
        checkpoint_file,
        checkpoint_ttl: Duration::from_secs(ttl_days * 86_400),
        cloudwatch,
        kinesis,
        firehose,
        sts_endpoint,
        assume_role_arn,
        assume_role_external_id,
        static_credentials,
        max_connections,
        connection_timeout,
        socket_timeout,
        shutdown_timeout,
        status_reporting_period,
        user_agent,
        metrics_listen_address,
        health_ack_timeout,
        ec2_metadata_endpoint,
        max_open_files,
        rescan_interval,
        max_buffered_bytes,
    }
}
