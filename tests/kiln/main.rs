//! End-to-end tests of the `kiln` command: real processes on real stores in temporary folders.

mod derivation;
mod store;
mod support;
