//! `kiln store verify [--check-contents] [--repair] [PATH...]`: what is wrong with the store,
//! one line a problem, and with `--repair` what became of each.
//!
//! Repair puts back what it can: damaged paths are rebuilt from their derivations in the
//! sandbox (and must come out with the registered hash), paths that lost their normal form are
//! normalised again, unregistered entries of the store folder and damaged entries of the
//! deduplication index are removed. The command fails while any problem is left.

use std::io::Write;

use anyhow::bail;
use kiln_store::{Problem, Store, StorePath, VerifyOptions};
use serde_json::json;

use super::build::report::Reporter;

/// How to verify, from the command line.
pub(crate) struct Args {
    pub(crate) paths: Vec<String>,
    pub(crate) check_contents: bool,
    pub(crate) repair: bool,
    pub(crate) mirrors: Vec<String>,
    pub(crate) no_sandbox: bool,
    pub(crate) json: bool,
}

pub(crate) fn run(store: &Store, args: Args, out: &mut impl Write) -> anyhow::Result<()> {
    let paths = args.paths.iter().map(|p| store.resolve(p)).collect::<Result<Vec<_>, _>>()?;
    let options = VerifyOptions { check_contents: args.check_contents, paths };
    let report = store.verify(&options)?;
    let outcomes = if args.repair { repair(store, &args, &report.problems)? } else { Vec::new() };

    let mut left = 0;
    let mut items = Vec::new();
    for (i, problem) in report.problems.iter().enumerate() {
        let outcome = outcomes.get(i);
        left += usize::from(!matches!(outcome, Some(Ok(_))));
        if args.json {
            items.push(json!({
                "subject": subject(store, problem),
                "problem": problem.describe(),
                "damaged": problem.is_damage(),
                "repaired": outcome.map(|o| o.is_ok()),
                "repair": outcome.map(|o| match o { Ok(m) | Err(m) => m.clone() }),
            }));
            continue;
        }
        writeln!(out, "{}: {}", subject(store, problem), problem.describe())?;
        match outcome {
            Some(Ok(how)) => writeln!(out, "  repaired: {how}")?,
            Some(Err(why)) => writeln!(out, "  not repaired: {why}")?,
            None => {}
        }
    }
    if args.json {
        let value = json!({
            "checked": report.checked, "hashedBytes": report.hashed,
            "problems": items, "left": left,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    }

    let noun = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let hashed = if args.check_contents {
        format!(", {} hashed", crate::ui::human_size(report.hashed))
    } else {
        String::new()
    };
    eprintln!(
        "checked {}{hashed}: {}{}",
        noun(report.checked, "path", "paths"),
        noun(report.problems.len(), "problem", "problems"),
        if args.repair { format!(", {} left", left) } else { String::new() },
    );
    if left > 0 {
        let hint = if args.repair { "" } else { "; `--repair` puts back what it can" };
        bail!("the store has {}{hint}", noun(left, "problem", "problems"));
    }
    Ok(())
}

/// What a problem is about, as the user names it.
fn subject(store: &Store, problem: &Problem) -> String {
    match problem {
        Problem::Database { .. } => store.root().join("db.sqlite").display().to_string(),
        Problem::Unregistered { name } => format!("{}/{name}", store.dir().as_str()),
        Problem::BadLink { name } => store.root().join("links").join(name).display().to_string(),
        _ => store.render(problem.path().expect("the other problems are a path's")),
    }
}

/// Repairs what can be, returning for each problem (in order) how, or why not.
fn repair(
    store: &Store,
    args: &Args,
    problems: &[Problem],
) -> anyhow::Result<Vec<Result<String, String>>> {
    let mut outcomes: Vec<Option<Result<String, String>>> = vec![None; problems.len()];
    // Damaged index entries go first, so no repaired path can be linked to one.
    for (i, problem) in problems.iter().enumerate() {
        if let Problem::BadLink { name } = problem {
            outcomes[i] = Some(match store.remove_link(name) {
                Ok(()) => Ok("removed from the index; the paths that shared it are rebuilt".into()),
                Err(e) => Err(format!("{e:#}")),
            });
        }
    }
    let mut damaged: Vec<StorePath> = Vec::new();
    for (i, problem) in problems.iter().enumerate() {
        let done = match problem {
            Problem::Database { .. } => Err("kiln cannot repair the database itself; restore \
                it from a backup, or rebuild the store"
                .to_owned()),
            Problem::Unregistered { name } => match store.remove_unregistered(name) {
                Ok(true) => Ok("removed".to_owned()),
                Ok(false) => Err("a writer took it, or registered it, meanwhile".to_owned()),
                Err(e) => Err(format!("{:#}", anyhow::Error::from(e))),
            },
            Problem::NotNormal { path, .. } => match store.renormalise(path) {
                Ok(()) => Ok("put back in normal form".to_owned()),
                Err(e) => Err(format!("{:#}", anyhow::Error::from(e))),
            },
            Problem::BadLink { .. } => continue,
            damage => {
                damaged.push(damage.path().expect("damage is a path's").clone());
                continue;
            }
        };
        outcomes[i] = Some(done);
    }

    if !damaged.is_empty() {
        let executor = super::build::executor(store, args.no_sandbox)?;
        let options = kiln_builder::Options {
            mirrors: super::build::absolute_mirrors(&args.mirrors)?,
            ..kiln_builder::Options::default()
        };
        let mut reporter = Reporter::new(store, false);
        let reports =
            kiln_builder::repair(store, &damaged, &options, executor.as_ref(), &mut |e| {
                if !args.json {
                    reporter.event(e)
                }
            })?;
        for report in reports {
            let i = problems
                .iter()
                .position(|p| p.is_damage() && p.path() == Some(&report.path))
                .expect("a report for each damaged path");
            outcomes[i] = Some(match report.outcome {
                Ok(differences) => {
                    let drv = report.drv.as_ref().map_or_else(String::new, |d| store.render(d));
                    let what = if differences.is_empty() {
                        "no file differed".to_owned()
                    } else {
                        format!("the damaged copy differed in {}", differences.join("; "))
                    };
                    Ok(format!("rebuilt from {drv}; {what}"))
                }
                Err(why) => Err(why),
            });
        }
    }
    Ok(outcomes.into_iter().map(|o| o.expect("every problem has an outcome")).collect())
}
