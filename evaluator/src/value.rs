//! Runtime values of the evaluator: interned attribute names ([`Symbol`]), lazily evaluated
//! [`Thunk`]s, strings with their contexts and the [`Value`] enum itself.
//!
//! Values are shared through `Rc` and never deep-copied; a thunk is evaluated at most once and
//! afterwards holds its value, so every holder of the thunk sees the same result.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::rc::Rc;

use crate::lower::{Expr, LambdaDef};
use crate::syntax::Span;

/// Every name interned so far, shared by all threads so that equal names are one pointer.
static INTERNER: std::sync::Mutex<
    Option<rustc_hash::FxHashMap<&'static str, &'static SymbolData>>,
> = std::sync::Mutex::new(None);

/// An interned attribute or variable name. Equal names share one allocation (the interner is
/// one for the process), so equality is a pointer comparison; ordering is by the text, as Nix
/// orders attribute names, and mostly decided by the first eight bytes kept beside it.
///
/// Names live as long as the process: they are few (the identifiers and attribute names a
/// program mentions or computes), and a symbol that is a plain pointer, copied instead of
/// reference-counted, makes attribute sets cheap to copy, which `//` does all the time.
#[derive(Clone, Copy)]
pub struct Symbol(&'static SymbolData);

/// The text of a symbol and its first eight bytes as a big-endian number (zero-padded), which
/// orders names as their text does wherever the two differ.
pub struct SymbolData {
    key: u64,
    text: &'static str,
}

impl Symbol {
    /// Interns `name`.
    pub fn new(name: &str) -> Symbol {
        let mut set = INTERNER.lock().unwrap_or_else(|e| e.into_inner());
        let set = set.get_or_insert_with(Default::default);
        if let Some(existing) = set.get(name) {
            return Symbol(existing);
        }
        let text: &'static str = Box::leak(Box::<str>::from(name));
        let mut prefix = [0u8; 8];
        let n = text.len().min(8);
        prefix[..n].copy_from_slice(&text.as_bytes()[..n]);
        let data: &'static SymbolData =
            Box::leak(Box::new(SymbolData { key: u64::from_be_bytes(prefix), text }));
        set.insert(text, data);
        Symbol(data)
    }

    /// The text of the name.
    pub fn as_str(&self) -> &'static str {
        self.0.text
    }
}

impl PartialEq for Symbol {
    fn eq(&self, other: &Symbol) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for Symbol {}

impl PartialOrd for Symbol {
    fn partial_cmp(&self, other: &Symbol) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Symbol {
    fn cmp(&self, other: &Symbol) -> std::cmp::Ordering {
        if std::ptr::eq(self.0, other.0) {
            return std::cmp::Ordering::Equal;
        }
        self.0
            .key
            .cmp(&other.0.key)
            .then_with(|| self.0.text.as_bytes().cmp(other.0.text.as_bytes()))
    }
}

impl std::hash::Hash for Symbol {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::ptr::hash(self.0, state)
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.text)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.text)
    }
}

/// One element of a string's context: what a string depends on in the store.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContextElem {
    /// A plain store path (`"${./file}"` or `builtins.storePath`).
    Opaque(String),
    /// The whole closure of a derivation's outputs (`drvPath` of a derivation).
    DrvDeep(String),
    /// One output of a derivation: (derivation path, output name).
    Built(String, String),
}

/// A string context: the set of store paths a string refers to.
pub type Context = BTreeSet<ContextElem>;

/// A Nix string: text plus an optional context.
#[derive(Clone, Debug)]
pub struct NixString {
    /// The characters.
    pub s: Rc<str>,
    /// The context, `None` when empty.
    pub ctx: Option<Rc<Context>>,
}

impl NixString {
    /// A string without context.
    pub fn plain(s: impl Into<Rc<str>>) -> NixString {
        NixString { s: s.into(), ctx: None }
    }

    /// A string with the given context (dropped when empty).
    pub fn with_ctx(s: impl Into<Rc<str>>, ctx: Context) -> NixString {
        let ctx = if ctx.is_empty() { None } else { Some(Rc::new(ctx)) };
        NixString { s: s.into(), ctx }
    }

    /// Whether the context is empty.
    pub fn has_ctx(&self) -> bool {
        self.ctx.as_ref().is_some_and(|c| !c.is_empty())
    }

    /// Adds this string's context to `into`.
    pub fn merge_ctx_into(&self, into: &mut Context) {
        if let Some(c) = &self.ctx {
            into.extend(c.iter().cloned());
        }
    }
}

