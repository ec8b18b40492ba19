//! The `.drv` parser: nom combinators over the ATerm text, with the byte offset of any error.

use std::collections::{BTreeMap, BTreeSet};

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while};
use nom::character::complete::{anychar, char};
use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Parser};

use super::{Derivation, DerivationOutput};
use crate::error::Error;
use crate::path::{StoreDir, StorePath};

/// Why parsing stopped, and where (the rest of the input from that point).
#[derive(Debug)]
struct Fail<'a> {
    rest: &'a str,
    message: String,
}

impl<'a> ParseError<&'a str> for Fail<'a> {
    fn from_error_kind(rest: &'a str, kind: ErrorKind) -> Self {
        Fail { rest, message: format!("unexpected input ({kind:?})") }
    }

    fn append(_: &'a str, _: ErrorKind, other: Self) -> Self {
        other
    }
}

type Res<'a, T> = IResult<&'a str, T, Fail<'a>>;

fn fail<'a, T>(rest: &'a str, message: impl Into<String>) -> Res<'a, T> {
    Err(nom::Err::Failure(Fail { rest, message: message.into() }))
}

/// Matches `t` or fails with "expected `t`".
fn lit<'a>(t: &'static str) -> impl Fn(&'a str) -> Res<'a, ()> {
    move |i: &'a str| match tag::<_, _, Fail<'a>>(t).parse(i) {
        Ok((rest, _)) => Ok((rest, ())),
        Err(_) => fail(i, format!("expected `{t}`")),
    }
}

/// A quoted string with Nix's escapes.
fn string(i: &str) -> Res<'_, String> {
    let (mut rest, ()) = lit("\"")(i)?;
    let mut out = String::new();
    loop {
        let (r, chunk) = take_while::<_, _, Fail<'_>>(|c| c != '"' && c != '\\').parse(rest)?;
        out.push_str(chunk);
        let escape = alt((char::<_, Fail<'_>>('"'), char('\\'))).parse(r);
        match escape {
            Ok((r, '"')) => return Ok((r, out)),
            Ok((r, _)) => match anychar::<_, Fail<'_>>(r) {
                Ok((r, c)) => {
                    out.push(match c {
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        c => c,
                    });
                    rest = r;
                }
                Err(_) => return fail(i, "unterminated string"),
            },
            Err(_) => return fail(i, "unterminated string"),
        }
    }
}

/// A `[...]` list of items separated by commas.
fn list<'a, T>(
    mut item: impl FnMut(&'a str) -> Res<'a, T>,
) -> impl FnMut(&'a str) -> Res<'a, Vec<T>> {
    move |i: &'a str| {
        let (mut rest, ()) = lit("[")(i)?;
        let mut items = Vec::new();
        if let Ok((r, ())) = lit("]")(rest) {
            return Ok((r, items));
        }
        loop {
            let (r, x) = item(rest)?;
            items.push(x);
            if let Ok((r, ())) = lit("]")(r) {
                return Ok((r, items));
            }
            (rest, ()) = lit(",")(r)?;
        }
    }
}

struct DrvParser<'a> {
    full: &'a str,
    dir: &'a StoreDir,
}

