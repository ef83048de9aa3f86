//! Problems found in user files, with the file, the span and a hint; rendered as miette
//! reports for people, one line each for logs, or JSON for CI.

use crate::manifest::yaml::{LineIndex, Span};
use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};
use serde::Serialize;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// A user file kept in memory so problems can quote it.
pub struct SourceFile {
    /// The path as shown to the user.
    pub name: String,
    named: NamedSource<Arc<String>>,
    lines: LineIndex,
}

impl fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceFile")
            .field("name", &self.name)
            .finish()
    }
}

impl SourceFile {
    /// Wrap a file's text.
    pub fn new(name: impl Into<String>, text: String) -> Arc<SourceFile> {
        let name = name.into();
        let lines = LineIndex::new(&text);
        Arc::new(SourceFile {
            named: NamedSource::new(name.clone(), Arc::new(text)).with_language("yaml"),
            name,
            lines,
        })
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        self.named.inner()
    }

    /// A copy whose `span` is masked with `*`, to quote the file around a secret without it.
    pub fn masked(&self, span: Span) -> Arc<SourceFile> {
        let mut text = self.text().to_string();
        let (start, end) = (span.start.min(text.len()), span.end.min(text.len()));
        if text.is_char_boundary(start) && text.is_char_boundary(end) {
            text.replace_range(start..end, &"*".repeat(text[start..end].chars().count()));
        }
        SourceFile::new(self.name.clone(), text)
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, byte: usize) -> (usize, usize) {
        self.lines.line_col(self.text(), byte)
    }
}

/// Where a problem is.
#[derive(Debug, Clone)]
pub struct Location {
    pub file: Arc<SourceFile>,
    pub span: Span,
}

/// One problem in the user's files or setup.
#[derive(Debug, Clone)]
pub struct Problem {
    pub message: String,
    pub location: Option<Location>,
    /// What the primary label under the source says.
    pub label: String,
    pub help: Option<String>,
    /// Secondary spans in the same file (e.g. the first of two duplicates).
    pub related: Vec<(Span, String)>,
}

impl Problem {
    /// A problem with no position (a missing file, say).
    pub fn plain(message: impl Into<String>) -> Problem {
        Problem {
            message: message.into(),
            location: None,
            label: String::new(),
            help: None,
            related: Vec::new(),
        }
    }

    /// A problem at `span` of `file`.
    pub fn at(
        file: &Arc<SourceFile>,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Problem {
        Problem {
            message: message.into(),
            location: Some(Location {
                file: file.clone(),
                span,
            }),
            label: label.into(),
            help: None,
            related: Vec::new(),
        }
    }

    /// A problem from a structural finding; secrets are masked in the quoted source.
    pub fn from_finding(file: &Arc<SourceFile>, f: crate::manifest::check::Finding) -> Problem {
        let file = if f.secret {
            file.masked(f.span)
        } else {
            file.clone()
        };
        Problem::at(&file, f.span, f.message, f.label).with_help_opt(f.help)
    }

    /// Add a hint.
    pub fn with_help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }

    /// Optionally add a hint.
    pub fn with_help_opt(mut self, help: Option<String>) -> Problem {
        self.help = help;
        self
    }

    /// Point at a second place in the same file.
    pub fn with_related(mut self, span: Span, label: impl Into<String>) -> Problem {
        self.related.push((span, label.into()));
        self
    }

    /// `file:line:col`, or nothing for a problem without position.
    pub fn position(&self) -> Option<(String, usize, usize)> {
        let loc = self.location.as_ref()?;
        let (l, c) = loc.file.line_col(loc.span.start);
        Some((loc.file.name.clone(), l, c))
    }

    /// One line: `file:line:col: message (hint)`.
    pub fn short(&self) -> String {
        let mut s = match self.position() {
            Some((f, l, c)) => format!("{f}:{l}:{c}: error: {}", self.message),
            None => format!("error: {}", self.message),
        };
        if let Some(h) = &self.help {
            s.push_str(&format!(" (hint: {h})"));
        }
        s
    }

    /// The JSON form CI reads.
    pub fn to_json(&self) -> ProblemJson {
        let pos = self.position();
        ProblemJson {
            file: pos.as_ref().map(|p| p.0.clone()),
            line: pos.as_ref().map(|p| p.1),
            column: pos.as_ref().map(|p| p.2),
            message: self.message.clone(),
            help: self.help.clone(),
        }
    }
}

/// A problem as JSON.
#[derive(Debug, Serialize)]
pub struct ProblemJson {
    pub file: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.location
            .as_ref()
            .map(|l| &l.file.named as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let loc = self.location.as_ref()?;
        let primary = LabeledSpan::new_primary_with_span(
            Some(self.label.clone()).filter(|l| !l.is_empty()),
            (
                loc.span.start,
                loc.span
                    .len()
                    .min(loc.file.text().len().saturating_sub(loc.span.start)),
            ),
        );
        let related = self
            .related
            .iter()
            .map(|(s, l)| LabeledSpan::new_with_span(Some(l.clone()), (s.start, s.len())));
        Some(Box::new(std::iter::once(primary).chain(related)))
    }
}

/// How problems are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Reports with the offending lines quoted.
    Human,
    /// One `file:line:col: error: message` line each.
    Short,
    /// A JSON document.
    Json,
}

/// Render problems; `color` only affects the human format.
pub fn render(problems: &[Problem], format: Format, color: bool, width: usize) -> String {
    match format {
        Format::Short => problems.iter().map(|p| p.short() + "\n").collect(),
        Format::Json => {
            let list: Vec<_> = problems.iter().map(Problem::to_json).collect();
            serde_json::to_string_pretty(
                &serde_json::json!({ "valid": problems.is_empty(), "problems": list }),
            )
            .unwrap_or_default()
                + "\n"
        }
        Format::Human => {
            let theme = if color {
                miette::GraphicalTheme::unicode()
            } else {
                miette::GraphicalTheme::unicode_nocolor()
            };
            let handler = miette::GraphicalReportHandler::new_themed(theme)
                .with_width(width)
                .with_links(false);
            let mut out = String::new();
            for p in problems {
                // Rendering into a String cannot fail.
                let _ = handler.render_report(&mut out, p);
                out.push('\n');
            }
            out
        }
    }
}

/// A path as shown in messages: relative to `base` when inside it.
pub fn display_path(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}
