//! The Markdown rendering for a pull-request comment, split to fit the host's size limit.
//!
//! The document is built as blocks (text, tables, `<details>` sections) and then packed into
//! comments of at most `max_chars` characters. A block that does not fit is split between
//! table rows or list items, never inside one; each piece re-opens its `<details>` and
//! repeats its table header, so every comment renders on its own.

use super::{
    NO_CHANGES, detail_sentence, drift_sentence, field_change, has_changes, place, plural,
    refusal_sentence, rejected_change, rendered_diff, schema_blocks, shows_merge, shows_upload,
    summary_sentence, unexpected_action, waiting_sentence,
};
use crate::plan::model::{Action, FieldCounts, Plan, RunPlan};

/// The heading of the first comment.
const TITLE: &str = "### annoform plan";
/// User strings longer than this are cut in tables: one huge value must not eat a comment.
const CELL_CAP: usize = 300;
/// Run names longer than this are cut in a `<details>` summary, which every piece repeats.
const SUMMARY_NAME_CAP: usize = 40;
/// Below this, `max_chars` could not hold a heading, a `<details>` summary and a row; smaller
/// values act as this.
const MIN_MAX_CHARS: usize = 1_000;

/// The plan as Markdown comments, each at most `max_chars` characters (callers pass 65_000).
pub fn render(plan: &Plan, max_chars: usize) -> Vec<String> {
    let max = max_chars.max(MIN_MAX_CHARS);
    let blocks = blocks(plan);
    // Headings say "part k/n" and n is known only after packing: reserve room for n's digits
    // and pack again in the rare case the count needs more of them.
    let mut digits = 1;
    loop {
        let reserve = heading(10usize.pow(digits) - 1, 10usize.pow(digits) - 1)
            .chars()
            .count();
        let bodies = pack(&blocks, max - reserve);
        let n = bodies.len();
        if n.to_string().len() as u32 <= digits {
            return bodies
                .into_iter()
                .enumerate()
                .map(|(i, body)| format!("{}{}\n", heading(i + 1, n), body.trim_end()))
                .collect();
        }
        digits = n.to_string().len() as u32;
    }
}

/// The heading of part `k` of `n`, with the blank line after it.
fn heading(k: usize, n: usize) -> String {
    match (k, n) {
        (_, 1) => format!("{TITLE}\n\n"),
        (1, _) => format!("{TITLE} (part 1/{n})\n\n"),
        _ => format!("{TITLE} (continued, part {k}/{n})\n\n"),
    }
}

/// The whole document, in order, headings aside.
fn blocks(plan: &Plan) -> Vec<Block> {
    let mut out = if has_changes(plan) {
        vec![
            Block::text(format!(
                "**Plan:** {}\n\n",
                escape(&summary_sentence(&plan.summary))
            )),
            summary_table(plan),
            runs_table(plan),
        ]
    } else {
        vec![Block::text(format!("{NO_CHANGES}\n\n"))]
    };
    out.extend(waiting_block(plan));
    out.extend(plan.runs.iter().filter_map(run_details));
    out.extend(unchanged_block(plan));
    out
}

/// Action | runs, every action in display order.
fn summary_table(plan: &Plan) -> Block {
    let rows = Action::ALL
        .iter()
        .map(|a| format!("| {} | {} |\n", action_label(*a), plan.summary.get(*a)))
        .collect();
    Block::table("| action | runs |\n|:--|--:|\n", rows)
}

/// One row per run with actions.
fn runs_table(plan: &Plan) -> Block {
    let rows = plan
        .runs
        .iter()
        .filter(|r| !r.actions.is_empty())
        .map(|r| {
            let actions: Vec<String> = r.actions.iter().map(|a| action_label(*a)).collect();
            format!(
                "| **{}** | {} | {} | {} | {} | {} | {} |\n",
                escape(&r.key),
                escape(&r.dataset),
                escape(&r.backend),
                actions.join(", "),
                r.samples,
                r.tasks,
                field_cell(r)
            )
        })
        .collect();
    Block::table(
        "| run | dataset | backend | actions | samples | tasks | fields |\n\
         |:--|:--|:--|:--|--:|--:|:--|\n",
        rows,
    )
}

