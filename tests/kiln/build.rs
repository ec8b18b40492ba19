//! `kiln build` end to end, on DAGs of real `/bin/sh` derivations.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Stdio;

use kiln_store::{Blake3Hash, Derivation, DerivationOutput, Store, StorePath};
use serde_json::Value;

use crate::support::{TestStore, assert_success, summary};

/// The host paths a `/bin/sh` builder needs on Debian.
const HOST_DEPS: &str = "/bin /usr /lib /lib64";

/// Writes derivations whose builders are `/bin/sh -c SCRIPT`, remembering their identities.
struct Graph<'a> {
    store: &'a Store,
    identities: HashMap<StorePath, Blake3Hash>,
}

impl<'a> Graph<'a> {
    fn new(store: &'a Store) -> Graph<'a> {
        Graph { store, identities: HashMap::new() }
    }

    /// An input-addressed derivation `name` that runs `script`; each input's `out` is in
    /// `$in0`, `$in1`, ...
    fn drv(&mut self, name: &str, script: &str, inputs: &[&StorePath]) -> StorePath {
        self.make(name, script, inputs, false)
    }

    /// A content-addressed derivation, otherwise as `drv`.
    fn ca(&mut self, name: &str, script: &str, inputs: &[&StorePath]) -> StorePath {
        self.make(name, script, inputs, true)
    }

    /// Writes a derivation as the evaluator does: content-addressed outputs are placeholders
    /// until built, and a derivation that uses one is deferred.
    fn make(&mut self, name: &str, script: &str, inputs: &[&StorePath], ca: bool) -> StorePath {
        let mut env = BTreeMap::from([
            ("name".to_owned(), name.to_owned()),
            ("out".to_owned(), String::new()),
            ("builder".to_owned(), "/bin/sh".to_owned()),
            // The host's shell and its libraries, declared: the one impurity allowed.
            ("__impureHostDeps".to_owned(), HOST_DEPS.to_owned()),
        ]);
        let mut input_drvs = BTreeMap::new();
        let mut deferred = false;
        for (i, input) in inputs.iter().enumerate() {
            let drv = self.store.read_derivation(input).unwrap();
            let value = match drv.outputs["out"].path.as_ref() {
                Some(p) => self.store.render(p),
                None => {
                    deferred = true;
                    kiln_store::input_placeholder(input, "out")
                }
            };
            env.insert(format!("in{i}"), value);
            input_drvs.insert((*input).clone(), BTreeSet::from(["out".to_owned()]));
        }
        let mut out = DerivationOutput::default();
        if ca {
            out.hash_algo = kiln_store::CA_HASH_ALGO.to_owned();
            env.insert("out".into(), kiln_store::own_placeholder("out"));
            env.insert("__contentAddressed".into(), "1".into());
        }
        let mut drv = Derivation {
            outputs: BTreeMap::from([("out".into(), out)]),
            input_drvs,
            platform: "x86_64-linux".into(),
            builder: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env,
            ..Default::default()
        };
        let ids = &self.identities;
        let id = if ca || deferred {
            drv.identity(self.store.dir(), |p| Ok::<_, kiln_store::Error>(ids[p])).unwrap()
        } else {
            drv.fill_output_paths(self.store.dir(), name, |p| Ok::<_, kiln_store::Error>(ids[p]))
                .unwrap()
        };
        let path = self.store.write_derivation(name, &drv).unwrap();
        self.identities.insert(path.clone(), id);
        path
    }

    /// The output path a successful build of `drv` reported in its summary.
    fn built_out(events: &[Value], drv: &StorePath, store: &Store) -> String {
        summary(events)["outputs"][&store.render(drv)]["out"].as_str().unwrap().to_owned()
    }

    fn out(&self, drv: &StorePath) -> String {
        let d = self.store.read_derivation(drv).unwrap();
        self.store.render(d.outputs["out"].path.as_ref().unwrap())
    }
}

/// The diamond `top <- (left, right) <- leaf`, where `leaf` prints `leaf_text`.
fn diamond(g: &mut Graph<'_>, leaf_text: &str, right_text: &str) -> [StorePath; 4] {
    let leaf = g.drv("leaf", &format!("echo {leaf_text} > $out"), &[]);
    let left = g.drv("left", "read x < $in0; echo \"left($x)\" > $out", &[&leaf]);
    let right =
        g.drv("right", &format!("read x < $in0; echo \"{right_text}($x)\" > $out"), &[&leaf]);
    let top = g.drv(
        "top",
        "/bin/mkdir $out; /bin/cat $in0 $in1 > $out/both; echo $in1 > $out/uses-right",
        &[&left, &right],
    );
    [leaf, left, right, top]
}

#[test]
fn builds_all_then_nothing_then_exactly_what_changed() {
    let s = TestStore::new();
    let store = s.open();
    let mut g = Graph::new(&store);
    let [leaf, left, right, top] = diamond(&mut g, "one", "right");
    let top_abs = store.render(&top);

    let events = s.build_json(&[&top_abs], true);
    assert_eq!(events[0]["event"], "plan");
    assert_eq!(events[0]["to_build"].as_array().unwrap().len(), 4);
    let sum = summary(&events);
    assert_eq!((sum["built"].as_u64(), sum["failed"].as_u64()), (Some(4), Some(0)), "{sum}");
    let out = g.out(&top);
    assert_eq!(sum["outputs"][&top_abs]["out"], out.as_str());
    assert_eq!(std::fs::read_to_string(format!("{out}/both")).unwrap(), "left(one)\nright(one)\n");
    // Inputs build before what uses them.
    let starts: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "start")
        .map(|e| e["drv"].as_str().unwrap())
        .collect();
    assert_eq!(starts.first(), Some(&store.render(&leaf).as_str()));
    assert_eq!(starts.last(), Some(&top_abs.as_str()));

