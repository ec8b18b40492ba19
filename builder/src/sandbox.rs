//! The Linux build sandbox: each build runs in fresh user, mount, PID, network, UTS and IPC
//! namespaces, sees only its inputs' closure (read-only), its outputs' folder, `/build`,
//! `/tmp`, a private `/proc` and a minimal `/dev`, and runs as uid 1000 on host `localhost`.
//!
//! The namespaces are not set up in kiln's own (multithreaded) process: the executor starts
//! `kiln __sandbox`, a small helper that is single-threaded when it forks. The helper forks a
//! child that unshares the namespaces, writes the child's uid and gid maps from outside (only
//! the parent namespace may map another uid), and waits. The child forks the builder's process,
//! which is PID 1 of the new PID namespace: it mounts the sandbox, pivots into it, drops to
//! uid 1000 and runs the builder. When it exits, the kernel kills whatever it left behind.
//!
//! A seccomp filter (`seccomp.rs`) refuses setuid and setgid files and the system calls that
//! would reconfigure the sandbox.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kiln_store::{Store, StorePath};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Uid, fork};

mod seccomp;

use crate::Error;
use crate::executor::{ExecOutcome, Executor, Job};
use crate::local::run_logged;

/// The uid and gid the builder has inside the sandbox.
const INSIDE_UID: u32 = 1000;
const INSIDE_GID: u32 = 100;
/// When kiln runs as root, builders run as this host uid and gid, owned by nobody else.
const ROOT_BUILD_ID: u32 = 30_000;
/// The device files the sandbox shares with the host.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Runs builders through `kiln __sandbox`.
pub struct SandboxExecutor<'s> {
    store: &'s Store,
    helper: PathBuf,
}

impl<'s> SandboxExecutor<'s> {
    /// Returns an executor whose sandbox helper is the program `helper` (the `kiln` binary).
    pub fn new(store: &'s Store, helper: PathBuf) -> SandboxExecutor<'s> {
        SandboxExecutor { store, helper }
    }

    /// Tells whether this machine lets kiln create the namespaces, by trying once.
    pub fn available() -> bool {
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                let flags =
                    CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID;
                let code = if unshare(flags).is_ok() { 0 } else { 1 };
                // SAFETY: `_exit` is async-signal-safe and ends the forked child at once.
                unsafe { nix::libc::_exit(code) }
            }
            Ok(ForkResult::Parent { child }) => {
                matches!(waitpid(child, None), Ok(WaitStatus::Exited(_, 0)))
            }
            Err(_) => false,
        }
    }

    fn root_of(job: &Job<'_>) -> PathBuf {
        job.build_dir.join("root")
    }

    /// Lays out the sandbox's root folder on disk; mounts come later, inside the namespaces.
    fn prepare(&self, job: &Job<'_>, host_ids: (u32, u32)) -> std::io::Result<PathBuf> {
        let root = Self::root_of(job);
        let inside = |p: &str| root.join(p.trim_start_matches('/'));
        for dir in ["build", "tmp", "dev", "proc", "etc"] {
            std::fs::create_dir_all(inside(dir))?;
        }
        let store_dir = inside(self.store.dir().as_str());
        std::fs::create_dir_all(&store_dir)?;
        for dir in [&store_dir, &inside("tmp")] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777))?;
        }
        std::fs::create_dir_all(job.build_dir.join("build"))?;
        std::os::unix::fs::chown(job.build_dir.join("build"), Some(host_ids.0), Some(host_ids.1))?;
        std::fs::write(
            inside("etc/passwd"),
            format!(
                "root:x:0:0:root:/build:/noshell\nkiln:x:{INSIDE_UID}:{INSIDE_GID}:kiln build user:/build:/noshell\nnobody:x:65534:65534:nobody:/:/noshell\n"
            ),
        )?;
        std::fs::write(
            inside("etc/group"),
            format!("root:x:0:\nkiln:!:{INSIDE_GID}:\nnogroup:x:65534:\n"),
        )?;
        std::fs::write(inside("etc/hosts"), "127.0.0.1 localhost\n::1 localhost\n")?;
        for dev in DEVICES {
            std::fs::write(inside(&format!("dev/{dev}")), "")?;
        }
        for (name, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            symlink(target, inside(&format!("dev/{name}")))?;
        }

        // What to bind read-only: the inputs' closure and the declared host paths.
        let mut binds: BTreeSet<String> = job.inputs.iter().map(|p| self.store.render(p)).collect();
        if let Some(deps) = job.env.get("__impureHostDeps") {
            binds.extend(deps.split_whitespace().map(str::to_owned));
        }
        let list: String = binds.iter().map(|b| format!("{b}\n")).collect();
        std::fs::write(job.build_dir.join("binds"), list)?;
        Ok(root)
    }
}

