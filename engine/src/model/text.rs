//! A readable rendering of the model for the admin page: each type with its kind, fields,
//! indexes, relations and affinity.

use super::types::{FieldDef, IndexDef, RelationDef, TypeDef};
use std::fmt::Write;

/// Renders the types in declaration order.
pub(super) fn render<'a>(types: impl Iterator<Item = &'a TypeDef>) -> String {
    let mut out = String::new();
    for (i, t) in types.enumerate() {
        if i > 0 {
            out.push('\n');
        }
        render_type(&mut out, t);
    }
    out
}

fn render_type(out: &mut String, t: &TypeDef) {
    let _ = write!(out, "{} {}", t.kind.as_str(), t.name);
    if let Some(doc) = &t.doc {
        let _ = write!(out, " -- {doc}");
    }
    out.push('\n');
    for f in &t.fields {
        render_field(out, f);
    }
    if !t.indexes.is_empty() {
        out.push_str("  indexes:\n");
        for ix in &t.indexes {
            render_index(out, ix);
        }
    }
    if !t.relations.is_empty() {
        out.push_str("  relations:\n");
        for r in &t.relations {
            render_relation(out, r);
        }
    }
    if !t.affinity.is_empty() {
        let _ = writeln!(out, "  affinity: {}", t.affinity.join(", "));
    }
}

fn render_field(out: &mut String, f: &FieldDef) {
    let _ = write!(out, "  {}: {}", f.name, f.ty);
    if f.optional {
        out.push_str(" (optional)");
    }
    if let Some(d) = &f.default {
        let _ = write!(out, " = {d}");
    }
    if let Some(func) = &f.default_function {
        let _ = write!(out, " = {func}()");
    }
    if f.auto_increment {
        out.push_str(" (auto_increment)");
    }
    if let Some(doc) = &f.doc {
        let _ = write!(out, " -- {doc}");
    }
    out.push('\n');
}

fn render_index(out: &mut String, ix: &IndexDef) {
    let parts: Vec<String> = ix
        .parts
        .iter()
        .map(|p| {
            let path = match p.array_at.filter(|a| *a < p.path.len()) {
                Some(a) => format!("{}[*]{}", p.path[..=a].join("."), rest(&p.path[a + 1..])),
                None => p.dotted(),
            };
            let null = if p.nullable { "?" } else { "" };
            format!("{path} {}{null}", p.kind.as_str())
        })
        .collect();
    let mut flags = Vec::new();
    if ix.primary {
        flags.push("primary".to_string());
    }
    if ix.multikey {
        flags.push("multikey".to_string());
    }
    if ix.collation != super::types::Collation::Binary {
        flags.push(ix.collation.as_str().to_string());
    }
    let flags = if flags.is_empty() { String::new() } else { format!(" ({})", flags.join(", ")) };
    let _ = writeln!(out, "    {}{flags}: {}", ix.name, parts.join(", "));
}

fn rest(path: &[String]) -> String {
    path.iter().map(|s| format!(".{s}")).collect()
}

fn render_relation(out: &mut String, r: &RelationDef) {
    let count = if r.many { "many" } else { "one" };
    let _ =
        write!(out, "    {} -> {} ({count}): {} = {}", r.name, r.to, r.from_fields.join(", "), r.to_fields.join(", "));
    if let Some(ix) = &r.to_index {
        let _ = write!(out, " [index {ix}]");
    }
    out.push('\n');
}
