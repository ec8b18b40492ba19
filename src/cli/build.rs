//! `kiln build`: plan and build derivations, print their outputs and link them as `./result`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use kiln_builder::{Event, LocalExecutor, Options, Plan, SandboxExecutor, Status, Summary};
use kiln_store::{Store, StorePath};
use serde_json::json;

use super::Context;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// `.drv` store paths to build (can be repeated)
    #[arg(required = true)]
    paths: Vec<String>,
    /// How many builds may run at once [default: the number of cores]
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    jobs: Option<usize>,
    /// Build everything that does not depend on a failure, then report all failures
    #[arg(long)]
    keep_going: bool,
    /// Keep the build folder of a failed build
    #[arg(long)]
    keep_failed: bool,
    /// Print what would be built, and why, and stop
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object per event, one per line, ending with a summary
    #[arg(long)]
    json: bool,
    /// The name of the result links [default: result]
    #[arg(short = 'o', long = "out-link", value_name = "LINK", conflicts_with = "no_link")]
    out_link: Option<PathBuf>,
    /// Make no result links
    #[arg(long)]
    no_link: bool,
    /// Run builders directly on the host instead of in the sandbox
    #[arg(long)]
    no_sandbox: bool,
}

/// The hidden `kiln __sandbox` command's arguments (see `kiln_builder::SandboxArgs`).
#[derive(clap::Args, Debug)]
pub(crate) struct SandboxArgs {
    root: PathBuf,
    build_dir: PathBuf,
    binds: PathBuf,
    /// `UID:GID` on the host
    ids: String,
    /// `network` or `no-network`
    network: String,
    /// The builder and its arguments
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// Runs the sandbox helper and exits with the builder's status.
pub(crate) fn sandbox(args: SandboxArgs) -> anyhow::Result<()> {
    let (uid, gid) = args.ids.split_once(':').context("ids must be `UID:GID`")?;
    let args = kiln_builder::SandboxArgs {
        root: args.root,
        build_dir: args.build_dir,
        binds: args.binds,
        host_ids: (uid.parse()?, gid.parse()?),
        network: args.network == "network",
        command: args.command,
    };
    std::process::exit(kiln_builder::sandbox_main(&args))
}

pub(crate) fn run(args: Args, cx: &Context) -> anyhow::Result<()> {
    let store = cx.open_store()?;
    let roots = args
        .paths
        .iter()
        .map(|p| {
            let path = store.resolve(p)?;
            if !path.is_derivation() {
                // FIXME: building from a Nix file waits on the evaluator's `derivation` builtin.
                bail!(
                    "`{p}` is not a `.drv` store path; building from Nix files is not supported yet"
                );
            }
            Ok(path)
        })
        .collect::<anyhow::Result<Vec<StorePath>>>()?;
    let plan = Plan::new(&store, &roots)?;
    let mut reporter = Reporter::new(&store, args.json);
    if args.dry_run {
        reporter.plan(&plan);
        return Ok(());
    }

    let mut options = Options {
        keep_going: args.keep_going,
        keep_failed: args.keep_failed,
        ..Options::default()
    };
    if let Some(jobs) = args.jobs {
        options.jobs = jobs.max(1);
    }
    let local = LocalExecutor::new(&store);
    let sandboxed;
    let executor: &dyn kiln_builder::Executor = if args.no_sandbox {
        &local
    } else if SandboxExecutor::available() {
        let kiln = std::env::current_exe().context("cannot find the kiln binary")?;
        sandboxed = SandboxExecutor::new(&store, kiln);
        &sandboxed
    } else {
        eprintln!(
            "warning: this machine does not let kiln create namespaces; building without the sandbox"
        );
        &local
    };
    let summary =
        kiln_builder::build(&store, &plan, &options, executor, &mut |e| reporter.event(e))?;
    reporter.summary(&summary)?;
    if summary.failed > 0 {
        let n = summary.failed;
        bail!("{n} build{} failed", if n == 1 { "" } else { "s" });
    }
    if !args.no_link {
        link_results(&store, &summary, args.out_link.as_deref().unwrap_or(Path::new("result")))?;
    }
    Ok(())
}

/// Makes `result`, `result-dev`, ... (`result-2`, ... for further derivations) and registers
/// each as a garbage-collector root.
fn link_results(store: &Store, summary: &Summary, base: &Path) -> anyhow::Result<()> {
    for (n, outputs) in summary.outputs.values().enumerate() {
        for (name, path) in outputs {
            let mut link = base.as_os_str().to_owned();
            if n > 0 {
                link.push(format!("-{}", n + 1));
            }
            if name != "out" {
                link.push(format!("-{name}"));
            }
            let link = PathBuf::from(link);
            let tmp = link.with_extension("kiln-tmp");
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(store.locate(path), &tmp)
                .and_then(|()| std::fs::rename(&tmp, &link))
                .with_context(|| format!("cannot make the link `{}`", link.display()))?;
            store.add_indirect_root(&link)?;
        }
    }
    Ok(())
}

/// Draws builder events: plain lines on stderr (output paths on stdout), or JSON lines.
struct Reporter<'s> {
    store: &'s Store,
    json: bool,
    stderr: std::io::Stderr,
    /// Whether stderr is a terminal (log lines are shown there, prefixed with the package).
    terminal: bool,
}

