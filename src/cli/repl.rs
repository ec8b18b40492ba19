//! `kiln repl`: an interactive evaluator with history, `:l FILE`, `:p EXPR`, `:t EXPR`, `:q`,
//! `NAME = EXPR` definitions and tab completion of variables and attribute names.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use anyhow::{Context as _, bail};
use kiln_evaluator::value::{AttrEntry, Attrs, Symbol, Thunk};
use kiln_evaluator::{Evaluator, Value};
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;

/// Arguments of `kiln repl`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// A file whose attributes are loaded into scope at the start
    file: Option<PathBuf>,
    /// Add a search path entry (`PATH` or `PREFIX=PATH`) for `<...>` lookups
    #[arg(short = 'I', value_name = "PATH")]
    include: Vec<String>,
}

/// The REPL's state shared with the completer.
struct Session {
    ev: RefCell<Evaluator>,
    scope: RefCell<Rc<Attrs>>,
    cwd: PathBuf,
}

impl Session {
    fn eval(&self, text: &str) -> Result<Value, Vec<kiln_evaluator::Diagnostic>> {
        let scope = self.scope.borrow().clone();
        self.ev.borrow_mut().eval_in_scope("«repl»", text, &self.cwd, &scope)
    }

    fn define(&self, name: &str, value: Thunk) {
        let mut attrs = (**self.scope.borrow()).clone();
        attrs.insert(Symbol::new(name), AttrEntry { value, pos: None });
        *self.scope.borrow_mut() = Rc::new(attrs);
    }

    fn report(&self, diags: &[kiln_evaluator::Diagnostic]) {
        super::eval::draw(&self.ev.borrow().sources, diags, false);
    }
}

#[derive(rustyline::Helper, rustyline::Hinter, rustyline::Highlighter, rustyline::Validator)]
struct Helper {
    session: Rc<Session>,
}

const COMMANDS: &[&str] = &[":l", ":load", ":p", ":print", ":t", ":type", ":q", ":quit", ":?"];

impl Completer for Helper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let before = &line[..pos];
        let start =
            before.rfind(|c: char| c.is_whitespace() || "([{;=,:".contains(c)).map_or(0, |i| i + 1);
        let word = &before[start..];
        if before.starts_with(':') && !before.contains(' ') {
            let found = COMMANDS.iter().filter(|c| c.starts_with(before)).map(|c| c.to_string());
            return Ok((0, found.collect()));
        }
        if let Some(dot) = word.rfind('.') {
            let (prefix, partial) = (&word[..dot], &word[dot + 1..]);
            let Ok(Value::Attrs(attrs)) = self.session.eval(prefix) else {
                return Ok((start, Vec::new()));
            };
            let found = attrs
                .keys()
                .filter(|k| k.as_str().starts_with(partial))
                .map(|k| format!("{prefix}.{k}"))
                .collect();
            return Ok((start, found));
        }
        let mut names: Vec<String> =
            self.session.scope.borrow().keys().map(|k| k.to_string()).collect();
        names.extend(self.session.ev.borrow().global_names());
        names.retain(|n| n.starts_with(word) && !n.starts_with("__"));
        names.sort();
        names.dedup();
        Ok((start, names))
    }
}

/// Runs `kiln repl` on a thread with a large stack.
pub(crate) fn run(args: Args, store_root: PathBuf) -> anyhow::Result<()> {
    super::frontend::spawn_big_stack("repl", move || run_here(args, store_root))?
        .join()
        .map_err(|_| anyhow::anyhow!("the evaluator crashed"))?
}

fn history_path() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let dir = var("XDG_STATE_HOME").or_else(|| var("HOME").map(|h| h.join(".local/state")))?;
    Some(dir.join("kiln/repl-history"))
}

