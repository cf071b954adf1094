//! The words of a message: how its text splits into words, and how to
//! write a word so that it comes back whole (`docs/semantics.md`,
//! "Words").
//!
//! - Words are separated by runs of ASCII whitespace (space, tab, CR, LF,
//!   FF), as the words of control messages are. Other whitespace (a
//!   no-break space, say) is part of a word like any other character.
//! - A double quote starts a quoted part, which the next double quote not
//!   escaped ends: inside it, whitespace belongs to the word, and a
//!   backslash escapes the character after it (`\"` is a quote, `\\` a
//!   backslash; before anything else the backslash is dropped). Outside
//!   quotes, a backslash is an ordinary character.
//! - Quoted and plain parts with nothing between them make one word, as in
//!   a shell: `a"b c"d` is `ab cd`; `""` is the empty word.
//! - A quote that is never closed is an error.
//!
//! ```
//! use wink::words::{join, quote, split};
//!
//! assert_eq!(split(r#"name "Ada Byron" Lovelace"#).unwrap(), ["name", "Ada Byron", "Lovelace"]);
//! assert_eq!(quote("Ada Byron"), r#""Ada Byron""#);
//! assert_eq!(quote("plain"), "plain");
//! let words = ["say", "\"hi\" there", ""];
//! assert_eq!(split(&join(words)).unwrap(), words);
//! ```

use std::borrow::Cow;

/// A message whose words cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordsError {
    /// A double quote that is never closed.
    #[error("a quote is not closed: `{0}`")]
    Unclosed(String),
}

/// The next word of `text` and the text after it, or `None` when only
/// whitespace is left. A word without quotes is borrowed from `text`.
pub fn next(text: &str) -> Option<Result<(Cow<'_, str>, &str), WordsError>> {
    let text = text.trim_start_matches(|c: char| c.is_ascii_whitespace());
    if text.is_empty() {
        return None;
    }
    let end = text
        .bytes()
        .position(|b| b.is_ascii_whitespace() || b == b'"')
        .unwrap_or(text.len());
    if text.as_bytes().get(end) != Some(&b'"') {
        // No quote in this word: the common case, no copy.
        let (word, rest) = text.split_at(end);
        return Some(Ok((Cow::Borrowed(word), rest)));
    }
    let mut word = String::with_capacity(text.len().min(64));
    let mut chars = text.char_indices();
    let mut quoted = false;
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => match chars.next() {
                Some((_, escaped)) => word.push(escaped),
                None => break,
            },
            c if c.is_ascii_whitespace() && !quoted => {
                return Some(Ok((Cow::Owned(word), &text[i..])));
            }
            c => word.push(c),
        }
    }
    if quoted {
        return Some(Err(WordsError::Unclosed(cut(text))));
    }
    Some(Ok((Cow::Owned(word), "")))
}

/// Every word of `text`.
pub fn split(text: &str) -> Result<Vec<String>, WordsError> {
    let mut words = Vec::new();
    let mut rest = text;
    while let Some(next) = next(rest) {
        let (word, after) = next?;
        words.push(word.into_owned());
        rest = after;
    }
    Ok(words)
}

/// `word` written so that [`split`] reads it back as one word: as it is
/// when it is not empty and has no whitespace (of any kind) and no double
/// quote, else in double quotes, with `"` and `\` escaped.
pub fn quote(word: &str) -> Cow<'_, str> {
    let plain = !word.is_empty() && !word.chars().any(|c| c.is_whitespace() || c == '"');
    if plain {
        return Cow::Borrowed(word);
    }
    let mut quoted = String::with_capacity(word.len() + 2);
    quoted.push('"');
    for c in word.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    Cow::Owned(quoted)
}

/// `words`, each [`quote`]d, separated by one space.
pub fn join<I, S>(words: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut text = String::new();
    for word in words {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&quote(word.as_ref()));
    }
    text
}

/// At most 64 bytes of `text`, for an error.
fn cut(text: &str) -> String {
    let mut end = text.len().min(64);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if end < text.len() {
        format!("{}…", &text[..end])
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_words_split_on_runs_of_ascii_whitespace() {
        assert_eq!(split(" add\t1  2\n").unwrap(), ["add", "1", "2"]);
        assert!(split("  ").unwrap().is_empty());
    }

    #[test]
    fn quotes_keep_whitespace_and_join_parts() {
        assert_eq!(split(r#""a b"  c"d e"f"#).unwrap(), ["a b", "cd ef"]);
        assert_eq!(split(r#"x "" y"#).unwrap(), ["x", "", "y"]);
        assert_eq!(split(r#""say \"hi\" \\ \n""#).unwrap(), [r#"say "hi" \ n"#]);
    }

    #[test]
    fn a_backslash_outside_quotes_is_itself_and_other_whitespace_is_a_character() {
        assert_eq!(split(r"C:\dir a\").unwrap(), [r"C:\dir", r"a\"]);
        assert_eq!(split("a\u{a0}b c").unwrap(), ["a\u{a0}b", "c"]);
        assert_eq!(quote("a\u{a0}b"), "\"a\u{a0}b\"");
    }

    #[test]
    fn an_unclosed_quote_is_an_error() {
        assert_eq!(
            split(r#"name "Ada"#),
            Err(WordsError::Unclosed(r#""Ada"#.to_owned()))
        );
        assert!(split(r#""trailing \"#).is_err());
    }

    #[test]
    fn next_borrows_plain_words_and_leaves_the_rest() {
        let Some(Ok((word, rest))) = next("  play 3") else {
            panic!()
        };
        assert!(matches!(word, Cow::Borrowed("play")));
        assert_eq!(rest, " 3");
    }

    proptest! {
        #[test]
        fn any_words_quoted_and_split_come_back(words in proptest::collection::vec(".*", 0..8)) {
            prop_assert_eq!(split(&join(&words)).unwrap(), words);
        }

        #[test]
        fn any_text_splits_or_says_why_without_panicking(text in ".*") {
            let _ = split(&text);
        }
    }
}
