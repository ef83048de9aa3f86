//! The GitOps recipe's pipelines (examples/gitops, docs/gitops.md) say what the recipe
//! promises: both run the same steps of ci/annoform.sh, take secrets from the CI's secret
//! store, and serialise applies. (tests/walkthroughs/gitops.rs runs the steps themselves.)

use crate::repo;

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join("examples/gitops").join(rel)).unwrap()
}

/// The `ci/annoform.sh STEP` calls of a pipeline file, in order.
fn steps(text: &str) -> Vec<String> {
    text.match_indices("ci/annoform.sh ")
        .map(|(i, m)| {
            text[i + m.len()..]
                .split(|c: char| c.is_whitespace() || c == '|')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn both_pipelines_run_the_same_steps() {
    let github = read(".github/workflows/annoform.yml");
    let gitlab = read(".gitlab-ci.yml");
    let body = |t: &str| {
        steps(t)
            .into_iter()
            .filter(|s| !s.starts_with("post-"))
            .collect::<Vec<_>>()
    };
    assert_eq!(body(&github), ["plan", "apply"]);
    assert_eq!(body(&gitlab), ["plan", "apply"]);
    assert!(steps(&github).contains(&"post-github".to_string()));
    assert!(steps(&gitlab).contains(&"post-gitlab".to_string()));
    let script = read("ci/annoform.sh");
    for step in ["plan", "post-github", "post-gitlab", "apply"] {
        assert!(
            script.contains(&format!("  {step}) ")),
            "ci/annoform.sh {step}"
        );
    }
    assert!(script.contains("annoform plan --out annoform-plan.json"));
    assert!(script.contains("annoform apply --auto-approve annoform-plan.json"));
}

#[test]
fn secrets_come_from_the_secret_store_and_applies_never_overlap() {
    let github = read(".github/workflows/annoform.yml");
    for var in ["ANNOFORM_STATE_URL", "ANNOFORM_LABELSTUDIO_API_KEY"] {
        assert!(
            github.contains(&format!("{var}: ${{{{ secrets.{var} }}}}")),
            "{var} in the GitHub workflow"
        );
    }
    assert!(github.contains("group: annoform-apply\n      cancel-in-progress: false"));
    let gitlab = read(".gitlab-ci.yml");
    assert!(gitlab.contains("resource_group: annoform-apply"));
    let toml = read("annoform.toml");
    assert!(toml.contains("store = \"postgres\"") && !toml.contains("postgres://"));
}
