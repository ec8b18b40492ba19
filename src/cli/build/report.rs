//! What `kiln build` shows: the plan, each build's start and end, the summary; as plain lines,
//! as JSON lines (`--json`), or with live progress bars when stderr is a terminal.
//!
//! Output paths go to stdout; everything else goes to stderr (or stdout, one JSON object per
//! line, with `--json`). With progress bars, finished builds print above the bars, which show
//! done/total and, for each running build, the last line it printed.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln_builder::{CheckReport, Event, Plan, Reason, Status, Summary};
use kiln_store::{Store, StorePath};
use serde_json::json;

/// Live progress on a terminal.
struct Progress {
    multi: MultiProgress,
    total: ProgressBar,
    running: BTreeMap<StorePath, ProgressBar>,
}

/// Draws builder events.
pub(crate) struct Reporter<'s> {
    store: &'s Store,
    json: bool,
    stderr: std::io::Stderr,
    /// Whether stderr is a terminal (progress bars are drawn there).
    terminal: bool,
    progress: Option<Progress>,
    /// With `--explain`, why each derivation is built.
    pub(super) explanations: BTreeMap<StorePath, Vec<String>>,
}

impl<'s> Reporter<'s> {
    pub(crate) fn new(store: &'s Store, json: bool) -> Reporter<'s> {
        let terminal = std::io::stderr().is_terminal();
        Reporter {
            store,
            json,
            stderr: std::io::stderr(),
            terminal,
            progress: None,
            explanations: BTreeMap::new(),
        }
    }

    /// Prints a line for the user on stderr, above the progress bars if there are any.
    fn say(&self, text: &str) {
        match &self.progress {
            Some(p) => {
                let _ = p.multi.println(text);
            }
            None => {
                let _ = writeln!(self.stderr.lock(), "{text}");
            }
        }
    }

    fn start_progress(&mut self, total: usize) {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let bar = multi.add(ProgressBar::new(total as u64));
        bar.set_style(
            ProgressStyle::with_template("[{pos}/{len}] {elapsed_precise} {wide_bar}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        self.progress = Some(Progress { multi, total: bar, running: BTreeMap::new() });
    }

    fn json_line(&self, value: serde_json::Value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{value}");
    }

    pub(super) fn plan(&mut self, plan: &Plan) {
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
        drop(err);
        if !dry_run && self.terminal {
            self.start_progress(n);
        }
    }

    pub(crate) fn event(&mut self, event: Event) {
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
        let render = |p: &StorePath| self.store.render(p);
        match event {
            Event::Plan { .. } => {}
            Event::Started { drv } => match &mut self.progress {
                Some(p) => {
                    let bar = p.multi.insert_before(&p.total, ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("  {spinner} {prefix}: {wide_msg}")
                            .expect("a valid template"),
                    );
                    bar.set_prefix(drv.name().trim_end_matches(".drv").to_owned());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    p.running.insert(drv, bar);
                }
                None => self.say(&format!("building {}", render(&drv))),
            },
            Event::Log { drv, line } => {
                if let Some(bar) = self.progress.as_ref().and_then(|p| p.running.get(&drv)) {
                    bar.set_message(line);
                }
            }
            Event::Finished { drv, status, duration, log } => {
                if let Some(p) = &mut self.progress {
                    if let Some(bar) = p.running.remove(&drv) {
                        bar.finish_and_clear();
                    }
                    p.total.inc(1);
                }
                let text = match status {
                    Status::Built => {
                        format!("built {} in {:.2}s", render(&drv), duration.as_secs_f64())
                    }
                    Status::BuiltElsewhere => {
                        format!("{} was built by another process", render(&drv))
                    }
                    Status::CutOff => {
                        format!("{} is unchanged: its inputs came out as before", render(&drv))
                    }
                    Status::Skipped => return,
                    Status::Failed(message) => {
                        let mut text =
                            format!("error: building {} failed: {message}", render(&drv));
                        if let Some(log) = log {
                            let tail = last_lines(&log, 10);
                            if !tail.is_empty() {
                                text.push_str("\nlast lines of its log:");
                                for line in tail {
                                    text.push_str(&format!("\n  > {line}"));
                                }
                            }
                            text.push_str(&format!("\nthe whole log is at `{}`", log.display()));
                        }
                        text
                    }
                };
                self.say(&text);
            }
        }
    }

    /// Reports `--check`: for each derivation, whether its rebuild came out identical.
    pub(super) fn check_report(&mut self, results: &[CheckReport]) -> anyhow::Result<()> {
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

    pub(super) fn summary(&mut self, s: &Summary) -> anyhow::Result<()> {
        if let Some(p) = self.progress.take() {
            p.total.finish_and_clear();
        }
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
            // One write for all the paths, not one per line.
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for outs in s.outputs.values() {
                for p in outs.values() {
                    writeln!(out, "{}", self.store.render(p))?;
                }
            }
            out.flush()?;
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
