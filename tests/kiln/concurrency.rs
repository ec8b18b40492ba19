//! Several `kiln` processes on one store at once: two build loops, an add loop and a
//! collection loop run for a few seconds. Every command succeeds, what each build last linked
//! is valid with its whole closure, and the store verifies afterwards.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::{TestStore, assert_success, write};

/// A chain of `n` derivations, each naming the one before in its output, so the last one's
/// closure is the whole chain; `seed` makes a new chain.
const CHAIN: &str = r#"
{ seed, n ? 12 }:
let
  @mk@
  step = i: prev: mk "c-${seed}-${toString i}" "echo ${seed} ${toString i} ${prev} > $out";
  go = i: prev: if i == n then prev else go (i + 1) (step i prev);
in go 0 "start"
"#;

#[test]
fn builds_adds_and_collections_at_once_leave_a_valid_store() {
    let s = TestStore::new();
    let file = s.nix_file("chain.nix", CHAIN);
    let stop = AtomicBool::new(false);
    let run = |cmd: &mut Command, what: &str| {
        let out = cmd.output().expect("run kiln");
        assert_success(&out, &what);
        String::from_utf8(out.stdout).expect("UTF-8 output")
    };
    let deadline = Instant::now() + Duration::from_secs(6);
    let (linked, counts) = std::thread::scope(|scope| {
        let builders: Vec<_> = (0..2)
            .map(|b| {
                let (s, file, stop, run) = (&s, &file, &stop, &run);
                scope.spawn(move || {
                    let link = s.tmp.path().join(format!("result-{b}"));
                    let mut builds = 0;
                    while !stop.load(Ordering::Relaxed) {
                        // Seeds repeat, so some builds reuse what the other built.
                        let seed = format!("s{}", (builds * 2 + b) % 5);
                        let mut cmd = s.kiln();
                        cmd.args(["build", file, "--argstr", "seed", &seed, "--no-sandbox"])
                            .arg("-o")
                            .arg(&link)
                            .current_dir(s.tmp.path());
                        run(&mut cmd, &format!("build {b} of seed {seed}"));
                        builds += 1;
                    }
                    (link, builds)
                })
            })
            .collect();
        let adder = scope.spawn(|| {
            let mut added = 0;
            while !stop.load(Ordering::Relaxed) {
                let f = s.scratch(&format!("added-{added}"));
                write(&f, format!("file {added}\n").as_bytes());
                run(s.kiln().args(["store", "add"]).arg(&f), "store add");
                added += 1;
            }
            added
        });
        let collector = scope.spawn(|| {
            let mut collections = 0;
            while !stop.load(Ordering::Relaxed) {
                run(s.kiln().args(["store", "gc"]), "store gc");
                collections += 1;
            }
            collections
        });
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
        let built: Vec<_> = builders.into_iter().map(|h| h.join().expect("a build loop")).collect();
        let added = adder.join().expect("the add loop");
        let collections = collector.join().expect("the collection loop");
        let counts = (built.iter().map(|(_, n)| n).sum::<usize>(), added, collections);
        (built.into_iter().map(|(l, _)| l).collect::<Vec<_>>(), counts)
    });
    eprintln!("builds, adds, collections: {counts:?}");
    assert!(counts.0 >= 2 && counts.1 >= 1 && counts.2 >= 1, "every loop ran: {counts:?}");

    // What each builder linked last is valid, with a complete closure of 12 outputs.
    let store = s.open();
    for link in &linked {
        let target = std::fs::read_link(link).expect("the build's link");
        let path = store.resolve(target.to_str().unwrap()).expect("a store path");
        assert!(store.is_valid(&path).unwrap(), "{} is valid", target.display());
        let (closure, _) = store.closure(&[path]).expect("its closure");
        assert_eq!(closure.len(), 12, "the whole chain: {closure:?}");
        for p in &closure {
            let text = std::fs::read_to_string(store.locate(p)).expect("an output's file");
            assert!(text.ends_with('\n'), "{p} is complete");
        }
    }
    // And the store as a whole: registrations, files and hashes agree.
    run(s.kiln().args(["store", "verify", "--check-contents"]), "store verify");
    // One more collection with the links in place keeps the chains.
    run(s.kiln().args(["store", "gc"]), "final gc");
    for link in &linked {
        let target = std::fs::read_link(link).unwrap();
        assert!(target.exists(), "{} survived the last collection", target.display());
    }
}
