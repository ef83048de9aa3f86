//! The terminal rendering: Terraform-like, compact by default, colour and width as parameters.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::{
    NO_CHANGES, detail_sentence, drift_sentence, edit_changes, edit_place, field_change,
    has_changes, place, plural, refusal_sentence, rejected_change, rendered_diff, run_name,
    schema_blocks, shows_merge, shows_upload, summary_sentence, unexpected_action,
    waiting_sentence,
};
use crate::plan::model::{Action, FieldCounts, Plan, Rejection, RunPlan, UnexpectedLabel};

/// How to render text: the CLI fills this from the terminal and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextOptions {
    /// Emit ANSI colour and bold.
    pub color: bool,
    /// List every rejection, the details, and runs without changes.
    pub verbose: bool,
    /// Wrap free text (drift, details, rejections) at this many columns; 0 never wraps.
    pub width: usize,
}

impl Default for TextOptions {
    fn default() -> Self {
        TextOptions {
            color: false,
            verbose: false,
            width: 100,
        }
    }
}

/// Rejections listed per run without `verbose`: enough to see what kind, not a wall.
const COMPACT_REJECTIONS: usize = 3;
const HEAD_INDENT: usize = 2;
const BODY_INDENT: usize = 6;
/// Wrapping narrower than this makes text harder to read, not easier.
const MIN_WRAP: usize = 24;

/// The plan as text for a terminal, ending with a newline.
pub fn render(plan: &Plan, opts: &TextOptions) -> String {
    let r = Renderer {
        paint: Paint(opts.color),
        opts,
    };
    let mut out = String::new();
    if has_changes(plan) {
        out.push_str("annoform will perform the following actions:\n\n");
    }
    for run in plan.runs.iter().filter(|run| {
        opts.verbose || !run.actions.is_empty() || run.error.is_some() || run.waiting.is_some()
    }) {
        r.run(&mut out, run);
        out.push('\n');
    }
    if has_changes(plan) {
        let _ = writeln!(
            out,
            "{} {}",
            r.paint.bold("Plan:"),
            summary_sentence(&plan.summary)
        );
    } else {
        let _ = writeln!(out, "{}", r.paint.code(BOLD_GREEN, NO_CHANGES));
    }
    out
}

struct Renderer<'a> {
    paint: Paint,
    opts: &'a TextOptions,
}