    // The output is registered with its deriver and its references.
    let info = store.query_info(&store.resolve(&out).unwrap()).unwrap().unwrap();
    assert_eq!(info.deriver.as_ref(), Some(&top));
    let left_out = store.resolve(&g.out(&left)).unwrap();
    let right_out = store.resolve(&g.out(&right)).unwrap();
    // `top` names the right side's path in a file, and only copies the left side's text.
    assert_eq!(info.references, BTreeSet::from([right_out]), "{info:?}");
    assert!(store.query_info(&left_out).unwrap().unwrap().references.is_empty());
    assert!(store.last_build(&top, "out").unwrap().is_some());

    // `./result` points at the output and is a garbage-collector root.
    let link = s.tmp.path().join("result");
    assert_eq!(std::fs::read_link(&link).unwrap().to_str(), Some(out.as_str()));
    let roots: Vec<_> = std::fs::read_dir(s.root().join("gcroots/auto")).unwrap().collect();
    assert_eq!(roots.len(), 1);

    // A second build builds nothing.
    let sum = summary(&s.build_json(&[&top_abs], true)).clone();
    assert_eq!((sum["built"].as_u64(), sum["reused"].as_u64()), (Some(0), Some(1)), "{sum}");

    // Changing the leaf rebuilds everything that depends on it.
    let [_, _, _, top2] = diamond(&mut g, "two", "right");
    let sum = summary(&s.build_json(&[&store.render(&top2)], true)).clone();
    assert_eq!(sum["built"].as_u64(), Some(4), "{sum}");
    assert_eq!(
        std::fs::read_to_string(format!("{}/both", g.out(&top2))).unwrap(),
        "left(two)\nright(two)\n"
    );

    // Changing one side rebuilds that side and the top only.
    let [_, _, _, top3] = diamond(&mut g, "two", "RIGHT");
    let events = s.build_json(&[&store.render(&top3)], true);
    let built: BTreeSet<&str> = events
        .iter()
        .filter(|e| e["event"] == "finish" && e["status"] == "built")
        .map(|e| e["drv"].as_str().unwrap().rsplit('-').next().unwrap())
        .collect();
    assert_eq!(built, BTreeSet::from(["right.drv", "top.drv"]));
}

#[test]
fn dry_run_plans_without_building() {
    let s = TestStore::new();
    let store = s.open();
    let mut g = Graph::new(&store);
    let [_, _, _, top] = diamond(&mut g, "x", "y");
    let out = s.kiln().args(["build", "--dry-run", &store.render(&top)]).output().unwrap();
    assert_success(&out, &"dry run");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("4 to build (0 already valid)"), "{err}");
    assert!(err.contains("-top.drv  (output `out` is not in the store)"), "{err}");
    assert!(store.all_paths().unwrap().iter().all(|p| p.is_derivation()), "nothing was built");
}

