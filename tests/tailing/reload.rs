//! SIGHUP reload through the real binary.

use crate::support::agent;

use std::fs;
use std::time::Duration;

use agent::*;

fn hup(child: &std::process::Child) {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGHUP);
    }
}

#[test]
fn sighup_starts_a_new_flow_and_keeps_the_old_one() {
    let s = Scratch::new();
    fs::create_dir_all(s.logs().join("b")).unwrap();
    let a_pattern = format!("{}/*.log", s.logs().display());
    let a_flow = format!(
        "outputFile: {}\ninitialPosition: START_OF_FILE\n",
        s.out().display()
    );
    let cfg = s.config(&[(&a_pattern, &a_flow)], "");
    let mut child = spawn(&cfg, &s.path("agent.log"));
    append(&s.logs().join("a.log"), &["a1".to_string()]);
    wait_until(&s.out(), Duration::from_secs(10), |l| l.len() == 1);

    let out_b = s.path("out-b.txt");
    let b_pattern = format!("{}/b/*.log", s.logs().display());
    let b_flow = format!(
        "outputFile: {}\ninitialPosition: START_OF_FILE\n",
        out_b.display()
    );
    s.config(&[(&a_pattern, &a_flow), (&b_pattern, &b_flow)], "");
    hup(&child);
    std::thread::sleep(Duration::from_millis(1500));
    append(&s.logs().join("b/b.log"), &["b1".to_string()]);
    append(&s.logs().join("a.log"), &["a2".to_string()]);
    let b = wait_until(&out_b, Duration::from_secs(10), |l| l.len() == 1);
    let a = wait_until(&s.out(), Duration::from_secs(10), |l| l.len() == 2);
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(15))
        .unwrap()
        .success());
    assert_eq!(b, vec!["b1"], "the new flow ships");
    assert_eq!(
        a,
        vec!["a1", "a2"],
        "the old flow resumed from its checkpoint, no duplicate"
    );
    let log = fs::read_to_string(s.path("agent.log")).unwrap();
    assert!(log.contains("reloaded: 2 flow(s)"), "{log}");
}

#[test]
fn sighup_with_an_invalid_config_keeps_the_running_one() {
    let s = Scratch::new();
    let cfg = s.simple_config("*.log", "");
    let mut child = spawn(&cfg, &s.path("agent.log"));
    append(&s.logs().join("a.log"), &["one".to_string()]);
    wait_until(&s.out(), Duration::from_secs(10), |l| l.len() == 1);
    fs::write(
        &cfg,
        "flows:\n  - filePattern: relative/*.log\n    maxBufferAgeMillis: 5\n",
    )
    .unwrap();
    hup(&child);
    std::thread::sleep(Duration::from_millis(500));
    append(&s.logs().join("a.log"), &["two".to_string()]);
    let got = wait_until(&s.out(), Duration::from_secs(10), |l| l.len() == 2);
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(15))
        .unwrap()
        .success());
    assert_eq!(got, vec!["one", "two"]);
    let log = fs::read_to_string(s.path("agent.log")).unwrap();
    assert!(log.contains("the running configuration goes on"), "{log}");
    assert!(
        log.contains("maxBufferAgeMillis"),
        "the error names the key:\n{log}"
    );
}
