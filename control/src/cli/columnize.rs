//! Table layouts the Go CLI uses, reproduced byte for byte.
//!
//! * [`columnize`]: `github.com/ryanuber/columnize` with Consul's settings:
//!   every cell trimmed, every column but a row's last padded to the
//!   column's widest cell and glued by two spaces; trailing spaces of a row
//!   whose last cell is empty are kept, as Go keeps them.
//! * [`tabwrite_pairs`]: Go's `text/tabwriter` with `minwidth 0, padding 6`
//!   over two-cell rows (`consul catalog services -tags`).
//!
//! Pure: text in, text out.

/// Glue between columns.
const GLUE: &str = "  ";
/// Padding `consul catalog services -tags` gives its tabwriter.
const TABWRITER_PADDING: usize = 6;

/// Width of a cell as columnize counts it: one per character.
fn display_width(cell: &str) -> usize {
    cell.chars().count()
}

/// Lays out rows as columns. Each row ends with a newline (Go's output
/// plus the newline `UI.Output` adds). An empty table is empty text.
pub fn columnize(rows: &[Vec<String>]) -> String {
    let trimmed: Vec<Vec<&str>> = rows.iter().map(|r| r.iter().map(|c| c.trim()).collect()).collect();
    let columns = trimmed.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in &trimmed {
        for (c, cell) in row.iter().enumerate() {
            widths[c] = widths[c].max(display_width(cell));
        }
    }
    let mut out = String::new();
    for row in &trimmed {
        for (c, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if c + 1 < row.len() {
                out.push_str(&" ".repeat(widths[c] - display_width(cell)));
                out.push_str(GLUE);
            }
        }
        out.push('\n');
    }
    out
}

/// Lays out `(first, second)` rows the way Go's tabwriter with padding 6
/// does, then trims the whole text (Consul prints `strings.TrimSpace` of
/// it) and ends it with a newline. No rows → empty text.
pub fn tabwrite_pairs(rows: &[(String, String)]) -> String {
    let width = rows.iter().map(|(a, _)| a.chars().count()).max().unwrap_or(0) + TABWRITER_PADDING;
    let mut out = String::new();
    for (first, second) in rows {
        out.push_str(first);
        out.push_str(&" ".repeat(width - first.chars().count()));
        out.push_str(second);
        out.push('\n');
    }
    let trimmed = out.trim();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(list: &[&[&str]]) -> Vec<Vec<String>> {
        list.iter().map(|r| r.iter().map(|c| c.to_string()).collect()).collect()
    }

    #[test]
    fn pads_all_but_the_last_column_with_two_spaces() {
        let text = columnize(&rows(&[&["Node", "ID", "Address"], &["web-1", "ab", "10.0.0.1"]]));
        assert_eq!(text, "Node   ID  Address\nweb-1  ab  10.0.0.1\n");
    }

    #[test]
    fn cells_are_trimmed_and_an_empty_last_cell_keeps_the_glue() {
        let text = columnize(&rows(&[&["A", " B ", "C"], &["long", "", ""]]));
        assert_eq!(text, "A     B  C\nlong     \n");
    }

    #[test]
    fn short_rows_use_the_shared_widths() {
        let text = columnize(&rows(&[&["a", "b", "c"], &["aaaa"]]));
        assert_eq!(text, "a     b  c\naaaa\n");
        assert_eq!(columnize(&[]), "");
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let text = columnize(&rows(&[&["été", "x"], &["abcd", "y"]]));
        assert_eq!(text, "été   x\nabcd  y\n");
    }

    #[test]
    fn tabwriter_pairs_pad_by_six_and_trim_the_whole_text() {
        let text = tabwrite_pairs(&[
            ("consul".to_string(), String::new()),
            ("web".to_string(), "a,b".to_string()),
        ]);
        assert_eq!(text, "consul      \nweb         a,b\n");
        let last_empty = tabwrite_pairs(&[("web".to_string(), String::new())]);
        assert_eq!(last_empty, "web\n");
        assert_eq!(tabwrite_pairs(&[]), "");
    }
}