#[test]
fn failures_are_reported_and_keep_going_builds_the_rest() {
    let s = TestStore::new();
    let store = s.open();
    let mut g = Graph::new(&store);
    let bad = g.drv("bad", "echo about to fail; echo on stderr >&2; exit 3", &[]);
    let after_bad = g.drv("after-bad", "/bin/cat $in0 > $out", &[&bad]);
    let fine = g.drv("fine", "echo fine > $out", &[]);
    let lazy = g.drv("lazy", "echo produced nothing", &[]);

    let out = s.kiln().args(["build", "--no-link", &store.render(&after_bad)]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("-bad.drv failed: the builder exited with status 3"), "{err}");
    assert!(err.contains("  > about to fail\n  > on stderr\n"), "{err}");
    assert!(err.contains("the whole log is at `"), "{err}");
    assert!(err.contains("error: 1 build failed"), "{err}");

    let out = s.kiln().args(["build", "--no-link", &store.render(&lazy)]).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("the builder did not produce output `out` at `"), "{err}");

    let all = [&after_bad, &fine].map(|p| store.render(p));
    let events = s.build_json(&["--keep-going", "--no-link", &all[0], &all[1]], false);
    let sum = summary(&events);
    assert_eq!(
        (sum["built"].as_u64(), sum["failed"].as_u64(), sum["skipped"].as_u64()),
        (Some(1), Some(1), Some(1)),
        "{sum}"
    );
    assert!(store.is_valid(&store.resolve(&g.out(&fine)).unwrap()).unwrap());
    assert!(!store.is_valid(&store.resolve(&g.out(&bad)).unwrap()).unwrap());
    assert!(!std::path::Path::new(&g.out(&bad)).exists(), "a failed build leaves no output");
}

#[test]
fn two_processes_on_overlapping_graphs_build_each_derivation_once() {
    let s = TestStore::new();
    let store = s.open();
    let mut g = Graph::new(&store);
    let shared = g.drv("shared", "/bin/sleep 0.5; echo shared > $out", &[]);
    let a = g.drv("a", "/bin/cat $in0 > $out", &[&shared]);
    let b = g.drv("b", "/bin/cat $in0 > $out", &[&shared]);
    let spawn = |drv: &StorePath| {
        s.kiln()
            .args(["build", "--json", "--no-link", &store.render(drv)])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (p1, p2) = (spawn(&a), spawn(&b));
    let mut built = 0;
    let mut shared_built = 0;
    for p in [p1, p2] {
        let out = p.wait_with_output().unwrap();
        assert_success(&out, &"concurrent build");
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let e: Value = serde_json::from_str(line).unwrap();
            if e["event"] == "finish" && e["status"] == "built" {
                built += 1;
                shared_built += usize::from(e["drv"].as_str().unwrap().ends_with("-shared.drv"));
            }
        }
    }
    assert_eq!((built, shared_built), (3, 1), "each derivation is built exactly once");
}

#[test]
fn the_sandbox_hides_the_host() {
    let s = TestStore::new();
    let store = s.open();
    let mut g = Graph::new(&store);
    // Each probe prints `name=yes` when the build could do the thing, `name=no` otherwise.
    let script = r#"
probe() { name=$1; shift; if "$@" >/dev/null 2>&1; then echo "$name=yes"; else echo "$name=no"; fi; }
{
probe read-shadow /bin/cat /etc/shadow
probe list-root /bin/ls /root
probe list-home /bin/ls /home
probe write-usr /bin/sh -c 'echo x > /usr/kiln-escape'
probe write-root /bin/sh -c 'echo x > /kiln-escape'
probe write-build /bin/sh -c 'echo x > /build/inside'
probe perl-runs /usr/bin/perl -e 1
probe connect /usr/bin/perl -MIO::Socket::INET -e 'IO::Socket::INET->new(PeerAddr => "1.1.1.1:80", Timeout => 2) or exit 1'
echo "uid=$(/usr/bin/id -u)"
echo "host=$(/bin/hostname)"
echo "pwd=$(/bin/pwd)"
echo "interfaces=$(/bin/grep -c : /proc/net/dev)"
echo "processes=$(/bin/ls /proc | /bin/grep -c '^[0-9]')"
echo "home=$HOME path=$PATH tmp=$TMPDIR"
echo "env=$(/usr/bin/env | /usr/bin/cut -d= -f1 | LC_ALL=C /usr/bin/sort | /usr/bin/tr '\n' ' ')"
} > $out
"#;
    let probe = g.drv("probe", script, &[]);
    let out = s.kiln().args(["build", "--no-link", &store.render(&probe)]).output().unwrap();
    assert_success(&out, &"sandboxed probe");
    let report = std::fs::read_to_string(g.out(&probe)).unwrap();
    for line in [
        "read-shadow=no",
        "list-root=no",
        "list-home=no",
        "write-usr=no",
        "write-root=no",
        "write-build=yes",
        "perl-runs=yes",
        "connect=no",
        "uid=1000",
        "host=localhost",
        "pwd=/build",
        "interfaces=1",
        "home=/homeless-shelter path=/path-not-set tmp=/build",
        // The derivation's attributes, the fixed variables and the shell's own `PWD`: no more.
        "env=HOME NIX_BUILD_CORES PATH PWD SOURCE_DATE_EPOCH TMPDIR TZ __impureHostDeps builder name out ",
    ] {
        assert!(report.lines().any(|l| l == line), "expected `{line}` in:\n{report}");
    }
    let processes: usize =
        report.lines().find_map(|l| l.strip_prefix("processes=")).unwrap().parse().unwrap();
    assert!(processes < 10, "the build sees host processes:\n{report}");
    assert!(
        !std::path::Path::new("/usr/kiln-escape").exists()
            && !std::path::Path::new("/kiln-escape").exists()
    );
}

