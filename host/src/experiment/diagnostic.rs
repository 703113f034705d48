//! Errors in an experiment file, rendered as `file:line:col`, the source line and a caret.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;

/// One problem in an experiment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Byte range in the file.
    pub span: Range<usize>,
    /// What is wrong and what was expected.
    pub message: String,
    /// A suggestion (`did you mean …`), when there is one.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at `span`.
    pub fn new(span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        Diagnostic { span, message: message.into(), help: None }
    }

    /// Adds a suggestion.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..floor_char_boundary(source, offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Renders diagnostics like a compiler does, in file order:
///
/// ```text
/// error: unknown key `methd` in an edge
///   --> experiments/quickstart.toml:21:1
///    |
/// 21 | methd = "ridge"
///    | ^^^^^
///    = help: did you mean `methods`?
/// ```
pub fn render(path: &Path, source: &str, diagnostics: &[Diagnostic]) -> String {
    let mut sorted: Vec<&Diagnostic> = diagnostics.iter().collect();
    sorted.sort_by_key(|d| (d.span.start, d.span.end));
    let mut out = String::new();
    for d in sorted {
        let (line, col) = line_col(source, d.span.start);
        let text = source.lines().nth(line - 1).unwrap_or("");
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        let line_start = source[..floor_char_boundary(source, d.span.start.min(source.len()))]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let span_end = d.span.end.min(line_start + text.len()).max(d.span.start);
        let width = source
            .get(
                floor_char_boundary(source, d.span.start.min(source.len()))
                    ..floor_char_boundary(source, span_end),
            )
            .map_or(1, |s| s.chars().count())
            .max(1);
        let _ = writeln!(out, "error: {}", d.message);
        let _ = writeln!(out, "{pad}--> {}:{line}:{col}", path.display());
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{line} | {text}");
        let _ = writeln!(out, "{pad} | {}{}", " ".repeat(col - 1), "^".repeat(width));
        if let Some(help) = &d.help {
            let _ = writeln!(out, "{pad} = help: {help}");
        }
        out.push('\n');
    }
    let n = diagnostics.len();
    let _ = writeln!(out, "{n} error{} in {}", if n == 1 { "" } else { "s" }, path.display());
    out
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance where swapping two neighbouring characters counts as one edit (typos like
/// `nmae` for `name`).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, src.find('=').unwrap()), (1, 3));
        assert_eq!(line_col(src, src.rfind('=').unwrap()), (2, 4));
    }

    #[test]
    fn rendering_shows_the_line_and_a_caret_under_the_span() {
        let src = "[experiment]\nnmae = \"x\"\n";
        let start = src.find("nmae").unwrap();
        let d = Diagnostic::new(start..start + 4, "unknown key `nmae` in [experiment]")
            .with_help("did you mean `name`?");
        let text = render(Path::new("e.toml"), src, &[d]);
        assert_eq!(
            text,
            "error: unknown key `nmae` in [experiment]\n --> e.toml:2:1\n  |\n2 | nmae = \"x\"\n  | ^^^^\n  = help: did you mean `name`?\n\n1 error in e.toml\n"
        );
    }

    #[test]
    fn suggestions_are_close_matches_only() {
        let keys = ["methods", "metrics", "parent", "child"];
        assert_eq!(suggest("methds", keys), Some("methods"));
        assert_eq!(suggest("parnet", keys), Some("parent"));
        assert_eq!(suggest("zzz", keys), None);
        assert_eq!(suggest("nmae", ["name", "seed"]), Some("name"));
    }
}