fn run_here(args: Args, store_root: PathBuf) -> anyhow::Result<()> {
    let io = Box::new(super::store_io::StoreIo::new(store_root));
    let ev = super::frontend::make_evaluator(io, &args.include, None, None, &[]);
    let cwd = std::env::current_dir().context("cannot find the current directory")?;
    let session =
        Rc::new(Session { ev: RefCell::new(ev), scope: RefCell::new(Rc::new(Attrs::new())), cwd });
    if let Some(file) = &args.file {
        load(&session, &file.to_string_lossy());
    }
    let mut rl: rustyline::Editor<Helper, rustyline::history::DefaultHistory> =
        rustyline::Editor::new().context("cannot start the line editor")?;
    rl.set_helper(Some(Helper { session: session.clone() }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    println!("kiln repl: `:?` for help, `:q` to quit");
    loop {
        let line = match rl.readline("kiln> ") {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => bail!("cannot read the input: {e}"),
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let _ = rl.add_history_entry(line);
        let go_on = handle(&session, line);
        // What the line wrote to the store is registered before the next prompt, so that
        // another command can build it.
        if let Err(e) = session.ev.borrow().flush_io() {
            eprintln!("error: {e}");
        }
        if !go_on {
            break;
        }
    }
    if let Some(h) = &history {
        if let Some(dir) = h.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = rl.save_history(h);
    }
    Ok(())
}

/// Handles one line; false to quit.
fn handle(session: &Session, line: &str) -> bool {
    let (cmd, rest) = match line.split_once(char::is_whitespace) {
        Some((c, r)) if line.starts_with(':') => (c, r.trim()),
        _ if line.starts_with(':') => (line, ""),
        _ => ("", line),
    };
    match cmd {
        ":q" | ":quit" => return false,
        ":?" | ":help" => {
            println!("EXPR        evaluate and print (one level)");
            println!("NAME = EXPR define a variable");
            println!(":p EXPR     evaluate and print completely");
            println!(":t EXPR     print the type");
            println!(":l FILE     load the attributes of FILE into scope");
            println!(":q          quit");
        }
        ":l" | ":load" => load(session, rest),
        ":p" | ":print" => match session.eval(rest) {
            Ok(v) => match session.ev.borrow_mut().print_strict(&v) {
                Ok(s) => println!("{s}"),
                Err(d) => session.report(&[*d]),
            },
            Err(ds) => session.report(&ds),
        },
        ":t" | ":type" => match session.eval(rest) {
            Ok(v) => println!("{}", v.type_desc()),
            Err(ds) => session.report(&ds),
        },
        "" => {
            if let Some((name, expr)) = definition(line) {
                match session.eval(expr) {
                    Ok(v) => session.define(name, Thunk::value(v)),
                    Err(ds) => session.report(&ds),
                }
            } else {
                match session.eval(line) {
                    Ok(v) => println!("{}", kiln_evaluator::print::print_value(&v)),
                    Err(ds) => session.report(&ds),
                }
            }
        }
        other => eprintln!("error: unknown command `{other}`; `:?` lists the commands"),
    }
    true
}

/// `NAME = EXPR` (but not `a == b`).
fn definition(line: &str) -> Option<(&str, &str)> {
    let (name, expr) = line.split_once('=')?;
    let name = name.trim();
    let ok = !name.is_empty()
        && !expr.starts_with('=')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-'".contains(c))
        && !name.starts_with(|c: char| c.is_ascii_digit());
    ok.then_some((name, expr.trim()))
}

fn load(session: &Session, file: &str) {
    let path = session.cwd.join(file);
    let text = format!("import {}", kiln_evaluator::print::quote_string(&path.to_string_lossy()));
    let value = match session.eval(&text) {
        Ok(v) => v,
        Err(ds) => return session.report(&ds),
    };
    let empty = Rc::new(Attrs::new());
    let value = match session.ev.borrow_mut().auto_call(value, &empty) {
        Ok(v) => v,
        Err(d) => return session.report(&[*d]),
    };
    match value {
        Value::Attrs(attrs) => {
            for (k, e) in attrs.iter() {
                session.define(k.as_str(), e.value.clone());
            }
            println!("added {} variables", attrs.len());
        }
        other => eprintln!("error: `{file}` is {}, not a set", other.type_desc()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Rc<Session> {
        let io = Box::new(kiln_evaluator::PlainIo::default());
        let ev = super::super::frontend::make_evaluator(io, &[], None, None, &[]);
        Rc::new(Session {
            ev: RefCell::new(ev),
            scope: RefCell::new(Rc::new(Attrs::new())),
            cwd: std::env::temp_dir(),
        })
    }

    fn complete(helper: &Helper, line: &str) -> (usize, Vec<String>) {
        let history = rustyline::history::DefaultHistory::new();
        let ctx = rustyline::Context::new(&history);
        helper.complete(line, line.len(), &ctx).unwrap()
    }

    #[test]
    fn definitions_are_told_from_comparisons() {
        assert_eq!(definition("x = 1"), Some(("x", "1")));
        assert_eq!(definition("a == b"), None);
        assert_eq!(definition("{ a = 1; }"), None);
    }

    #[test]
    fn completes_variables_attributes_and_commands() {
        let s = session();
        assert!(handle(&s, "pkgs = { hello = 1; help = 2; other = 3; }"));
        let helper = Helper { session: s };
        assert_eq!(complete(&helper, "pk"), (0, vec!["pkgs".to_string()]));
        assert_eq!(
            complete(&helper, "1 + pkgs.hel"),
            (4, vec!["pkgs.hello".into(), "pkgs.help".into()])
        );
        assert_eq!(complete(&helper, "builtins.attrN").1, vec!["builtins.attrNames".to_string()]);
        assert_eq!(complete(&helper, ":q").1, vec![":q".to_string(), ":quit".to_string()]);
    }
}