#[test]
fn builds_cannot_make_setuid_files_or_remount() {
    use std::os::unix::fs::PermissionsExt;
    let s = TestStore::new();
    let store = s.open();
    let mut g = Graph::new(&store);
    let script = r#"
probe() { name=$1; shift; if "$@" >/dev/null 2>&1; then echo "$name=yes"; else echo "$name=no"; fi; }
/bin/mkdir $out
echo x > $out/file
{
probe chmod-plain /bin/chmod 0755 $out/file
probe chmod-setuid /bin/chmod 4755 $out/file
probe chmod-setgid /bin/chmod 2755 $out/file
probe mount /bin/mount -t tmpfs none /tmp
probe unshare /usr/bin/unshare --user true
} > $out/report
"#;
    let drv = g.drv("setuid", script, &[]);
    let out = s.kiln().args(["build", "--no-link", &store.render(&drv)]).output().unwrap();
    assert_success(&out, &"setuid build");
    let out_path = g.out(&drv);
    let report = std::fs::read_to_string(format!("{out_path}/report")).unwrap();
    for line in ["chmod-plain=yes", "chmod-setuid=no", "chmod-setgid=no", "mount=no", "unshare=no"]
    {
        assert!(report.lines().any(|l| l == line), "expected `{line}` in:\n{report}");
    }
    let mode = std::fs::metadata(format!("{out_path}/file")).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o555, "the stored file keeps no special bit");
}

