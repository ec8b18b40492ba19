//! Data formats: `toJSON`/`fromJSON`, `fromTOML` and `toXML` (also used by `kiln eval --xml`
//! and `--json`).

use std::fmt::Write;
use std::rc::Rc;

use super::plain_entry;
use crate::error::ErrorKind;
use crate::eval::{Evaluator, R, err};
use crate::lower::Param;
use crate::syntax::Span;
use crate::value::{Attrs, Context, NixString, Symbol, Thunk, Value};

/// How deeply `toJSON` (and structured attributes) nest values: CppNix's default
/// `max-call-depth`, which bounds the same there; a smaller `--max-call-depth` lowers it.
const MAX_JSON_DEPTH: usize = 10_000;

// ---- JSON ----

/// Formats a float as nlohmann's JSON writer (used by CppNix) does.
pub(crate) fn json_float(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let k = digits.len() as i32;
    let n = exp.parse::<i32>().unwrap_or(0) + 1;
    let sign = if f < 0.0 { "-" } else { "" };
    let body = if k <= n && n <= 15 {
        format!("{digits}{}.0", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 15 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -4 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let m = if k == 1 { digits.clone() } else { format!("{}.{}", &digits[..1], &digits[1..]) };
        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    };
    format!("{sign}{body}")
}

/// Escapes a string for JSON.
pub(crate) fn json_string(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    // Runs of characters that need no escape are copied whole; every character that does is
    // ASCII, so the run boundaries are character boundaries.
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escaped);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

impl Evaluator {
    /// Writes `v` as JSON, forcing it deeply; string contexts are collected in `ctx`.
    pub fn to_json(
        &mut self,
        v: &Value,
        span: Span,
        ctx: &mut Context,
        copy: bool,
        out: &mut String,
    ) -> R<()> {
        if self.json_nest >= self.opts.max_call_depth.min(MAX_JSON_DEPTH)
            || crate::eval::stack_exhausted()
        {
            return err(ErrorKind::StackOverflow, "stack overflow; max-call-depth exceeded", span);
        }
        self.json_nest += 1;
        let r = self.json_inner(v, span, ctx, copy, out);
        self.json_nest -= 1;
        r
    }

    fn json_inner(
        &mut self,
        v: &Value,
        span: Span,
        ctx: &mut Context,
        copy: bool,
        out: &mut String,
    ) -> R<()> {
        match v {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => out.push_str(&json_float(*f)),
            Value::String(s) => {
                s.merge_ctx_into(ctx);
                json_string(&s.s, out);
            }
            Value::Path(p) => {
                let s = if copy {
                    self.coerce_to_string(v, span, ctx, true, false)?
                } else {
                    p.to_string()
                };
                json_string(&s, out);
            }
            Value::List(l) => {
                out.push('[');
                for (i, t) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let ev = self.force(t)?;
                    self.to_json(&ev, span, ctx, copy, out)?;
                }
                out.push(']');
            }
            Value::Attrs(a) => {
                if a.contains_key(&Symbol::new("__toString")) {
                    let s = self.coerce_to_string(v, span, ctx, copy, false)?;
                    json_string(&s, out);
                    return Ok(());
                }
                if let Some(o) = a.get(&Symbol::new("outPath")) {
                    let ov = self.force(&o.value.clone())?;
                    return self.to_json(&ov, span, ctx, copy, out);
                }
                out.push('{');
                for (i, (k, e)) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_string(k.as_str(), out);
                    out.push(':');
                    let ev = self.force(&e.value.clone())?;
                    self.to_json(&ev, span, ctx, copy, out).map_err(|mut d| {
                        d.frames.push(crate::error::Frame {
                            span: e.pos,
                            message: format!("while evaluating attribute `{k}`"),
                        });
                        d
                    })?;
                }
                out.push('}');
            }
            other => {
                return err(
                    ErrorKind::Type,
                    format!("cannot convert {} to JSON", other.type_desc()),
                    span,
                );
            }
        }
        Ok(())
    }
}

pub(super) fn prim_to_json(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let v = ev.force(&a[0])?;
    let mut ctx = Context::new();
    let mut out = String::new();
    ev.to_json(&v, span, &mut ctx, true, &mut out)?;
    Ok(Value::String(NixString::with_ctx(out, ctx)))
}

