//! `.env`: `KEY=VALUE` lines read from the working directory only (a parent
//! directory's `.env` belongs to another project).

use std::path::Path;

use super::ConfigError;

/// The variables in the `.env` file at `path`, in file order; `Ok(empty)`
/// when there is no such file. A malformed line is an error naming
/// `FILE:LINE`, and then nothing from the file applies. The message never
/// quotes the line: it may hold a secret.
pub fn read(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(ConfigError::invalid(
                shown,
                format!("cannot read it: {error}"),
            ))
        }
    };
    dotenvy::from_read_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| match error {
            dotenvy::Error::LineParse(content, _) => {
                let first = content.lines().next().unwrap_or_default();
                let line = text
                    .lines()
                    .position(|l| !first.is_empty() && l.contains(first))
                    .map_or_else(String::new, |n| format!(":{}", n + 1));
                ConfigError::invalid(
                    format!("{shown}{line}"),
                    "not a KEY=VALUE line (a name, `=`, then the value; quote a value \
                     that has spaces or #); nothing in the file was applied",
                )
            }
            other => ConfigError::invalid(shown.clone(), other.to_string()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_line_is_named_by_file_and_line_without_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(
            &path,
            "# comment\nA=1\n\nTWILIO_AUTH_TOKEN s3cret value\nB=2\n",
        )
        .unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("{}:4: not a KEY=VALUE line", path.display())),
            "{error}"
        );
        assert!(!error.contains("s3cret"), "{error}");
    }

    #[test]
    fn good_files_are_read_in_order_and_a_missing_one_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        assert!(read(&path).unwrap().is_empty());
        std::fs::write(&path, "A=1\nexport B=\"two words\"\n").unwrap();
        let pairs = read(&path).unwrap();
        assert_eq!(
            pairs,
            [("A".into(), "1".into()), ("B".into(), "two words".into())]
        );
    }
}