/// The host uid and gid builds run as.
fn host_ids() -> (u32, u32) {
    if Uid::effective().is_root() {
        (ROOT_BUILD_ID, ROOT_BUILD_ID)
    } else {
        (Uid::effective().as_raw(), Gid::effective().as_raw())
    }
}

impl Executor for SandboxExecutor<'_> {
    fn run(&self, job: &Job<'_>, log: &mut dyn FnMut(&str)) -> Result<ExecOutcome, Error> {
        let ids = host_ids();
        let root = self.prepare(job, ids).map_err(|source| Error::Io {
            op: "prepare the sandbox in",
            path: job.build_dir.to_owned(),
            source,
        })?;
        // Only fixed-output derivations (downloads, checked against their hash) keep the network.
        let fixed = job.env.contains_key("outputHash");
        let mut cmd = Command::new(&self.helper);
        cmd.arg("__sandbox")
            .arg(&root)
            .arg(job.build_dir.join("build"))
            .arg(job.build_dir.join("binds"))
            .arg(format!("{}:{}", ids.0, ids.1))
            .arg(if fixed { "network" } else { "no-network" })
            .arg("--")
            .arg(job.builder)
            .args(job.args)
            .env_clear()
            .envs(&job.env)
            .current_dir(job.build_dir)
            .stdin(Stdio::null());
        run_logged(cmd, job.builder, log)
    }

    fn output_location(&self, job: &Job<'_>, path: &StorePath) -> PathBuf {
        Self::root_of(job).join(self.store.render(path).trim_start_matches('/'))
    }

    fn isolates_outputs(&self) -> bool {
        true
    }

    fn build_dir_inside(&self, _job: &Job<'_>) -> PathBuf {
        PathBuf::from("/build")
    }
}

/// What `kiln __sandbox` is given.
#[derive(Debug)]
pub struct SandboxArgs {
    /// The sandbox's root folder, prepared by the executor.
    pub root: PathBuf,
    /// The build folder, mounted at `/build`.
    pub build_dir: PathBuf,
    /// A file listing the host paths to bind read-only, one per line.
    pub binds: PathBuf,
    /// The host uid and gid the builder runs as.
    pub host_ids: (u32, u32),
    /// Whether to keep the host's network (fixed-output derivations only).
    pub network: bool,
    /// The builder and its arguments.
    pub command: Vec<String>,
}

/// Runs the sandbox helper; returns the exit code to end the process with. Must be called
/// while the process has one thread.
pub fn sandbox_main(args: &SandboxArgs) -> i32 {
    match run_sandbox(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln_raw(&format!("kiln sandbox: {message}"));
            126
        }
    }
}

/// Writes to stderr (the build log) without the standard library's locks, which a forked
/// child must not take.
fn eprintln_raw(text: &str) {
    let line = format!("{text}\n");
    let _ = nix::unistd::write(std::io::stderr(), line.as_bytes());
}