/// Runs whose merge waits for annotators: shown, since "no changes" alone reads as if the
/// annotations had been missed.
fn waiting_block(plan: &Plan) -> Option<Block> {
    let rows: Vec<String> = plan
        .runs
        .iter()
        .filter_map(|r| {
            let w = r.waiting.as_ref()?;
            Some(format!(
                "- **{}** ({}, {}): {}\n",
                escape(&r.key),
                escape(&r.dataset),
                escape(&r.backend),
                escape(&waiting_sentence(w))
            ))
        })
        .collect();
    (!rows.is_empty()).then(|| Block::table("**Waiting for annotators**\n\n", rows))
}

/// The runs without changes (waiting runs aside, listed above), folded away: they matter only to confirm nothing was missed.
fn unchanged_block(plan: &Plan) -> Option<Block> {
    let rows: Vec<String> = plan
        .runs
        .iter()
        .filter(|r| r.actions.is_empty() && r.error.is_none() && r.waiting.is_none())
        .map(|r| {
            format!(
                "| {} | {} | {} | {} | {} |\n",
                escape(&r.key),
                escape(&r.dataset),
                escape(&r.backend),
                r.samples,
                r.tasks
            )
        })
        .collect();
    if rows.is_empty() {
        return None;
    }
    let title = format!("{} without changes", plural(rows.len(), "run", "runs"));
    Some(Block::details(
        &title,
        vec![Section::new(
            "| run | dataset | backend | samples | tasks |\n|:--|:--|:--|--:|--:|\n",
            rows,
        )],
    ))
}