/// A Nix value read straight from JSON text, without an intermediate JSON tree.
struct FromJson(Value);

impl<'de> serde::Deserialize<'de> for FromJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<FromJson, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = FromJson;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<FromJson, E> {
        Ok(FromJson(Value::Null))
    }

    fn visit_bool<E>(self, b: bool) -> Result<FromJson, E> {
        Ok(FromJson(Value::Bool(b)))
    }

    fn visit_i64<E>(self, i: i64) -> Result<FromJson, E> {
        Ok(FromJson(Value::Int(i)))
    }

    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<FromJson, E> {
        match i64::try_from(u) {
            Ok(i) => Ok(FromJson(Value::Int(i))),
            Err(_) => Err(E::custom(format!("integer `{u}` does not fit in 64 bits"))),
        }
    }

    fn visit_f64<E>(self, f: f64) -> Result<FromJson, E> {
        Ok(FromJson(Value::Float(f)))
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<FromJson, E> {
        if s.contains('\0') {
            return Err(E::custom("string contains a NUL byte"));
        }
        Ok(FromJson(Value::string(s)))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<FromJson, A::Error> {
        let mut l = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(FromJson(v)) = seq.next_element()? {
            l.push(Thunk::value(v));
        }
        Ok(FromJson(Value::List(Rc::new(l))))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<FromJson, A::Error> {
        let mut a = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if k.contains('\0') {
                return Err(serde::de::Error::custom("attribute name contains a NUL byte"));
            }
            let FromJson(v) = map.next_value()?;
            a.push((Symbol::new(&k), plain_entry(v)));
        }
        // A repeated name keeps its last value, as serde_json's maps do.
        Ok(FromJson(Value::Attrs(Rc::new(Attrs::from_unsorted(a)))))
    }
}

pub(super) fn prim_from_json(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let s = ev.force_string(&a[0], span)?;
    match serde_json::from_str::<FromJson>(&s.s) {
        Ok(FromJson(v)) => Ok(v),
        Err(e) => err(ErrorKind::Invalid, format!("while decoding a JSON string: {e}"), span),
    }
}

// ---- TOML ----

fn from_toml(v: toml::Value, timestamps: bool, span: Span) -> R<Value> {
    Ok(match v {
        toml::Value::String(s) => {
            if s.contains('\0') {
                return err(ErrorKind::Invalid, "while parsing TOML: null byte in string", span);
            }
            Value::string(s)
        }
        toml::Value::Integer(i) => Value::Int(i),
        toml::Value::Float(f) => Value::Float(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => {
            if !timestamps {
                return err(
                    ErrorKind::Invalid,
                    "while parsing TOML: dates and times are not supported (enable the `parse-toml-timestamps` experimental feature)",
                    span,
                );
            }
            let mut a = Attrs::new();
            a.insert(Symbol::new("_type"), plain_entry(Value::string("timestamp")));
            a.insert(
                Symbol::new("value"),
                plain_entry(Value::string(pad_fraction(&d.to_string()))),
            );
            Value::Attrs(Rc::new(a))
        }
        toml::Value::Array(items) => {
            let mut l = Vec::new();
            for i in items {
                l.push(Thunk::value(from_toml(i, timestamps, span)?));
            }
            Value::List(Rc::new(l))
        }
        toml::Value::Table(t) => {
            let mut a = Vec::with_capacity(t.len());
            for (k, v) in t {
                if k.contains('\0') {
                    return err(ErrorKind::Invalid, "while parsing TOML: null byte in key", span);
                }
                a.push((Symbol::new(&k), plain_entry(from_toml(v, timestamps, span)?)));
            }
            let a = Attrs::from_unsorted(a);
            Value::Attrs(Rc::new(a))
        }
    })
}

/// Pads the fraction of a TOML time to milli-, micro- or nanoseconds, as CppNix prints it.
fn pad_fraction(s: &str) -> String {
    let Some(dot) = s.find('.') else { return s.to_string() };
    let digits = s[dot + 1..].bytes().take_while(u8::is_ascii_digit).count();
    let width = digits.div_ceil(3) * 3;
    let end = dot + 1 + digits;
    format!("{}{}{}", &s[..end], "0".repeat(width - digits), &s[end..])
}

pub(super) fn prim_from_toml(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let s = ev.force_string(&a[0], span)?;
    let timestamps = ev.opts.experimental.iter().any(|f| f == "parse-toml-timestamps");
    match s.s.parse::<toml::Table>() {
        Ok(t) => from_toml(toml::Value::Table(t), timestamps, span),
        Err(e) => err(ErrorKind::Invalid, format!("while parsing TOML: {}", e.message()), span),
    }
}

// ---- XML ----

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            '\t' => out.push_str("&#x9;"),
            c => out.push(c),
        }
    }
    out
}