fn run_sandbox(args: &SandboxArgs) -> Result<i32, String> {
    // If kiln dies (even by `kill -9`), the helper, then its child, then the builder's PID
    // namespace go with it.
    die_with_parent()?;
    let (to_parent_r, to_parent_w) =
        nix::unistd::pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
    let (to_child_r, to_child_w) =
        nix::unistd::pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
    // SAFETY: the helper is single-threaded here (it was just started for this).
    match unsafe { fork() }.map_err(|e| format!("cannot fork: {e}"))? {
        ForkResult::Child => {
            drop((to_parent_r, to_child_w));
            if die_with_parent().is_err() {
                // SAFETY: ends the forked child at once.
                unsafe { nix::libc::_exit(125) }
            }
            let mut flags = CloneFlags::CLONE_NEWUSER
                | CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWIPC;
            if !args.network {
                flags |= CloneFlags::CLONE_NEWNET;
            }
            let code = match unshare(flags) {
                Ok(()) => {
                    let _ = nix::unistd::write(&to_parent_w, b"u");
                    let mut go = [0u8; 1];
                    match nix::unistd::read(&to_child_r, &mut go) {
                        Ok(1) if go[0] == b'g' => in_namespaces(args),
                        _ => 125,
                    }
                }
                Err(e) => {
                    eprintln_raw(&format!("kiln sandbox: cannot create namespaces: {e}"));
                    125
                }
            };
            // SAFETY: ends the forked child without running the parent's exit handlers.
            unsafe { nix::libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop((to_parent_w, to_child_r));
            let mut byte = [0u8; 1];
            if nix::unistd::read(&to_parent_r, &mut byte) != Ok(1) {
                let _ = waitpid(child, None);
                return Err("the sandbox's namespaces could not be created".into());
            }
            let pid = child.as_raw();
            let (uid, gid) = args.host_ids;
            let maps = std::fs::write(format!("/proc/{pid}/setgroups"), "deny")
                .and_then(|()| {
                    std::fs::write(
                        format!("/proc/{pid}/uid_map"),
                        format!("{INSIDE_UID} {uid} 1\n"),
                    )
                })
                .and_then(|()| {
                    std::fs::write(
                        format!("/proc/{pid}/gid_map"),
                        format!("{INSIDE_GID} {gid} 1\n"),
                    )
                });
            if let Err(e) = maps {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(child, None);
                return Err(format!("cannot map the build user: {e}"));
            }
            let _ = nix::unistd::write(&to_child_w, b"g");
            Ok(exit_code(
                waitpid(child, None).map_err(|e| format!("cannot wait for the sandbox: {e}"))?,
            ))
        }
    }
}

fn die_with_parent() -> Result<(), String> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| format!("cannot tie the sandbox to kiln's life: {e}"))
}

fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => 125,
    }
}

/// In the new namespaces: fork the builder's process (PID 1 of the new PID namespace) and wait.
fn in_namespaces(args: &SandboxArgs) -> i32 {
    // SAFETY: this process has one thread (it was forked from a single-threaded one).
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let message = match die_with_parent().and_then(|()| enter_and_exec(args)) {
                Ok(never) => match never {},
                Err(m) => m,
            };
            eprintln_raw(&format!("kiln sandbox: {message}"));
            127
        }
        Ok(ForkResult::Parent { child }) => waitpid(child, None).map(exit_code).unwrap_or(125),
        Err(e) => {
            eprintln_raw(&format!("kiln sandbox: cannot fork: {e}"));
            125
        }
    }
}

fn enter_and_exec(args: &SandboxArgs) -> Result<std::convert::Infallible, String> {
    let root = &args.root;
    let inside = |p: &str| root.join(p.trim_start_matches('/'));
    let none: Option<&str> = None;
    let fail =
        |what: &str, path: &Path, e: nix::Error| format!("cannot {what} `{}`: {e}", path.display());

    // Nothing mounted here may propagate back to the host.
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(|e| fail("make private", Path::new("/"), e))?;
    mount(Some(root.as_path()), root.as_path(), none, MsFlags::MS_BIND | MsFlags::MS_REC, none)
        .map_err(|e| fail("bind", root, e))?;
    bind(&args.build_dir, &inside("build"), false)?;
    for dev in DEVICES {
        let host = PathBuf::from(format!("/dev/{dev}"));
        if host.exists() {
            bind(&host, &inside(&format!("dev/{dev}")), false)?;
        }
    }
    let binds = std::fs::read_to_string(&args.binds)
        .map_err(|e| format!("cannot read `{}`: {e}", args.binds.display()))?;
    for host in binds.lines().filter(|l| !l.is_empty()) {
        bind_host_path(root, Path::new(host))?;
    }
    let proc_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), &inside("proc"), Some("proc"), proc_flags, none)
        .map_err(|e| fail("mount /proc at", &inside("proc"), e))?;

    nix::unistd::sethostname("localhost").map_err(|e| format!("cannot set the host name: {e}"))?;
    if !args.network {
        loopback_up();
    }

    // Make the prepared folder the root, and forget the host's.
    let old = inside(".old-root");
    std::fs::create_dir_all(&old).map_err(|e| format!("cannot create `{}`: {e}", old.display()))?;
    nix::unistd::pivot_root(root.as_path(), &old)
        .map_err(|e| fail("switch the root to", root, e))?;
    nix::unistd::chdir("/").map_err(|e| format!("cannot enter the new root: {e}"))?;
    umount2("/.old-root", MntFlags::MNT_DETACH)
        .map_err(|e| format!("cannot detach the host's root: {e}"))?;
    let _ = std::fs::remove_dir("/.old-root");
    nix::unistd::chdir("/build").map_err(|e| format!("cannot enter /build: {e}"))?;

    nix::unistd::setgid(Gid::from_raw(INSIDE_GID))
        .map_err(|e| format!("cannot set the group: {e}"))?;
    nix::unistd::setuid(Uid::from_raw(INSIDE_UID))
        .map_err(|e| format!("cannot set the user: {e}"))?;
    nix::sys::prctl::set_no_new_privs()
        .map_err(|e| format!("cannot forbid new privileges: {e}"))?;
    seccomp::install()?;

    let cstr = |s: &str| CString::new(s).map_err(|_| format!("`{s}` contains a NUL byte"));
    let program = cstr(&args.command[0])?;
    let argv = args.command.iter().map(|a| cstr(a)).collect::<Result<Vec<_>, _>>()?;
    let envp = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv).map_err(|_| "an environment variable contains a NUL byte".to_owned())
        })
        .collect::<Result<Vec<_>, _>>()?;
    nix::unistd::execve(&program, &argv, &envp)
        .map_err(|e| format!("cannot run the builder `{}`: {e}", args.command[0]))
}

