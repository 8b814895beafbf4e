//! The answer of a `PutRecords` or `PutRecordBatch` call, read by the sink.
//!
//! The sink needs only, per entry, whether it failed (with its code and message) and, for
//! KPL aggregates, the shard it was stored in. The body is read by a scanner written for
//! this one shape rather than by serde: up to 500 entries a call, each with a sequence
//! number the sink never looks at, made the generic deserializer 6 % of the agent's CPU
//! on the default path; alone, the scanner takes 0.55-0.8 of its time per entry. It
//! accepts exactly what serde_json accepts for these
//! fields (the grammar, escapes, UTF-8 of the strings it reads, duplicate fields refused),
//! which the tests check against serde_json on generated and mutated answers; unlike
//! serde it refuses a struct written as a JSON array, which no AWS answer is. Strings the
//! sink keeps are borrowed from the body, and decoded by serde_json when they hold escapes.

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

/// The entries of a `PutRecords` or `PutRecordBatch` response body; `None` when it is not
/// one.
pub(crate) fn parse(body: &[u8], shards: bool) -> Option<Vec<EntryResult>> {
    let mut s = Scan { b: body, i: 0 };
    let entries = s.response(shards)?;
    s.ws();
    (s.i == body.len()).then_some(entries)
}

/// A string in the body: the bytes between its quotes, at `start..end`.
struct Str {
    start: usize,
    end: usize,
    /// Whether it holds a backslash escape.
    escaped: bool,
}

