//! `flotilla fmt`: the canonical layout of configuration files.
//!
//! Rules: two spaces of indentation per level of nesting, where the brackets one line opens
//! are one level (`a = [{` indents what follows once, and `}]` closes it, as `terraform
//! fmt` does); `=` aligned within runs of
//! consecutive `name = value` lines at the same level; one space around `=`; at most one blank
//! line in a row; no trailing whitespace; one final newline. Comments and heredoc bodies are
//! kept byte for byte. The result must parse to the same structure as the input, or the file
//! is left alone.

/// Formats one file's text. Returns an error message when the text does not parse.
pub fn format_hcl(text: &str) -> Result<String, String> {
    let before = flotilla_syntax::hcl_edit::parser::parse_body(text).map_err(|e| {
        format!(
            "{}:{}: {}",
            e.location().line(),
            e.location().column(),
            e.message()
        )
    })?;
    let out = layout(text);
    let after = flotilla_syntax::hcl_edit::parser::parse_body(&out).map_err(|e| {
        format!(
            "formatting produced invalid HCL ({}); the file was left unchanged",
            e.message()
        )
    })?;
    if without_closing_space(before) != without_closing_space(after) {
        return Err(
            "formatting would change the meaning of this file; it was left unchanged".into(),
        );
    }
    Ok(out)
}

/// The body with the whitespace before each closing `]` and `}` of an array or object
/// removed (comments kept): hcl-edit compares it, but it is the indentation fmt changes,
/// not meaning.
fn without_closing_space(
    mut body: flotilla_syntax::hcl_edit::structure::Body,
) -> flotilla_syntax::hcl_edit::structure::Body {
    use flotilla_syntax::hcl_edit::expr::{Array, Object};
    use flotilla_syntax::hcl_edit::visit_mut::{self, VisitMut};
    struct Strip;
    impl VisitMut for Strip {
        fn visit_array_mut(&mut self, node: &mut Array) {
            let kept = node.trailing().trim().to_string();
            node.set_trailing(kept);
            visit_mut::visit_array_mut(self, node);
        }
        fn visit_object_mut(&mut self, node: &mut Object) {
            let kept = node.trailing().trim().to_string();
            node.set_trailing(kept);
            visit_mut::visit_object_mut(self, node);
        }
    }
    Strip.visit_body_mut(&mut body);
    body
}

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Code,
    Str,
    Interp,
}

struct Line {
    text: String,
    depth: usize,
    /// `Some(key_len)` for `key = value` lines eligible for alignment: not those whose
    /// value opens a multi-line expression (`tags = {`), which also end a run, as in
    /// `terraform fmt`.
    attr: Option<usize>,
    verbatim: bool,
}

/// Closes `n` brackets, innermost level first.
fn close_brackets(levels: &mut Vec<usize>, mut n: usize) {
    while n > 0 {
        let Some(top) = levels.last_mut() else {
            return;
        };
        if *top > n {
            *top -= n;
            return;
        }
        n -= *top;
        levels.pop();
    }
}

