//! The answer of a `PutRecords` call, read by the sink rather than by the SDK.
//!
//! The SDK turns each of the response's up to 500 entries into a struct of owned strings
//! (sequence number, shard ID) through its generic deserializer: a tenth of the agent's
//! CPU on the default path. The sink needs only, per entry, whether it failed (with its
//! code and message) and, for KPL aggregates, the shard it was stored in. So for a
//! successful (HTTP 200) response, [`ResponseTap`] reads the body as it arrives, parses
//! what is needed without copying the rest, and hands the SDK an empty list of records in
//! its place. A body it cannot read is handed to the SDK unchanged (the sink then reads the
//! SDK's output), and error responses are never touched: the SDK's error parsing is kept.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use bytes::Bytes;
use http_body::{Body, Frame};

/// What the SDK gets instead of a response that the tap has read.
const READ_BY_THE_SINK: &[u8] = br#"{"Records":[]}"#;

/// One entry of the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryResult {
    /// `ErrorCode` and `ErrorMessage` of a failed entry.
    pub error: Option<(String, String)>,
    /// The shard it was stored in (read only when asked for).
    pub shard: Option<String>,
}

/// Where the tap leaves the entries of the response it read.
pub(crate) type Slot = Arc<Mutex<Option<Vec<EntryResult>>>>;

/// An interceptor of one `PutRecords` call (see the module documentation).
#[derive(Debug)]
pub(crate) struct ResponseTap {
    slot: Slot,
    shards: bool,
}

impl ResponseTap {
    /// A tap leaving the entries in `slot`, with their shard IDs when `shards`.
    pub(crate) fn new(slot: Slot, shards: bool) -> Self {
        ResponseTap { slot, shards }
    }
}

impl Intercept for ResponseTap {
    fn name(&self) -> &'static str {
        "kinesis-tail PutRecords response tap"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response_mut();
        if response.status().as_u16() != 200 {
            return Ok(());
        }
        let inner = std::mem::replace(response.body_mut(), SdkBody::taken());
        *response.body_mut() = SdkBody::from_body_1_x(Collect {
            inner,
            buf: Vec::new(),
            slot: Arc::clone(&self.slot),
            shards: self.shards,
            done: false,
        });
        Ok(())
    }
}

/// Collects the body, parses it at its end, and yields the stand-in (or, when it cannot be
/// parsed, the body itself).
struct Collect {
    inner: SdkBody,
    buf: Vec<u8>,
    slot: Slot,
    shards: bool,
    done: bool,
}

impl Body for Collect {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        this.buf.extend_from_slice(&data);
                    }
                }
                Poll::Ready(None) => {
                    this.done = true;
                    let buf = std::mem::take(&mut this.buf);
                    let out = match parse(&buf, this.shards) {
                        Some(entries) => {
                            *this.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(entries);
                            Bytes::from_static(READ_BY_THE_SINK)
                        }
                        None => Bytes::from(buf),
                    };
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct Response<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<Entry<'a>>,
}

#[derive(serde::Deserialize)]
struct Entry<'a> {
    #[serde(rename = "ShardId", borrow, default)]
    shard_id: Option<Cow<'a, str>>,
    #[serde(rename = "ErrorCode", borrow, default)]
    error_code: Option<Cow<'a, str>>,
    #[serde(rename = "ErrorMessage", borrow, default)]
    error_message: Option<Cow<'a, str>>,
}

/// The entries of a `PutRecords` response body; `None` when it is not one.
pub(crate) fn parse(body: &[u8], shards: bool) -> Option<Vec<EntryResult>> {
    let r: Response<'_> = serde_json::from_slice(body).ok()?;
    Some(
        r.records
            .into_iter()
            .map(|e| EntryResult {
                error: e.error_code.map(|c| {
                    (
                        c.into_owned(),
                        e.error_message.map(Cow::into_owned).unwrap_or_default(),
                    )
                }),
                shard: if shards {
                    e.shard_id.map(Cow::into_owned)
                } else {
                    None
                },
            })
            .collect(),
    )
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
    fn what_is_not_a_put_records_response_is_left_to_the_sdk() {
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

    /// The body handed to the SDK: the stand-in once read, the original when unreadable,
    /// whatever the chunks it arrives in.
    #[tokio::test]
    async fn the_sdk_gets_a_stand_in_or_the_body_itself() {
        use http_body_util::BodyExt;
        let whole = br#"{"Records":[{"ShardId":"s","SequenceNumber":"1"},{"ErrorCode":"X"}]}"#;
        for (body, readable) in [(&whole[..], true), (&b"{\"Records\":"[..], false)] {
            for chunk in [1, 7, body.len()] {
                let parts: std::collections::VecDeque<Bytes> =
                    body.chunks(chunk).map(Bytes::copy_from_slice).collect();
                let inner = SdkBody::from_body_1_x(Chunks(parts));
                let slot = Slot::default();
                let c = Collect {
                    inner,
                    buf: Vec::new(),
                    slot: Arc::clone(&slot),
                    shards: true,
                    done: false,
                };
                let out = c.collect().await.unwrap().to_bytes();
                if readable {
                    assert_eq!(&out[..], READ_BY_THE_SINK);
                    let entries = slot.lock().unwrap().take().unwrap();
                    assert_eq!(entries.len(), 2);
                    assert_eq!(entries[0].shard.as_deref(), Some("s"));
                    assert_eq!(entries[1].error.as_ref().unwrap().0, "X");
                } else {
                    assert_eq!(&out[..], body);
                    assert!(slot.lock().unwrap().is_none());
                }
            }
        }
    }

    /// A body arriving in the given chunks.
    struct Chunks(std::collections::VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }
}
