//! `${VAR}` expansion in configuration string values.
//!
//! The syntax, deliberately small (containers configure through the environment):
//!
//! - `${NAME}`: the value of the environment variable `NAME`; an error when it is unset.
//! - `${NAME:-default}`: `default` when `NAME` is unset or empty (as in the shell). The
//!   default is taken literally up to the first `}`; it is not expanded again.
//! - `$$`: a literal `$` (write `$${` for a literal `${`).
//! - Any other `$` is kept as it is, so regexes such as `^\d+$` need no escaping.
//!
//! `NAME` is `[A-Za-z_][A-Za-z0-9_]*`. Only values are expanded, never keys.

use std::borrow::Cow;

/// Looks a variable up (the process environment in production, a map in tests).
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Why a value could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExpandError {
    /// `${NAME}` with `NAME` unset and no default.
    Unset(String),
    /// `${` without its `}`.
    Unterminated,
    /// `${...}` whose name is not `[A-Za-z_][A-Za-z0-9_]*`.
    BadName(String),
}

impl std::fmt::Display for ExpandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpandError::Unset(name) => write!(
                f,
                "environment variable {name} is not set (give a default with ${{{name}:-default}})"
            ),
            ExpandError::Unterminated => write!(f, "\"${{\" without a closing \"}}\""),
            ExpandError::BadName(name) => write!(
                f,
                "invalid variable name {name:?} in ${{...}} (letters, digits and _; write $$ for a literal $)"
            ),
        }
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expands `s`; borrows when there is nothing to expand.
pub(crate) fn expand<'s>(s: &'s str, env: Env<'_>) -> Result<Cow<'s, str>, ExpandError> {
    if !s.contains('$') {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or(ExpandError::Unterminated)?;
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if !valid_name(name) {
                return Err(ExpandError::BadName(name.to_string()));
            }
            match (env(name), default) {
                (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => return Err(ExpandError::Unset(name.to_string())),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "STREAM" => Some("app-logs".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn x(s: &str) -> Result<String, ExpandError> {
        expand(s, &env).map(Cow::into_owned)
    }

    #[test]
    fn expands_set_variables_and_defaults() {
        assert_eq!(x("${STREAM}").unwrap(), "app-logs");
        assert_eq!(x("pre-${STREAM}-post").unwrap(), "pre-app-logs-post");
        assert_eq!(x("${NOPE:-fallback}").unwrap(), "fallback");
        assert_eq!(x("${STREAM:-fallback}").unwrap(), "app-logs");
        assert_eq!(x("${EMPTY:-fallback}").unwrap(), "fallback");
        assert_eq!(x("${EMPTY}").unwrap(), "");
        assert_eq!(x("${NOPE:-}").unwrap(), "");
    }

    #[test]
    fn dollars_that_are_not_variables_stay() {
        assert_eq!(x("^\\d+$").unwrap(), "^\\d+$");
        assert_eq!(x("a$b").unwrap(), "a$b");
        assert_eq!(x("$").unwrap(), "$");
        assert_eq!(x("$${STREAM}").unwrap(), "${STREAM}");
        assert_eq!(x("cost: $$5").unwrap(), "cost: $5");
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(x("${NOPE}"), Err(ExpandError::Unset("NOPE".into())));
        assert_eq!(x("${STREAM"), Err(ExpandError::Unterminated));
        assert_eq!(x("${1A}"), Err(ExpandError::BadName("1A".into())));
        assert_eq!(x("${}"), Err(ExpandError::BadName(String::new())));
        assert!(ExpandError::Unset("NOPE".into())
            .to_string()
            .contains("NOPE is not set"));
    }
}