/// The state of a thunk.
pub(crate) enum ThunkState {
    /// Not evaluated yet: an expression and its environment.
    Pending(Rc<Expr>, Rc<Env>),
    /// A function application that is deferred (used by builtins such as `map`).
    Apply(Value, Thunk, Option<Thunk>),
    /// Being evaluated right now; entering it again is infinite recursion.
    Blackhole,
    /// Evaluation failed; forcing again gives the same error (CppNix memoises errors too).
    Failed(Box<crate::error::Diagnostic>),
    /// Evaluated.
    Done(Value),
}

/// A lazily evaluated value, shared between all its holders.
#[derive(Clone)]
pub struct Thunk(pub(crate) Rc<RefCell<ThunkState>>);

impl Thunk {
    /// A thunk that already holds a value.
    pub fn value(v: Value) -> Thunk {
        Thunk(Rc::new(RefCell::new(ThunkState::Done(v))))
    }

    pub(crate) fn pending(e: Rc<Expr>, env: Rc<Env>) -> Thunk {
        Thunk(Rc::new(RefCell::new(ThunkState::Pending(e, env))))
    }

    pub(crate) fn apply(f: Value, arg: Thunk) -> Thunk {
        Thunk(Rc::new(RefCell::new(ThunkState::Apply(f, arg, None))))
    }

    pub(crate) fn apply2(f: Value, a: Thunk, b: Thunk) -> Thunk {
        Thunk(Rc::new(RefCell::new(ThunkState::Apply(f, a, Some(b)))))
    }

    /// The value if the thunk has been evaluated.
    pub fn get(&self) -> Option<Value> {
        match &*self.0.borrow() {
            ThunkState::Done(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// Identity of the thunk, for printing `«repeated»`.
    pub(crate) fn ptr(&self) -> usize {
        Rc::as_ptr(&self.0) as *const u8 as usize
    }
}

/// The slots of a frame: a function's argument is kept in the frame itself, without another
/// allocation.
pub(crate) type Slots = smallvec::SmallVec<[Thunk; 2]>;

/// A runtime environment frame: the slots of one static scope, or the namespace of a `with`.
pub struct Env {
    pub(crate) slots: RefCell<Slots>,
    pub(crate) parent: Option<Rc<Env>>,
    /// Set for frames made by `with`: the namespace expression's thunk.
    pub(crate) with: Option<Thunk>,
}

impl Env {
    pub(crate) fn new(slots: impl Into<Slots>, parent: Option<Rc<Env>>) -> Rc<Env> {
        let slots = slots.into();
        Rc::new(Env { slots: RefCell::new(slots), parent, with: None })
    }
}

/// An attribute value together with the position where it was defined.
#[derive(Clone)]
pub struct AttrEntry {
    /// The value.
    pub value: Thunk,
    /// Where the attribute was defined, if known.
    pub pos: Option<Span>,
}

/// An attribute set: its entries in a vector sorted by name, as CppNix keeps them. Lookups are
/// binary searches; copying a set (which `//` does) is one allocation and a copy of its entries,
/// with no tree to rebuild; sets are built by collecting and sorting once.
#[derive(Clone, Default)]
pub struct Attrs {
    entries: Vec<(Symbol, AttrEntry)>,
}

impl Attrs {
    /// An empty set.
    pub fn new() -> Attrs {
        Attrs { entries: Vec::new() }
    }

    /// An empty set with room for `n` entries.
    pub fn with_capacity(n: usize) -> Attrs {
        Attrs { entries: Vec::with_capacity(n) }
    }

    /// A set of `entries` in any order; where a name repeats, the last entry wins.
    pub fn from_unsorted(mut entries: Vec<(Symbol, AttrEntry)>) -> Attrs {
        if !entries.is_sorted_by(|a, b| a.0 < b.0) {
            // Stable, so equal names stay in input order and the last one is kept below.
            entries.sort_by_key(|a| a.0);
            let mut out: Vec<(Symbol, AttrEntry)> = Vec::with_capacity(entries.len());
            for e in entries {
                match out.last_mut() {
                    Some(last) if last.0 == e.0 => *last = e,
                    _ => out.push(e),
                }
            }
            entries = out;
        }
        Attrs { entries }
    }

    /// The number of attributes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set has no attributes.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn find(&self, name: &Symbol) -> Result<usize, usize> {
        // Small sets (most of them: function arguments, derivation attributes) are scanned
        // comparing pointers; only a missing name needs the text to say where it would go.
        if self.entries.len() <= 8 {
            if let Some(i) = self.entries.iter().position(|(k, _)| k == name) {
                return Ok(i);
            }
            return Err(self.entries.partition_point(|(k, _)| k < name));
        }
        self.entries.binary_search_by(|(k, _)| k.cmp(name))
    }

    /// The attribute called `name`.
    pub fn get(&self, name: &Symbol) -> Option<&AttrEntry> {
        self.find(name).ok().map(|i| &self.entries[i].1)
    }

    /// Whether the set has an attribute called `name`.
    pub fn contains_key(&self, name: &Symbol) -> bool {
        self.find(name).is_ok()
    }

    /// Sets `name` to `entry`, returning the entry it replaces. Costs a shift of the entries
    /// after it: build big sets with [`Attrs::from_unsorted`] or `collect` instead.
    pub fn insert(&mut self, name: Symbol, entry: AttrEntry) -> Option<AttrEntry> {
        match self.find(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, entry)),
            Err(i) => {
                self.entries.insert(i, (name, entry));
                None
            }
        }
    }

