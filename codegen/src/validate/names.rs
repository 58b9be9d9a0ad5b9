//! Single names: Rust keywords and reserved model names, snake_case and UpperCamelCase, SQL
//! identifiers, and the length of names given or derived. (Names that must differ from
//! each other are checked in `clashes`.)

use heck::{ToSnakeCase, ToUpperCamelCase};

use super::context::Validator;
use crate::parse::Pos;

/// Longest table, column or join-table name (PostgreSQL's identifier limit).
pub const MAX_SQL_IDENTIFIER: usize = 63;
/// Longest model, field, primary key or related name. Names become Rust identifiers, SQL
/// names and parts of cache keys: with these limits every key (`<namespace>:<Model>:<digest>:
/// uq.<field>_id#<sha-256>` at worst) fits memcached's 250 bytes.
pub const MAX_NAME_LEN: usize = 63;
/// Rust keywords (strict, reserved and edition-2024 ones): not usable as names.
pub const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate", "do", "dyn", "else",
    "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro", "match", "mod",
    "move", "mut", "override", "priv", "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait",
    "true", "try", "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];
/// Model names that would shadow Rust prelude names in the generated code.
pub const RESERVED_MODEL_NAMES: &[&str] = &["Box", "Err", "None", "Ok", "Option", "Result", "Some", "String", "Vec"];

impl Validator<'_> {
    /// Checks a table, column or join-table name given in the schema; returns whether valid.
    pub(super) fn check_sql_name(&mut self, name: &str, pos: Pos, what: &str) -> bool {
        let well_formed = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let message = if !well_formed {
            format!("invalid {what} name `{name}`")
        } else if name.len() > MAX_SQL_IDENTIFIER {
            format!(
                "{what} name `{name}` is longer than {MAX_SQL_IDENTIFIER} characters ({})",
                name.len()
            )
        } else {
            return true;
        };
        self.err("schema::invalid_name", pos, message, "invalid name").set_help(format!(
            "{what} names are SQL identifiers: ASCII letters, digits and `_`, not starting with a digit, at most {MAX_SQL_IDENTIFIER} characters"
        ));
        false
    }

    /// Reports a name the generator derives (a table, column or join table) that is longer than
    /// SQL allows; `what` describes it, `fix` says how to avoid it.
    pub(super) fn check_derived_length(&mut self, name: &str, pos: Pos, what: &str, fix: &str) {
        if name.len() > MAX_SQL_IDENTIFIER {
            self.err(
                "schema::invalid_name",
                pos,
                format!("{what} is longer than {MAX_SQL_IDENTIFIER} characters ({})", name.len()),
                "derived name too long",
            )
            .set_help(format!(
                "{fix} (SQL names have at most {MAX_SQL_IDENTIFIER} characters; PostgreSQL would silently truncate it)"
            ));
        }
    }

    /// Checks a snake_case Rust name (field, related_name, primary key); returns whether valid.
    pub(super) fn check_snake_name(&mut self, name: &str, pos: Pos, what: &str) -> bool {
        if RUST_KEYWORDS.contains(&name) {
            self.err(
                "schema::reserved_name",
                pos,
                format!("{what} `{name}` is a Rust keyword"),
                "Rust keyword",
            )
            .set_help(format!(
                "choose another name; the column can keep this one with `column: {name}`"
            ));
            return false;
        }
        if is_snake_case(name) && name.len() > MAX_NAME_LEN {
            self.err(
                "schema::invalid_name",
                pos,
                format!(
                    "{what} `{name}` is too long ({} characters; at most {MAX_NAME_LEN})",
                    name.len()
                ),
                "too long",
            )
            .set_help("names become Rust identifiers, SQL names and parts of cache keys: use a shorter one");
            return false;
        }
        if !is_snake_case(name) {
            let suggestion = name.to_snake_case();
            let help = if is_snake_case(&suggestion) && !RUST_KEYWORDS.contains(&suggestion.as_str()) {
                format!(
                    "did you mean `{suggestion}`? names are snake_case: lowercase ASCII letters, digits and single `_` between words"
                )
            } else {
                "names are snake_case: lowercase ASCII letters, digits and single `_` between words, starting with a letter".to_string()
            };
            self.err(
                "schema::invalid_name",
                pos,
                format!("{what} `{name}` is not a snake_case identifier"),
                "not snake_case",
            )
            .set_help(help);
            return false;
        }
        true
    }

    /// Checks a model name: not a Rust keyword or prelude name, UpperCamelCase, not too long.
    /// Returns whether names may be derived from it (UpperCamelCase and not too long).
    pub(super) fn check_model_name(&mut self, name: &str, name_pos: Pos) -> bool {
        if RUST_KEYWORDS.contains(&name) {
            self.err(
                "schema::reserved_name",
                name_pos,
                format!("model name `{name}` is a Rust keyword"),
                "Rust keyword",
            )
            .set_help("choose another name (the table can keep any name with `table:`)");
        } else if RESERVED_MODEL_NAMES.contains(&name) {
            self.err(
                "schema::reserved_name",
                name_pos,
                format!("model name `{name}` is reserved: it would shadow a Rust prelude name"),
                "reserved name",
            )
            .set_help(format!(
                "reserved model names: {}; the table can keep the name with `table:`",
                RESERVED_MODEL_NAMES.join(", ")
            ));
        } else if !is_upper_camel_case(name) {
            let suggestion = name.to_upper_camel_case();
            let help = if is_upper_camel_case(&suggestion) {
                format!(
                    "did you mean `{suggestion}`? model names are UpperCamelCase: ASCII letters and digits, starting with an uppercase letter"
                )
            } else {
                "model names are UpperCamelCase: ASCII letters and digits, starting with an uppercase letter (e.g. `Person`)".to_string()
            };
            self.err(
                "schema::invalid_name",
                name_pos,
                format!("model name `{name}` is not UpperCamelCase"),
                "not UpperCamelCase",
            )
            .set_help(help);
        } else if name.len() > MAX_NAME_LEN {
            self.err(
                "schema::invalid_name",
                name_pos,
                format!(
                    "model name `{name}` is too long ({} characters; at most {MAX_NAME_LEN})",
                    name.len()
                ),
                "too long",
            )
            .set_help("model names become Rust types, table names and parts of cache keys: use a shorter one");
        }
        is_upper_camel_case(name) && name.len() <= MAX_NAME_LEN
    }
}

/// Whether `name` is snake_case: lowercase ASCII letters, digits and single `_` between words.
fn is_snake_case(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.contains("__")
        && !name.ends_with('_')
}

/// Whether `name` is UpperCamelCase: ASCII letters and digits, starting with an uppercase letter.
fn is_upper_camel_case(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && name.chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_snake_case("order_in_series"));
        assert!(is_snake_case("isbn13"));
        assert!(!is_snake_case("Title"));
        assert!(!is_snake_case("a__b"));
        assert!(!is_snake_case("a_"));
        assert!(!is_snake_case("_a"));
        assert!(!is_snake_case(""));
        assert!(is_upper_camel_case("BookReview"));
        assert!(!is_upper_camel_case("book"));
        assert!(!is_upper_camel_case("Book_Review"));
    }
}