fn layout(text: &str) -> String {
    let mut lines: Vec<Line> = Vec::new();
    // One entry per indentation level: how many brackets the line that opened it opened.
    let mut levels: Vec<usize> = Vec::new();
    let mut depth: usize = 0;
    let mut stack: Vec<Ctx> = vec![Ctx::Code];
    let mut heredoc: Option<String> = None;
    let mut block_comment = false;
    for raw in text.lines() {
        if let Some(delim) = &heredoc {
            // Heredoc bodies and their closing marker are kept exactly: for `<<-` the marker's
            // indentation takes part in the dedent.
            let done = raw.trim() == delim;
            lines.push(Line {
                text: raw.to_string(),
                depth,
                attr: None,
                verbatim: true,
            });
            if done {
                heredoc = None;
            }
            continue;
        }
        if block_comment {
            lines.push(Line {
                text: raw.trim_end().to_string(),
                depth,
                attr: None,
                verbatim: true,
            });
            if raw.contains("*/") {
                block_comment = false;
            }
            continue;
        }
        let trimmed = raw.trim();
        let in_code = stack.last() == Some(&Ctx::Code);
        let (delta_open, delta_close, starts_heredoc, opens_comment) = scan(trimmed, &mut stack);
        // As `terraform fmt`: a line that opens more brackets than it closes is indented at
        // the current level and indents what follows by one; one that closes more closes
        // that many (whole levels first) and is indented at the level left; `}, {` and
        // `{ a = 1 }` change nothing.
        if in_code && delta_close > delta_open {
            close_brackets(&mut levels, delta_close - delta_open);
            depth = levels.len();
        }
        let indent = depth;
        let attr = if in_code {
            attribute_key_len(trimmed)
        } else {
            None
        };
        let text = if !in_code {
            raw.trim_end().to_string()
        } else if trimmed.is_empty() {
            String::new()
        } else {
            format!(
                "{}{}",
                "  ".repeat(indent),
                normalize_assignment(trimmed, attr)
            )
        };
        lines.push(Line {
            text,
            depth: indent,
            attr: attr.filter(|_| delta_open <= delta_close),
            verbatim: !in_code,
        });
        if delta_open > delta_close {
            levels.push(delta_open - delta_close);
        } else if !in_code {
            close_brackets(&mut levels, delta_close - delta_open);
        }
        depth = levels.len();
        if let Some(d) = starts_heredoc {
            heredoc = Some(d);
        }
        block_comment = opens_comment;
    }
    align(&mut lines);
    let mut out = String::new();
    let mut blank_run = 0;
    for l in &lines {
        if l.text.trim().is_empty() && !l.verbatim {
            blank_run += 1;
            if blank_run > 1 || out.is_empty() {
                continue;
            }
            out.push('\n');
            continue;
        }
        blank_run = 0;
        out.push_str(&l.text);
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// Counts brackets opened and closed outside strings and comments; reports a heredoc start
/// (its delimiter) and an unterminated block comment.
fn scan(line: &str, stack: &mut Vec<Ctx>) -> (usize, usize, Option<String>, bool) {
    let (mut open, mut close) = (0, 0);
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut interp_depth: Vec<usize> = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match stack.last().copied().unwrap_or(Ctx::Code) {
            Ctx::Str => match c {
                '\\' => i += 1,
                '"' => {
                    stack.pop();
                }
                '$' | '%'
                    if chars.get(i + 1) == Some(&'{')
                        && chars.get(i.wrapping_sub(1)) != Some(&c) =>
                {
                    stack.push(Ctx::Interp);
                    interp_depth.push(0);
                    i += 1;
                }
                _ => {}
            },
            ctx @ (Ctx::Code | Ctx::Interp) => match c {
                '#' => break,
                '/' if chars.get(i + 1) == Some(&'/') => break,
                '/' if chars.get(i + 1) == Some(&'*') => {
                    match line[line
                        .char_indices()
                        .nth(i + 2)
                        .map_or(line.len(), |(b, _)| b)..]
                        .find("*/")
                    {
                        Some(end) => {
                            let consumed = line[..]
                                .char_indices()
                                .nth(i + 2)
                                .map_or(line.len(), |(b, _)| b)
                                + end
                                + 2;
                            i = line[..consumed].chars().count();
                            continue;
                        }
                        None => return (open, close, None, true),
                    }
                }
                '"' => stack.push(Ctx::Str),
                '<' if ctx == Ctx::Code && chars.get(i + 1) == Some(&'<') => {
                    let rest: String = chars[i + 2..].iter().collect();
                    let rest = rest.strip_prefix('-').unwrap_or(&rest);
                    let delim: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !delim.is_empty() && rest[delim.len()..].trim().is_empty() {
                        return (open, close, Some(delim), false);
                    }
                }
                '{' | '[' | '(' => {
                    if ctx == Ctx::Interp {
                        if let Some(d) = interp_depth.last_mut() {
                            *d += 1;
                        }
                    } else {
                        open += 1;
                    }
                }
                '}' | ']' | ')' => {
                    if ctx == Ctx::Interp {
                        match interp_depth.last_mut() {
                            Some(0) => {
                                interp_depth.pop();
                                stack.pop();
                            }
                            Some(d) => *d -= 1,
                            None => {}
                        }
                    } else {
                        close += 1;
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    (open, close, None, false)
}

/// Length of the key of a `key = value` line (not `==`), if it is one.
fn attribute_key_len(line: &str) -> Option<usize> {
    let key_end = if let Some(rest) = line.strip_prefix('"') {
        rest.find('"')? + 2
    } else {
        line.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))?
    };
    if key_end == 0 {
        return None;
    }
    let rest = line[key_end..].trim_start();
    (rest.starts_with('=') && !rest.starts_with("==") && !rest.starts_with("=>")).then_some(key_end)
}

fn normalize_assignment(line: &str, key_len: Option<usize>) -> String {
    match key_len {
        Some(k) => {
            let value = line[k..].trim_start()[1..].trim_start();
            format!("{} = {value}", &line[..k])
        }
        None => line.to_string(),
    }
}

/// Pads keys so `=` lines up within runs of attribute lines at the same depth.
fn align(lines: &mut [Line]) {
    let mut i = 0;
    while i < lines.len() {
        if lines[i].attr.is_none() || lines[i].verbatim {
            i += 1;
            continue;
        }
        let depth = lines[i].depth;
        let mut j = i;
        while j < lines.len()
            && lines[j].attr.is_some()
            && lines[j].depth == depth
            && !lines[j].verbatim
        {
            j += 1;
        }
        let width = lines[i..j].iter().filter_map(|l| l.attr).max().unwrap_or(0);
        for l in &mut lines[i..j] {
            let k = l.attr.unwrap_or(0);
            let indent = depth * 2;
            let (key, rest) = l.text.split_at(indent + k);
            l.text = format!("{key}{}{rest}", " ".repeat(width - k));
        }
        i = j.max(i + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_aligns_and_keeps_comments() {
        let input = "# top comment\nresource \"builtin_data\" \"a\" {\ninput=\"x\" # trailing\n    triggers_replace   =   1\n\n\n  nested = {\n  a = \"${upper(\"}\")}\"\n      long_name = 2\n  }\n}\n\n\n";
        let out = format_hcl(input).unwrap();
        assert_eq!(
            out,
            "# top comment\nresource \"builtin_data\" \"a\" {\n  input            = \"x\" # trailing\n  triggers_replace = 1\n\n  nested = {\n    a         = \"${upper(\"}\")}\"\n    long_name = 2\n  }\n}\n"
        );
        assert_eq!(format_hcl(&out).unwrap(), out, "formatting is idempotent");
    }

    #[test]
    fn keeps_heredocs_verbatim() {
        let input =
            "locals {\n    x = <<-EOT\n      keep   this\n        and this\n    EOT\n  y = 1\n}\n";
        let out = format_hcl(input).unwrap();
        assert_eq!(
            out,
            "locals {\n  x = <<-EOT\n      keep   this\n        and this\n    EOT\n  y = 1\n}\n"
        );
    }

    #[test]
    fn brackets_opened_on_one_line_are_one_level() {
        let input = "resource \"x\" \"y\" {\na = [{\n name = 1\n ports = [{ p = 1 }]\n }, {\nname = 2\n}]\nb = merge({\nc = 1\n})\n}\n";
        let out = format_hcl(input).unwrap();
        assert_eq!(
            out,
            "resource \"x\" \"y\" {\n  a = [{\n    name  = 1\n    ports = [{ p = 1 }]\n    }, {\n    name = 2\n  }]\n  b = merge({\n    c = 1\n  })\n}\n"
        );
        // A line opening a multi-line value is not aligned and ends the run before it.
        let out = format_hcl("x {\nname = 1\nnamespace = 2\ndata = {\na = 1\n}\n}\n").unwrap();
        assert_eq!(
            out,
            "x {\n  name      = 1\n  namespace = 2\n  data = {\n    a = 1\n  }\n}\n"
        );
        assert_eq!(format_hcl(&out).unwrap(), out, "formatting is idempotent");
    }

    #[test]
    fn refuses_invalid_input() {
        assert!(format_hcl("a = [1,\n").is_err());
    }
}
