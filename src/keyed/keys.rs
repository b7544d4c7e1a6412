//! The keys a get asks for, nested as its result is: dask's
//! `get(dsk, [['x'], 'y'])`, which gives `((1,), 2)`.

use serde_json::Value;

use crate::key::{Key, KeyId};
use crate::Error;

/// Which keys a [`get_with`](crate::keyed::get_with) (or
/// [`get_many`](crate::keyed::get_many)) returns: one key, whose result
/// is its output, or a list of `Keys`, whose result is the JSON array of
/// theirs, nested as deep as you like.
///
/// Made from a key (`"x"`, a `String`), from arrays, `Vec`s and slices of
/// anything that makes `Keys`, or from JSON (`["x", ["y", "z"]]`).
///
/// # Examples
///
/// ```
/// use delayed::keyed::Keys;
///
/// let one = Keys::from("x");
/// let nested = Keys::list([Keys::from(["x"]), Keys::from("y")]);
/// assert_eq!(nested.to_string(), r#"[["x"],"y"]"#);
/// let from_json = Keys::try_from(&serde_json::json!([["x"], "y"])).unwrap();
/// assert_eq!(from_json, nested);
/// assert_ne!(one, nested);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    /// The keys in order, with the lists marked around them: flat, so that
    /// no walk over them recurses.
    tokens: Vec<Token>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    Key(String),
    Start,
    End,
}

impl Keys {
    /// One key.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(delayed::keyed::Keys::key("x"), "x".into());
    /// ```
    pub fn key(key: impl Into<String>) -> Keys {
        Keys {
            tokens: vec![Token::Key(key.into())],
        }
    }

    /// A list of keys (or of lists): its result is a JSON array.
    ///
    /// # Examples
    ///
    /// ```
    /// use delayed::keyed::Keys;
    ///
    /// let keys = Keys::list([Keys::key("a"), Keys::list(["b", "c"])]);
    /// assert_eq!(keys.to_string(), r#"["a",["b","c"]]"#);
    /// ```
    pub fn list<K: Into<Keys>>(items: impl IntoIterator<Item = K>) -> Keys {
        let mut tokens = vec![Token::Start];
        for item in items {
            tokens.extend(item.into().tokens);
        }
        tokens.push(Token::End);
        Keys { tokens }
    }

    /// The keys in order, lists marked.
    pub(crate) fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// The keys, in order, without the lists.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.tokens
            .iter()
            .filter_map(|token| match token {
                Token::Key(key) => Some(key.as_str()),
                _ => None,
            })
            .collect()
    }
}

impl std::fmt::Display for Keys {
    /// The keys as JSON.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for token in &self.tokens {
            if !first && token != &Token::End {
                f.write_str(",")?;
            }
            first = token == &Token::Start;
            match token {
                Token::Key(key) => write!(f, "{}", Value::from(key.as_str()))?,
                Token::Start => f.write_str("[")?,
                Token::End => f.write_str("]")?,
            }
        }
        Ok(())
    }
}

impl From<&str> for Keys {
    fn from(key: &str) -> Keys {
        Keys::key(key)
    }
}

impl From<String> for Keys {
    fn from(key: String) -> Keys {
        Keys::key(key)
    }
}

impl From<&String> for Keys {
    fn from(key: &String) -> Keys {
        Keys::key(key.as_str())
    }
}

impl<K: Into<Keys>> From<Vec<K>> for Keys {
    fn from(items: Vec<K>) -> Keys {
        Keys::list(items)
    }
}

impl<K: Into<Keys>, const N: usize> From<[K; N]> for Keys {
    fn from(items: [K; N]) -> Keys {
        Keys::list(items)
    }
}

impl<K: Into<Keys> + Clone> From<&[K]> for Keys {
    fn from(items: &[K]) -> Keys {
        Keys::list(items.iter().cloned())
    }
}

impl<K: Into<Keys> + Clone, const N: usize> From<&[K; N]> for Keys {
    fn from(items: &[K; N]) -> Keys {
        Keys::list(items.iter().cloned())
    }
}

impl TryFrom<&Value> for Keys {
    type Error = Error;

    /// Keys from JSON: a string is a key, an array a list.
    ///
    /// # Errors
    ///
    /// Anything else, as an [`Error`] for which
    /// [`is_invalid`](Error::is_invalid) holds.
    fn try_from(value: &Value) -> Result<Keys, Error> {
        enum Step<'a> {
            Visit(&'a Value),
            End,
        }
        let mut tokens = Vec::new();
        let mut steps = vec![Step::Visit(value)];
        while let Some(step) = steps.pop() {
            match step {
                Step::End => tokens.push(Token::End),
                Step::Visit(Value::String(key)) => tokens.push(Token::Key(key.clone())),
                Step::Visit(Value::Array(items)) => {
                    tokens.push(Token::Start);
                    steps.push(Step::End);
                    steps.extend(items.iter().rev().map(Step::Visit));
                }
                Step::Visit(other) => {
                    return Err(Error::invalid(
                        Key::new("keys", KeyId::Custom("keys".into())),
                        format!(
                            "keys are strings or lists of keys, not `{}`",
                            super::json::short(other)
                        ),
                    ))
                }
            }
        }
        Ok(Keys { tokens })
    }
}