struct XmlWriter {
    out: String,
    indent: usize,
    /// Whether attributes and functions carry `path`, `line` and `column`.
    locations: bool,
    /// Whether values are forced; otherwise unevaluated ones print as `<unevaluated />`.
    strict: bool,
}

impl XmlWriter {
    fn attrs(attrs: &[(&str, String)]) -> String {
        let mut sorted: Vec<&(&str, String)> = attrs.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        sorted.iter().map(|(k, v)| format!(" {k}=\"{}\"", xml_escape(v))).collect()
    }

    fn empty(&mut self, name: &str, attrs: &[(&str, String)]) {
        let _ = writeln!(self.out, "{}<{name}{} />", "  ".repeat(self.indent), Self::attrs(attrs));
    }

    fn open(&mut self, name: &str, attrs: &[(&str, String)]) {
        let _ = writeln!(self.out, "{}<{name}{}>", "  ".repeat(self.indent), Self::attrs(attrs));
        self.indent += 1;
    }

    fn close(&mut self, name: &str) {
        self.indent -= 1;
        let _ = writeln!(self.out, "{}</{name}>", "  ".repeat(self.indent));
    }
}

impl Evaluator {
    /// Renders `v` as CppNix's XML (without source locations), forcing it deeply.
    pub fn to_xml(&mut self, v: &Value, span: Span, ctx: &mut Context) -> R<String> {
        self.to_xml_with(v, span, ctx, false, true)
    }

    /// Renders `v` as XML, with source locations when `locations` is set (`--xml` without
    /// `--no-location`), forcing values only when `strict` is set.
    pub fn to_xml_with(
        &mut self,
        v: &Value,
        span: Span,
        ctx: &mut Context,
        locations: bool,
        strict: bool,
    ) -> R<String> {
        let mut w = XmlWriter {
            out: String::from("<?xml version='1.0' encoding='utf-8'?>\n"),
            indent: 0,
            locations,
            strict,
        };
        w.open("expr", &[]);
        let mut seen = std::collections::HashSet::new();
        self.xml_value(v, span, ctx, &mut w, &mut seen)?;
        w.close("expr");
        Ok(w.out)
    }

    fn xml_force(&mut self, t: &Thunk, w: &XmlWriter) -> R<Option<Value>> {
        if w.strict { self.force(t).map(Some) } else { Ok(t.get()) }
    }

    fn xml_location(&self, span: Span) -> Vec<(&'static str, String)> {
        let f = self.sources.get(span.file);
        let (line, col) = f.line_col(span.start);
        vec![("path", f.name.clone()), ("line", line.to_string()), ("column", col.to_string())]
    }

    fn xml_attrs(
        &mut self,
        a: &Attrs,
        span: Span,
        ctx: &mut Context,
        w: &mut XmlWriter,
        seen: &mut std::collections::HashSet<usize>,
    ) -> R<()> {
        for (k, e) in a.iter() {
            let mut xa = vec![("name", k.to_string())];
            if let Some(pos) = e.pos.filter(|_| w.locations) {
                xa.extend(self.xml_location(pos));
            }
            w.open("attr", &xa);
            let Some(v) = self.xml_force(&e.value, w)? else {
                w.empty("unevaluated", &[]);
                w.close("attr");
                continue;
            };
            self.xml_value(&v, span, ctx, w, seen)?;
            w.close("attr");
        }
        Ok(())
    }

    fn xml_value(
        &mut self,
        v: &Value,
        span: Span,
        ctx: &mut Context,
        w: &mut XmlWriter,
        seen: &mut std::collections::HashSet<usize>,
    ) -> R<()> {
        if self.nest >= crate::eval::MAX_VALUE_DEPTH || crate::eval::stack_exhausted() {
            return err(ErrorKind::StackOverflow, "stack overflow; value nested too deeply", span);
        }
        self.nest += 1;
        let r = self.xml_step(v, span, ctx, w, seen);
        self.nest -= 1;
        r
    }

