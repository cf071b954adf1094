//! Machine names: which program a machine runs, and which instance it is.
//!
//! A [`MachineName`] is `package/executable` with an optional `#tag`:
//! `family/Child`, `family/Child#Alice`. The server runs the binary
//! `<served dir>/<package>/<executable>`; the tag tells apart several
//! machines running the same binary.
//!
//! The package, the executable and the tag are each one or more characters
//! from `A-Z a-z 0-9 _ . + -`, are not `.` or `..`, and do not start with
//! `-`. So a name can never be an absolute path, climb out of the served
//! directory, hide a NUL or whitespace, or be taken for a command-line
//! option.
//!
//! ```
//! use wink::name::MachineName;
//!
//! let name: MachineName = "family/Child#Alice".parse()?;
//! assert_eq!(name.package(), "family");
//! assert_eq!(name.executable(), "Child");
//! assert_eq!(name.tag(), Some("Alice"));
//! assert_eq!(name.binary_path(), std::path::Path::new("family/Child"));
//! assert_eq!(name.log_file_name(), "family_Child#Alice.log");
//!
//! let err = "../etc/passwd".parse::<MachineName>().unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "machine name `../etc/passwd`: expected `package/executable[#tag]` \
//!      (two segments separated by one `/`), found 3 segments"
//! );
//! # Ok::<(), wink::name::NameError>(())
//! ```

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The longest machine name, in bytes: its log file name
/// ([`MachineName::log_file_name`]) then fits the 255 bytes of a file name.
pub const MAX_NAME_LEN: usize = 250;

/// A machine's name: `package/executable` with an optional `#tag`.
///
/// Parse one with [`str::parse`]; [`Display`](fmt::Display) gives back the
/// same text.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct MachineName {
    package: String,
    executable: String,
    tag: Option<String>,
}

impl MachineName {
    /// The package: the folder of the served directory the binary is in
    /// (`family` in `family/Child#Alice`).
    pub fn package(&self) -> &str {
        &self.package
    }

    /// The executable: the binary's file name (`Child` in
    /// `family/Child#Alice`).
    pub fn executable(&self) -> &str {
        &self.executable
    }

    /// The tag, if any (`Alice` in `family/Child#Alice`).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The binary's path relative to the served directory: `family/Child`.
    /// Always exactly two normal components.
    pub fn binary_path(&self) -> PathBuf {
        [self.package.as_str(), self.executable.as_str()]
            .iter()
            .collect()
    }

    /// The same name without its tag: `family/Child#Alice` → `family/Child`.
    #[must_use]
    pub fn without_tag(&self) -> Self {
        Self {
            tag: None,
            ..self.clone()
        }
    }

    /// A file name for this machine's log: the `/` becomes `_`, and `.log`
    /// is added: `family/Child#Alice` → `family_Child#Alice.log`,
    /// `family/Parent` → `family_Parent.log`.
    ///
    /// It never contains `/`, is never `.` or `..`, and never starts with
    /// `-`. Because `_` may also appear inside a segment, two names can share
    /// a log file (`a_b/c` and `a/b_c` both give `a_b_c.log`).
    pub fn log_file_name(&self) -> String {
        match &self.tag {
            Some(tag) => format!("{}_{}#{tag}.log", self.package, self.executable),
            None => format!("{}_{}.log", self.package, self.executable),
        }
    }
}

impl fmt::Display for MachineName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.package, self.executable)?;
        if let Some(tag) = &self.tag {
            write!(f, "#{tag}")?;
        }
        Ok(())
    }
}

/// A part of a [`MachineName`], named in [`NameError`]s.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Part {
    /// The text before the `/`.
    Package,
    /// The text after the `/` (and before any `#`).
    Executable,
    /// The text after the `#`.
    Tag,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Package => "package",
            Self::Executable => "executable",
            Self::Tag => "tag",
        })
    }
}

