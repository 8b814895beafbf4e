//! `ADDBRACKETS`: the record between `{` and `}`, as the Java agent writes it: its newline
//! stays inside the brackets, and nothing follows the `}`.

/// Writes `{`, `text`, `}` into `dst` (cleared first).
pub(crate) fn apply(text: &[u8], dst: &mut Vec<u8>) {
    dst.clear();
    dst.reserve(text.len() + 2);
    dst.push(b'{');
    dst.extend_from_slice(text);
    dst.push(b'}');
}