/// A run's rejected changes, drift and details, folded; `None` when it has none.
fn run_details(run: &RunPlan) -> Option<Block> {
    let mut sections = Vec::new();
    let mut what = Vec::new();
    if !run.rejected.is_empty() {
        what.push(plural(
            run.rejected.len(),
            "rejected change",
            "rejected changes",
        ));
        let rows = run
            .rejected
            .iter()
            .map(|r| {
                format!(
                    "| {} | {} | {} | {} | {} |\n",
                    escape(&place(&r.sample_id, r.frame)),
                    escape(&r.label_id),
                    escape(&r.field),
                    escape(&rejected_change(r)),
                    escape(&refusal_sentence(&r.reason))
                )
            })
            .collect();
        sections.push(Section::new(
            "**Rejected changes** (not applied)\n\n\
             | sample | label | field | change | reason |\n|:--|:--|:--|:--|:--|\n",
            rows,
        ));
    }
    if let Some(change) = &run.schema_change {
        what.push("schema change".into());
        let rows = change
            .fields
            .iter()
            .map(|f| {
                let (symbol, line) = field_change(f);
                format!("- `{symbol}` {}\n", escape(&line))
            })
            .collect();
        sections.push(Section::new("**Schema change**\n\n", rows));
        if let Some(rendered) = &change.rendered {
            // One row: a fenced block is never split between comments.
            let lines = rendered_diff(rendered);
            let fence = "`".repeat(3.max(longest_backtick_run(&lines) + 1));
            let row = format!("{fence}diff\n{}\n{fence}\n", lines.join("\n"));
            sections.push(Section::new(
                &format!("**{}** (before → after)\n\n", escape(&rendered.what)),
                vec![row],
            ));
        }
    }
    if !run.edits.is_empty() {
        what.push(plural(run.edits.len(), "edited label", "edited labels"));
        let rows = run
            .edits
            .iter()
            .flat_map(|e| {
                e.changes.iter().map(move |c| {
                    format!(
                        "| {} | {} | {} | {} | {} | {} |\n",
                        escape(&e.sample_id),
                        escape(&e.field),
                        escape(&e.label_id),
                        escape(&c.property),
                        escape(c.before.as_deref().unwrap_or("(none)")),
                        escape(c.after.as_deref().unwrap_or("(removed)"))
                    )
                })
            })
            .collect();
        sections.push(Section::new(
            "**Edited labels** (before → after)\n\n\
             | sample | field | label | property | before | after |\n|:--|:--|:--|:--|:--|:--|\n",
            rows,
        ));
    }
    if !run.unexpected.is_empty() {
        what.push(plural(
            run.unexpected.len(),
            "unexpected label",
            "unexpected labels",
        ));
        let rows = run
            .unexpected
            .iter()
            .map(|u| {
                format!(
                    "| {} | {} | {} | {} | {} | {} |\n",
                    escape(&place(&u.sample_id, u.frame)),
                    escape(&u.backend_id),
                    escape(&u.field),
                    escape(&u.label),
                    escape(&unexpected_action(u)),
                    escape(&u.reason)
                )
            })
            .collect();
        sections.push(Section::new(
            "**Unexpected labels** (outside the schema, `load.unexpected`)\n\n\
             | sample | object | field | label | action | reason |\n|:--|:--|:--|:--|:--|:--|\n",
            rows,
        ));
    }
    if !run.drift.is_empty() {
        what.push(plural(run.drift.len(), "drift", "drifts"));
        let lines: Vec<String> = run.drift.iter().map(drift_sentence).collect();
        sections.push(list_section("**Drift**", &lines));
    }
    if !run.details.is_empty() {
        what.push(plural(run.details.len(), "detail", "details"));
        let lines: Vec<String> = run.details.iter().map(detail_sentence).collect();
        sections.push(list_section("**Details**", &lines));
    }
    if let Some(e) = &run.error {
        what.push("error".into());
        let lines: Vec<String> = std::iter::once(e.clone())
            .chain(run.hint.iter().map(|h| format!("hint: {h}")))
            .collect();
        sections.push(list_section("**Error** (not planned)", &lines));
    }
    if let Some(schema) = &run.schema {
        what.push("schema".into());
        let rows = schema_blocks(schema)
            .into_iter()
            .map(|(head, lines)| {
                let mut row = format!("- **{}**\n", escape(&head));
                for l in lines {
                    row.push_str(&format!("  - {}\n", escape(&l)));
                }
                row
            })
            .collect();
        sections.push(Section::new("**Label schema**\n\n", rows));
    }
    if sections.is_empty() {
        return None;
    }
    let title = format!(
        "<b>{}</b> ({}, {}): {}",
        escape_html(&capped(&run.key, SUMMARY_NAME_CAP)),
        escape_html(&capped(&run.dataset, SUMMARY_NAME_CAP)),
        escape_html(&capped(&run.backend, SUMMARY_NAME_CAP)),
        what.join(", ")
    );
    Some(Block::details_html(&title, sections))
}

/// The longest run of backticks in any line: a fence must be longer.
fn longest_backtick_run(lines: &[String]) -> usize {
    lines
        .iter()
        .flat_map(|l| l.split(|c| c != '`'))
        .map(str::len)
        .max()
        .unwrap_or(0)
}

/// A bulleted list under a bold label.
fn list_section(label: &str, items: &[String]) -> Section {
    let rows = items.iter().map(|d| format!("- {}\n", escape(d))).collect();
    Section::new(&format!("{label}\n\n"), rows)
}

/// `` `+` create ``: the symbol in code so Markdown leaves `-/+` and `<=` alone.
fn action_label(a: Action) -> String {
    format!("`{}` {}", a.symbol(), a.as_str())
}

/// Per-field counts of a run, one field a line; a dash when no field has any.
fn field_cell(run: &RunPlan) -> String {
    let lines: Vec<String> = run
        .fields
        .iter()
        .filter_map(|(name, c)| {
            let mut parts = Vec::new();
            if shows_upload(run, c) {
                parts.push(format!("upload {}", c.upload));
            }
            if shows_merge(run, c) {
                parts.push(merge_counts(c));
            }
            (!parts.is_empty()).then(|| format!("{}: {}", escape(name.as_str()), parts.join("; ")))
        })
        .collect();
    if lines.is_empty() {
        return "—".to_string();
    }
    lines.join("<br>")
}

