//! The config loader on any text: YAML, or JSON with comments (the Java `agent.json`), as
//! `load_str` decides from the text itself. Nothing may panic, and a loaded config must
//! describe itself (`kinesis-tail check`).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(loaded) = kinesis_tail::config::load_str(&text, Path::new("fuzz.yaml")) {
        let _ = loaded.config.describe();
        for w in &loaded.warnings {
            let _ = w.to_string();
        }
    }
});
