//! The CLI reference: every command's help, snapshot-tested so help changes show in review.

use crate::{Workspace, annoform, repo};

#[test]
fn cli_reference() {
    let mut reference = String::new();
    for cmd in [
        &[][..],
        &["validate"],
        &["config"],
        &["config", "show"],
        &["schema"],
    ] {
        let mut args: Vec<&str> = cmd.to_vec();
        args.push("--help");
        let out = annoform(&repo(), &repo(), &[], &args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        reference.push_str(&format!("$ annoform {}\n{}\n", args.join(" "), out.stdout));
    }
    insta::assert_snapshot!(reference);
}

#[test]
fn usage_errors_exit_1_with_a_hint() {
    let out = Workspace::empty().run(&["valdate"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("similar subcommand") || out.stderr.contains("validate"),
        "{}",
        out.stderr
    );
}