    fn xml_step(
        &mut self,
        v: &Value,
        span: Span,
        ctx: &mut Context,
        w: &mut XmlWriter,
        seen: &mut std::collections::HashSet<usize>,
    ) -> R<()> {
        match v {
            Value::Null => w.empty("null", &[]),
            Value::Bool(b) => w.empty("bool", &[("value", b.to_string())]),
            Value::Int(i) => w.empty("int", &[("value", i.to_string())]),
            Value::Float(f) => w.empty("float", &[("value", crate::print::format_float(*f))]),
            Value::String(s) => {
                s.merge_ctx_into(ctx);
                w.empty("string", &[("value", s.s.to_string())]);
            }
            Value::Path(p) => w.empty("path", &[("value", p.to_string())]),
            Value::List(l) => {
                w.open("list", &[]);
                for t in l.iter() {
                    let Some(ev) = self.xml_force(t, w)? else {
                        w.empty("unevaluated", &[]);
                        continue;
                    };
                    self.xml_value(&ev, span, ctx, w, seen)?;
                }
                w.close("list");
            }
            Value::Attrs(a) => {
                if self.is_derivation(a)? {
                    let mut xa = Vec::new();
                    let mut drv_path = None;
                    if let Some(e) = a.get(&Symbol::new("drvPath")) {
                        let dv = self.force(&e.value.clone())?;
                        if let Value::String(s) = &dv {
                            s.merge_ctx_into(ctx);
                            xa.push(("drvPath", s.s.to_string()));
                            drv_path = Some(s.s.to_string());
                        }
                    }
                    if let Some(e) = a.get(&Symbol::new("outPath")) {
                        let ov = self.force(&e.value.clone())?;
                        if let Value::String(s) = &ov {
                            s.merge_ctx_into(ctx);
                            xa.push(("outPath", s.s.to_string()));
                        }
                    }
                    w.open("derivation", &xa);
                    let key = Rc::as_ptr(a) as *const u8 as usize;
                    if drv_path.is_some() && !seen.insert(key) {
                        w.empty("repeated", &[]);
                    } else {
                        self.xml_attrs(a, span, ctx, w, seen)?;
                    }
                    w.close("derivation");
                    return Ok(());
                }
                w.open("attrs", &[]);
                self.xml_attrs(a, span, ctx, w, seen)?;
                w.close("attrs");
            }
            Value::Lambda(c) => {
                let xa = if w.locations { self.xml_location(c.def.span) } else { Vec::new() };
                w.open("function", &xa);
                match &c.def.param {
                    Param::Ident(n) => w.empty("varpat", &[("name", n.to_string())]),
                    Param::Formals { entries, ellipsis, bind } => {
                        let mut xa = Vec::new();
                        if *ellipsis {
                            xa.push(("ellipsis", "1".to_string()));
                        }
                        if let Some(b) = bind {
                            xa.push(("name", b.to_string()));
                        }
                        w.open("attrspat", &xa);
                        let mut names: Vec<&Symbol> = entries.iter().map(|e| &e.0).collect();
                        names.sort();
                        for n in names {
                            w.empty("attr", &[("name", n.to_string())]);
                        }
                        w.close("attrspat");
                    }
                }
                w.close("function");
            }
            Value::PrimOp(_) | Value::PrimOpApp(_) => w.empty("unevaluated", &[]),
        }
        Ok(())
    }
}

pub(super) fn prim_to_xml(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let v = ev.force(&a[0])?;
    let mut ctx = Context::new();
    let s = ev.to_xml(&v, span, &mut ctx)?;
    Ok(Value::String(NixString::with_ctx(s, ctx)))
}

#[cfg(test)]
mod tests {
    use super::json_float;

    #[test]
    fn json_floats_match_nlohmann() {
        for (f, s) in [
            (1.44, "1.44"),
            (1.0, "1.0"),
            (1e20, "1e+20"),
            (0.001, "0.001"),
            (-2.5, "-2.5"),
            (1e-5, "1e-05"),
        ] {
            assert_eq!(json_float(f), s);
        }
    }
}
