//! Line-oriented input files (request paths, DNS queries): bounded in size
//! and line count, blank lines and `#` comments skipped.

use std::path::Path;

use anyhow::{bail, Context};

use crate::limits::{INPUT_FILE_BYTES_MAX, INPUT_LINES_MAX};

/// Reads a whole input file, refusing one above [`INPUT_FILE_BYTES_MAX`].
pub fn read_bounded(path: &Path) -> anyhow::Result<String> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > INPUT_FILE_BYTES_MAX {
        bail!(
            "{} is {len} bytes; input files are limited to {INPUT_FILE_BYTES_MAX} bytes",
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {} (UTF-8 expected)", path.display()))
}

/// The meaningful lines of `text` with their 1-based line numbers: trimmed,
/// without blanks and `#` comments. More than [`INPUT_LINES_MAX`] is an error.
pub fn meaningful_lines(text: &str) -> anyhow::Result<Vec<(usize, &str)>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if out.len() == INPUT_LINES_MAX {
            bail!("more than {INPUT_LINES_MAX} entries (line {})", i + 1);
        }
        out.push((i + 1, line));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_blanks_and_comments_and_keeps_line_numbers() {
        let lines = meaningful_lines("# header\n\n  /a  \n/b\n#x\n").unwrap();
        assert_eq!(lines, vec![(3, "/a"), (4, "/b")]);
    }

    #[test]
    fn too_many_lines_is_an_error() {
        let text = "x\n".repeat(INPUT_LINES_MAX + 1);
        let err = meaningful_lines(&text).unwrap_err().to_string();
        assert!(err.contains("more than 1000000 entries"), "{err}");
        assert_eq!(meaningful_lines(&"x\n".repeat(10)).unwrap().len(), 10);
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = read_bounded(Path::new("/nonexistent/paths.txt"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/paths.txt"), "{err}");
    }
}
