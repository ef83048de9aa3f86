//! `annoform init`: scaffold a workspace.

use super::{CommandError, Context};

const TOML: &str = r#"# annoform workspace. Secrets never go here: use ${env:NAME} or ANNOFORM_<BACKEND>_<SETTING>.
manifests = "manifests"
default_backend = "cvat"

[state]
store = "local"
path = ".annoform/state"

# A dataset in FiftyOne's directory format: `dataset.export(export_dir="datasets/mydata",
# dataset_type=fo.types.FiftyOneDataset)`.
[datasets.mydata]
path = "datasets/mydata"

[backends.cvat]
url = "http://localhost:8080"
username = "${env:CVAT_USERNAME}"
password = "${env:CVAT_PASSWORD}"
"#;

const MANIFEST: &str = r#"# yaml-language-server: $schema=../schema/manifest.schema.json
# An example run: review the existing `ground_truth` labels of `mydata`.
apiVersion: annoform/v1
kind: AnnotationRun
key: first_run
dataset: mydata
label_field: ground_truth
"#;

/// Write annoform.toml, manifests/ and a .gitignore entry for local state, never overwriting.
pub fn run(ctx: &Context) -> Result<(), CommandError> {
    let root = &ctx.cli_dir;
    let toml = root.join(crate::config::FILE_NAME);
    if toml.exists() {
        return Err(CommandError::failed(format!(
            "{} already exists; nothing was changed",
            toml.display()
        )));
    }
    let write = |rel: &str, text: &str| -> Result<(), CommandError> {
        let p = root.join(rel);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                CommandError::failed(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        std::fs::write(&p, text)
            .map_err(|e| CommandError::failed(format!("cannot write {}: {e}", p.display())))
    };
    write(crate::config::FILE_NAME, TOML)?;
    if !root.join("manifests/example.yaml").exists() {
        write("manifests/example.yaml", MANIFEST)?;
    }
    write(
        "schema/manifest.schema.json",
        &crate::manifest::load::schema_text(&crate::manifest::load::published_schema()),
    )?;
    let gitignore = root.join(".gitignore");
    let existing = std::fs::read_to_string(&gitignore).unwrap_or_default();
    if !existing.lines().any(|l| l.trim() == ".annoform/") {
        write(
            ".gitignore",
            &format!(
                "{existing}{}.annoform/\n",
                if existing.is_empty() || existing.ends_with('\n') {
                    ""
                } else {
                    "\n"
                }
            ),
        )?;
    }
    super::print(
        "Created annoform.toml, manifests/example.yaml, schema/manifest.schema.json and a .gitignore entry for .annoform/.\nNext: export your dataset to datasets/mydata, edit the manifest, then `annoform validate` and `annoform plan`.\n",
    )
}