impl Renderer<'_> {
    /// One run's block: header, counts, fields, rejections, drift, details.
    fn run(&self, out: &mut String, run: &RunPlan) {
        let _ = writeln!(
            out,
            "{}{}  {} ({})",
            pad(HEAD_INDENT),
            match run.error {
                Some(_) => self.paint.code(RED, "x not planned"),
                None => self.actions(&run.actions),
            },
            self.paint.bold(&clean(&run_name(run))),
            clean(&run.backend)
        );
        let _ = writeln!(
            out,
            "{}{}, {}",
            pad(BODY_INDENT),
            plural(run.samples, "sample", "samples"),
            plural(run.tasks, "task", "tasks")
        );
        self.fields(out, run);
        self.schema_change(out, run);
        self.rejections(out, &run.rejected);
        self.unexpected(out, &run.unexpected);
        for d in &run.drift {
            self.wrapped(
                out,
                &self.paint.code(RED, "!"),
                1,
                &clean(&drift_sentence(d)),
            );
        }
        if let Some(w) = &run.waiting {
            self.wrapped(out, &self.paint.code(YELLOW, "…"), 1, &waiting_sentence(w));
        }
        if let Some(e) = &run.error {
            self.wrapped(out, &self.paint.code(RED, "error:"), 6, &clean(e));
        }
        if let Some(h) = &run.hint {
            self.wrapped(out, &self.paint.code(DIM, "hint:"), 5, &clean(h));
        }
        if self.opts.verbose {
            for e in &run.edits {
                let line = format!("{}: {}", edit_place(e), edit_changes(e));
                self.wrapped(out, &self.paint.code(YELLOW, "~"), 1, &clean(&line));
            }
            for d in &run.details {
                self.wrapped(
                    out,
                    &self.paint.code(DIM, "#"),
                    1,
                    &clean(&detail_sentence(d)),
                );
            }
            if let Some(schema) = &run.schema {
                let _ = writeln!(out, "{}schema:", pad(BODY_INDENT));
                for (head, lines) in schema_blocks(schema) {
                    let _ = writeln!(out, "{}{}", pad(BODY_INDENT + 2), clean(&head));
                    for l in lines {
                        self.wrapped(out, "", 4, &clean(&l));
                    }
                }
            }
        }
    }

    /// The schema change, a line per field; under `verbose`, the backend's rendering of the
    /// schema as a diff.
    fn schema_change(&self, out: &mut String, run: &RunPlan) {
        let Some(change) = &run.schema_change else {
            return;
        };
        for f in &change.fields {
            let (symbol, line) = field_change(f);
            let color = match symbol {
                "+" => GREEN,
                "-" => RED,
                _ => YELLOW,
            };
            let lead = format!("schema {}", self.paint.code(color, symbol));
            self.wrapped(out, &lead, 8, &clean(&line));
        }
        let Some(rendered) = change.rendered.as_ref().filter(|_| self.opts.verbose) else {
            return;
        };
        let _ = writeln!(out, "{}{}:", pad(BODY_INDENT), clean(&rendered.what));
        for line in rendered_diff(rendered) {
            let color = match line.chars().next() {
                Some('+') => GREEN,
                Some('-') => RED,
                Some('@') => DIM,
                _ => "",
            };
            let line = clean(&line);
            let shown = if color.is_empty() {
                line.to_string()
            } else {
                self.paint.code(color, &line)
            };
            let _ = writeln!(out, "{}{shown}", pad(BODY_INDENT + 2));
        }
    }

    /// `+ create`, `! drift, + extend`, or `= no changes`.
    fn actions(&self, actions: &[Action]) -> String {
        if actions.is_empty() {
            return "= no changes".to_string();
        }
        let labels: Vec<String> = actions
            .iter()
            .map(|a| {
                let label = format!("{} {}", a.symbol(), a.as_str());
                self.paint.code(action_color(*a), &label)
            })
            .collect();
        labels.join(", ")
    }

    /// One line per field with something to upload or merge, names aligned.
    fn fields(&self, out: &mut String, run: &RunPlan) {
        let shown: Vec<(String, &FieldCounts)> = run
            .fields
            .iter()
            .filter(|(_, c)| shows_upload(run, c) || shows_merge(run, c))
            .map(|(name, c)| (format!("{}:", clean(name.as_str())), c))
            .collect();
        let w = shown
            .iter()
            .map(|(n, _)| n.chars().count())
            .max()
            .unwrap_or(0);
        for (name, c) in shown {
            let mut parts = Vec::new();
            if shows_upload(run, c) {
                parts.push(format!("upload {}", plural(c.upload, "label", "labels")));
            }
            if shows_merge(run, c) {
                parts.push(self.merge_counts(c));
            }
            let _ = writeln!(out, "{}{name:<w$} {}", pad(BODY_INDENT), parts.join("; "));
        }
    }

    /// `+3 added ~2 edited -1 deleted !1 rejected (5 unchanged)`, non-zero counts coloured.
    fn merge_counts(&self, c: &FieldCounts) -> String {
        let count = |n: usize, sym: &str, word: &str, color: &str| {
            let s = format!("{sym}{n} {word}");
            if n > 0 { self.paint.code(color, &s) } else { s }
        };
        format!(
            "{} {} {} {} {}{}",
            count(c.added, "+", "added", GREEN),
            match c.edits.describe() {
                kinds if kinds.is_empty() => count(c.edited, "~", "edited", YELLOW),
                kinds => format!("{} ({kinds})", count(c.edited, "~", "edited", YELLOW)),
            },
            count(c.deleted, "-", "deleted", RED),
            count(c.rejected, "!", "rejected", RED),
            match c.unexpected {
                0 => String::new(),
                n => format!("{} ", count(n, "?", "unexpected", YELLOW)),
            },
            self.paint
                .code(DIM, &format!("({} unchanged)", c.unchanged))
        )
    }

    /// The count of labels outside the schema, then each (the first few without
    /// `verbose`): field, what happens, sample, object, label and why.
    fn unexpected(&self, out: &mut String, unexpected: &[UnexpectedLabel]) {
        if unexpected.is_empty() {
            return;
        }
        let head = format!(
            "{} outside the schema (load.unexpected):",
            plural(unexpected.len(), "unexpected label", "unexpected labels")
        );
        self.wrapped(out, &self.paint.code(YELLOW, "?"), 1, &head);
        let limit = if self.opts.verbose {
            unexpected.len()
        } else {
            COMPACT_REJECTIONS
        };
        for u in unexpected.iter().take(limit) {
            let line = format!(
                "{}  {}  sample {}  {} {}: {}",
                clean(&u.field),
                unexpected_action(u),
                clean(&place(&u.sample_id, u.frame)),
                clean(&u.backend_id),
                clean(&u.label),
                clean(&u.reason)
            );
            self.wrapped(out, "", 2, &line);
        }
        if unexpected.len() > limit {
            let more = format!(
                "… and {} more (--verbose lists all)",
                unexpected.len() - limit
            );
            self.wrapped(out, "", 2, &more);
        }
    }

    /// The count, then the first few (all with `verbose`) in aligned columns.
    fn rejections(&self, out: &mut String, rejected: &[Rejection]) {
        if rejected.is_empty() {
            return;
        }
        let head = format!(
            "{}, not applied:",
            plural(rejected.len(), "rejected change", "rejected changes")
        );
        self.wrapped(out, &self.paint.code(RED, "!"), 1, &head);
        let limit = if self.opts.verbose {
            rejected.len()
        } else {
            COMPACT_REJECTIONS
        };
        let rows: Vec<[String; 5]> = rejected.iter().take(limit).map(rejection_cells).collect();
        let widths: Vec<usize> = (0..5)
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        let one_line = BODY_INDENT + 2 + widths.iter().sum::<usize>() + 2 * 4;
        let indent = pad(BODY_INDENT + 2);
        for [field, change, sample, label, reason] in &rows {
            let (wf, wc, ws, wl) = (widths[0], widths[1], widths[2], widths[3]);
            if self.opts.width == 0 || one_line <= self.opts.width {
                let _ = writeln!(
                    out,
                    "{indent}{field:<wf$}  {change:<wc$}  {sample:<ws$}  {label:<wl$}  {reason}"
                );
            } else {
                // Too wide for one line: what was refused and why first, the ids under it,
                // rather than wrapping rows into each other.
                let _ = writeln!(out, "{indent}{field:<wf$}  {change:<wc$}  {reason}");
                let ids = format!("{sample:<ws$}  {label}");
                let _ = writeln!(out, "{indent}  {}", self.paint.code(DIM, &ids));
            }
        }
        if rejected.len() > limit {
            let more = format!(
                "… and {} more (--verbose lists all)",
                rejected.len() - limit
            );
            self.wrapped(out, "", 2, &more);
        }
    }

    /// Writes `prefix text` at the body indent, wrapped at the width with a hanging indent.
    ///
    /// `prefix` may carry colour codes; `prefix_cols` is what it occupies on screen (the
    /// prefix plus one space), so wrapping measures what the reader sees.
    fn wrapped(&self, out: &mut String, prefix: &str, prefix_cols: usize, text: &str) {
        let lead = if prefix.is_empty() {
            pad(BODY_INDENT + prefix_cols)
        } else {
            format!("{}{prefix} ", pad(BODY_INDENT))
        };
        let hang = BODY_INDENT + prefix_cols + usize::from(!prefix.is_empty());
        let lines = wrap(text, self.opts.width.saturating_sub(hang));
        for (i, line) in lines.iter().enumerate() {
            if i == 0 {
                let _ = writeln!(out, "{lead}{line}");
            } else {
                let _ = writeln!(out, "{}{line}", pad(hang));
            }
        }
    }
}