#[test]
fn kill_during_a_build_then_rerun_succeeds() {
    let s = TestStore::new();
    let store = s.open();
    let mut g = Graph::new(&store);
    let first = g.drv("first", "echo first > $out", &[]);
    let slow = g.drv("slow", "/bin/sleep 3; /bin/cat $in0 > $out", &[&first]);
    let mut child = s
        .kiln()
        .args(["build", "--no-link", &store.render(&slow)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the slow builder runs, then kill kiln outright.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !store.is_valid(&store.resolve(&g.out(&first)).unwrap()).unwrap() {
        assert!(std::time::Instant::now() < deadline, "the first build never finished");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();

    assert!(
        !store.is_valid(&store.resolve(&g.out(&slow)).unwrap()).unwrap(),
        "a killed build leaves no valid output"
    );
    let events = s.build_json(&["--no-link", &store.render(&slow)], true);
    let sum = summary(&events);
    assert_eq!((sum["built"].as_u64(), sum["reused"].as_u64()), (Some(1), Some(1)), "{sum}");
    assert_eq!(std::fs::read_to_string(g.out(&slow)).unwrap(), "first\n");
    for p in store.all_paths().unwrap() {
        let info = store.query_info(&p).unwrap().unwrap();
        assert_eq!(
            kiln_store::nar::hash_path(&store.locate(&p)).unwrap(),
            (info.nar_hash, info.nar_size)
        );
    }
}

/// The same diamond, content-addressed: `leaf` prints `leaf_text` (with a comment that changes
/// its derivation but not its output), the others use their inputs.
fn ca_diamond(
    g: &mut Graph<'_>,
    leaf_text: &str,
    comment: &str,
    right_text: &str,
) -> [StorePath; 4] {
    let leaf = g.ca("leaf", &format!("echo {leaf_text} > $out # {comment}"), &[]);
    let left = g.ca("left", "read x < $in0; echo \"left($x)\" > $out", &[&leaf]);
    let right =
        g.ca("right", &format!("read x < $in0; echo \"{right_text}($x)\" > $out"), &[&leaf]);
    // `top` is input-addressed: it is deferred until its inputs exist.
    let top = g.drv(
        "top",
        "/bin/mkdir $out; /bin/cat $in0 $in1 > $out/both; echo $in1 > $out/uses-right",
        &[&left, &right],
    );
    [leaf, left, right, top]
}

fn statuses(events: &[Value]) -> BTreeMap<String, String> {
    events
        .iter()
        .filter(|e| e["event"] == "finish")
        .map(|e| {
            let drv = e["drv"].as_str().unwrap();
            (drv[drv.find('-').unwrap() + 1..].to_owned(), e["status"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn content_addressed_builds_stop_where_nothing_changed() {
    let s = TestStore::new();
    let store = s.open();
    let mut g = Graph::new(&store);
    let [_, _, _, top] = ca_diamond(&mut g, "one", "first", "right");
    let events = s.build_json(&["--no-link", &store.render(&top)], true);
    assert_eq!(summary(&events)["built"].as_u64(), Some(4), "{}", summary(&events));
    let out = Graph::built_out(&events, &top, &store);
    assert_eq!(std::fs::read_to_string(format!("{out}/both")).unwrap(), "left(one)\nright(one)\n");
    // The deferred `top` refers to the real path of `right`, not to a placeholder.
    let right_path = std::fs::read_to_string(format!("{out}/uses-right")).unwrap();
    assert!(store.is_valid(&store.resolve(right_path.trim()).unwrap()).unwrap(), "{right_path}");

    // Nothing changed: nothing is built, and the plan says so before running anything.
    let events = s.build_json(&["--no-link", &store.render(&top)], true);
    let sum = summary(&events);
    assert_eq!((sum["built"].as_u64(), sum["reused"].as_u64()), (Some(0), Some(1)), "{sum}");
    assert_eq!(Graph::built_out(&events, &top, &store), out);

    // A comment in the leaf's script changes its derivation, not its output: the leaf alone
    // is rebuilt, and everything after it is cut off.
    let [_, _, _, top2] = ca_diamond(&mut g, "one", "second", "right");
    assert_ne!(top2, top);
    let events = s.build_json(&["--no-link", &store.render(&top2)], true);
    let sum = summary(&events);
    assert_eq!((sum["built"].as_u64(), sum["cut_off"].as_u64()), (Some(1), Some(3)), "{sum}");
    assert_eq!(
        statuses(&events),
        BTreeMap::from([
            ("leaf.drv".to_owned(), "built".to_owned()),
            ("left.drv".to_owned(), "cut-off".to_owned()),
            ("right.drv".to_owned(), "cut-off".to_owned()),
            ("top.drv".to_owned(), "cut-off".to_owned()),
        ])
    );
    assert_eq!(Graph::built_out(&events, &top2, &store), out, "the same output, reused");

    // A leaf whose output changes rebuilds everything after it.
    let [_, _, _, top3] = ca_diamond(&mut g, "two", "second", "right");
    let events = s.build_json(&["--no-link", &store.render(&top3)], true);
    let sum = summary(&events);
    assert_eq!((sum["built"].as_u64(), sum["cut_off"].as_u64()), (Some(4), Some(0)), "{sum}");
    let out3 = Graph::built_out(&events, &top3, &store);
    assert_eq!(std::fs::read_to_string(format!("{out3}/both")).unwrap(), "left(two)\nright(two)\n");
}

#[test]
fn content_addressed_outputs_may_refer_to_themselves() {
    let s = TestStore::new();
    let store = s.open();
    let mut g = Graph::new(&store);
    let drv =
        g.ca("selfref", "/bin/mkdir $out; echo $out > $out/me; /bin/ln -s $out/me $out/link", &[]);
    let events = s.build_json(&["--no-link", &store.render(&drv)], true);
    let out = Graph::built_out(&events, &drv, &store);
    assert_eq!(
        std::fs::read_to_string(format!("{out}/me")).unwrap().trim(),
        out,
        "rewritten to the final path"
    );
    assert_eq!(
        std::fs::read_link(format!("{out}/link")).unwrap().to_str().unwrap(),
        format!("{out}/me")
    );
    let mtime = std::fs::metadata(format!("{out}/me")).unwrap().modified().unwrap();
    assert_eq!(
        mtime,
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(1),
        "still normalised"
    );
    let path = store.resolve(&out).unwrap();
    let info = store.query_info(&path).unwrap().unwrap();
    assert_eq!(info.references, BTreeSet::from([path.clone()]));
    assert_eq!(
        kiln_store::nar::hash_path(&store.locate(&path)).unwrap(),
        (info.nar_hash, info.nar_size)
    );
}

/// The explanations of a `--dry-run --explain --json` plan, by derivation file name.
fn explanations(s: &TestStore, store: &Store, drv: &StorePath) -> BTreeMap<String, Vec<String>> {
    let events = s.build_json(&["--dry-run", "--explain", &store.render(drv)], true);
    assert_eq!(events.len(), 1, "a dry run prints the plan only");
    events[0]["to_build"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let drv = item["drv"].as_str().unwrap();
            let lines = item["explanation"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().to_owned());
            (drv[drv.find('-').unwrap() + 1..].to_owned(), lines.collect())
        })
        .collect()
}

#[test]
fn explain_names_the_reason() {
    let s = TestStore::new();
    let store = s.open();
    let mut g = Graph::new(&store);
    let [_, _, _, top] = diamond(&mut g, "one", "right");
    let first = explanations(&s, &store, &top);
    assert_eq!(first.len(), 4);
    assert_eq!(first["leaf.drv"], ["never built: no earlier build of `leaf` is recorded"]);
    s.build_json(&["--no-link", &store.render(&top)], true);

    // The leaf's script changed: its attributes changed, and the others' input changed.
    let [_, _, _, top2] = diamond(&mut g, "two", "right");
    let why = explanations(&s, &store, &top2);
    assert_eq!(why["leaf.drv"], ["attributes changed since the previous build: `args`"]);
    assert_eq!(why["left.drv"].len(), 1);
    assert!(
        why["left.drv"][0].starts_with("input `leaf` changed (its output changed): was `"),
        "{why:?}"
    );
    assert!(why["top.drv"].iter().any(|l| l.starts_with("input `left` changed")), "{why:?}");
    assert!(
        !why["top.drv"].iter().any(|l| l.contains("attributes changed")),
        "paths of inputs are not attribute changes: {why:?}"
    );

    // A failed attempt is remembered.
    let bad = g.drv("flaky", "exit 3", &[]);
    s.build_json(&["--no-link", &store.render(&bad)], false);
    let why = explanations(&s, &store, &bad);
    assert_eq!(why["flaky.drv"][0], "a previous attempt failed: the builder exited with status 3");
}

#[test]
fn explain_says_when_a_content_addressed_rebuild_may_be_cut_off() {
    let s = TestStore::new();
    let store = s.open();
    let mut g = Graph::new(&store);
    let [_, _, _, top] = ca_diamond(&mut g, "one", "first", "right");
    s.build_json(&["--no-link", &store.render(&top)], true);
    let [_, _, _, top2] = ca_diamond(&mut g, "one", "second", "right");
    let why = explanations(&s, &store, &top2);
    assert_eq!(why["leaf.drv"], ["attributes changed since the previous build: `args`"]);
    assert!(
        why["left.drv"][0].starts_with("input `leaf` changed (it is to be built first; if its output comes out the same, this may be cut off)"),
        "{why:?}"
    );

    // After the build, the plan of the same graph is empty: everything was cut off or reused.
    s.build_json(&["--no-link", &store.render(&top2)], true);
    let events = s.build_json(&["--dry-run", "--explain", &store.render(&top2)], true);
    assert_eq!(events[0]["to_build"].as_array().unwrap().len(), 0);
}

#[test]
fn logs_are_kept_compressed_and_shown_by_kiln_log() {
    let s = TestStore::new();
    let store = s.open();
    let mut g = Graph::new(&store);
    let drv =
        g.drv("chatty", "echo hello from the build; echo to stderr >&2; echo done > $out", &[]);
    s.build_json(&[&store.render(&drv)], true);
    let file = s.root().join(format!("logs/{drv}.log.gz"));
    assert_eq!(&std::fs::read(&file).unwrap()[..2], &[0x1f, 0x8b], "gzip-compressed");
    let want = "hello from the build\nto stderr\n";
    assert_eq!(s.ok(&["log", &store.render(&drv)]), want);
    // An output, or a link to it, leads to the log of the derivation that built it.
    assert_eq!(s.ok(&["log", s.tmp.path().join("result").to_str().unwrap()]), want);

    let source = s.scratch("src");
    crate::support::write(&source, b"x");
    let added = s.ok(&["store", "add", source.to_str().unwrap()]);
    let err = s.fails(&["log", added.trim()], 1);
    assert!(err.contains("was not built by kiln here, so it has no build log"), "{err}");
}

/// Returns whether any process runs `/bin/sleep` with this exact argument.
fn sleep_running(arg: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .is_ok_and(|c| c == format!("/bin/sleep\0{arg}\0").as_bytes())
    })
}

#[test]
fn interrupting_a_build_stops_it_and_keeps_the_store_valid() {
    let s = TestStore::new();
    let store = s.open();
    let mut g = Graph::new(&store);
    let drv = g.drv("sleepy", "/bin/sleep 41.5; echo never > $out", &[]);
    let child = s
        .kiln()
        .args(["build", "--no-link", &store.render(&drv)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !sleep_running("41.5") {
        assert!(std::time::Instant::now() < deadline, "the builder never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("interrupted by SIGINT: running builds were stopped"), "{err}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!sleep_running("41.5"), "the builder outlived the interrupt");
    assert!(!store.is_valid(&store.resolve(&g.out(&drv)).unwrap()).unwrap());
    assert!(!std::path::Path::new(&g.out(&drv)).exists());
}

impl Graph<'_> {
    /// A fixed-output derivation: `builtin:fetchurl` of `url` when `script` is `None`.
    fn fixed(&mut self, name: &str, url: &str, script: Option<&str>, sha256: &str) -> StorePath {
        let (builder, args) = match script {
            None => ("builtin:fetchurl".to_owned(), vec![]),
            Some(s) => ("/bin/sh".to_owned(), vec!["-c".to_owned(), s.to_owned()]),
        };
        let env = BTreeMap::from([
            ("name".to_owned(), name.to_owned()),
            ("out".to_owned(), String::new()),
            ("url".to_owned(), url.to_owned()),
            ("builder".to_owned(), builder.clone()),
            ("outputHash".to_owned(), sha256.to_owned()),
            ("outputHashAlgo".to_owned(), "sha256".to_owned()),
            ("outputHashMode".to_owned(), "flat".to_owned()),
            ("__impureHostDeps".to_owned(), HOST_DEPS.to_owned()),
        ]);
        let out = DerivationOutput { path: None, hash_algo: "sha256".into(), hash: sha256.into() };
        let mut drv = Derivation {
            outputs: BTreeMap::from([("out".into(), out)]),
            platform: "x86_64-linux".into(),
            builder,
            args,
            env,
            ..Default::default()
        };
        let id = drv
            .fill_output_paths(self.store.dir(), name, |_| -> Result<_, kiln_store::Error> {
                unreachable!()
            })
            .unwrap();
        let path = self.store.write_derivation(name, &drv).unwrap();
        self.identities.insert(path.clone(), id);
        path
    }
}

/// The upstream tarballs beside the repository, with their hashes, if they are there.
fn upstream() -> Option<(std::path::PathBuf, BTreeMap<String, String>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/upstream");
    let Ok(sums) = std::fs::read_to_string(dir.join("SHA256SUMS")) else {
        eprintln!("../shared/upstream is missing: skipping the fetch tests that use its tarballs");
        return None;
    };
    let hashes = sums
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(h, f)| (f.trim().to_owned(), h.to_owned()))
        .collect();
    Some((dir, hashes))
}

#[test]
fn fetchurl_finds_files_in_mirrors_by_name_and_by_hash() {
    let Some((mirror, hashes)) = upstream() else { return };
    let s = TestStore::new();
    let store = s.open();
    let mut g = Graph::new(&store);
    let hello_hash = &hashes["hello-2.10.tar.gz"];
    let hello = g.fixed(
        "hello-2.10.tar.gz",
        "https://ftp.gnu.org/gnu/hello/hello-2.10.tar.gz",
        None,
        hello_hash,
    );
    // zlib's upstream name differs from the mirror's file: only its hash finds it.
    let zlib_hash = &hashes["zlib-1.2.13.dfsg.tar.bz2"];
    let zlib =
        g.fixed("zlib-1.2.13.tar.bz2", "https://zlib.net/zlib-1.2.13.tar.bz2", None, zlib_hash);
    let mirror_arg = mirror.to_str().unwrap();
    let events = s.build_json(
        &["--no-link", "--mirror", mirror_arg, &store.render(&hello), &store.render(&zlib)],
        true,
    );
    assert_eq!(summary(&events)["built"].as_u64(), Some(2));
    assert_eq!(
        std::fs::read(g.out(&hello)).unwrap(),
        std::fs::read(mirror.join("hello-2.10.tar.gz")).unwrap()
    );
    assert_eq!(
        std::fs::read(g.out(&zlib)).unwrap(),
        std::fs::read(mirror.join("zlib-1.2.13.dfsg.tar.bz2")).unwrap()
    );

    // A wrong hash finds nothing, and says where it looked.
    let wrong = g.fixed(
        "hello-2.10.tar.gz",
        "https://ftp.gnu.org/gnu/hello/hello-2.10.tar.gz",
        None,
        &"0".repeat(64),
    );
    let out = s
        .kiln()
        .args(["build", "--no-link", "--mirror", mirror_arg, &store.render(&wrong)])
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("cannot fetch `hello-2.10.tar.gz`") && err.contains("has other contents"),
        "{err}"
    );
    assert!(err.contains("only `http://` and `file://` URLs can be fetched"), "{err}");
}

#[test]
fn fetchurl_downloads_from_an_http_mirror() {
    let s = TestStore::new();
    let served = s.scratch("served");
    crate::support::write(&served.join("data-1.0.txt"), b"served over http\n");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut server = std::process::Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string()])
        .current_dir(&served)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs the HTTP server");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "the HTTP server did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let store = s.open();
    let mut g = Graph::new(&store);
    let sha256: String = {
        use sha2::Digest as _;
        sha2::Sha256::digest(b"served over http\n").iter().map(|b| format!("{b:02x}")).collect()
    };
    let drv = g.fixed("data-1.0.txt", "https://example.invalid/data-1.0.txt", None, &sha256);
    let events = s.build_json(&["--no-link", "--mirror", &url, &store.render(&drv)], true);
    let log_lines: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "log")
        .map(|e| e["line"].as_str().unwrap())
        .collect();
    assert!(
        log_lines.iter().any(|l| l.contains(&format!("from the mirror `{url}/data-1.0.txt`"))),
        "{log_lines:?}"
    );
    assert_eq!(std::fs::read(g.out(&drv)).unwrap(), b"served over http\n");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn a_fixed_output_with_the_wrong_hash_fails_with_both_hashes() {
    let s = TestStore::new();
    let store = s.open();
    let mut g = Graph::new(&store);
    let drv = g.fixed("made", "none", Some("echo made > $out"), &"a".repeat(64));
    let out = s.kiln().args(["build", "--no-link", &store.render(&drv)]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!(
            "output `out`: hash mismatch: expected sha256:{}, got sha256:",
            "a".repeat(64)
        )),
        "{err}"
    );
    assert!(!std::path::Path::new(&g.out(&drv)).exists());
}

#[test]
fn check_rebuilds_and_compares() {
    let s = TestStore::new();
    let store = s.open();
    let mut g = Graph::new(&store);
    let steady = g.drv("steady", "/bin/mkdir $out; echo same > $out/same", &[]);
    let selfref = g.ca("selfref", "/bin/mkdir $out; echo $out > $out/me", &[]);
    let random = g.drv("random", "/bin/mkdir $out; echo same > $out/same; /bin/cat /proc/sys/kernel/random/uuid > $out/random", &[]);
    let paths = [&steady, &selfref].map(|d| store.render(d));

    let events = s.build_json(&["--no-link", "--check", &paths[0], &paths[1]], true);
    let checks: Vec<&Value> = events.iter().filter(|e| e["event"] == "check").collect();
    assert_eq!(checks.len(), 2, "{events:?}");
    assert!(checks.iter().all(|c| c["identical"] == true), "{checks:?}");

    let out =
        s.kiln().args(["build", "--no-link", "--check", &store.render(&random)]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("differs from its rebuild:\n  random: different contents\n"), "{err}");
    assert!(err.contains("error: 1 output did not check out"), "{err}");

    let out = s
        .kiln()
        .args(["build", "--no-link", "--no-sandbox", "--check", &paths[0]])
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("checking needs the sandbox"), "{err}");
}

#[test]
fn a_terminal_gets_live_progress() {
    let s = TestStore::new();
    let store = s.open();
    let mut g = Graph::new(&store);
    let drv = g.drv("slow-talker", "echo working hard; /bin/sleep 1.2; echo done > $out", &[]);
    // `script` gives kiln a terminal and records what it drew.
    let kiln = env!("CARGO_BIN_EXE_kiln");
    let command =
        format!("{kiln} --store {} build --no-link {}", s.root().display(), store.render(&drv));
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    assert_success(&out, &"kiln build under script");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("[0/1]"), "no done/total bar:\n{screen}");
    assert!(
        screen.contains("slow-talker: working hard"),
        "no line of the running build:\n{screen}"
    );
    assert!(screen.contains("built ") && screen.contains("built 1, reused 0"), "{screen}");
}