/// Why a text is not a [`MachineName`]. Each message names the text (with
/// control characters escaped) and the rule it breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The text is empty.
    #[error("machine name is empty (expected `package/executable[#tag]`, e.g. `family/Child`)")]
    Empty,
    /// The text is longer than [`MAX_NAME_LEN`] bytes.
    #[error(
        "machine name `{}…` is {len} bytes long; at most {MAX_NAME_LEN} are allowed",
        .start.escape_debug()
    )]
    TooLong {
        /// Its first 32 characters.
        start: String,
        /// Its length in bytes.
        len: usize,
    },
    /// The text starts with `/`.
    #[error(
        "machine name `{}`: must be relative to the served directory, not start with `/`",
        .input.escape_debug()
    )]
    Absolute {
        /// The text given.
        input: String,
    },
    /// Two `/` in a row, or a `/` at the end.
    #[error("machine name `{}`: has an empty segment (`//` or a trailing `/`)", .input.escape_debug())]
    EmptySegment {
        /// The text given.
        input: String,
    },
    /// Not exactly one `/`.
    #[error(
        "machine name `{}`: expected `package/executable[#tag]` (two segments separated by one `/`), found {segments} segment{}",
        .input.escape_debug(), if *.segments == 1 { "" } else { "s" }
    )]
    SegmentCount {
        /// The text given.
        input: String,
        /// How many `/`-separated segments it has.
        segments: usize,
    },
    /// The package, executable or tag is empty (`family/#Alice`, `family/Child#`).
    #[error("machine name `{}`: the {part} is empty", .input.escape_debug())]
    EmptyPart {
        /// The text given.
        input: String,
        /// Which part is empty.
        part: Part,
    },
    /// The package, executable or tag is `.` or `..`.
    #[error("machine name `{}`: the {part} may not be `{text}`", .input.escape_debug())]
    DotPart {
        /// The text given.
        input: String,
        /// Which part.
        part: Part,
        /// `.` or `..`.
        text: String,
    },
    /// A character outside `A-Z a-z 0-9 _ . + -`.
    #[error(
        "machine name `{}`: the {part} contains {}, but only `A-Z a-z 0-9 _ . + -` are allowed",
        .input.escape_debug(), describe(*.character)
    )]
    BadCharacter {
        /// The text given.
        input: String,
        /// Which part.
        part: Part,
        /// The first character not allowed.
        character: char,
    },
    /// The package, executable or tag starts with `-`, which would look
    /// like a command-line option.
    #[error("machine name `{}`: the {part} may not start with `-`", .input.escape_debug())]
    LeadingDash {
        /// The text given.
        input: String,
        /// Which part.
        part: Part,
    },
}

/// `'x'`, or for characters that do not print, a description.
fn describe(c: char) -> String {
    match c {
        '\0' => "NUL".to_owned(),
        c if c.is_whitespace() => format!("whitespace ({})", c.escape_unicode()),
        c if c.is_control() => format!("a control character ({})", c.escape_unicode()),
        c => format!("`{c}`"),
    }
}

fn is_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-')
}

fn check_part(input: &str, part: Part, text: &str) -> Result<(), NameError> {
    if text.is_empty() {
        return Err(NameError::EmptyPart {
            input: input.to_owned(),
            part,
        });
    }
    if text == "." || text == ".." {
        return Err(NameError::DotPart {
            input: input.to_owned(),
            part,
            text: text.to_owned(),
        });
    }
    if let Some(character) = text.chars().find(|&c| !is_allowed(c)) {
        return Err(NameError::BadCharacter {
            input: input.to_owned(),
            part,
            character,
        });
    }
    if text.starts_with('-') {
        return Err(NameError::LeadingDash {
            input: input.to_owned(),
            part,
        });
    }
    Ok(())
}

