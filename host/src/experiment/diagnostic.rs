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
    /// A short label after the carets under the span (empty: none).
    pub label: String,
    /// Other places that take part (each edge of a cycle), each with a short label.
    pub also: Vec<(Range<usize>, String)>,
}

impl Diagnostic {
    /// A diagnostic at `span`.
    pub fn new(span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        Diagnostic { span, message: message.into(), help: None, label: String::new(), also: Vec::new() }
    }

    /// Puts `label` after the carets under the span.
    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = label.into();
        self
    }

    /// Adds another place that takes part, shown with `label` under it.
    pub fn with_also(mut self, span: Range<usize>, label: impl Into<String>) -> Diagnostic {
        self.also.push((span, label.into()));
        self
    }

    /// Adds a suggestion.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }
}

/// 1-based line and column (in characters) of a byte offset. A byte-order mark at the start of
/// the file is not a column.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..floor_char_boundary(source, offset)];
    let line = before.matches('\n').count() + 1;
    let last = before.rsplit('\n').next().unwrap_or("");
    let last = if line == 1 { last.strip_prefix('\u{feff}').unwrap_or(last) } else { last };
    let col = last.chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Characters of a source line shown before it is cut (when the span ends before).
const MAX_SHOWN: usize = 120;

/// Columns a tab takes in a rendered source line.
const TAB_WIDTH: usize = 4;

/// A source line as shown: tabs as spaces (so the caret lines up in any terminal), other control
/// characters (a NUL in a binary file) as `�`.
fn shown(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' => " ".repeat(TAB_WIDTH),
            c if c.is_control() => "\u{fffd}".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// Width of text as [`shown`].
fn shown_width(text: &str) -> usize {
    text.chars().map(|c| if c == '\t' { TAB_WIDTH } else { 1 }).sum()
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
        let _ = writeln!(out, "error: {}", d.message);
        // The gutter fits the widest line number shown, so that every `|` lines up.
        let gutter = std::iter::once(&d.span)
            .chain(d.also.iter().map(|(span, _)| span))
            .map(|span| line_col(source, span.start).0.to_string().len())
            .max()
            .unwrap_or(1);
        snippet(&mut out, path, source, &d.span, &d.label, gutter, "-->");
        for (span, label) in &d.also {
            snippet(&mut out, path, source, span, label, gutter, ":::");
        }
        if let Some(help) = &d.help {
            let _ = writeln!(out, "{} = help: {help}", " ".repeat(gutter));
        }
        out.push('\n');
    }
    let n = diagnostics.len();
    let _ = writeln!(out, "{n} error{} in {}", if n == 1 { "" } else { "s" }, path.display());
    out
}

/// One place in the file: `--> file:line:col`, the source line, and carets under the span
/// (followed by `label` when it is not empty).
fn snippet(
    out: &mut String,
    path: &Path,
    source: &str,
    span: &Range<usize>,
    label: &str,
    gutter: usize,
    arrow: &str,
) {
    // A byte-order mark is not part of the first line.
    let bom = if source.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
    let start = floor_char_boundary(source, span.start.min(source.len())).max(bom);
    let (line, col) = line_col(source, start);
    let line_start = source[..start].rfind('\n').map_or(bom, |i| i + 1);
    let line_end = source[line_start..].find('\n').map_or(source.len(), |i| line_start + i);
    let text = source[line_start..line_end].strip_suffix('\r').unwrap_or(&source[line_start..line_end]);
    let span_end = floor_char_boundary(source, span.end.min(line_start + text.len()).max(start));
    let indent = shown_width(&source[line_start..start]);
    let width = shown_width(&source[start..span_end]).max(1);
    let pad = " ".repeat(gutter);
    let _ = writeln!(out, "{pad}{arrow} {}:{line}:{col}", path.display());
    let _ = writeln!(out, "{pad} |");
    let mut text = shown(text);
    if let Some((cut, _)) = text.char_indices().nth(MAX_SHOWN).filter(|_| indent + width < MAX_SHOWN) {
        // A long line (a binary file has few line breaks) is cut after the span.
        text.truncate(cut);
        text.push('…');
    }
    let _ = writeln!(out, "{line:>gutter$} | {text}");
    let label = if label.is_empty() { String::new() } else { format!(" {label}") };
    let _ = writeln!(out, "{pad} | {}{}{label}", " ".repeat(indent), "^".repeat(width));
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
    fn other_places_are_shown_after_the_first_with_their_labels() {
        let src = "[[edges]]\nparent = \"a\"\n\n\n\n\n\n\n\n\n[[edges]]\nparent = \"b\"\n";
        let second = src.rfind("[[edges]]").unwrap();
        let d = Diagnostic::new(0..9, "a cycle").with_also(second..second + 9, "edge 2: b → a");
        let text = render(Path::new("e.toml"), src, &[d]);
        assert_eq!(
            text,
            "error: a cycle\n  --> e.toml:1:1\n   |\n 1 | [[edges]]\n   | ^^^^^^^^^\n  ::: e.toml:11:1\n   |\n11 | [[edges]]\n   | ^^^^^^^^^ edge 2: b → a\n\n1 error in e.toml\n"
        );
    }

    #[test]
    fn tabs_boms_and_control_characters_keep_the_caret_under_the_span() {
        let src = "\u{feff}[experiment]\n\tname\t= 1\na = \"\u{0}x\"\r\n";
        let at = |needle: &str| src.find(needle).unwrap();
        assert_eq!(line_col(src, at("[experiment]")), (1, 1), "the BOM is no column");
        let d = Diagnostic::new(at("= 1")..at("= 1") + 3, "bad");
        let text = render(Path::new("e.toml"), src, &[d]);
        assert!(text.contains("2 |     name    = 1\n  |             ^^^\n"), "{text}");
        let x = at("\u{0}x") + 1;
        let d = Diagnostic::new(x..x + 1, "nul");
        let text = render(Path::new("e.toml"), src, &[d]);
        assert!(text.contains("3 | a = \"\u{fffd}x\"\n  |       ^\n"), "{text}");
        let d = Diagnostic::new(0..3, "bom");
        let text = render(Path::new("e.toml"), src, &[d]);
        assert!(text.contains("1:1\n  |\n1 | [experiment]\n  | ^\n"), "{text}");
        // Spans past the end, inside a character, or empty never panic.
        let reversed = std::ops::Range { start: 2, end: 1 };
        for span in [0..0, 1..2, reversed, 100..200, src.len()..src.len()] {
            let _ = render(Path::new("e.toml"), src, &[Diagnostic::new(span, "edge")]);
        }
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
