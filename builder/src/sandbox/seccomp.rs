//! The sandbox's seccomp filter: system calls a build never needs are refused.
//!
//! Refused with `EPERM`: making a file setuid or setgid (`chmod`, `fchmod`, `fchmodat`,
//! `fchmodat2` with `S_ISUID` or `S_ISGID` in the mode), and calls that reconfigure the
//! sandbox or the kernel (mounting, changing root, entering or creating namespaces, kernel
//! keyrings, BPF, modules, reboot, swap, accounting). Calls through another architecture's
//! system call table (32-bit calls on a 64-bit kernel) are refused with `ENOSYS`, since the
//! filter's numbers would not apply to them.

use nix::libc;

/// The audit architecture of this build: the ELF machine with the 64-bit and little-endian
/// flags (`AUDIT_ARCH_X86_64`, `AUDIT_ARCH_AARCH64` in `<linux/audit.h>`).
#[cfg(target_arch = "x86_64")]
const ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const ARCH: u32 = 0xC000_00B7;

/// `fchmodat2`, newer than the `libc` crate's tables (the same number on every architecture).
const SYS_FCHMODAT2: libc::c_long = 452;

/// System calls whose mode argument (by index, 1 or 2) may not carry setuid or setgid bits.
fn chmod_calls() -> Vec<(libc::c_long, usize)> {
    let mut calls = vec![(libc::SYS_fchmod, 1), (libc::SYS_fchmodat, 2), (SYS_FCHMODAT2, 2)];
    #[cfg(target_arch = "x86_64")]
    calls.push((libc::SYS_chmod, 1));
    calls
}

/// System calls refused outright.
fn refused_calls() -> Vec<libc::c_long> {
    vec![
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_bpf,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_kexec_load,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_acct,
        libc::SYS_open_tree,
        libc::SYS_move_mount,
        libc::SYS_fsopen,
        libc::SYS_fsmount,
    ]
}

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter { code: code as u16, jt: 0, jf: 0, k }
}

/// A conditional jump: `jt` and `jf` count the instructions skipped.
fn jeq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16, jt, jf, k }
}

/// Builds the filter program.
fn program() -> Vec<libc::sock_filter> {
    let ld = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let allow = libc::SECCOMP_RET_ALLOW;
    // Offsets in `struct seccomp_data`: the call number, the architecture, then the arguments
    // from byte 16 (the low 32 bits of each come first on a little-endian machine).
    let (nr, arch) = (0, 4);
    let arg = |i: usize| (16 + 8 * i) as u32;

    let mut p = vec![
        stmt(ld, arch),
        jeq(ARCH, 1, 0),
        stmt(ret, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        stmt(ld, nr),
    ];
    // Each chmod-like call jumps to the check of its mode argument, placed after the rest:
    // four instructions for argument 1, then four for argument 2.
    let chmods = chmod_calls();
    let refused = refused_calls();
    let checks_start = p.len() + 2 * chmods.len() + 2 * refused.len() + 1;
    for (call, mode_arg) in &chmods {
        p.push(jeq(*call as u32, 0, 1));
        let after_jump = p.len() + 1;
        let target = checks_start + 4 * (mode_arg - 1);
        p.push(stmt(libc::BPF_JMP | libc::BPF_JA, (target - after_jump) as u32));
    }
    for call in &refused {
        p.push(jeq(*call as u32, 0, 1));
        p.push(stmt(ret, eperm));
    }
    p.push(stmt(ret, allow));
    assert_eq!(p.len(), checks_start, "the checks start where the jumps expect them");
    let setid = libc::S_ISUID | libc::S_ISGID;
    for mode_arg in [1, 2] {
        p.push(stmt(ld, arg(mode_arg)));
        p.push(libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: setid,
        });
        p.push(stmt(ret, eperm));
        p.push(stmt(ret, allow));
    }
    p
}

/// Installs the filter for this process and what it executes; `no_new_privs` must be set.
pub(super) fn install() -> Result<(), String> {
    let filter = program();
    let prog = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr().cast_mut() };
    // SAFETY: `prog` points at a valid filter that outlives the call; the kernel copies it.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!("cannot install the seccomp filter: {}", std::io::Error::last_os_error()))
    }
}