impl<'a> DrvParser<'a> {
    fn store_path(&self, i: &'a str) -> Res<'a, StorePath> {
        let (rest, text) = string(i)?;
        match self.dir.parse(&text) {
            Ok(p) => Ok((rest, p)),
            Err(e) => fail(i, e.to_string()),
        }
    }

    fn output(&self, i: &'a str) -> Res<'a, (String, DerivationOutput)> {
        let (i, ()) = lit("(")(i)?;
        let (i, name) = string(i)?;
        let (i, ()) = lit(",")(i)?;
        let (path, path_text) = (i, string(i)?.1);
        let (i, _) = string(i)?;
        let path =
            if path_text.is_empty() { None } else { Some(self.store_path(path).map(|(_, p)| p)?) };
        let (i, ()) = lit(",")(i)?;
        let (i, hash_algo) = string(i)?;
        let (i, ()) = lit(",")(i)?;
        let (i, hash) = string(i)?;
        let (i, ()) = lit(")")(i)?;
        Ok((i, (name, DerivationOutput { path, hash_algo, hash })))
    }

    fn input_drv(&self, i: &'a str) -> Res<'a, (StorePath, Vec<String>)> {
        let (i, ()) = lit("(")(i)?;
        let (i, path) = self.store_path(i)?;
        let (i, ()) = lit(",")(i)?;
        let (i, outputs) = list(string)(i)?;
        let (i, ()) = lit(")")(i)?;
        Ok((i, (path, outputs)))
    }

    fn derivation(&self, i: &'a str) -> Res<'a, Derivation> {
        let (i, ()) = lit("Derive(")(i)?;
        let (i, outputs) = sorted(i, list(|i| self.output(i))(i))?;
        let (i, ()) = lit(",")(i)?;
        let (i, input_drvs) = sorted(i, list(|i| self.input_drv(i))(i))?;
        let (i, ()) = lit(",")(i)?;
        let (i, input_srcs) =
            sorted(i, list(|i| self.store_path(i).map(|(r, p)| (r, (p, ()))))(i))?;
        let (i, ()) = lit(",")(i)?;
        let (i, platform) = string(i)?;
        let (i, ()) = lit(",")(i)?;
        let (i, builder) = string(i)?;
        let (i, ()) = lit(",")(i)?;
        let (i, args) = list(string)(i)?;
        let (i, ()) = lit(",")(i)?;
        let (i, env) = sorted(i, list(pair)(i))?;
        let (i, ()) = lit(")")(i)?;
        let input_drvs =
            input_drvs.into_iter().map(|(k, v)| (k, v.into_iter().collect())).collect();
        let input_srcs: BTreeSet<_> = input_srcs.into_keys().collect();
        Ok((i, Derivation { outputs, input_drvs, input_srcs, platform, builder, args, env }))
    }

    fn offset(&self, rest: &str) -> usize {
        self.full.len() - rest.len()
    }
}

fn pair(i: &str) -> Res<'_, (String, String)> {
    let (i, ()) = lit("(")(i)?;
    let (i, k) = string(i)?;
    let (i, ()) = lit(",")(i)?;
    let (i, v) = string(i)?;
    let (i, ()) = lit(")")(i)?;
    Ok((i, (k, v)))
}

/// Runs a list parser and turns its `(key, value)` items into a map, refusing keys that are not
/// strictly increasing: a `.drv` with unsorted or repeated keys is not one kiln or Nix wrote.
fn sorted<'a, K: Ord, V>(start: &'a str, parsed: Res<'a, Vec<(K, V)>>) -> Res<'a, BTreeMap<K, V>> {
    let (rest, items) = parsed?;
    let mut map = BTreeMap::new();
    for (k, v) in items {
        if map.last_key_value().is_some_and(|(last, _)| *last >= k) {
            return fail(start, "keys are not sorted or are repeated");
        }
        map.insert(k, v);
    }
    Ok((rest, map))
}

/// Parses the text of a `.drv` file whose paths belong to `dir`; `name` is only for errors.
pub fn parse(text: &str, dir: &StoreDir, name: &str) -> Result<Derivation, Error> {
    let p = DrvParser { full: text, dir };
    let fail_at = |rest: &str, message: String| Error::BadDerivation {
        path: name.to_owned(),
        offset: p.offset(rest),
        message,
    };
    match p.derivation(text) {
        Ok(("", drv)) => Ok(drv),
        Ok((rest, _)) => Err(fail_at(rest, "trailing bytes after the derivation".into())),
        Err(nom::Err::Error(f) | nom::Err::Failure(f)) => Err(fail_at(f.rest, f.message)),
        Err(nom::Err::Incomplete(_)) => Err(fail_at("", "unexpected end of file".into())),
    }
}