/// A cursor over the body. Every method returns `None` at the first byte that does not
/// fit, and the whole answer is then refused.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Skips JSON whitespace.
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// Skips whitespace, then takes `c` if it is next.
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        let next = self.peek() == Some(c);
        self.i += usize::from(next);
        next
    }

    /// `{"Records": [entries], ...}` (`RequestResponses` for `PutRecordBatch`); other
    /// fields are skipped.
    fn response(&mut self, shards: bool) -> Option<Vec<EntryResult>> {
        let mut entries = None;
        self.object(|s, key| match key {
            b"Records" | b"RequestResponses" => {
                if entries.is_some() {
                    return None;
                }
                entries = Some(s.entries(shards)?);
                Some(())
            }
            _ => s.skip_value(),
        })?;
        entries
    }

    /// The members of an object, each value read by `member` given its key (decoded and
    /// valid UTF-8, as serde reads the keys of a struct).
    fn object(&mut self, mut member: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            self.ws();
            let key = self.string()?;
            let key = self.text(&key)?;
            if !self.eat(b':') {
                return None;
            }
            member(self, key.as_bytes())?;
            if self.eat(b',') {
                continue;
            }
            return self.eat(b'}').then_some(());
        }
    }

    fn entries(&mut self, shards: bool) -> Option<Vec<EntryResult>> {
        if !self.eat(b'[') {
            return None;
        }
        let mut out = Vec::new();
        if self.eat(b']') {
            return Some(out);
        }
        loop {
            out.push(self.entry(shards)?);
            if self.eat(b',') {
                continue;
            }
            return self.eat(b']').then_some(out);
        }
    }

    /// One entry: `ShardId`, `ErrorCode` and `ErrorMessage` are strings or null, each
    /// at most once; other fields are skipped.
    fn entry(&mut self, shards: bool) -> Option<EntryResult> {
        let mut shard: Option<Option<Cow<'a, str>>> = None;
        let mut code: Option<Option<Cow<'a, str>>> = None;
        let mut message: Option<Option<Cow<'a, str>>> = None;
        self.object(|s, key| {
            let slot = match key {
                b"ShardId" => &mut shard,
                b"ErrorCode" => &mut code,
                b"ErrorMessage" => &mut message,
                _ => return s.skip_value(),
            };
            if slot.is_some() {
                return None;
            }
            *slot = Some(s.nullable_text()?);
            Some(())
        })?;
        Some(EntryResult {
            error: code.flatten().map(|c| {
                (
                    c.into_owned(),
                    message.flatten().map(Cow::into_owned).unwrap_or_default(),
                )
            }),
            shard: shard.flatten().filter(|_| shards).map(Cow::into_owned),
        })
    }

    /// A string (decoded) or `null`.
    fn nullable_text(&mut self) -> Option<Option<Cow<'a, str>>> {
        self.ws();
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            return Some(None);
        }
        let s = self.string()?;
        Some(Some(self.text(&s)?))
    }

    /// The text of a string: borrowed when it has no escapes, else decoded by serde_json
    /// (which refuses unpaired surrogates); `None` when it is not UTF-8.
    fn text(&self, s: &Str) -> Option<Cow<'a, str>> {
        if !s.escaped {
            let raw = &self.b[s.start..s.end];
            // ASCII (every string of an AWS answer) is UTF-8, and is told faster.
            if raw.is_ascii() {
                // SAFETY: ASCII bytes are valid UTF-8.
                return Some(Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(raw) }));
            }
            return std::str::from_utf8(raw).ok().map(Cow::Borrowed);
        }
        serde_json::from_slice::<String>(&self.b[s.start - 1..=s.end])
            .ok()
            .map(Cow::Owned)
    }

    /// A string, its escapes checked for form only (as serde skips a string): control
    /// characters are refused, other bytes are not checked here. A byte at a time: the
    /// strings of an answer are short, shorter than a vector search needs to pay off.
    fn string(&mut self) -> Option<Str> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.i + 1;
        let mut j = start;
        let mut escaped = false;
        loop {
            match *self.b.get(j)? {
                b'"' => {
                    self.i = j + 1;
                    return Some(Str {
                        start,
                        end: j,
                        escaped,
                    });
                }
                b'\\' => {
                    escaped = true;
                    j += match *self.b.get(j + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                        b'u' => {
                            let hex = self.b.get(j + 2..j + 6)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            6
                        }
                        _ => return None,
                    };
                }
                0..=0x1f => return None,
                _ => j += 1,
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.b[self.i..]
            .starts_with(word)
            .then(|| self.i += word.len())
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` (a digit after a leading
    /// `0` ends the number, and is refused by what reads on, as no value can follow one).
    fn number(&mut self) -> Option<()> {
        self.i += usize::from(self.peek() == Some(b'-'));
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            self.i += usize::from(matches!(self.peek(), Some(b'+' | b'-')));
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn digits(&mut self) -> usize {
        let n = self.b[self.i..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        self.i += n;
        n
    }

    /// Skips one value of any type and depth (without recursion: an answer nested a
    /// million deep costs a vector of a million flags, not the stack).
    fn skip_value(&mut self) -> Option<()> {
        // One flag per open container: true for an object.
        let mut open: Vec<bool> = Vec::new();
        loop {
            self.ws();
            match self.peek()? {
                b'"' => {
                    self.string()?;
                }
                b'{' => {
                    self.i += 1;
                    if !self.eat(b'}') {
                        open.push(true);
                        self.skip_key()?;
                        continue;
                    }
                }
                b'[' => {
                    self.i += 1;
                    if !self.eat(b']') {
                        open.push(false);
                        continue;
                    }
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return None,
            }
            // A value ended: close what it ends, or go on to the next element.
            loop {
                let Some(&object) = open.last() else {
                    return Some(());
                };
                if self.eat(b',') {
                    if object {
                        self.skip_key()?;
                    }
                    break;
                }
                if !self.eat(if object { b'}' } else { b']' }) {
                    return None;
                }
                open.pop();
            }
        }
    }

    /// The key and colon of a member of a skipped object (its key skipped as a string).
    fn skip_key(&mut self) -> Option<()> {
        self.ws();
        self.string()?;
        self.eat(b':').then_some(())
    }
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
    use proptest::prelude::*;

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

    /// serde_json's reading of these answers, for the scanner to agree with: the derive's
    /// semantics (duplicate fields refused, unknown ones skipped, the kept strings decoded
    /// and checked), with structs read only from JSON objects.
    mod oracle {
        use super::EntryResult;
        use serde::de::{Deserialize, Deserializer, Error, IgnoredAny, MapAccess, Visitor};
        use std::borrow::Cow;
        use std::fmt;

        struct Response(Vec<Entry>);
        #[derive(Default)]
        struct Entry {
            shard: Option<String>,
            code: Option<String>,
            message: Option<String>,
        }

        fn once<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
            slot: &mut Option<T>,
            map: &mut A,
            name: &'static str,
        ) -> Result<(), A::Error> {
            if slot.is_some() {
                return Err(A::Error::duplicate_field(name));
            }
            *slot = Some(map.next_value()?);
            Ok(())
        }

        impl<'de> Deserialize<'de> for Response {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Response;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a response")
                    }
                    fn visit_map<A: MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<Response, A::Error> {
                        let mut records: Option<Vec<Entry>> = None;
                        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                            match &*key {
                                "Records" | "RequestResponses" => {
                                    once(&mut records, &mut map, "Records")?
                                }
                                _ => {
                                    map.next_value::<IgnoredAny>()?;
                                }
                            }
                        }
                        records
                            .map(Response)
                            .ok_or_else(|| A::Error::missing_field("Records"))
                    }
                }
                d.deserialize_map(V)
            }
        }

        impl<'de> Deserialize<'de> for Entry {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Entry;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("an entry")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
                        let (mut shard, mut code, mut message) = (None, None, None);
                        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                            match &*key {
                                "ShardId" => once(&mut shard, &mut map, "ShardId")?,
                                "ErrorCode" => once(&mut code, &mut map, "ErrorCode")?,
                                "ErrorMessage" => once(&mut message, &mut map, "ErrorMessage")?,
                                _ => {
                                    map.next_value::<IgnoredAny>()?;
                                }
                            }
                        }
                        Ok(Entry {
                            shard: shard.flatten(),
                            code: code.flatten(),
                            message: message.flatten(),
                        })
                    }
                }
                d.deserialize_map(V)
            }
        }

        pub(super) fn parse(body: &[u8], shards: bool) -> Option<Vec<EntryResult>> {
            let r: Response = serde_json::from_slice(body).ok()?;
            Some(
                r.0.into_iter()
                    .map(|e| EntryResult {
                        error: e.code.map(|c| (c, e.message.unwrap_or_default())),
                        shard: e.shard.filter(|_| shards),
                    })
                    .collect(),
            )
        }
    }

    /// A JSON value, written by [`write`] with random whitespace and escapes.
    #[derive(Debug, Clone)]
    enum J {
        Null,
        Bool(bool),
        Num(String),
        Str(String),
        Arr(Vec<J>),
        Obj(Vec<(String, J)>),
    }

    /// xorshift, for the writer's choices.
    struct Choices(u64);
    impl Choices {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn ws(out: &mut String, c: &mut Choices) {
        while c.next(4) == 0 {
            out.push([' ', '\t', '\n', '\r'][c.next(4) as usize]);
        }
    }

    fn write_str(s: &str, out: &mut String, c: &mut Choices) {
        out.push('"');
        for ch in s.chars() {
            let must = ch == '"' || ch == '\\' || (ch as u32) < 0x20;
            match c.next(if must { 2 } else { 4 }) {
                0 => {
                    let mut units = [0u16; 2];
                    for u in ch.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{:04x}", u));
                    }
                }
                1 => match ch {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '/' => out.push_str("\\/"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    '\r' => out.push_str("\\r"),
                    '\u{8}' => out.push_str("\\b"),
                    '\u{c}' => out.push_str("\\f"),
                    _ => out.push_str(&format!("\\u{:04X}", ch as u32)),
                },
                _ => out.push(ch),
            }
        }
        // Now and then an unpaired surrogate, which only a skipped string may hold.
        if c.next(40) == 0 {
            out.push_str(["\\ud800", "\\udfff", "\\uDBFF"][c.next(3) as usize]);
        }
        out.push('"');
    }

    fn write(j: &J, out: &mut String, c: &mut Choices) {
        ws(out, c);
        match j {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => out.push_str(n),
            J::Str(s) => write_str(s, out, c),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        ws(out, c);
                        out.push(',');
                    }
                    write(item, out, c);
                }
                ws(out, c);
                out.push(']');
            }
            J::Obj(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        ws(out, c);
                        out.push(',');
                    }
                    ws(out, c);
                    write_str(k, out, c);
                    ws(out, c);
                    out.push(':');
                    write(v, out, c);
                }
                ws(out, c);
                out.push('}');
            }
        }
        ws(out, c);
    }

    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 :#\"\\\\/\u{1}\u{1f}\t\né€😀-]{0,12}"
    }

    fn any_json() -> impl Strategy<Value = J> {
        let leaf = prop_oneof![
            Just(J::Null),
            any::<bool>().prop_map(J::Bool),
            "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,4})?([eE][+-]?[0-9]{1,3})?".prop_map(J::Num),
            text().prop_map(J::Str),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(J::Arr),
                proptest::collection::vec((text(), inner), 0..4).prop_map(J::Obj),
            ]
        })
    }

    /// A string, null, or now and then something else.
    fn field_value() -> impl Strategy<Value = J> {
        prop_oneof![
            8 => text().prop_map(J::Str),
            2 => Just(J::Null),
            1 => any_json(),
        ]
    }

    fn entry() -> impl Strategy<Value = J> {
        let name = prop_oneof![
            Just("SequenceNumber".to_string()),
            Just("ShardId".to_string()),
            Just("ErrorCode".to_string()),
            Just("ErrorMessage".to_string()),
            Just("RecordId".to_string()),
            text(),
        ];
        proptest::collection::vec((name, field_value()), 0..5).prop_map(J::Obj)
    }

    fn response() -> impl Strategy<Value = J> {
        (
            prop_oneof![Just("Records"), Just("RequestResponses")],
            proptest::collection::vec(entry(), 0..6),
            proptest::collection::vec((text(), any_json()), 0..3),
            any::<bool>(),
        )
            .prop_map(|(name, entries, mut others, first)| {
                let records = (name.to_string(), J::Arr(entries));
                if first {
                    others.insert(0, records);
                } else {
                    others.push(records);
                }
                others.insert(0, ("FailedRecordCount".into(), J::Num("1".into())));
                J::Obj(others)
            })
    }

    /// One edit of a body: delete, insert or replace at a position.
    fn edit() -> impl Strategy<Value = (u8, usize, u8)> {
        let byte = prop_oneof![
            proptest::sample::select(b"\"\\{}[],: \n0159-+.eEnultrfa\x01\x7f".to_vec()),
            any::<u8>(),
        ];
        (0u8..3, any::<usize>(), byte)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn generated_answers_read_as_serde_reads_them(
            r in response(), seed in 1u64.., shards in any::<bool>(),
        ) {
            let mut body = String::new();
            write(&r, &mut body, &mut Choices(seed));
            prop_assert_eq!(parse(body.as_bytes(), shards), oracle::parse(body.as_bytes(), shards), "{}", body);
        }

        #[test]
        fn edited_answers_read_as_serde_reads_them(
            r in response(), seed in 1u64.., shards in any::<bool>(),
            edits in proptest::collection::vec(edit(), 1..4),
        ) {
            let mut body = String::new();
            write(&r, &mut body, &mut Choices(seed));
            let mut body = body.into_bytes();
            for (kind, at, byte) in edits {
                let at = at % (body.len() + 1);
                match kind {
                    0 if at < body.len() => { body.remove(at); }
                    1 => body.insert(at, byte),
                    _ if at < body.len() => body[at] = byte,
                    _ => {}
                }
            }
            prop_assert_eq!(parse(&body, shards), oracle::parse(&body, shards), "{}", String::from_utf8_lossy(&body));
        }
    }

    /// The answers of the tests above and the edge cases of the grammar, against serde.
    #[test]
    fn edge_cases_read_as_serde_reads_them() {
        for body in [
            r#"{"Records":[{"ShardId":"a\ud83d\ude00"}]}"#,
            r#"{"Records":[{"ShardId":"a\ud83d"}]}"#,
            r#"{"Records":[{"SequenceNumber":"a\ud83d"}]}"#,
            r#"{"Records":[{"ShardId":"a\udc00"}]}"#,
            r#"{"Records":[{"ShardId":"a\u00e9\/\b\f\n\r\t\"\\"}]}"#,
            r#"{"Records":[{"ShardId":"\x"}]}"#,
            r#"{"Records":[{"ShardId":"\u12"}]}"#,
            r#"{"Records":[{"ShardId":"\u12g4"}]}"#,
            r#"{"Record\u0073":[{"Shard\u0049d":"x"}]}"#,
            r#"{"Records":[],"Records":[]}"#,
            r#"{"Records":[],"RequestResponses":[]}"#,
            r#"{"Records":[{"ErrorCode":"a","ErrorCode":null}]}"#,
            r#"{"Records":[{"ErrorCode":null,"ErrorMessage":"m"}]}"#,
            r#"{"Records":[{"ErrorCode":1}]}"#,
            r#"{"Records":[{"ErrorCode":nul}]}"#,
            r#"{"Records":[{"X":[1,2,{"a":[]}],"Y":{}}]}"#,
            r#"{"Records":[{"X":[1,]}]}"#,
            r#"{"Records":[{"X":{"a":1,}}]}"#,
            r#"{"Records":[{},]}"#,
            r#"{"Records":[],}"#,
            r#"{"N":-0.5e+10,"M":0,"O":-0,"Records":[]}"#,
            r#"{"N":01,"Records":[]}"#,
            r#"{"N":1.,"Records":[]}"#,
            r#"{"N":1e,"Records":[]}"#,
            r#"{"N":-,"Records":[]}"#,
            r#"{"N":.5,"Records":[]}"#,
            r#"{"N":+1,"Records":[]}"#,
            r#"{"N":[[[[[[[[[[[[]]]]]]]]]]]],"Records":[]}"#,
            r#"{"N":[[[[[[[[[[[[]]]]]]]]]]],"Records":[]}"#,
            "{\"Records\":[{\"ShardId\":\"a\u{1}\"}]}",
            "{\"Records\":[]} \n\t\r",
            "{\"Records\":[]} x",
            " \n{ \"Records\" : [ { \"ShardId\" : \"s\" } , { } ] } ",
            "{\"Records\":[{\"ShardId\":\"\\u0000\"}]}",
        ] {
            for shards in [false, true] {
                assert_eq!(
                    parse(body.as_bytes(), shards),
                    oracle::parse(body.as_bytes(), shards),
                    "{body}"
                );
            }
        }
        // A quote, backslash, escape or control character at every place of a long
        // string, which the scanner reads sixteen bytes at a time.
        for at in 0..40 {
            for insert in [
                "\"", "\\", "\\n", "\\u00e9", "\\q", "\u{1}", "\u{1f}", " ", "é",
            ] {
                let mut text = "x".repeat(40);
                text.insert_str(at, insert);
                for field in ["ShardId", "SequenceNumber"] {
                    let body = format!("{{\"Records\":[{{\"{field}\":\"{text}\"}}]}}");
                    assert_eq!(
                        parse(body.as_bytes(), true),
                        oracle::parse(body.as_bytes(), true),
                        "{body}"
                    );
                }
            }
        }
        // Invalid UTF-8: refused in a string the sink reads or in a key, as serde does,
        // and not looked at in a skipped value, as serde does not.
        for (body, ok) in [
            (&b"{\"Records\":[{\"ShardId\":\"\xff\"}]}"[..], false),
            (b"{\"Records\":[{\"\xff\":1}]}", false),
            (b"{\"Records\":[{\"SequenceNumber\":\"\xff\"}]}", true),
        ] {
            assert_eq!(parse(body, true).is_some(), ok);
            assert_eq!(oracle::parse(body, true).is_some(), ok);
        }
    }
}