    /// Removes the attribute called `name`.
    pub fn remove(&mut self, name: &Symbol) -> Option<AttrEntry> {
        self.find(name).ok().map(|i| self.entries.remove(i).1)
    }

    /// Keeps the attributes for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Symbol, &AttrEntry) -> bool) {
        self.entries.retain(|(k, e)| keep(k, e))
    }

    /// The attributes in name order.
    pub fn iter(&self) -> AttrsIter<'_> {
        AttrsIter(self.entries.iter())
    }

    /// The names in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &Symbol> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The entries in name order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &AttrEntry> + ExactSizeIterator {
        self.entries.iter().map(|(_, e)| e)
    }

    /// `self // other`: the union of both sets, `other` winning where both have a name, in one
    /// merge of the two sorted vectors.
    pub fn update(&self, other: &Attrs) -> Attrs {
        let (a, b) = (&self.entries, &other.entries);
        let mut out = Vec::with_capacity(a.len() + b.len());
        if b.len() * 8 < a.len() {
            // A few names into a big set: find each one's place by binary search and copy the
            // runs between them whole, instead of comparing every name.
            let mut rest = &a[..];
            for e in b {
                let at = rest.partition_point(|(k, _)| *k < e.0);
                out.extend_from_slice(&rest[..at]);
                out.push(e.clone());
                let skip = usize::from(rest.get(at).is_some_and(|(k, _)| *k == e.0));
                rest = &rest[at + skip..];
            }
            out.extend_from_slice(rest);
            return Attrs { entries: out };
        }
        if a.len() * 8 < b.len() {
            let mut rest = &b[..];
            for e in a {
                let at = rest.partition_point(|(k, _)| *k < e.0);
                out.extend_from_slice(&rest[..at]);
                if rest.get(at).is_some_and(|(k, _)| *k == e.0) {
                    out.push(rest[at].clone());
                    rest = &rest[at + 1..];
                } else {
                    out.push(e.clone());
                    rest = &rest[at..];
                }
            }
            out.extend_from_slice(rest);
            return Attrs { entries: out };
        }
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].0.cmp(&b[j].0) {
                std::cmp::Ordering::Less => {
                    out.push(a[i].clone());
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push(b[j].clone());
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push(b[j].clone());
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        Attrs { entries: out }
    }
}

/// The attributes of a set in name order.
#[derive(Clone)]
pub struct AttrsIter<'a>(std::slice::Iter<'a, (Symbol, AttrEntry)>);

impl<'a> Iterator for AttrsIter<'a> {
    type Item = (&'a Symbol, &'a AttrEntry);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, e)| (k, e))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for AttrsIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, e)| (k, e))
    }
}

impl ExactSizeIterator for AttrsIter<'_> {}

impl<'a> IntoIterator for &'a Attrs {
    type Item = (&'a Symbol, &'a AttrEntry);
    type IntoIter = AttrsIter<'a>;

    fn into_iter(self) -> AttrsIter<'a> {
        self.iter()
    }
}

