//! YAML text to a raw config struct, with errors that name the field.
//!
//! serde-saphyr gives the position of an error; serde_path_to_error, wrapped around
//! serde-saphyr's deserializer, gives the path of the field being read when it happened
//! (`hosts[1].port`). A missing field or a repeated key is an error about its mapping, so its
//! name is added to the mapping's path. A syntax error stops the parser before it reaches the
//! field (it reads a token ahead), so there the field is the last one in the text before the
//! error, which is valid YAML up to that point (`last_field`).
//!
//! serde-saphyr reads a [`serde_saphyr::Spanned`] value as a mapping `{value, referenced,
//! defined}`, so every spanned field adds a `value` key to the path; those are dropped. (No
//! field of orch's files is called `value`.)

use std::fmt;
use std::path::Path;

use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_path_to_error::Segment;
use serde_saphyr::{Error, Location, MessageFormatter, UserMessageFormatter};

use super::{ConfigError, Problem};

/// Parses `text` into `T`; `file` names the file in the problem.
pub fn load<T: DeserializeOwned>(text: &str, file: &Path) -> Result<T, ConfigError> {
    let options = serde_saphyr::options! { with_snippet: false };
    let mut path = None;
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = Some(field_path(e.path()));
            e.into_inner()
        })
    });
    parsed.map_err(|err| {
        let field = match (&err, path, err.location()) {
            (Error::SerdeMissingField { field, .. }, Some(map), _) => join_field(&map, field),
            (Error::DuplicateMappingKey { key: Some(key), .. }, Some(map), _) => {
                join_field(&map, key)
            }
            (e, _, Some(at)) if is_syntax(e) => last_field(text, at),
            (_, field, _) => field.unwrap_or_default(),
        };
        ConfigError {
            problems: vec![problem(&err, field, file)],
        }
    })
}

/// Whether the text holds no YAML at all, which deserves a clearer word than "unexpected end".
pub fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#')
    })
}

fn problem(err: &Error, field: String, file: &Path) -> Problem {
    let (line, column) = err
        .location()
        .map_or((0, 0), |l| (l.line() as usize, l.column() as usize));
    Problem {
        file: file.to_path_buf(),
        line,
        column,
        field,
        message: message(err),
    }
}

/// Whether the parser rejected the text itself (before any field's value was handed over).
fn is_syntax(err: &Error) -> bool {
    matches!(
        err,
        Error::ExternalMessage { .. } | Error::IndentationError { .. } | Error::Eof { .. }
    )
}

/// The path of the last value in the text before `at`: the field a syntax error at `at` is in.
/// The part of the error's line before it is kept where it still parses (`key: [a, b` is
/// cut to `key:`, so the error is named after `key`).
fn last_field(text: &str, at: Location) -> String {
    let (line, column) = (at.line() as usize, at.column() as usize);
    let whole_lines: String = text
        .lines()
        .take(line.saturating_sub(1))
        .flat_map(|l| [l, "\n"])
        .collect();
    let partial: String = text
        .lines()
        .nth(line.saturating_sub(1))
        .unwrap_or("")
        .chars()
        .take(column.saturating_sub(1))
        .collect();
    [format!("{whole_lines}{partial}"), whole_lines]
        .iter()
        .find_map(|prefix| {
            let mut last = String::new();
            let seed = LastSeed {
                path: String::new(),
                last: &mut last,
            };
            serde_saphyr::with_deserializer_from_str(prefix, |de| seed.deserialize(de)).ok()?;
            Some(last)
        })
        .unwrap_or_default()
}

/// Reads any YAML, leaving in `last` the path of the last value it read.
struct LastSeed<'a> {
    path: String,
    last: &'a mut String,
}

impl<'de> DeserializeSeed<'de> for LastSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl LastSeed<'_> {
    fn leaf<E>(self) -> Result<(), E> {
        *self.last = self.path;
        Ok(())
    }
}