/// `+3 added \~2 edited -1 deleted !1 rejected, 5 unchanged` (`~` escaped: GitHub would
/// strike through the text between two of them).
fn merge_counts(c: &FieldCounts) -> String {
    let kinds = match c.edits.describe() {
        k if k.is_empty() => k,
        k => format!(" ({k})"),
    };
    let unexpected = match c.unexpected {
        0 => String::new(),
        n => format!(" ?{n} unexpected"),
    };
    format!(
        "+{} added \\~{} edited{kinds} -{} deleted !{} rejected{unexpected}, {} unchanged",
        c.added, c.edited, c.deleted, c.rejected, c.unchanged
    )
}

/// A user string for Markdown text or a table cell: one line, capped, and nothing in it can
/// end a cell, open a tag or code span, or strike text through.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in capped(s, CELL_CAP).chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '*' => out.push_str("\\*"),
            '~' => out.push_str("\\~"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '`' => out.push_str("&#96;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A user string inside HTML (`<summary>`), where Markdown escapes would show literally.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in capped(s, CELL_CAP).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `s`, cut to `cap` characters with an ellipsis.
fn capped(s: &str, cap: usize) -> String {
    if s.chars().count() <= cap {
        return s.to_string();
    }
    let mut out: String = s.chars().take(cap - 1).collect();
    out.push('…');
    out
}

/// Rows under a header (a table header, or a label for a list), then a blank line.
struct Section {
    header: String,
    rows: Vec<String>,
}

impl Section {
    fn new(header: &str, rows: Vec<String>) -> Section {
        Section {
            header: header.to_string(),
            rows,
        }
    }
}

/// A unit of the document: `open`, sections, `close`. Split only between rows; a piece
/// after the first starts with `reopen` instead of `open`.
struct Block {
    open: String,
    reopen: String,
    sections: Vec<Section>,
    close: String,
}

/// What ends a section: the blank line Markdown needs after a table or list.
const SECTION_END: &str = "\n";

impl Block {
    /// Text that is never split.
    fn text(s: String) -> Block {
        Block {
            open: s,
            reopen: String::new(),
            sections: Vec::new(),
            close: String::new(),
        }
    }

    /// A table, split between rows with the header repeated.
    fn table(header: &str, rows: Vec<String>) -> Block {
        Block {
            open: String::new(),
            reopen: String::new(),
            sections: vec![Section::new(header, rows)],
            close: String::new(),
        }
    }

    /// A collapsed `<details>` with a plain-text summary.
    fn details(summary: &str, sections: Vec<Section>) -> Block {
        Block::details_html(&escape_html(summary), sections)
    }

    /// A collapsed `<details>` whose summary is already HTML.
    fn details_html(summary: &str, sections: Vec<Section>) -> Block {
        Block {
            open: format!("<details><summary>{summary}</summary>\n\n"),
            reopen: format!("<details><summary>{summary} (continued)</summary>\n\n"),
            sections,
            close: "</details>\n\n".to_string(),
        }
    }

    /// The block whole.
    fn render(&self) -> String {
        let mut out = self.open.clone();
        for s in &self.sections {
            out.push_str(&s.header);
            for r in &s.rows {
                out.push_str(r);
            }
            out.push_str(SECTION_END);
        }
        out.push_str(&self.close);
        out
    }
}

/// Packs blocks into bodies of at most `budget` characters.
fn pack(blocks: &[Block], budget: usize) -> Vec<String> {
    let mut p = Packer {
        parts: Vec::new(),
        cur: String::new(),
        cur_len: 0,
        budget,
    };
    for b in blocks {
        p.block(b);
    }
    p.flush();
    if p.parts.is_empty() {
        p.parts.push(String::new());
    }
    p.parts
}

struct Packer {
    parts: Vec<String>,
    cur: String,
    cur_len: usize,
    budget: usize,
}

impl Packer {
    fn room(&self) -> usize {
        self.budget.saturating_sub(self.cur_len)
    }

    fn flush(&mut self) {
        if self.cur_len > 0 {
            self.parts.push(std::mem::take(&mut self.cur));
            self.cur_len = 0;
        }
    }

    /// Appends `s`, in a new part if it does not fit here; cut only if no part could hold it.
    fn push(&mut self, s: &str) {
        let n = chars(s);
        if n > self.room() {
            self.flush();
        }
        if n > self.room() {
            let keep: String = s.chars().take(self.room().saturating_sub(2)).collect();
            self.cur.push_str(&keep);
            self.cur.push_str("…\n");
            self.cur_len += chars(&keep) + 2;
            return;
        }
        self.cur.push_str(s);
        self.cur_len += n;
    }

    /// Places a block whole if it fits here or in a fresh part, else splits it.
    fn block(&mut self, b: &Block) {
        let whole = b.render();
        let n = chars(&whole);
        if n > self.room() && n <= self.budget {
            self.flush();
        }
        if n <= self.room() {
            self.push(&whole);
        } else {
            self.split(b);
        }
    }

    /// Splits a block between rows, filling the current part first.
    fn split(&mut self, b: &Block) {
        let tail = chars(SECTION_END) + chars(&b.close);
        let mut piece = Piece::new(&b.open);
        for s in &b.sections {
            let mut in_section = false;
            for row in &s.rows {
                let head = if in_section { "" } else { s.header.as_str() };
                if piece.len + chars(head) + chars(row) + tail > self.room() && piece.has_rows {
                    if in_section {
                        piece.add(SECTION_END);
                    }
                    piece.add(&b.close);
                    self.push(&piece.text);
                    self.flush();
                    piece = Piece::new(&b.reopen);
                    in_section = false;
                }
                if !in_section {
                    piece.add(&s.header);
                    in_section = true;
                }
                if piece.len + chars(row) + tail > self.room() {
                    // The part is too full to start this piece here: start it in a fresh part.
                    self.flush();
                }
                // A row longer than a whole part (escaped cells add up) is shortened, keeping
                // the row's syntax, rather than cutting the piece's closing tags off.
                piece.add(&shorten(row, self.room().saturating_sub(piece.len + tail)));
                piece.has_rows = true;
            }
            if in_section {
                piece.add(SECTION_END);
            }
        }
        piece.add(&b.close);
        self.push(&piece.text);
    }
}

/// `row` in at most `max` characters: a table row or list item cut short with `…`.
fn shorten(row: &str, max: usize) -> String {
    if chars(row) <= max {
        return row.to_string();
    }
    let end = if row.starts_with('|') {
        "… |\n"
    } else {
        "…\n"
    };
    let keep: String = row.chars().take(max.saturating_sub(chars(end))).collect();
    format!("{keep}{end}")
}

/// A piece of a split block under construction.
struct Piece {
    text: String,
    len: usize,
    has_rows: bool,
}

impl Piece {
    fn new(open: &str) -> Piece {
        Piece {
            text: open.to_string(),
            len: chars(open),
            has_rows: false,
        }
    }

    fn add(&mut self, s: &str) {
        self.text.push_str(s);
        self.len += chars(s);
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markdown_and_html() {
        assert_eq!(
            escape("a|b<c>`d`~e*f&g\nh\\"),
            "a\\|b&lt;c&gt;&#96;d&#96;\\~e\\*f&amp;g h\\\\"
        );
        assert_eq!(escape_html("<b>&|`"), "&lt;b&gt;&amp;|`");
    }

    #[test]
    fn long_cells_are_capped() {
        let s = "x".repeat(CELL_CAP + 10);
        assert_eq!(escape(&s).chars().count(), CELL_CAP);
    }

    #[test]
    fn shorten_keeps_row_syntax() {
        assert_eq!(shorten("| abcdef | g |\n", 10), "| abcd… |\n");
        assert_eq!(shorten("- abcdef\n", 6), "- ab…\n");
        assert_eq!(shorten("- ab\n", 6), "- ab\n");
    }

    #[test]
    fn headings_name_parts() {
        assert_eq!(heading(1, 1), "### annoform plan\n\n");
        assert_eq!(heading(1, 3), "### annoform plan (part 1/3)\n\n");
        assert_eq!(heading(2, 3), "### annoform plan (continued, part 2/3)\n\n");
    }
}