impl FromStr for MachineName {
    type Err = NameError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(NameError::Empty);
        }
        if input.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong {
                start: input.chars().take(32).collect(),
                len: input.len(),
            });
        }
        if input.starts_with('/') {
            return Err(NameError::Absolute {
                input: input.to_owned(),
            });
        }
        let segments: Vec<&str> = input.split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(NameError::EmptySegment {
                input: input.to_owned(),
            });
        }
        let [package, last] = segments[..] else {
            return Err(NameError::SegmentCount {
                input: input.to_owned(),
                segments: segments.len(),
            });
        };
        let (executable, tag) = match last.split_once('#') {
            Some((executable, tag)) => (executable, Some(tag)),
            None => (last, None),
        };
        check_part(input, Part::Package, package)?;
        check_part(input, Part::Executable, executable)?;
        if let Some(tag) = tag {
            check_part(input, Part::Tag, tag)?;
        }
        Ok(Self {
            package: package.to_owned(),
            executable: executable.to_owned(),
            tag: tag.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::{Component, Path};

    fn ok(text: &str) -> MachineName {
        match text.parse() {
            Ok(name) => name,
            Err(err) => panic!("`{text}` should parse: {err}"),
        }
    }

    fn err(text: &str) -> NameError {
        match text.parse::<MachineName>() {
            Ok(name) => panic!("`{text}` should not parse, got {name}"),
            Err(err) => err,
        }
    }

    #[test]
    fn package_and_executable_parse() {
        let name = ok("family/Child");
        assert_eq!(name.package(), "family");
        assert_eq!(name.executable(), "Child");
        assert_eq!(name.tag(), None);
    }

    #[test]
    fn tag_follows_hash() {
        let name = ok("family/Child#Alice");
        assert_eq!(name.executable(), "Child");
        assert_eq!(name.tag(), Some("Alice"));
    }

    #[test]
    fn all_allowed_characters_parse() {
        let name = ok("a-Z_0.9+/x..y#T-1.+_");
        assert_eq!(name.package(), "a-Z_0.9+");
        assert_eq!(name.executable(), "x..y");
        assert_eq!(name.tag(), Some("T-1.+_"));
    }

    #[test]
    fn display_gives_back_the_text() {
        for text in ["family/Child", "family/Child#Alice", "a/b#c"] {
            assert_eq!(ok(text).to_string(), text);
        }
    }

    #[test]
    fn binary_path_is_package_then_executable() {
        assert_eq!(
            ok("family/Child#Alice").binary_path(),
            Path::new("family/Child")
        );
    }

    #[test]
    fn without_tag_drops_only_the_tag() {
        assert_eq!(ok("family/Child#Alice").without_tag(), ok("family/Child"));
        assert_eq!(ok("family/Child").without_tag(), ok("family/Child"));
    }

    #[test]
    fn log_file_name_replaces_slash_and_adds_log() {
        assert_eq!(
            ok("family/Child#Alice").log_file_name(),
            "family_Child#Alice.log"
        );
        assert_eq!(ok("family/Parent").log_file_name(), "family_Parent.log");
    }

    #[test]
    fn empty_text_is_refused() {
        assert_eq!(err(""), NameError::Empty);
    }

    #[test]
    fn absolute_path_is_refused() {
        assert_eq!(
            err("/bin/sh").to_string(),
            "machine name `/bin/sh`: must be relative to the served directory, not start with `/`"
        );
    }

    #[test]
    fn empty_segments_are_refused() {
        for text in ["family//Child", "family/", "family/Child/", "a//"] {
            assert!(
                matches!(err(text), NameError::EmptySegment { .. }),
                "{text}"
            );
        }
    }

    #[test]
    fn one_or_three_segments_are_refused() {
        assert_eq!(
            err("family").to_string(),
            "machine name `family`: expected `package/executable[#tag]` \
             (two segments separated by one `/`), found 1 segment"
        );
        assert!(matches!(
            err("a/b/c"),
            NameError::SegmentCount { segments: 3, .. }
        ));
        assert!(matches!(
            err("a/b#c/d"),
            NameError::SegmentCount { segments: 3, .. }
        ));
    }

    #[test]
    fn dot_and_dot_dot_are_refused() {
        assert_eq!(
            err("../Child").to_string(),
            "machine name `../Child`: the package may not be `..`"
        );
        assert!(matches!(
            err("family/."),
            NameError::DotPart {
                part: Part::Executable,
                ..
            }
        ));
        assert!(matches!(
            err("family/Child#.."),
            NameError::DotPart {
                part: Part::Tag,
                ..
            }
        ));
    }

    #[test]
    fn empty_executable_or_tag_is_refused() {
        assert_eq!(
            err("family/#Alice"),
            NameError::EmptyPart {
                input: "family/#Alice".into(),
                part: Part::Executable
            }
        );
        assert_eq!(
            err("family/Child#").to_string(),
            "machine name `family/Child#`: the tag is empty"
        );
    }

    #[test]
    fn nul_is_refused_and_escaped_in_the_message() {
        assert_eq!(
            err("family/Ch\0ild").to_string(),
            "machine name `family/Ch\\0ild`: the executable contains NUL, \
             but only `A-Z a-z 0-9 _ . + -` are allowed"
        );
    }

    #[test]
    fn whitespace_backslash_and_others_are_refused() {
        for (text, part, character) in [
            ("fam ily/Child", Part::Package, ' '),
            ("family/Child\n", Part::Executable, '\n'),
            ("family/Child#Al ice", Part::Tag, ' '),
            ("a\\b/c", Part::Package, '\\'),
            ("C:/x", Part::Package, ':'),
            ("a#x/b", Part::Package, '#'),
            ("a/b#c#d", Part::Tag, '#'),
            ("a/é", Part::Executable, 'é'),
        ] {
            assert_eq!(
                err(text),
                NameError::BadCharacter {
                    input: text.into(),
                    part,
                    character
                },
                "{text:?}"
            );
        }
        assert_eq!(
            err("fam ily/Child").to_string(),
            "machine name `fam ily/Child`: the package contains whitespace (\\u{20}), \
             but only `A-Z a-z 0-9 _ . + -` are allowed"
        );
    }

    #[test]
    fn leading_dash_is_refused() {
        assert_eq!(
            err("family/-rf").to_string(),
            "machine name `family/-rf`: the executable may not start with `-`"
        );
        assert!(matches!(
            err("-x/y"),
            NameError::LeadingDash {
                part: Part::Package,
                ..
            }
        ));
        assert!(matches!(
            err("x/y#-z"),
            NameError::LeadingDash {
                part: Part::Tag,
                ..
            }
        ));
    }

    fn part() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_.+][A-Za-z0-9_.+-]{0,11}".prop_filter("not . or ..", |s| s != "." && s != "..")
    }

    fn valid_name() -> impl Strategy<Value = String> {
        (part(), part(), proptest::option::of(part())).prop_map(|(p, e, t)| match t {
            Some(t) => format!("{p}/{e}#{t}"),
            None => format!("{p}/{e}"),
        })
    }

    fn check_accepted(name: &MachineName) -> Result<(), TestCaseError> {
        let path = name.binary_path();
        let components: Vec<Component<'_>> = path.components().collect();
        prop_assert_eq!(components.len(), 2);
        prop_assert!(components.iter().all(|c| matches!(c, Component::Normal(_))));
        let file = name.log_file_name();
        prop_assert!(!file.contains('/'));
        prop_assert!(!file.starts_with('-'));
        prop_assert_eq!(Path::new(&file).components().count(), 1);
        prop_assert_eq!(name.to_string().parse::<MachineName>(), Ok(name.clone()));
        Ok(())
    }

    proptest! {
        #[test]
        fn valid_names_round_trip(text in valid_name()) {
            let name = text.parse::<MachineName>();
            prop_assert!(name.is_ok(), "{:?}: {:?}", text, name);
            if let Ok(name) = name {
                prop_assert_eq!(name.to_string(), text);
                check_accepted(&name)?;
            }
        }

        #[test]
        fn parse_never_panics(text in any::<String>()) {
            if let Ok(name) = text.parse::<MachineName>() {
                check_accepted(&name)?;
            }
        }

        #[test]
        fn name_like_text_is_safe_when_accepted(text in "[a.#/\\-_+ \\\\\0]{0,12}") {
            if let Ok(name) = text.parse::<MachineName>() {
                check_accepted(&name)?;
            }
        }
    }
}
