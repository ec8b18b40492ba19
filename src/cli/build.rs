//! `kiln build`: plan and build derivations, print their outputs and link them as `./result`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use kiln_builder::{LocalExecutor, Options, Plan, SandboxExecutor, Summary};
use kiln_store::{Store, StorePath};

use super::Context;
use super::frontend::{EvalArgs, Source, derivations};

pub(super) mod report;

use report::Reporter;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Nix files to evaluate, or `.drv` store paths to build [default: ./default.nix] (can be
    /// repeated)
    paths: Vec<String>,
    #[command(flatten)]
    eval: EvalArgs,
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
    let roots = roots(&store, cx, &args)?;
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
    options.mirrors = absolute_mirrors(&args.mirrors)?;
    let executor = executor(&store, args.no_sandbox)?;
    let executor = executor.as_ref();
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

/// Returns `--mirror` folders as absolute paths (URLs as they are).
pub(super) fn absolute_mirrors(mirrors: &[String]) -> anyhow::Result<Vec<String>> {
    let mut absolute = Vec::new();
    for mirror in mirrors {
        if mirror.contains("://") {
            absolute.push(mirror.clone());
        } else {
            absolute.push(std::path::absolute(mirror)?.display().to_string());
        }
    }
    Ok(absolute)
}

/// Returns the executor builds run with: the sandbox, unless `no_sandbox` says otherwise or
/// the machine cannot create namespaces (which is said).
pub(super) fn executor<'s>(
    store: &'s Store,
    no_sandbox: bool,
) -> anyhow::Result<Box<dyn kiln_builder::Executor + 's>> {
    if no_sandbox {
        return Ok(Box::new(LocalExecutor::new(store)));
    }
    if SandboxExecutor::available() {
        let kiln = std::env::current_exe().context("cannot find the kiln binary")?;
        return Ok(Box::new(SandboxExecutor::new(store, kiln)));
    }
    eprintln!(
        "warning: this machine does not let kiln create namespaces; building without the sandbox"
    );
    Ok(Box::new(LocalExecutor::new(store)))
}

/// Returns the derivations to build: `.drv` paths as given, and those of evaluated files (or
/// expressions with `-E`).
fn roots(store: &Store, cx: &Context, args: &Args) -> anyhow::Result<Vec<StorePath>> {
    let mut roots = Vec::new();
    let mut to_evaluate = Vec::new();
    for p in &args.paths {
        match store.resolve(p) {
            Ok(path) if path.is_derivation() && !args.eval.expr => roots.push(path),
            Ok(path) if !args.eval.expr => {
                bail!("`{}` is a store path but not a derivation", store.render(&path))
            }
            _ => to_evaluate.push(p.clone()),
        }
    }
    if !to_evaluate.is_empty() || roots.is_empty() {
        let sources = Source::from_args(&to_evaluate, args.eval.expr);
        for drv_path in derivations(cx.store_root()?, sources, &args.eval)? {
            roots.push(store.dir().parse(&drv_path)?);
        }
    }
    Ok(roots)
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
