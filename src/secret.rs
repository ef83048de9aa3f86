//! `${env:NAME}` references: how secrets (and any other value) are written in files without
//! being stored; they are resolved only when a value is actually needed.

use crate::config::Env;

/// A reference that cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// `${env:` without a valid name and closing brace.
    #[error(
        "malformed reference at byte {0}: write `${{env:NAME}}` with NAME of letters, digits and `_`"
    )]
    Malformed(usize),
    /// The variable is not set.
    #[error("environment variable `{0}` is not set")]
    Unset(String),
}

/// The variables referenced by `text`, in order; errors on a malformed reference.
pub fn references(text: &str) -> Result<Vec<&str>, RefError> {
    let mut names = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(at) = rest.find("${") {
        let start = offset + at;
        let after = &rest[at + 2..];
        let name = after
            .strip_prefix("env:")
            .and_then(|r| r.find('}').map(|end| &r[..end]))
            .filter(|n| valid_name(n))
            .ok_or(RefError::Malformed(start))?;
        names.push(name);
        let consumed = at + 2 + "env:".len() + name.len() + 1;
        offset += consumed;
        rest = &rest[consumed..];
    }
    Ok(names)
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `text` with every reference replaced by its variable's value. A variable set to the
/// empty string is set: it resolves to "" and the setting that needs a value says so.
pub fn resolve(text: &str, env: &Env) -> Result<String, RefError> {
    let mut out = text.to_string();
    for name in references(text)? {
        let value = env
            .vars
            .get(name)
            .ok_or_else(|| RefError::Unset(name.to_string()))?;
        out = out.replacen(&format!("${{env:{name}}}"), value, 1);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_and_resolved() {
        let env = Env {
            vars: [("A".to_string(), "x".to_string())].into(),
            home: None,
        };
        assert_eq!(
            references("pre ${env:A} ${env:B_2}").unwrap(),
            vec!["A", "B_2"]
        );
        assert_eq!(resolve("u=${env:A}!", &env).unwrap(), "u=x!");
        assert_eq!(resolve("${env:B}", &env), Err(RefError::Unset("B".into())));
        let empty = Env {
            vars: [("CVAT_PASSWORD".to_string(), String::new())].into(),
            home: None,
        };
        assert_eq!(resolve("${env:CVAT_PASSWORD}", &empty).unwrap(), "");
        assert_eq!(references("a ${env:1x}"), Err(RefError::Malformed(2)));
        assert_eq!(references("${HOME}"), Err(RefError::Malformed(0)));
        assert_eq!(references("no refs $ {}").unwrap(), Vec::<&str>::new());
    }
}
