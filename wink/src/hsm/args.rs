//! Typed receiver arguments, parsed from the words of a message.

use std::fmt::Display;
use std::str::FromStr;

use super::ReceiveError;

/// The words of a message after its name, handed out one parameter at a
/// time. Generated receivers use it; each typed parameter takes one word
/// (parsed with [`FromStr`]), and a last `&str` parameter takes the rest of
/// the text as it was written.
#[derive(Debug, Clone)]
pub struct Args<'a> {
    receiver: &'static str,
    rest: &'a str,
}

impl<'a> Args<'a> {
    /// The words of `text` for the receiver called `receiver`: for a named
    /// receiver, the text after the message name; for an empty receiver,
    /// the whole message.
    pub fn new(receiver: &'static str, text: &'a str) -> Self {
        Args {
            receiver,
            rest: text,
        }
    }

    /// Parses the next word as parameter `argument`.
    #[inline]
    pub fn next<T>(&mut self, argument: &'static str) -> Result<T, ReceiveError>
    where
        T: FromStr,
        T::Err: Display,
    {
        // The common case first: a plain word, parsed where it lies.
        let text = skip_whitespace(self.rest);
        let end = text
            .bytes()
            .position(|b| b.is_ascii_whitespace() || b == b'"')
            .unwrap_or(text.len());
        if text.as_bytes().get(end) == Some(&b'"') {
            return self.next_quoted(argument);
        }
        let (word, rest) = text.split_at(end);
        if word.is_empty() {
            return Err(self.missing(argument));
        }
        self.rest = rest;
        match word.parse() {
            Ok(value) => Ok(value),
            Err(e) => Err(self.bad(argument, word, &e)),
        }
    }

    /// [`Args::next`] for a word with quotes in it.
    #[cold]
    fn next_quoted<T>(&mut self, argument: &'static str) -> Result<T, ReceiveError>
    where
        T: FromStr,
        T::Err: Display,
    {
        let Some(word) = self.word(argument)? else {
            return Err(self.missing(argument));
        };
        self.parse(argument, &word)
    }

    #[cold]
    fn missing(&self, argument: &'static str) -> ReceiveError {
        ReceiveError::MissingArgument {
            receiver: self.receiver,
            argument,
        }
    }

    #[cold]
    fn bad(&self, argument: &'static str, word: &str, e: &dyn Display) -> ReceiveError {
        ReceiveError::BadArgument {
            receiver: self.receiver,
            argument,
            text: word.to_owned(),
            reason: e.to_string(),
        }
    }

    /// Parses the next word as parameter `argument`, if there is one
    /// (an `Option<T>` parameter).
    pub fn optional<T>(&mut self, argument: &'static str) -> Result<Option<T>, ReceiveError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.word(argument)? {
            Some(word) => self.parse(argument, &word).map(Some),
            None => Ok(None),
        }
    }

    /// Parses every word left as parameter `argument` (a `Vec<T>`
    /// parameter).
    pub fn all<T>(&mut self, argument: &'static str) -> Result<Vec<T>, ReceiveError>
    where
        T: FromStr,
        T::Err: Display,
    {
        let mut all = Vec::new();
        while let Some(word) = self.word(argument)? {
            all.push(self.parse(argument, &word)?);
        }
        Ok(all)
    }

    /// The next word (by the quoting rule of [`crate::words`]), if any.
    fn word(
        &mut self,
        argument: &'static str,
    ) -> Result<Option<std::borrow::Cow<'a, str>>, ReceiveError> {
        match crate::words::next(self.rest) {
            None => Ok(None),
            Some(Ok((word, rest))) => {
                self.rest = rest;
                Ok(Some(word))
            }
            Some(Err(e)) => Err(ReceiveError::BadWords {
                receiver: self.receiver,
                argument,
                reason: e.to_string(),
            }),
        }
    }

    fn parse<T>(&self, argument: &'static str, word: &str) -> Result<T, ReceiveError>
    where
        T: FromStr,
        T::Err: Display,
    {
        word.parse()
            .map_err(|e: T::Err| self.bad(argument, word, &e))
    }

    /// The rest of the text, without its leading and trailing whitespace.
    pub fn rest(&mut self) -> &'a str {
        std::mem::take(&mut self.rest).trim()
    }

    /// Checks that every word was used.
    #[inline]
    pub fn finish(self) -> Result<(), ReceiveError> {
        if self.rest.bytes().all(|b| b.is_ascii_whitespace()) {
            Ok(())
        } else {
            Err(self.extra())
        }
    }

    #[cold]
    fn extra(&self) -> ReceiveError {
        ReceiveError::ExtraArguments {
            receiver: self.receiver,
            text: skip_whitespace(self.rest).trim_end().to_owned(),
        }
    }
}

/// `text` from its first non-whitespace byte (ASCII whitespace never splits
/// a UTF-8 character, so bytes are safe and faster than chars).
#[inline]
pub(crate) fn skip_whitespace(text: &str) -> &str {
    let start = text
        .bytes()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_words_parse_in_order() {
        let mut args = Args::new("add", " 1  -2");
        assert_eq!(args.next::<i64>("a"), Ok(1));
        assert_eq!(args.next::<i64>("b"), Ok(-2));
        assert_eq!(args.finish(), Ok(()));
    }

    #[test]
    fn bad_word_names_receiver_argument_and_text() {
        let mut args = Args::new("add", " one 2");
        let err = args.next::<i64>("a").unwrap_err();
        assert_eq!(
            err.to_string(),
            "receiver `add`: argument `a` cannot be `one`: invalid digit found in string"
        );
    }

    #[test]
    fn missing_and_extra_words_are_errors() {
        let mut args = Args::new("add", " 1");
        assert_eq!(args.next::<i64>("a"), Ok(1));
        assert_eq!(
            args.next::<i64>("b"),
            Err(ReceiveError::MissingArgument {
                receiver: "add",
                argument: "b"
            })
        );
        let mut args = Args::new("add", " 1 2 3");
        let _ = args.next::<i64>("a");
        let _ = args.next::<i64>("b");
        assert_eq!(
            args.finish(),
            Err(ReceiveError::ExtraArguments {
                receiver: "add",
                text: "3".into()
            })
        );
    }

    #[test]
    fn rest_keeps_inner_spacing() {
        let mut args = Args::new("errored", " family/Child  it  broke ");
        assert_eq!(args.next::<String>("child").as_deref(), Ok("family/Child"));
        assert_eq!(args.rest(), "it  broke");
        assert_eq!(args.finish(), Ok(()));
    }

    #[test]
    fn quoted_words_are_one_argument() {
        let mut args = Args::new("name", r#" "Ada Byron" Lovelace"#);
        assert_eq!(args.next::<String>("first").as_deref(), Ok("Ada Byron"));
        assert_eq!(args.next::<String>("last").as_deref(), Ok("Lovelace"));
        assert_eq!(args.finish(), Ok(()));
        let mut args = Args::new("name", r#" "Ada"#);
        assert_eq!(
            args.next::<String>("first").unwrap_err().to_string(),
            "receiver `name`: argument `first`: a quote is not closed: `\"Ada`"
        );
    }

    #[test]
    fn optional_and_repeated_arguments_take_what_is_there() {
        let mut args = Args::new("volume", " 3");
        assert_eq!(args.optional::<u8>("level"), Ok(Some(3)));
        assert_eq!(args.optional::<u8>("more"), Ok(None));
        let mut args = Args::new("sum", r#" 1 "2" 3"#);
        assert_eq!(args.all::<i64>("terms"), Ok(vec![1, 2, 3]));
        assert_eq!(args.finish(), Ok(()));
        let mut args = Args::new("sum", " 1 x");
        assert!(args.all::<i64>("terms").is_err());
    }

    #[test]
    fn empty_receivers_see_the_whole_message() {
        let mut args = Args::new("any", "hello there");
        assert_eq!(args.rest(), "hello there");
    }
}
