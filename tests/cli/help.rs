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
        &["completions"],
        &["man"],
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

/// Completion scripts and the man page are generated from the same definitions as `--help`:
/// snapshot-tested so a change of the commands shows in all of them.
#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let out = annoform(&repo(), &repo(), &[], &["completions", shell]);
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        for sub in ["validate", "plan", "apply", "destroy", "completions", "man"] {
            assert!(out.stdout.contains(sub), "{shell} completes {sub}");
        }
        insta::assert_snapshot!(format!("completions_{shell}"), out.stdout);
    }
    let out = annoform(&repo(), &repo(), &[], &["man"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with(".ie"), "roff: {}", out.stdout);
    insta::assert_snapshot!("man_page", out.stdout);

    let ws = Workspace::empty();
    let dir = ws.path().join("man1");
    let out = ws.run(&["man", "--out-dir", dir.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for page in ["annoform.1", "annoform-plan.1", "annoform-config-show.1"] {
        assert!(dir.join(page).is_file(), "{page} written");
    }
}
