//! End-to-end tests of the `kiln` command: real processes on real stores in temporary folders.

mod build;
mod concurrency;
mod derivation;
mod diff;
mod faults;
mod gc;
mod limits;
mod nar_import;
mod nix_files;
mod optimise;
mod pkgs;
mod store;
mod support;
mod verify;
