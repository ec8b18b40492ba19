//! `kiln build`: plan and build derivations, print their outputs and link them as `./result`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use kiln_builder::{
    CheckReport, Event, LocalExecutor, Options, Plan, Reason, SandboxExecutor, Status, Summary,
};
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
    /// Say, for each derivation to build, what changed since the previous build of the same
    /// package
    #[arg(long)]
    explain: bool,
    /// Print one JSON object per event, one per line, ending with a summary
    #[arg(long)]
    json: bool,
    /// The name of the result links [default: result]
    #[arg(short = 'o', long = "out-link", value_name = "LINK", conflicts_with = "no_link")]
    out_link: Option<PathBuf>,
    /// Make no result links
    #[arg(long)]
    no_link: bool,
    /// Build again derivations whose outputs exist, and compare: a reproducibility check
    #[arg(long)]
    check: bool,
    /// Run builders directly on the host instead of in the sandbox
    #[arg(long)]
    no_sandbox: bool,
    /// Look for downloads here first, by file name and by hash (`SHA256SUMS`): a folder or an
    /// `http://` URL (can be repeated)
    #[arg(long = "mirror", value_name = "DIR-OR-URL")]
    mirrors: Vec<String>,
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
    stop_builds_on_interrupt()?;
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
    if args.explain {
        for (_, node) in plan.to_build() {
            reporter
                .explanations
                .insert(node.drv_path.clone(), kiln_builder::explain(&store, node)?);
        }
    }
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
    for mirror in &args.mirrors {
        let is_url = mirror.contains("://");
        let absolute = if is_url {
            mirror.clone()
        } else {
            std::path::absolute(mirror)?.display().to_string()
        };
        options.mirrors.push(absolute);
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
    if args.check {
        let results =
            kiln_builder::check(&store, &plan, &options, executor, &mut |e| reporter.event(e))?;
        reporter.check_report(&results)?;
    }
    Ok(())
}

/// On Ctrl-C (or `SIGTERM`, `SIGHUP`), kills the running builds' process groups and exits with
/// status 130, leaving the store valid. The signals are blocked in every thread (threads
/// inherit the mask; builders do not, as spawning resets it) and taken by one waiting thread.
fn stop_builds_on_interrupt() -> anyhow::Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    signals.thread_block().context("cannot block interrupt signals")?;
    std::thread::Builder::new()
        .name("kiln-signals".into())
        .spawn(move || {
            if let Ok(signal) = signals.wait() {
                kiln_builder::kill_running_builds();
                eprintln!(
                    "interrupted by {signal}: running builds were stopped; the store is intact"
                );
                std::process::exit(130);
            }
        })
        .context("cannot start the signal thread")?;
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
    /// With `--explain`, why each derivation is built.
    explanations: BTreeMap<StorePath, Vec<String>>,
}

impl<'s> Reporter<'s> {
    fn new(store: &'s Store, json: bool) -> Reporter<'s> {
        let terminal = std::io::stderr().is_terminal();
        Reporter { store, json, stderr: std::io::stderr(), terminal, explanations: BTreeMap::new() }
    }

    fn json_line(&self, value: serde_json::Value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{value}");
    }

    fn plan(&mut self, plan: &Plan) {
        let to_build: Vec<(StorePath, Reason)> = plan
            .to_build()
            .map(|(_, n)| {
                (n.drv_path.clone(), n.reason.clone().expect("a node to build has a reason"))
            })
            .collect();
        self.draw_plan(&to_build, plan.nodes.len() - to_build.len(), true);
    }

    /// Draws the plan: the header, and with `--dry-run` or `--explain` each derivation with
    /// its reason (and explanation).
    fn draw_plan(&mut self, to_build: &[(StorePath, Reason)], valid: usize, dry_run: bool) {
        let explanation = |d: &StorePath| self.explanations.get(d).cloned().unwrap_or_default();
        if self.json {
            let items: Vec<_> = to_build
                .iter()
                .map(|(d, r)| {
                    let mut item = json!({"drv": self.store.render(d), "reason": r.to_string()});
                    if self.explanations.contains_key(d) {
                        item["explanation"] = json!(explanation(d));
                    }
                    item
                })
                .collect();
            self.json_line(json!({"event": "plan", "to_build": items, "valid": valid}));
            return;
        }
        let mut err = self.stderr.lock();
        if to_build.is_empty() {
            if dry_run {
                let _ = writeln!(err, "nothing to build: all {valid} derivations are valid");
            }
            return;
        }
        let n = to_build.len();
        if dry_run {
            let _ = writeln!(err, "{n} to build ({valid} already valid):");
        } else {
            let _ = writeln!(err, "building {n} derivations ({valid} already valid)");
        }
        if dry_run || !self.explanations.is_empty() {
            for (d, r) in to_build {
                let _ = writeln!(err, "  {}  ({r})", self.store.render(d));
                for line in explanation(d) {
                    let _ = writeln!(err, "      {line}");
                }
            }
        }
    }

    fn event(&mut self, event: Event) {
        let render = |p: &StorePath| self.store.render(p);
        if let Event::Plan { to_build, valid } = &event {
            self.draw_plan(to_build, *valid, false);
            return;
        }
        if self.json {
            let value = match &event {
                Event::Plan { .. } => unreachable!("drawn above"),
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

    /// Reports `--check`: for each derivation, whether its rebuild came out identical.
    fn check_report(&mut self, results: &[CheckReport]) -> anyhow::Result<()> {
        let mut bad = 0;
        for CheckReport { drv, outcome } in results {
            let drv_text = self.store.render(drv);
            match outcome {
                Ok(outputs) => {
                    for o in outputs {
                        let same = o.differences.is_empty();
                        bad += usize::from(!same);
                        if self.json {
                            self.json_line(json!({
                                "event": "check", "drv": drv_text, "output": o.output,
                                "path": self.store.render(&o.path), "identical": same,
                                "differences": o.differences,
                            }));
                        } else if same {
                            let _ = writeln!(
                                self.stderr.lock(),
                                "checked {}: the rebuild is identical",
                                self.store.render(&o.path)
                            );
                        } else {
                            let mut err = self.stderr.lock();
                            let _ = writeln!(
                                err,
                                "{} differs from its rebuild:",
                                self.store.render(&o.path)
                            );
                            for d in &o.differences {
                                let _ = writeln!(err, "  {d}");
                            }
                        }
                    }
                }
                Err(message) => {
                    bad += 1;
                    if self.json {
                        self.json_line(
                            json!({"event": "check", "drv": drv_text, "error": message}),
                        );
                    } else {
                        let _ = writeln!(
                            self.stderr.lock(),
                            "error: cannot check {drv_text}: {message}"
                        );
                    }
                }
            }
        }
        if bad > 0 {
            bail!("{bad} output{} did not check out", if bad == 1 { "" } else { "s" });
        }
        Ok(())
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
    let text = kiln_builder::read_log(path).map(|(text, _)| text).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| l.to_string()).collect()
}
