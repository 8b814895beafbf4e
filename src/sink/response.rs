//! The answer of a `PutRecords` or `PutRecordBatch` call, read by the sink.
//!
//! The SDK would turn each of the response's up to 500 entries into a struct of owned
//! strings (sequence number, shard ID, record ID) through its generic deserializer: a
//! tenth of the agent's CPU on the default path. The sink needs only, per entry, whether
//! it failed (with its code and message) and, for KPL aggregates, the shard it was stored
//! in; strings are borrowed from the body unless they hold escapes.

use std::borrow::Cow;

use super::rpc::RpcError;

/// One entry of the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryResult {
    /// `ErrorCode` and `ErrorMessage` of a failed entry.
    pub error: Option<(String, String)>,
    /// The shard it was stored in (read only when asked for).
    pub shard: Option<String>,
}

#[derive(serde::Deserialize)]
struct Response<'a> {
    /// `Records` of `PutRecords`, `RequestResponses` of `PutRecordBatch`.
    #[serde(rename = "Records", alias = "RequestResponses", borrow)]
    records: Vec<Entry<'a>>,
}

#[derive(serde::Deserialize)]
struct Entry<'a> {
    #[serde(rename = "ShardId", borrow, default)]
    shard_id: Option<Text<'a>>,
    #[serde(rename = "ErrorCode", borrow, default)]
    error_code: Option<Text<'a>>,
    #[serde(rename = "ErrorMessage", borrow, default)]
    error_message: Option<Text<'a>>,
}

/// A string borrowed from the body when it has no escapes (serde borrows a `Cow` only
/// when it is a field of its own, not inside an `Option`).
#[derive(serde::Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// The entries of a `PutRecords` or `PutRecordBatch` response body; `None` when it is not
/// one.
pub(crate) fn parse(body: &[u8], shards: bool) -> Option<Vec<EntryResult>> {
    let r: Response<'_> = serde_json::from_slice(body).ok()?;
    Some(
        r.records
            .into_iter()
            .map(|e| EntryResult {
                error: e.error_code.map(|c| {
                    (
                        c.0.into_owned(),
                        e.error_message
                            .map(|m| m.0.into_owned())
                            .unwrap_or_default(),
                    )
                }),
                shard: if shards {
                    e.shard_id.map(|s| s.0.into_owned())
                } else {
                    None
                },
            })
            .collect(),
    )
}

/// The entries of a 200 answer; an answer that is not a response (a proxy's page) is a
/// service error, and its request's entries are sent again.
pub(crate) fn entries(body: &[u8], shards: bool) -> Result<Vec<EntryResult>, RpcError> {
    parse(body, shards).ok_or_else(|| RpcError::Service {
        status: 200,
        code: None,
        message: Some("the answer is not a PutRecords / PutRecordBatch response".into()),
        body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Successes, failures with and without message, escapes, unknown fields (in the
    /// entries and around them) and null values read as AWS writes them.
    #[test]
    fn entries_are_read_as_the_sdk_reads_them() {
        let body = br#"{"FailedRecordCount":2,"EncryptionType":"NONE","Records":[
            {"SequenceNumber":"49654","ShardId":"shardId-000000000001"},
            {"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard \"shardId-000000000002\""},
            {"ErrorCode":"InternalFailure"},
            {"SequenceNumber":"1","ShardId":"shardId-\u0030","Extra":{"a":[1,2]}},
            {"SequenceNumber":"2","ShardId":null}]}"#;
        let got = parse(body, true).expect("a PutRecords response");
        assert_eq!(got.len(), 5);
        assert_eq!(got[0].error, None);
        assert_eq!(got[0].shard.as_deref(), Some("shardId-000000000001"));
        assert_eq!(
            got[1].error,
            Some((
                "ProvisionedThroughputExceededException".into(),
                "Rate exceeded for shard \"shardId-000000000002\"".into()
            ))
        );
        assert_eq!(
            got[2].error,
            Some(("InternalFailure".into(), String::new()))
        );
        assert_eq!(got[3].shard.as_deref(), Some("shardId-0"));
        assert_eq!(got[4].shard, None);
        let plain = parse(body, false).unwrap();
        assert!(plain.iter().all(|e| e.shard.is_none()));
        assert_eq!(plain[1].error, got[1].error);
    }

    #[test]
    fn what_is_not_a_put_records_response_is_refused() {
        for body in [
            &b""[..],
            b"{",
            b"[]",
            b"{\"FailedRecordCount\":0}",
            b"{\"Records\":{}}",
            b"{\"Records\":[1]}",
            b"<html>",
        ] {
            assert!(
                parse(body, true).is_none(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(parse(b"{\"Records\":[]}", false), Some(Vec::new()));
    }

    #[test]
    fn put_record_batch_answers_are_read_too() {
        let body = br#"{"FailedPutCount":1,"Encrypted":false,"RequestResponses":[
            {"RecordId":"abc"},{"ErrorCode":"ServiceUnavailableException","ErrorMessage":"Slow down."}]}"#;
        let got = parse(body, false).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].error, None);
        assert_eq!(
            got[1].error,
            Some(("ServiceUnavailableException".into(), "Slow down.".into()))
        );
    }
}