impl<'de> Visitor<'de> for LastSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.leaf()
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.leaf()
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.leaf()
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.leaf()
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.leaf()
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.leaf()
    }

    fn visit_none<E>(self) -> Result<(), E> {
        self.leaf()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let LastSeed { path, last } = self;
        last.clone_from(&path);
        let mut i = 0;
        while seq
            .next_element_seed(LastSeed {
                path: format!("{path}[{i}]"),
                last: &mut *last,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let LastSeed { path, last } = self;
        last.clone_from(&path);
        while let Some(Key(key)) = map.next_key()? {
            map.next_value_seed(LastSeed {
                path: join_field(&path, &key),
                last: &mut *last,
            })?;
        }
        Ok(())
    }
}

/// A mapping key of any scalar type, as written.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar key")
    }

    fn visit_str<E>(self, s: &str) -> Result<Key, E> {
        Ok(Key(s.to_string()))
    }

    fn visit_bool<E>(self, b: bool) -> Result<Key, E> {
        Ok(Key(b.to_string()))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Key, E> {
        Ok(Key(n.to_string()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Key, E> {
        Ok(Key(n.to_string()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Key, E> {
        Ok(Key(n.to_string()))
    }
}

/// The key under which serde-saphyr hands a spanned value to its visitor.
const SPANNED_VALUE: &str = "value";

/// `hosts[1].port` from serde_path_to_error's segments.
fn field_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } if key == SPANNED_VALUE => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out = join_field(&out, key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

fn message(err: &Error) -> String {
    let message = match err {
        Error::Unexpected {
            expected: "string scalar",
            ..
        } => "expected a single value, not a list or mapping".into(),
        Error::Unexpected {
            expected: "sequence start",
            ..
        } => "expected a list (`[a, b]` or lines starting with `- `)".into(),
        Error::Unexpected {
            expected: "mapping start",
            ..
        } => "expected a mapping (`key: value` lines)".into(),
        _ => UserMessageFormatter.format_message(err),
    };
    let mut message: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut words = message.split(|c: char| !c.is_ascii_alphabetic());
    if words.any(|w| w == "tab" || w == "tabs") {
        message.push_str(" (YAML indentation must use spaces, not tabs)");
    }
    message
}

fn join_field(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_saphyr::Spanned;

    use super::*;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "the fields are only read by serde")]
    struct Host {
        name: Spanned<String>,
        port: Option<Spanned<u16>>,
        roles: Option<Vec<Spanned<String>>>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "the fields are only read by serde")]
    struct File {
        hosts: Vec<Host>,
        extra: Option<BTreeMap<String, Spanned<u16>>>,
    }

    fn field(text: &str) -> String {
        let e = load::<File>(text, Path::new("f.yaml")).unwrap_err();
        e.problems[0].field.clone()
    }

    #[test]
    fn errors_name_the_field_they_concern() {
        assert_eq!(field("hosts:\n  - {name: a, port: x}\n"), "hosts[0].port");
        assert_eq!(
            field("hosts:\n  - name: a\n  - name: b\n    bogus: 1\n"),
            "hosts[1].bogus"
        );
        assert_eq!(field("hosts:\n  - port: 1\n"), "hosts[0].name");
        assert_eq!(field("hosts:\n  - name: a\n    name: b\n"), "hosts[0].name");
        assert_eq!(
            field("hosts:\n  - name: a\n    roles: [x, [y]]\n"),
            "hosts[0].roles[1]"
        );
        assert_eq!(field("hosts: []\nextra:\n  k: -1\n"), "extra.k");
    }

    #[test]
    fn syntax_errors_are_named_from_the_text_before_them() {
        assert_eq!(
            field("hosts:\n  - name: a\n    roles: [x\n"),
            "hosts[0].roles"
        );
        assert_eq!(field("hosts:\n\t- name: a\n"), "hosts");
    }
}
