//! HCL's whitespace rules for templates: strip markers (`%{~ ... ~}`, `${~ ... ~}`) and the
//! indentation of `<<-` heredocs, applied as HCL applies them.
//!
//! HCL sees a template as a stream of tokens in source order, with every literal cut into
//! lines (each line's text ends with its newline). A strip marker trims whitespace from the
//! one literal line next to it, so `~}` at the end of a line removes the rest of that line
//! and its newline, never the next line's indentation. A `<<-` heredoc then removes the
//! smallest indentation of the lines that start a line (counted after stripping, so a line
//! whose newline a marker removed no longer starts one, and a line start a marker emptied
//! counts as unindented), inside `for` and `if` bodies too.
//! [`normalize`] returns a copy of a template with both done and its strip markers cleared,
//! which evaluates like any other.

use flotilla_syntax::hcl_edit::template::{Directive, Element, Strip, Template};

/// Whether a template has strip markers anywhere (else it evaluates as it is).
pub fn has_strip_markers(t: &Template) -> bool {
    t.iter().any(|el| match el {
        Element::Literal(_) => false,
        Element::Interpolation(i) => i.strip != Strip::None,
        Element::Directive(d) => match d.as_ref() {
            Directive::If(dir) => {
                dir.if_expr.strip != Strip::None
                    || dir.endif_expr.strip != Strip::None
                    || dir
                        .else_expr
                        .as_ref()
                        .is_some_and(|e| e.strip != Strip::None || has_strip_markers(&e.template))
                    || has_strip_markers(&dir.if_expr.template)
            }
            Directive::For(dir) => {
                dir.for_expr.strip != Strip::None
                    || dir.endfor_expr.strip != Strip::None
                    || has_strip_markers(&dir.for_expr.template)
            }
        },
    })
}

/// One token of the flattened template.
enum Tok<'a> {
    /// A literal element (all of its lines).
    Lit(&'a mut String),
    /// An interpolation or directive part: whether it strips before and after itself.
    Marker { before: bool, after: bool },
}

fn marker<'a>(strip: Strip) -> Tok<'a> {
    Tok::Marker {
        before: strip.strip_start(),
        after: strip.strip_end(),
    }
}

/// The tokens of `t` in source order, clearing strip markers as it goes.
fn flatten<'a>(t: &'a mut Template, out: &mut Vec<Tok<'a>>) {
    for el in t.iter_mut() {
        match el {
            Element::Literal(l) => out.push(Tok::Lit(l.as_mut())),
            Element::Interpolation(i) => {
                out.push(marker(i.strip));
                i.strip = Strip::None;
            }
            Element::Directive(d) => match d.as_mut() {
                Directive::If(dir) => {
                    out.push(marker(dir.if_expr.strip));
                    dir.if_expr.strip = Strip::None;
                    flatten(&mut dir.if_expr.template, out);
                    if let Some(e) = &mut dir.else_expr {
                        out.push(marker(e.strip));
                        e.strip = Strip::None;
                        flatten(&mut e.template, out);
                    }
                    out.push(marker(dir.endif_expr.strip));
                    dir.endif_expr.strip = Strip::None;
                }
                Directive::For(dir) => {
                    out.push(marker(dir.for_expr.strip));
                    dir.for_expr.strip = Strip::None;
                    flatten(&mut dir.for_expr.template, out);
                    out.push(marker(dir.endfor_expr.strip));
                    dir.endfor_expr.strip = Strip::None;
                }
            },
        }
    }
}

/// `text` cut after each newline: `"a\nb"` → `["a\n", "b"]`.
fn lines(text: &str) -> Vec<String> {
    text.split_inclusive('\n').map(str::to_string).collect()
}

/// A copy of `t` with strip markers applied line by line and, for a `<<-` heredoc
/// (`flush`), the common indentation removed; its strip markers are cleared.
pub fn normalize(t: &Template, flush: bool) -> Template {
    let mut copy = t.clone();
    let mut toks = Vec::new();
    flatten(&mut copy, &mut toks);
    // Each literal as its lines, trimmed by the markers next to it.
    let mut parts: Vec<Option<Vec<String>>> = Vec::with_capacity(toks.len());
    for (i, tok) in toks.iter().enumerate() {
        let Tok::Lit(text) = tok else {
            parts.push(None);
            continue;
        };
        let mut segs = lines(text);
        let after_prev = i > 0 && matches!(toks[i - 1], Tok::Marker { after: true, .. });
        let before_next = matches!(toks.get(i + 1), Some(Tok::Marker { before: true, .. }));
        if after_prev && let Some(first) = segs.first_mut() {
            *first = first.trim_start().to_string();
        }
        if before_next && let Some(last) = segs.last_mut() {
            *last = last.trim_end().to_string();
        }
        parts.push(Some(segs));
    }
    if flush {
        dedent(&toks, &mut parts);
    }
    for (tok, segs) in toks.into_iter().zip(parts) {
        if let (Tok::Lit(text), Some(segs)) = (tok, segs) {
            *text = segs.concat();
        }
    }
    copy
}

/// Removes the smallest indentation of the line-starting segments from each of them.
fn dedent(toks: &[Tok<'_>], parts: &mut [Option<Vec<String>>]) {
    let indent = |s: &str| s.chars().take_while(|c| *c == ' ' || *c == '\t').count();
    // Which segments start a line: the first of the template, and any after a newline.
    let mut starts: Vec<(usize, usize)> = Vec::new();
    let mut at_start = true;
    for (i, tok) in toks.iter().enumerate() {
        match (tok, &parts[i]) {
            (Tok::Lit(_), Some(segs)) => {
                for (j, seg) in segs.iter().enumerate() {
                    if at_start {
                        starts.push((i, j));
                    }
                    if !seg.is_empty() {
                        at_start = seg.ends_with('\n');
                    } else if j > 0 || !at_start {
                        at_start = false;
                    }
                }
            }
            _ => at_start = false,
        }
    }
    let min = starts
        .iter()
        .filter_map(|&(i, j)| {
            let seg = &parts[i].as_ref()?[j];
            // Empty lines say nothing about indentation; a line's start that a strip marker
            // emptied counts as no indentation at all (as HCL has it).
            (seg != "\n" && seg != "\r\n").then(|| indent(seg))
        })
        .min()
        .unwrap_or(0);
    if min == 0 {
        return;
    }
    for (i, j) in starts {
        if let Some(seg) = parts[i].as_mut().and_then(|segs| segs.get_mut(j)) {
            let cut: usize = seg
                .chars()
                .take(min)
                .take_while(|c| *c == ' ' || *c == '\t')
                .map(char::len_utf8)
                .sum();
            seg.drain(..cut);
        }
    }
}