impl<'s> Reporter<'s> {
    fn new(store: &'s Store, json: bool) -> Reporter<'s> {
        let terminal = std::io::stderr().is_terminal();
        Reporter { store, json, stderr: std::io::stderr(), terminal }
    }

    fn json_line(&self, value: serde_json::Value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{value}");
    }

    fn plan(&mut self, plan: &Plan) {
        let to_build: Vec<_> = plan.to_build().collect();
        let valid = plan.nodes.len() - to_build.len();
        if self.json {
            let items: Vec<_> = to_build
                .iter()
                .map(|(_, n)| json!({"drv": self.store.render(&n.drv_path), "reason": n.reason.as_ref().map(|r| r.to_string())}))
                .collect();
            self.json_line(json!({"event": "plan", "to_build": items, "valid": valid}));
            return;
        }
        let mut err = self.stderr.lock();
        if to_build.is_empty() {
            let _ = writeln!(err, "nothing to build: all {valid} derivations are valid");
        } else {
            let _ = writeln!(err, "{} to build ({valid} already valid):", to_build.len());
            for (_, n) in to_build {
                let reason = n.reason.as_ref().map(|r| r.to_string()).unwrap_or_default();
                let _ = writeln!(err, "  {}  ({reason})", self.store.render(&n.drv_path));
            }
        }
    }

    fn event(&mut self, event: Event) {
        let render = |p: &StorePath| self.store.render(p);
        if self.json {
            let value = match &event {
                Event::Plan { to_build, valid } => json!({
                    "event": "plan",
                    "to_build": to_build.iter().map(|(d, r)| json!({"drv": render(d), "reason": r.to_string()})).collect::<Vec<_>>(),
                    "valid": valid,
                }),
                Event::Started { drv } => json!({"event": "start", "drv": render(drv)}),
                Event::Log { drv, line } => {
                    json!({"event": "log", "drv": render(drv), "line": line})
                }
                Event::Finished { drv, status, duration, log } => {
                    let (status, message) = status_text(status);
                    json!({
                        "event": "finish", "drv": render(drv), "status": status, "message": message,
                        "seconds": duration.as_secs_f64(), "log": log.as_ref().map(|l| l.display().to_string()),
                    })
                }
            };
            self.json_line(value);
            return;
        }
        let mut err = self.stderr.lock();
        match event {
            Event::Plan { to_build, valid } if !to_build.is_empty() => {
                let _ = writeln!(
                    err,
                    "building {} derivations ({valid} already valid)",
                    to_build.len()
                );
            }
            Event::Plan { .. } => {}
            Event::Started { drv } => {
                let _ = writeln!(err, "building {}", render(&drv));
            }
            Event::Log { drv, line } if self.terminal => {
                let _ = writeln!(err, "{}> {line}", drv.name().trim_end_matches(".drv"));
            }
            Event::Log { .. } => {}
            Event::Finished { drv, status, duration, log } => match status {
                Status::Built => {
                    let _ =
                        writeln!(err, "built {} in {:.2}s", render(&drv), duration.as_secs_f64());
                }
                Status::BuiltElsewhere => {
                    let _ = writeln!(err, "{} was built by another process", render(&drv));
                }
                Status::CutOff => {
                    let _ = writeln!(
                        err,
                        "{} is unchanged: its inputs came out as before",
                        render(&drv)
                    );
                }
                Status::Skipped => {}
                Status::Failed(message) => {
                    let _ = writeln!(err, "error: building {} failed: {message}", render(&drv));
                    if let Some(log) = log {
                        let tail = last_lines(&log, 10);
                        if !tail.is_empty() {
                            let _ = writeln!(err, "last lines of its log:");
                            for line in tail {
                                let _ = writeln!(err, "  > {line}");
                            }
                        }
                        let _ = writeln!(err, "the whole log is at `{}`", log.display());
                    }
                }
            },
        }
    }

    fn summary(&mut self, s: &Summary) -> anyhow::Result<()> {
        let outputs: serde_json::Map<String, serde_json::Value> = s
            .outputs
            .iter()
            .map(|(drv, outs)| {
                let outs: serde_json::Map<_, _> =
                    outs.iter().map(|(n, p)| (n.clone(), self.store.render(p).into())).collect();
                (self.store.render(drv), outs.into())
            })
            .collect();
        if self.json {
            self.json_line(json!({
                "event": "summary", "built": s.built, "reused": s.reused, "cut_off": s.cut_off,
                "failed": s.failed, "skipped": s.skipped, "seconds": s.duration.as_secs_f64(),
                "outputs": outputs,
            }));
            return Ok(());
        }
        let _ = writeln!(
            self.stderr.lock(),
            "built {}, reused {}, cut off {}, failed {}{} in {:.2}s",
            s.built,
            s.reused,
            s.cut_off,
            s.failed,
            if s.skipped > 0 { format!(", not started {}", s.skipped) } else { String::new() },
            s.duration.as_secs_f64()
        );
        if s.failed == 0 {
            let mut out = std::io::stdout().lock();
            for outs in s.outputs.values() {
                for p in outs.values() {
                    writeln!(out, "{}", self.store.render(p))?;
                }
            }
        }
        Ok(())
    }
}

fn status_text(status: &Status) -> (&'static str, Option<String>) {
    match status {
        Status::Built => ("built", None),
        Status::BuiltElsewhere => ("built-elsewhere", None),
        Status::CutOff => ("cut-off", None),
        Status::Skipped => ("skipped", None),
        Status::Failed(m) => ("failed", Some(m.clone())),
    }
}

fn last_lines(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| l.to_string()).collect()
}