impl IntoIterator for Attrs {
    type Item = (Symbol, AttrEntry);
    type IntoIter = std::vec::IntoIter<(Symbol, AttrEntry)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl FromIterator<(Symbol, AttrEntry)> for Attrs {
    /// Where a name repeats, the last entry wins, as when inserting one by one.
    fn from_iter<I: IntoIterator<Item = (Symbol, AttrEntry)>>(iter: I) -> Attrs {
        Attrs::from_unsorted(iter.into_iter().collect())
    }
}

impl Extend<(Symbol, AttrEntry)> for Attrs {
    /// Where a name repeats, the last entry wins, as when inserting one by one.
    fn extend<I: IntoIterator<Item = (Symbol, AttrEntry)>>(&mut self, iter: I) {
        let mut entries = std::mem::take(&mut self.entries);
        entries.extend(iter);
        *self = Attrs::from_unsorted(entries);
    }
}

/// A function value: a lambda and the environment it closes over.
pub struct Closure {
    pub(crate) def: Rc<LambdaDef>,
    pub(crate) env: Rc<Env>,
}

/// The signature of a builtin's implementation.
pub(crate) type PrimFn = fn(&mut crate::eval::Evaluator, &[Thunk], Span) -> crate::eval::R<Value>;

/// A builtin function.
pub struct PrimOp {
    pub(crate) name: &'static str,
    pub(crate) arity: usize,
    pub(crate) f: PrimFn,
}

/// A builtin applied to fewer arguments than it takes.
pub struct PrimOpApp {
    pub(crate) op: Rc<PrimOp>,
    pub(crate) args: Vec<Thunk>,
}

/// A Nix value.
#[derive(Clone)]
pub enum Value {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string with context.
    String(NixString),
    /// An absolute, normalised path.
    Path(Rc<str>),
    /// An attribute set.
    Attrs(Rc<Attrs>),
    /// A list.
    List(Rc<Vec<Thunk>>),
    /// A lambda.
    Lambda(Rc<Closure>),
    /// A builtin.
    PrimOp(Rc<PrimOp>),
    /// A partially applied builtin.
    PrimOpApp(Rc<PrimOpApp>),
}

impl Value {
    /// The name `builtins.typeOf` gives this value.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Path(_) => "path",
            Value::Attrs(_) => "set",
            Value::List(_) => "list",
            Value::Lambda(_) | Value::PrimOp(_) | Value::PrimOpApp(_) => "lambda",
        }
    }

    /// The type as CppNix names it in error messages ("a string", "an integer", ...).
    pub fn type_desc(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a Boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::String(_) => "a string",
            Value::Path(_) => "a path",
            Value::Attrs(_) => "a set",
            Value::List(_) => "a list",
            Value::Lambda(_) => "a function",
            Value::PrimOp(_) => "a built-in function",
            Value::PrimOpApp(_) => "a partially applied built-in function",
        }
    }

    /// A string value without context.
    pub fn string(s: impl Into<Rc<str>>) -> Value {
        Value::String(NixString::plain(s))
    }

    /// Whether the value can be called.
    pub fn is_function(&self) -> bool {
        matches!(self, Value::Lambda(_) | Value::PrimOp(_) | Value::PrimOpApp(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_order_as_their_text() {
        // Names that tie on the first eight bytes, prefixes of each other, NULs and bytes
        // above 0x7f: the order of symbols must be the order of the bytes.
        let names = [
            "",
            "a",
            "a\0",
            "a\0b",
            "ab",
            "abcdefgh",
            "abcdefgh\0",
            "abcdefghi",
            "abcdefgha",
            "abcdefgz",
            "b",
            "pkg10",
            "pkg9",
            "é",
            "zz",
            "\u{7f}",
            "aaaaaaaaaaaaaaaaaaaaaaaaab",
            "aaaaaaaaaaaaaaaaaaaaaaaaaa",
        ];
        let mut by_text: Vec<&str> = names.to_vec();
        by_text.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut by_symbol: Vec<Symbol> = names.iter().map(|n| Symbol::new(n)).collect();
        by_symbol.sort();
        let sorted: Vec<&str> = by_symbol.iter().map(|s| s.as_str()).collect();
        assert_eq!(sorted, by_text);
        assert_eq!(Symbol::new("abcdefghi"), Symbol::new(&String::from("abcdefghi")));
        assert_ne!(Symbol::new("abcdefghi"), Symbol::new("abcdefgh"));
    }

    #[test]
    fn sets_keep_names_sorted_and_the_last_entry_of_a_name() {
        let entry = |i: i64| AttrEntry { value: Thunk::value(Value::Int(i)), pos: None };
        let int = |e: &AttrEntry| match e.value.get() {
            Some(Value::Int(i)) => i,
            _ => panic!("not an int"),
        };
        let set: Attrs = [("b", 1), ("a", 2), ("b", 3), ("c", 4)]
            .into_iter()
            .map(|(n, i)| (Symbol::new(n), entry(i)))
            .collect();
        let names: Vec<&str> = set.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(int(set.get(&Symbol::new("b")).unwrap()), 3);
        // `//`: the right side wins, whatever the sizes of the two sides.
        let big: Attrs = (0..100).map(|i| (Symbol::new(&format!("n{i:03}")), entry(i))).collect();
        let small: Attrs = [("n050", -1), ("zz", -2)]
            .into_iter()
            .map(|(n, i)| (Symbol::new(n), entry(i)))
            .collect();
        for merged in [big.update(&small), small.update(&big)] {
            assert!(merged.keys().is_sorted());
            assert_eq!(merged.len(), 101);
        }
        assert_eq!(int(big.update(&small).get(&Symbol::new("n050")).unwrap()), -1);
        assert_eq!(int(small.update(&big).get(&Symbol::new("n050")).unwrap()), 50);
        assert_eq!(int(small.update(&big).get(&Symbol::new("zz")).unwrap()), -2);
    }
}