/// Makes a host path visible at the same place inside `root`, read-only. Symlinks on the way
/// (`/bin` -> `usr/bin`, `/usr/bin/gcc` -> `gcc-12`) are recreated inside as they are, and
/// what they lead to is made visible too, so the layout inside matches the host's.
fn bind_host_path(root: &Path, host: &Path) -> Result<(), String> {
    use std::collections::VecDeque;
    use std::path::Component;

    let inside = |p: &Path| root.join(p.strip_prefix("/").unwrap_or(p));
    let mut pending: VecDeque<std::ffi::OsString> = host
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            _ => None,
        })
        .collect();
    let mut current = PathBuf::from("/");
    let mut hops = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            current.pop();
            continue;
        }
        let next = current.join(&name);
        let meta = std::fs::symlink_metadata(&next)
            .map_err(|e| format!("cannot find the host path `{}`: {e}", next.display()))?;
        if meta.is_symlink() {
            hops += 1;
            if hops > 40 {
                return Err(format!("too many symlinks in the host path `{}`", host.display()));
            }
            let target = std::fs::read_link(&next)
                .map_err(|e| format!("cannot read `{}`: {e}", next.display()))?;
            let link = inside(&next);
            if std::fs::symlink_metadata(&link).is_err() {
                if let Some(parent) = link.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
                }
                symlink(&target, &link)
                    .map_err(|e| format!("cannot create `{}`: {e}", link.display()))?;
            }
            let rest: Vec<_> = pending.drain(..).collect();
            if target.is_absolute() {
                current = PathBuf::from("/");
            }
            pending.extend(target.components().filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_owned()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            }));
            pending.extend(rest);
        } else if pending.is_empty() {
            let target = inside(&next);
            // Two declared paths may lead to the same file (`cc` and `gcc`): bind it once.
            if std::fs::symlink_metadata(&target).is_ok_and(|m| {
                !m.is_dir() || target.read_dir().is_ok_and(|mut d| d.next().is_some())
            }) {
                return Ok(());
            }
            if meta.is_dir() {
                std::fs::create_dir_all(&target)
                    .map_err(|e| format!("cannot create `{}`: {e}", target.display()))?;
            } else {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
                }
                std::fs::write(&target, "")
                    .map_err(|e| format!("cannot create `{}`: {e}", target.display()))?;
            }
            return bind(&next, &target, true);
        } else {
            current = next;
        }
    }
    Ok(())
}

/// Binds `host` at `target`, read-only if asked, never with setuid files or devices (but for
/// the device files themselves).
fn bind(host: &Path, target: &Path, read_only: bool) -> Result<(), String> {
    let none: Option<&str> = None;
    mount(Some(host), target, none, MsFlags::MS_BIND | MsFlags::MS_REC, none)
        .map_err(|e| format!("cannot bind `{}`: {e}", host.display()))?;
    if read_only {
        let flags = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV;
        mount(none, target, none, flags, none)
            .map_err(|e| format!("cannot make `{}` read-only: {e}", host.display()))?;
    }
    Ok(())
}

/// Brings up the loopback interface of the new network namespace.
fn loopback_up() {
    use nix::libc;
    // SAFETY: plain ioctls on a socket we own, with a zeroed `ifreq` naming `lo`.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if fd < 0 {
            return;
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr) == 0 {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr);
        }
        libc::close(fd);
    }
}
