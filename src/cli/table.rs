//! Plain-text output: aligned tables (one row per item) and field lists (one line per
//! field of one item). Widths count characters; cells are one line (line breaks in a
//! value become spaces); nothing trails a line.

/// A table with a header row.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

/// Spaces between columns.
const GAP: &str = "  ";

fn width(s: &str) -> usize {
    s.chars().count()
}

fn one_line(s: &str) -> String {
    if s.contains(['\n', '\r', '\t']) {
        s.split(['\n', '\r', '\t'])
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        s.to_owned()
    }
}

/// Shortens `s` to at most `max` characters, ending with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

impl Table {
    /// A table with these column headers.
    pub fn new<I, S>(headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let headers: Vec<String> = headers.into_iter().map(Into::into).collect();
        let right = vec![false; headers.len()];
        Self {
            headers,
            right,
            rows: Vec::new(),
        }
    }

    /// Aligns these columns (by index) to the right, as numbers are.
    pub fn right(mut self, columns: &[usize]) -> Self {
        for &c in columns {
            if let Some(r) = self.right.get_mut(c) {
                *r = true;
            }
        }
        self
    }

    /// Adds a row; missing cells are empty, extra cells are dropped.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut row: Vec<String> = cells
            .into_iter()
            .map(|c| one_line(&c.into()))
            .take(self.headers.len())
            .collect();
        row.resize(self.headers.len(), String::new());
        self.rows.push(row);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row after the header, each ending in `\n`.
    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            let mut text = String::new();
            for (i, cell) in line.iter().enumerate() {
                if i > 0 {
                    text.push_str(GAP);
                }
                let pad = widths[i] - width(cell);
                if self.right[i] {
                    text.extend(std::iter::repeat_n(' ', pad));
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    if i + 1 < n {
                        text.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// One item as `field  value` lines, the values aligned. A value with line breaks
/// continues on the next lines, indented to the value column; empty values are left
/// out.
pub fn fields(rows: &[(&str, String)]) -> String {
    let w = rows
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, _)| width(k))
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows.iter().filter(|(_, v)| !v.is_empty()) {
        for (i, line) in v.lines().enumerate() {
            let label = if i == 0 { *k } else { "" };
            let text = format!("{label:<w$}{GAP}{line}");
            out.push_str(text.trim_end());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_and_trims_line_ends() {
        let mut t = Table::new(["NAME", "VALUE", "NOTE"]).right(&[1]);
        t.row(["programs/a", "1.5", "x"]);
        t.row(["programs/bb", "22.75", ""]);
        t.row(["c"]);
        assert_eq!(
            t.render(),
            "NAME         VALUE  NOTE\n\
             programs/a     1.5  x\n\
             programs/bb  22.75\n\
             c\n"
        );
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn counts_characters_and_flattens_line_breaks() {
        let mut t = Table::new(["A", "B"]);
        t.row(["é×", "one\ntwo"]);
        t.row(["abc", "x"]);
        assert_eq!(t.render(), "A    B\né×   one two\nabc  x\n");
    }

    #[test]
    fn field_lists() {
        let text = fields(&[
            ("name", "programs/a".into()),
            ("summary", "first\nsecond".into()),
            ("empty", String::new()),
            ("start year", "2015".into()),
        ]);
        assert_eq!(
            text,
            "name        programs/a\n\
             summary     first\n\
             \x20           second\n\
             start year  2015\n"
        );
    }

    #[test]
    fn truncates_with_an_ellipsis() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
