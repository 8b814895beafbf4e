//! Helpers shared by the unit tests (compiled only for `cargo test`).

/// The configuration of a property test: `cases` cases, unless `PROPTEST_CASES` is set,
/// which then wins (`ProptestConfig::with_cases` alone would ignore it). A long run:
/// `PROPTEST_CASES=100000 cargo test --lib framing`.
pub(crate) fn proptest_cases(cases: u32) -> proptest::test_runner::Config {
    let from_env = proptest::test_runner::Config::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        from_env
    } else {
        proptest::test_runner::Config { cases, ..from_env }
    }
}