/// A rejection's columns: field, change, sample, label, reason (widest last).
fn rejection_cells(r: &Rejection) -> [String; 5] {
    [
        clean(&r.field).into_owned(),
        clean(&rejected_change(r)).into_owned(),
        format!("sample {}", clean(&place(&r.sample_id, r.frame))),
        format!("label {}", clean(&r.label_id)),
        clean(&refusal_sentence(&r.reason)).into_owned(),
    ]
}

/// Splits `text` into lines of at most `avail` columns at spaces; words longer than a line
/// stay whole (an id cut in two cannot be copied).
fn wrap(text: &str, avail: usize) -> Vec<String> {
    if avail < MIN_WRAP || text.chars().count() <= avail {
        return vec![text.to_string()];
    }
    let mut lines = Vec::new();
    let mut rest = text;
    while rest.chars().count() > avail {
        // The character just past the line may be the space to break at.
        let Some((i, c)) = rest.char_indices().nth(avail) else {
            break;
        };
        let end = i + c.len_utf8();
        let at = rest[..end]
            .rfind(' ')
            .or_else(|| rest[end..].find(' ').map(|j| end + j));
        let Some(at) = at.filter(|at| *at > 0) else {
            break;
        };
        lines.push(rest[..at].trim_end().to_string());
        rest = rest[at..].trim_start();
    }
    if !rest.is_empty() {
        lines.push(rest.to_string());
    }
    lines
}

/// Strings from manifests and backends, with control characters escaped so that none can
/// move the cursor or recolour the terminal.
fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_debug().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

fn pad(n: usize) -> String {
    " ".repeat(n)
}

const GREEN: &str = "32";
const YELLOW: &str = "33";
const RED: &str = "31";
const MAGENTA: &str = "35";
const DIM: &str = "2";
const BOLD_GREEN: &str = "1;32";

/// The colour of an action's symbol: green adds, yellow changes, red removes, magenta both.
fn action_color(a: Action) -> &'static str {
    match a {
        Action::Create | Action::Extend => GREEN,
        Action::Update | Action::Merge => YELLOW,
        Action::Replace => MAGENTA,
        Action::Destroy | Action::Drift => RED,
    }
}

/// ANSI styling, or none.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn code(self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn bold(self, s: &str) -> String {
        self.code("1", s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_and_keeps_long_words() {
        let text = "task 17 was deleted outside annoform and cannot be found anymore";
        assert_eq!(
            wrap(text, 30),
            [
                "task 17 was deleted outside",
                "annoform and cannot be found",
                "anymore"
            ]
        );
        let long = format!("id {} end", "x".repeat(40));
        assert_eq!(wrap(&long, 30), ["id", &"x".repeat(40), "end"]);
        assert_eq!(wrap(text, 0), [text]);
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("a\x1b[31mb\n"), "a\\u{1b}[31mb\\n");
        assert!(matches!(clean("plain"), Cow::Borrowed(_)));
    }
}
