//! The builder: plans and realises derivations from the store, in parallel and in a sandbox.
